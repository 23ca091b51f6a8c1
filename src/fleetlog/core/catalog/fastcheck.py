"""A fast first check of event data: a type's JSON Schema translated into a msgspec type.

Why: `Catalog.validate` runs for every ingested event. The compiled fastjsonschema validator
costs about 2.7 µs for a temperature event (value, updateTime, one sample); `msgspec.convert`
into an equivalent type about 1.4 µs, 0.3 µs of it structure and types and the rest the two
date-time regexes (msgspec runs a pattern at about 0.5 µs a string). So the catalog first
tries the msgspec type and runs the schema's validator only when that fails (or when the
schema has no msgspec type).

The invariant: **the fast type accepts => fastjsonschema accepts.** The fast type may be
stricter (then fastjsonschema decides, and words the error as it always has), never more
lenient. `fast_type` therefore translates only a subset of JSON Schema whose meaning it can
express exactly, and returns None for the whole schema as soon as it meets anything else:

    type              one name or a list of: object, array, string, number, integer, boolean, null
    object            properties, required (a subset of properties), additionalProperties false
                      (unknown keys refused), true or absent (ignored); an object with no
                      properties may give additionalProperties a schema (dict[str, T])
    array             items (one schema), minItems, maxItems
    string            minLength, maxLength (code points, as len()), pattern, or format when
                      fastjsonschema checks that format with a regex: the very regex it runs
    number, integer   minimum, maximum, exclusiveMinimum, exclusiveMaximum (numbers, draft 6+)
    enum, const       strings and null only, with nothing but type beside them
    annotations       title, description, default (never applied: use_default=False),
                      examples, $comment, readOnly, writeOnly, deprecated, definitions, $defs

Everything else (anyOf/oneOf/allOf/not, $ref, if/then/else, patternProperties, dependencies,
uniqueItems, multipleOf, min/maxProperties, propertyNames, contains, tuple items, $id, a
$schema other than draft-07, boolean false schemas, unknown keywords...) gives None. So does a
schema whose top level is not a Struct (a free map such as Span's string maps): msgspec would
work such a type out on every call, which costs more than fastjsonschema's check.

How each rule stays exact:
- optional properties default to `msgspec.UNSET`, so an explicit null is refused unless the
  property's schema allows null;
- "number" is `int | float` with bounds for each (msgspec refuses bool for both); "integer" is
  `int`, which refuses 1.0 (fastjsonschema accepts it: stricter, fine);
- integer bounds become exact integers (minimum 2.5 -> ge=3); float bounds must be exactly
  representable as floats, or the schema gets no fast type;
- regexes: `pattern` uses fastjsonschema's compiled regex with `search`, as fastjsonschema
  does; a format regex is used with `match` by fastjsonschema, so it is wrapped as \\A(?:...).

The domain is JSON data, as `Event.data` holds (dict, list, tuple, str, int, float, bool,
None). msgspec also converts Python-only values that fastjsonschema refuses (a set where an
array is expected, a non-dict mapping where an object is, a Decimal rounded to a float), so
those are outside what the invariant covers.
"""

from __future__ import annotations

import functools
import math
import operator
import re
from collections.abc import Callable
from typing import Annotated, Any, Final, Literal

import fastjsonschema
import msgspec
from msgspec import UNSET, Meta, UnsetType

__all__ = ["fast_type"]

_DRAFT07_URIS: Final = frozenset(
    {
        "http://json-schema.org/draft-07/schema#",
        "http://json-schema.org/draft-07/schema",
        "https://json-schema.org/draft-07/schema#",
        "https://json-schema.org/draft-07/schema",
    }
)

_ANNOTATIONS: Final = frozenset(
    {
        "title",
        "description",
        "default",
        "examples",
        "$comment",
        "readOnly",
        "writeOnly",
        "deprecated",
        "definitions",
        "$defs",
    }
)

# The keywords each JSON type understands; other types ignore them.
_KEYWORDS: Final[dict[str, frozenset[str]]] = {
    "object": frozenset({"properties", "required", "additionalProperties"}),
    "array": frozenset({"items", "minItems", "maxItems"}),
    "string": frozenset({"minLength", "maxLength", "pattern", "format"}),
    "number": frozenset({"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"}),
    "integer": frozenset({"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"}),
    "boolean": frozenset(),
    "null": frozenset(),
}

_KNOWN: Final = frozenset({"type", "enum", "const"}).union(_ANNOTATIONS, *_KEYWORDS.values())


class _Unsupported(Exception):
    """The schema uses something this module cannot express exactly."""


def fast_type(schema: Any) -> Any | None:
    """The msgspec type that accepts only data `schema` accepts, or None (see the module doc).

    `schema` is the JSON Schema of an event's `data`, which is always a JSON object; a schema
    without "type" at the top is read as an object schema."""
    if not isinstance(schema, dict):
        return None
    draft = schema.get("$schema")
    if draft is not None and draft not in _DRAFT07_URIS:
        return None
    top = {k: v for k, v in schema.items() if k != "$schema"}
    top.setdefault("type", "object")
    try:
        result = _Translator(draft).node(top)
        msgspec.json.Decoder(result)  # msgspec refuses types it cannot use (e.g. some unions) here
    except Exception:  # _Unsupported, or msgspec/re refusing a part: no fast path, never an error
        return None
    # msgspec keeps what it learns of a type only on Struct classes: any other type at the top
    # (a map such as dict[str, str]) is worked out again on every call, slower than the validator.
    return result if isinstance(result, type) and issubclass(result, msgspec.Struct) else None


class _Translator:
    def __init__(self, draft: str | None) -> None:
        self.draft = draft

    def node(self, schema: Any) -> Any:
        if schema is True:
            return Any
        if not isinstance(schema, dict) or not _KNOWN.issuperset(schema):
            raise _Unsupported
        if "enum" in schema or "const" in schema:
            return self._choice(schema)
        if "type" not in schema:
            if any(key not in _ANNOTATIONS for key in schema):  # rules for some types only
                raise _Unsupported
            return Any
        names = schema["type"]
        names = [names] if isinstance(names, str) else names
        if not isinstance(names, list) or not names or not all(n in _KEYWORDS for n in names):
            raise _Unsupported
        build: dict[str, Callable[[dict[str, Any]], Any]] = {
            "object": self._object,
            "array": self._array,
            "string": self._string,
            "number": _number,
            "integer": _integer,
            "boolean": lambda _: bool,
            "null": lambda _: None,
        }
        if "number" in names and "integer" in names:
            names = [n for n in names if n != "integer"]  # every integer is a number
        return functools.reduce(operator.or_, [build[n](schema) for n in dict.fromkeys(names)])

    def _choice(self, schema: dict[str, Any]) -> Any:
        if any(key not in _ANNOTATIONS and key not in {"type", "enum", "const"} for key in schema):
            raise _Unsupported
        if "enum" in schema and "const" in schema:
            raise _Unsupported
        values = schema["enum"] if "enum" in schema else [schema["const"]]
        if not isinstance(values, list) or not all(v is None or isinstance(v, str) for v in values):
            raise _Unsupported
        names = schema.get("type", ["string", "null"])
        names = [names] if isinstance(names, str) else names
        if not isinstance(names, list) or not all(n in _KEYWORDS for n in names):
            raise _Unsupported
        kept = tuple(v for v in values if ("null" if v is None else "string") in names)
        if not kept:
            raise _Unsupported  # accepts nothing: leave it to the validator
        return Literal[kept]

    def _object(self, schema: dict[str, Any]) -> Any:
        properties = schema.get("properties", {})
        required = schema.get("required", [])
        extra = schema.get("additionalProperties", True)
        if not isinstance(properties, dict) or not isinstance(required, list):
            raise _Unsupported
        if not all(isinstance(r, str) and r in properties for r in required):
            raise _Unsupported
        if extra is not True and extra is not False:
            if properties:
                raise _Unsupported
            return dict[str, self.node(extra)]  # type: ignore[misc]
        if not properties and extra is True:
            return dict[str, Any]
        fields: list[tuple[str, Any] | tuple[str, Any, Any]] = []
        rename: dict[str, str] = {}
        for index, (key, sub) in enumerate(properties.items()):
            name = f"f{index}"
            rename[name] = key
            kind = self.node(sub)
            fields.append((name, kind) if key in required else (name, kind | UnsetType, UNSET))
        return msgspec.defstruct(
            "FastData", fields, kw_only=True, forbid_unknown_fields=extra is False, rename=rename, gc=False
        )

    def _array(self, schema: dict[str, Any]) -> Any:
        items = self.node(schema.get("items", True))
        low, high = _count(schema, "minItems"), _count(schema, "maxItems")
        if low is None and high is None:
            return list[items]  # type: ignore[valid-type]
        return Annotated[list[items], Meta(min_length=low, max_length=high)]  # type: ignore[valid-type]

    def _string(self, schema: dict[str, Any]) -> Any:
        if "pattern" in schema and "format" in schema:
            raise _Unsupported  # msgspec takes one pattern
        pattern = None
        if "pattern" in schema:
            pattern = _validator_regex(self.draft, "pattern", schema["pattern"])
        elif "format" in schema:
            pattern = r"\A(?:" + _validator_regex(self.draft, "format", schema["format"]) + ")"
        low, high = _count(schema, "minLength"), _count(schema, "maxLength")
        if low is None and high is None and pattern is None:
            return str
        return Annotated[str, Meta(min_length=low, max_length=high, pattern=pattern)]


def _count(schema: dict[str, Any], key: str) -> int | None:
    value = schema.get(key)
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise _Unsupported
    return value


def _bounds(schema: dict[str, Any]) -> dict[str, int | float]:
    """The numeric bounds of `schema` as {keyword: value}; draft-04 boolean exclusives refused."""
    found: dict[str, int | float] = {}
    for key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        if key in schema:
            value = schema[key]
            if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
                raise _Unsupported
            found[key] = value
    return found


def _integer(schema: dict[str, Any]) -> Any:
    """`int` within the schema's bounds, each turned into the equivalent inclusive integer."""
    bounds = _bounds(schema)
    lows = [math.ceil(bounds["minimum"])] if "minimum" in bounds else []
    if "exclusiveMinimum" in bounds:
        lows.append(math.floor(bounds["exclusiveMinimum"]) + 1)
    highs = [math.floor(bounds["maximum"])] if "maximum" in bounds else []
    if "exclusiveMaximum" in bounds:
        highs.append(math.ceil(bounds["exclusiveMaximum"]) - 1)
    if not lows and not highs:
        return int
    return Annotated[int, Meta(ge=max(lows, default=None), le=min(highs, default=None))]


def _number(schema: dict[str, Any]) -> Any:
    """`int | float`: ints checked against exact integer bounds, floats against float bounds."""
    bounds = _bounds(schema)
    if not bounds:
        return int | float
    if any(float(v) != v for v in bounds.values()):
        raise _Unsupported  # a float bound would differ from the schema's
    limits: dict[str, Any] = {}  # msgspec takes one lower and one upper bound: keep the tighter
    m, e = bounds.get("minimum", -math.inf), bounds.get("exclusiveMinimum", -math.inf)
    if e >= m and "exclusiveMinimum" in bounds:
        limits["gt"] = float(e)
    elif "minimum" in bounds:
        limits["ge"] = float(m)
    m, e = bounds.get("maximum", math.inf), bounds.get("exclusiveMaximum", math.inf)
    if e <= m and "exclusiveMaximum" in bounds:
        limits["lt"] = float(e)
    elif "maximum" in bounds:
        limits["le"] = float(m)
    return _integer(schema) | Annotated[float, Meta(**limits)]


@functools.lru_cache(maxsize=256)
def _validator_regex(draft: str | None, keyword: str, value: Any) -> str:
    """The regex fastjsonschema itself runs for `{"pattern": value}` or `{"format": value}`.

    Read from the compiled validator's REGEX_PATTERNS, so it is the very regex fastjsonschema
    uses ("$" already turned into "\\Z" for patterns). Unknown formats have none: unsupported."""
    if not isinstance(value, str):
        raise _Unsupported
    schema: dict[str, Any] = {"type": "string", keyword: value}
    if draft is not None:
        schema["$schema"] = draft
    validator = fastjsonschema.compile(schema, use_default=False)
    compiled = validator.__globals__.get("REGEX_PATTERNS", {}).get(
        value if keyword == "pattern" else value + "_re_pattern"
    )
    if not isinstance(compiled, re.Pattern) or not isinstance(compiled.pattern, str):
        raise _Unsupported
    if compiled.flags != re.compile(compiled.pattern).flags:
        raise _Unsupported  # compiled with flags msgspec would not use
    return compiled.pattern
