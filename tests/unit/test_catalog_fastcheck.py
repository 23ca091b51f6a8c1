"""The catalog's fast path (core/catalog/fastcheck.py): a schema translated into a msgspec type.

The invariant: the fast type accepts => fastjsonschema accepts; and `Catalog.validate` answers
exactly as the fastjsonschema-only path (`Catalog(..., fast=False)`) does: same result, same
error field and message. Checked with generated data for every built-in schema and for
generated tenant schemas."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from datetime import datetime
from typing import Any

import fastjsonschema
import msgspec
import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from fleetlog.core.catalog import Catalog, EventType, builtin_catalog, dt, model, pelion, span
from fleetlog.core.catalog.fastcheck import fast_type
from fleetlog.core.errors import InvalidInput
from tests.unit.test_catalog import DT_NAMES

BUILTIN_TYPES = (*dt.SENSOR_EVENT_TYPES, *span.ACTIVITY_EVENT_TYPES, *pelion.EVENT_LOG_CODES)
WITH_SCHEMA = [t.name for t in BUILTIN_TYPES if t.schema is not None]
REFERENCE = Catalog(BUILTIN_TYPES, fast=False)

SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)

# ---------------------------------------------------------------------------------------------
# Data from a schema: valid-ish data, then one or two random mutations


ODD_STRINGS = ["", " ", "null", "0", "1.5", "true", "é", "😀", "\x00", "a\n", "x" * 300, "f0", "PRESENT "]
EXTRA_KEYS = ["f0", "f1", "extra", "", "Value", "value ", "samples", "updateTime"]
JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(ODD_STRINGS),
    st.text(max_size=6),
    st.lists(st.integers(), max_size=3),
    st.tuples(st.text(max_size=2)),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
ARABIC_DIGITS = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")
FORMAT_EXAMPLES = {
    "date": "2024-02-29",
    "email": "a@example.com",
    "ipv4": "10.0.0.1",
    "uri": "https://example.com/x",
    "hostname": "example.com",
}
DATE_TIME_MUTATIONS: list[Callable[[str], str]] = [
    lambda t: t[:10] + " " + t[11:],  # space separator
    lambda t: t[:10] + "_" + t[11:],
    lambda t: "x" + t,
    lambda t: " " + t,
    lambda t: t + "\n",
    lambda t: t + " ",
    lambda t: t.rstrip("Zz").rsplit("+", 1)[0],  # no offset (or a shorter one)
    lambda t: t.translate(ARABIC_DIGITS),  # \d matches these too
    lambda t: "2023-02-29" + t[10:],
    lambda t: "2000-02-29" + t[10:],
    lambda t: "1900-02-29" + t[10:],
    lambda t: "2024-04-31" + t[10:],
    lambda t: t[:17] + "60" + t[19:],  # a leap second
    lambda t: t[:17] + "61" + t[19:],
    lambda t: t[:19] + "." + t[19:],
    lambda t: t[:19] + "+24:00",
    lambda t: t[:19] + "+01",
    lambda t: t[:19] + ",5Z",
    lambda t: t[:16] + "Z",  # no seconds
]


@st.composite
def date_times(draw: st.DrawFn) -> str:
    moment = draw(st.datetimes(min_value=datetime(1, 1, 1, 1), max_value=datetime(9999, 12, 30)))
    separator, timespec = draw(st.sampled_from("Tt")), draw(st.sampled_from(["seconds", "microseconds"]))
    return moment.isoformat(separator, timespec) + draw(st.sampled_from(["Z", "z", "+01:00", "-23:59", "+0530"]))


def numbers(schema: dict[str, Any], integer: bool) -> st.SearchStrategy[Any]:
    """Mostly numbers within the bounds; sometimes at them or just outside them."""
    bounds = [schema[k] for k in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum") if k in schema]
    bounds = [v for v in bounds if isinstance(v, int | float) and not isinstance(v, bool)]
    low = max([-1000, *(schema[k] for k in ("minimum", "exclusiveMinimum") if schema.get(k) in bounds)])
    high = min([1000, *(schema[k] for k in ("maximum", "exclusiveMaximum") if schema.get(k) in bounds)])
    inside: list[st.SearchStrategy[Any]] = []
    if math.ceil(low) <= math.floor(high):
        inside.append(st.integers(math.ceil(low), math.floor(high)))
    if not integer and low < high:
        inside.append(st.floats(low, high))
    near: list[Any] = [0, 1, -1, 2**53, 2**53 + 1, 2**64, -0.0]
    for bound in bounds:
        near += [bound, bound - 1, bound + 1, bound - 0.5, bound + 0.5, float(bound), math.floor(bound)]
    return st.one_of(*inside, st.sampled_from(near))


def strings(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    if isinstance(schema.get("pattern"), str):
        return st.from_regex(schema["pattern"])
    if schema.get("format") == "date-time":
        return date_times()
    if schema.get("format") in FORMAT_EXAMPLES:
        return st.just(FORMAT_EXAMPLES[schema["format"]])
    low, high = schema.get("minLength", 0), schema.get("maxLength", 8)
    return st.text(min_size=max(low - 1, 0), max_size=max(low, high) + 1)  # at and around the bounds


def arrays(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Mostly short lists; sometimes one item repeated to each bound and just past it."""
    low, high = schema.get("minItems", 0), schema.get("maxItems", 3)
    items = values(schema.get("items", True))
    edges = items.flatmap(lambda item: st.sampled_from([[item] * n for n in {max(low - 1, 0), low, high, high + 1}]))
    return st.one_of(st.lists(items, min_size=low, max_size=min(high, 3)), edges)


@st.composite
def objects(draw: st.DrawFn, schema: dict[str, Any]) -> dict[str, Any]:
    properties, required = schema.get("properties", {}), schema.get("required", [])
    data = {key: draw(values(sub)) for key, sub in properties.items() if key in required or draw(st.booleans())}
    extra = schema.get("additionalProperties", True)
    if isinstance(extra, dict):
        data.update(draw(st.dictionaries(st.text(max_size=4), values(extra), max_size=3)))
    return data


def values(schema: Any) -> st.SearchStrategy[Any]:
    """Valid-ish data for `schema` (numbers and strings may miss their bounds)."""
    if not isinstance(schema, dict) or not schema.keys() - {"title"}:
        return JUNK
    if "enum" in schema or "const" in schema:
        choices = schema.get("enum", [schema.get("const")])
        return st.sampled_from(choices) if choices else JUNK
    build: dict[str, Callable[[dict[str, Any]], st.SearchStrategy[Any]]] = {
        "object": objects,
        "array": arrays,
        "string": strings,
        "number": lambda s: numbers(s, integer=False),
        "integer": lambda s: numbers(s, integer=True),
        "boolean": lambda _: st.booleans(),
        "null": lambda _: st.none(),
    }
    names = schema.get("type", list(build))
    return st.one_of([build[name](schema) for name in ([names] if isinstance(names, str) else names)])


def mutants(value: Any) -> st.SearchStrategy[Any]:
    """Something to put in place of `value`: junk, or a near miss of the same kind."""
    near: list[Any] = [value]
    if isinstance(value, int | float) and not isinstance(value, bool):
        near = [value + 1, value - 1, value + 0.5, value - 0.5, float(value), -value, str(value), math.nan, math.inf]
    elif isinstance(value, str):
        near = [value.upper(), value.lower(), value + " ", value[:-1], value * 2, value.translate(ARABIC_DIGITS)]
        if len(value) >= 19 and value[10] in "Tt":  # a date-time
            near = [mutation(value) for mutation in DATE_TIME_MUTATIONS]
    elif isinstance(value, list):
        near = [[], tuple(value), value[:1] * 31, [*value, None], value[:-1]]
    return st.one_of(
        JUNK, st.sampled_from([None, True, False, 0.5, 2**70, "", [value], {"v": value}]), st.sampled_from(near)
    )


def nodes(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """The path of every node in `value` (tuples are leaves: they are mutants already)."""
    children: Any = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    return [path, *(p for key, child in children for p in nodes(child, (*path, key)))]


@st.composite
def mutated(draw: st.DrawFn, data: Any) -> Any:
    """`data` with one node replaced, or one key of an object dropped, added or set to null."""
    data = copy.deepcopy(data)
    path = draw(st.sampled_from(nodes(data)))
    parent: Any = None
    node = data
    for step in path:
        parent, node = node, node[step]
    if isinstance(node, dict) and draw(st.booleans()):
        kind = draw(st.sampled_from(["drop", "add", "null"] if node else ["add"]))
        key = draw(st.sampled_from(EXTRA_KEYS if kind == "add" else list(node)))
        if kind == "drop":
            del node[key]
        else:
            node[key] = draw(JUNK) if kind == "add" else None
        return data
    if parent is None:
        return draw(mutants(node))
    parent[path[-1]] = draw(mutants(node))
    return data


def with_mutations(data: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Valid-ish data as is (one time in four), or with one or two mutations."""
    once = data.flatmap(mutated)
    return st.one_of(data, once, once, once.flatmap(mutated))


# ---------------------------------------------------------------------------------------------
# The checks


def outcome(catalog: Catalog, name: str, data: Any, custom: dict[str, EventType] | None = None) -> Any:
    try:
        found = catalog.validate(name, data, custom)
    except InvalidInput as exc:
        return ("refused", exc.field, exc.message)
    return ("accepted", found.name if found else None)


def check_invariant(schema: dict[str, Any], data: Any) -> bool:
    """Assert fast accepts => fastjsonschema accepts; return whether the fast type accepted."""
    fast = fast_type(schema)
    try:
        msgspec.convert(data, fast)
    except Exception:
        return False
    validator = fastjsonschema.compile(schema, use_default=False)
    validator(data)  # raises if the fast type was more lenient than the schema
    return True


@pytest.mark.parametrize("name", WITH_SCHEMA)
@SETTINGS
@given(data=st.data())
def test_builtin_fast_path_agrees_with_schema(name: str, data: st.DataObject) -> None:
    schema = builtin_catalog().get(name).schema  # type: ignore[union-attr]
    assert schema is not None
    value = data.draw(with_mutations(objects(schema)))
    if isinstance(value, dict):
        event(f"fast type accepts: {check_invariant(schema, value)}")
    assert outcome(builtin_catalog(), name, value) == outcome(REFERENCE, name, value)


SENSOR_TYPES = DT_NAMES  # all 19 DT sensor event types: each must keep its fast type


@pytest.mark.parametrize("name", SENSOR_TYPES)
def test_sensor_types_have_a_fast_type(name: str) -> None:
    schema = builtin_catalog().get(name).schema  # type: ignore[union-attr]
    assert fast_type(schema) is not None


def test_free_maps_have_no_fast_type() -> None:
    """Span data is a string map: as a top-level msgspec type it would cost more than the validator."""
    for name in span.DATA_KEYS:
        assert fast_type(builtin_catalog().get(name).schema) is None  # type: ignore[union-attr]
    assert fast_type({"type": "object"}) is None
    assert fast_type({"type": "object", "properties": {"m": {"type": "object", "additionalProperties": {}}}})


@pytest.mark.parametrize("name", sorted(dt.EXAMPLES))
def test_seed_examples_take_the_fast_path(name: str) -> None:
    fast = fast_type(builtin_catalog().get(name).schema)  # type: ignore[union-attr]
    msgspec.convert(dt.EXAMPLES[name], fast)
    if name != "labelsChanged":
        msgspec.convert({**dt.EXAMPLES[name], "updateTime": "2024-05-01T12:00:01.5+02:00"}, fast)


def test_valid_builtin_data_never_reaches_the_validator(monkeypatch: pytest.MonkeyPatch) -> None:
    compiled: list[Any] = []
    real = model._compile
    monkeypatch.setattr(model, "_compile", lambda schema: compiled.append(schema) or real(schema))
    catalog = Catalog(BUILTIN_TYPES)
    data = {
        "value": 21.5,
        "updateTime": "2024-05-01T12:00:01Z",
        "samples": [{"value": 21, "sampleTime": "2024-05-01T12:00:00Z"}],
    }
    assert catalog.validate("temperature", data) is not None
    assert catalog.validate("objectPresent", {"state": "PRESENT"}) is not None
    assert compiled == []
    with pytest.raises(InvalidInput) as caught:
        catalog.validate("temperature", {**data, "updateTime": "2024-05-01 12:00:01Z"})
    assert (caught.value.field, caught.value.message) == ("data.updateTime", "must be a valid date-time")
    assert len(compiled) == 1


OBJECT = {"type": "object", "properties": {"a": {"type": "string"}}}


@pytest.mark.parametrize(
    "extra",
    [
        {"oneOf": [{"required": ["a"]}]},
        {"anyOf": [{"required": ["a"]}]},
        {"allOf": [{"required": ["a"]}]},
        {"not": {"required": ["a"]}},
        {"if": {"required": ["a"]}, "then": {"required": ["b"]}},
        {"dependencies": {"a": ["b"]}},
        {"patternProperties": {"^x": {"type": "integer"}}},
        {"additionalProperties": {"type": "integer"}},
        {"minProperties": 1},
        {"propertyNames": {"maxLength": 3}},
        {"required": ["b"]},
        {"$id": "#x"},
        {"$schema": "http://json-schema.org/draft-04/schema#"},
        {"unknownKeyword": 1},
        {"properties": {"a": {"$ref": "#/definitions/a"}}, "definitions": {"a": {"type": "string"}}},
        {"properties": {"a": {"type": "string", "format": "no-such-format"}}},
        {"properties": {"a": {"type": "string", "format": "regex"}}},
        {"properties": {"a": {"type": "string", "pattern": "^a", "format": "date-time"}}},
        {"properties": {"a": {"type": "array", "uniqueItems": True}}},
        {"properties": {"a": {"type": "array", "items": [{"type": "string"}]}}},
        {"properties": {"a": {"type": "array", "contains": {"type": "string"}}}},
        {"properties": {"a": {"type": "number", "multipleOf": 2}}},
        {"properties": {"a": {"type": "number", "exclusiveMinimum": True, "minimum": 1}}},
        {"properties": {"a": {"type": "number", "maximum": 2**53 + 1}}},
        {"properties": {"a": {"const": 3}}},
        {"properties": {"a": {"enum": [1, "x"]}}},
        {"properties": {"a": {"type": "integer", "enum": ["x"]}}},
        {"properties": {"a": {"type": "string", "enum": ["x"], "minLength": 2}}},
        {"properties": {"a": {"minLength": 2}}},
        {"properties": {"a": False}},
    ],
)
def test_unsupported_schemas_get_no_fast_type(extra: dict[str, Any]) -> None:
    assert fast_type({**OBJECT, **extra}) is None


@pytest.mark.parametrize(
    ("prop", "accepted", "refused"),
    [
        ({"type": "number"}, [1, 1.5, -0.0, 2**70, math.inf], [True, False, "1", None, [1]]),
        ({"type": "integer"}, [1, -(2**70)], [True, 1.5, "1", None]),
        ({"type": "boolean"}, [True, False], [1, 0, "true", None]),
        ({"type": ["string", "null"]}, ["", None], [1, True, []]),
        (
            {"type": ["number", "null"], "minimum": 2.5, "exclusiveMaximum": 10},
            [None, 2.5, 3, 9.99],
            [2, 10, 10.0, True],
        ),
        ({"type": "integer", "exclusiveMinimum": 0.5, "maximum": 3.5}, [1, 3], [0, 4, 1.5, True, None]),
        ({"type": "number", "minimum": 1, "exclusiveMinimum": 0}, [1, 1.0, 2], [0.5, 0, -1]),
        ({"type": "number", "minimum": 0, "exclusiveMinimum": 1}, [1.5, 2], [1, 1.0, 0.5]),
        ({"type": "number", "maximum": 1, "exclusiveMaximum": 2}, [1, 1.0, -3], [1.5, 2]),
        ({"type": "number", "maximum": 2, "exclusiveMaximum": 1}, [0.5, 0], [1, 1.0, 1.5]),
        ({"type": "number", "maximum": 2**53}, [2**53, 1e15], [2**53 + 1, 2**53 + 2.0]),
        (
            {"type": "string", "minLength": 2, "maxLength": 3, "pattern": "^x.+$"},
            ["xy", "xyz", "x😀"],
            ["x", "xyzw", "x\n", "ax"],
        ),
        ({"type": "string", "minLength": 2}, ["😀😀"], ["😀", ""]),
        (
            {"type": "string", "format": "date-time"},
            ["2024-02-29T00:00:00+01:00", "2024-05-01t12:00:00.5z"],
            [
                "2023-02-29T00:00:00Z",
                "2024-05-01 12:00:00Z",
                "x2024-05-01T12:00:00Z",
                "2024-05-01T12:00:00",
                "2024-05-01T12:00:00Z\n",
            ],
        ),
        ({"type": "string", "format": "ipv4"}, ["10.0.0.1"], ["10.0.0.256", "a10.0.0.1", "10.0.0.1\n"]),
        (
            {"type": "array", "items": {"enum": ["A", None]}, "minItems": 1, "maxItems": 2},
            [["A"], ("A", None)],
            [[], ["B"], ["A"] * 3],
        ),
        (
            {"type": "object", "properties": {"b": {"type": "boolean"}}, "required": ["b"]},
            [{"b": True, "c": 1}],
            [{}, {"b": 1}],
        ),
        ({"type": "object", "additionalProperties": {"type": "integer"}}, [{}, {"x": 1}], [{"x": "1"}, {"x": None}]),
        ({"type": "object", "additionalProperties": False}, [{}], [{"x": 1}]),
        ({"const": "K"}, ["K"], ["k", None]),
        ({}, [None, [1], {"x": 1}], []),
    ],
)
def test_supported_keywords_translate_exactly(prop: dict[str, Any], accepted: list[Any], refused: list[Any]) -> None:
    schema = {"type": "object", "properties": {"a": prop, "from": {"type": "integer"}}, "additionalProperties": False}
    fast = fast_type(schema)
    validator = fastjsonschema.compile(schema, use_default=False)
    assert fast is not None
    for value in accepted:
        msgspec.convert({"a": value}, fast)
        validator({"a": value})
    for value in refused:
        with pytest.raises(msgspec.ValidationError):
            msgspec.convert({"a": value}, fast)
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"a": accepted[0], "f0": 1}, fast)  # unknown field
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"from": None}, fast)  # an optional field is not nullable
    msgspec.convert({"from": 1}, fast)


# ---------------------------------------------------------------------------------------------
# Tenant types


def custom_type(schema: dict[str, Any], name: str = "meter") -> dict[str, EventType]:
    return {name: EventType(name=name, family="custom", title="Meter", schema=schema)}


def test_custom_types_use_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Any] = []
    real = model._compile_canonical

    def counting(canonical: bytes) -> Callable[[Any], Any]:
        check = real(canonical)
        return lambda data: calls.append(data) or check(data)

    monkeypatch.setattr(model, "_compile_canonical", counting)
    catalog = Catalog(BUILTIN_TYPES)
    supported = custom_type(
        {
            "type": "object",
            "properties": {"kwh": {"type": "number", "minimum": 0}, "at": {"type": "string", "format": "date-time"}},
            "required": ["kwh"],
            "additionalProperties": False,
        }
    )
    assert catalog.validate("meter", {"kwh": 1.5, "at": "2024-05-01T12:00:00Z"}, supported) is supported["meter"]
    assert calls == []
    with pytest.raises(InvalidInput) as caught:
        catalog.validate("meter", {"kwh": -1}, supported)
    assert (caught.value.field, caught.value.message) == ("data.kwh", "must be at least 0")
    assert len(calls) == 1

    unsupported = custom_type(
        {
            "type": "object",
            "properties": {"kwh": {"type": "number"}},
            "oneOf": [{"required": ["kwh"]}, {"required": ["wh"]}],
        }
    )
    calls.clear()
    assert catalog.validate("meter", {"kwh": 1}, unsupported) is unsupported["meter"]
    assert len(calls) == 1
    with pytest.raises(InvalidInput):
        catalog.validate("meter", {"kwh": "1"}, unsupported)
    with pytest.raises(InvalidInput):
        catalog.validate("meter", {}, unsupported)


NAMES = st.sampled_from(["a", "from", "", "a b", "f0", "class", "é", "value"])
BOUNDS = st.one_of(
    st.integers(-3, 3), st.sampled_from([-2.5, 0.5, 1.5, 2**53, 2**53 + 1, 2**53 + 3, 2**63, 1e300, -0.0])
)


@st.composite
def number_schemas(draw: st.DrawFn) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "type": draw(st.sampled_from(["number", "integer", ["number", "null"], ["integer", "number"]]))
    }
    for key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        if draw(st.booleans()):
            schema[key] = draw(BOUNDS)
    return schema


@st.composite
def string_schemas(draw: st.DrawFn) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": draw(st.sampled_from(["string", ["string", "null"]]))}
    if draw(st.booleans()):
        schema["minLength"] = draw(st.integers(0, 3))
    if draw(st.booleans()):
        schema["maxLength"] = draw(st.integers(0, 4))
    rule = draw(st.sampled_from(["none", "pattern", "format"]))
    if rule == "pattern":
        schema["pattern"] = draw(st.sampled_from(["^a", "b$", "^[a-c]+$", "x|^y", "(?i)^a", "^\\d+$"]))
    elif rule == "format":
        schema["format"] = draw(st.sampled_from(["date-time", "date", "email", "ipv4", "uri", "hostname", "unknown"]))
    return schema


LEAVES = st.one_of(
    number_schemas(),
    string_schemas(),
    st.sampled_from([{"type": "boolean"}, {"type": "null"}, {}, {"title": "anything"}, {"const": "K"}]),
    st.lists(st.one_of(st.text(max_size=2), st.none()), max_size=3).map(lambda values: {"enum": values}),
)


def object_schemas(children: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    @st.composite
    def build(draw: st.DrawFn) -> dict[str, Any]:
        properties = draw(st.dictionaries(NAMES, children, max_size=3))
        schema: dict[str, Any] = {"type": "object", "properties": properties}
        schema["required"] = [k for k in properties if draw(st.booleans())]
        extra = draw(st.sampled_from(["absent", True, False]))
        if extra != "absent":
            schema["additionalProperties"] = extra
        return schema

    return build()


def array_schemas(children: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    return st.builds(
        lambda items, low, high: {"type": "array", "items": items, **low, **high},
        children,
        st.sampled_from([{}, {"minItems": 1}]),
        st.sampled_from([{}, {"maxItems": 2}]),
    )


SCHEMAS = object_schemas(
    st.recursive(LEAVES, lambda children: st.one_of(object_schemas(children), array_schemas(children)), max_leaves=4)
)


@settings(SETTINGS, max_examples=500)
@given(schema=SCHEMAS, data=st.data())
def test_custom_fast_path_agrees_with_schema(schema: dict[str, Any], data: st.DataObject) -> None:
    try:
        Catalog.check_custom_schema(schema)
    except InvalidInput:
        assume(False)
    value = data.draw(with_mutations(objects(schema)))
    if fast_type(schema) is None:
        event("no fast type")
    else:
        event(f"fast type accepts: {check_invariant(schema, value)}")
    custom = custom_type(schema)
    assert outcome(builtin_catalog(), "meter", value, custom) == outcome(REFERENCE, "meter", value, custom)
