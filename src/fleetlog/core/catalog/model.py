"""The event type catalog: what each event type means and what its canonical `data` may hold.

`Catalog.validate` is on the ingest hot path. Its success path is two dict lookups and one
`msgspec.convert` into the schema's fast type (see `fastcheck`: a msgspec type that accepts only
data the schema accepts). When that fails, or the schema has no fast type, the compiled
fastjsonschema validator decides and words the error. Both are cached (built-in types per type,
a tenant's own types by schema content, so a changed schema recompiles).
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

import fastjsonschema
import msgspec

from fleetlog.core.catalog.fastcheck import fast_type
from fleetlog.core.errors import InvalidInput
from fleetlog.core.event import Outcome

__all__ = [
    "FAMILIES",
    "Catalog",
    "DeviceType",
    "EventType",
    "builtin_catalog",
]

FAMILIES: Final = ("dt", "span", "pelion", "custom")

CACHE_SIZE: Final = 4096
"""Compiled validators kept for custom schemas (least recently used ones are dropped)."""

MAX_SCHEMA_BYTES: Final = 65_536
"""A custom schema larger than this (as compact JSON) is refused."""

MAX_SCHEMA_DEPTH: Final = 32
"""A custom schema nested deeper than this is refused."""

_DRAFT07_URIS: Final = frozenset(
    {
        "http://json-schema.org/draft-07/schema#",
        "http://json-schema.org/draft-07/schema",
        "https://json-schema.org/draft-07/schema#",
        "https://json-schema.org/draft-07/schema",
    }
)

Validator = Callable[[Any], Any]


class EventType(msgspec.Struct, kw_only=True, frozen=True):
    """One event type: its meaning, the JSON Schema of its canonical `data`, and defaults."""

    name: str
    family: str
    title: str
    description: str = ""
    corrective_action: str = ""
    schema: dict[str, Any] | None = None
    outcome: Outcome = Outcome.INFO
    category: str | None = None
    state_change: bool = False
    device_types: tuple[str, ...] = ()


class DeviceType(msgspec.Struct, kw_only=True, frozen=True):
    """A Disruptive Technologies device type: the events it emits and its heartbeat."""

    name: str
    product_numbers: tuple[str, ...]
    events: tuple[str, ...]
    heartbeat_seconds: int | None
    description: str


# ---------------------------------------------------------------------------------------------
# Compiling schemas


def _canonical(schema: Any) -> bytes:
    return msgspec.json.encode(schema, order="sorted")


@functools.lru_cache(maxsize=CACHE_SIZE)
def _compile_canonical(canonical: bytes) -> Validator:
    schema = msgspec.json.decode(canonical)
    # use_default=False: validating never writes defaults into the caller's data.
    fn: Validator = fastjsonschema.compile(schema, use_default=False)
    return fn


@functools.lru_cache(maxsize=CACHE_SIZE)
def _fast_canonical(canonical: bytes) -> Any:
    return fast_type(msgspec.json.decode(canonical))


def _compile(schema: Mapping[str, Any]) -> Validator:
    return _compile_canonical(_canonical(schema))


class _Entry:
    """A built-in type, its fast type (built now) and its validator (compiled on first use)."""

    __slots__ = ("check", "fast", "type")

    def __init__(self, event_type: EventType, fast: bool) -> None:
        self.type = event_type
        self.check: Validator | None = None if event_type.schema is None else self._first_check
        self.fast: Any = fast_type(event_type.schema) if fast and event_type.schema is not None else None

    def _first_check(self, data: Any) -> Any:
        fn = _compile(self.type.schema or {})  # installed only when the type has a schema
        self.check = fn
        return fn(data)


# ---------------------------------------------------------------------------------------------
# Turning fastjsonschema's errors into short reasons with an exact field path

_TYPE_WORDS: Final = {
    "number": "a number",
    "integer": "an integer",
    "string": "a string",
    "boolean": "a boolean",
    "object": "an object",
    "array": "an array",
    "null": "null",
}


def _fmt(value: Any) -> str:
    if isinstance(value, str):
        return value
    try:
        return msgspec.json.encode(value).decode()
    except (TypeError, msgspec.EncodeError):
        return repr(value)


# The reason for each JSON Schema rule that needs nothing but the rule's own value.
_RULE_REASONS = {
    "exclusiveMinimum": "must be greater than {}",
    "exclusiveMaximum": "must be less than {}",
    "multipleOf": "must be a multiple of {}",
    "minLength": "must be at least {} characters long",
    "maxLength": "must be at most {} characters long",
    "pattern": "must match the pattern {}",
    "format": "must be a valid {}",
    "minItems": "must have at least {} items",
    "maxItems": "must have at most {} items",
    "uniqueItems": "must not contain duplicate items",
    "minProperties": "must have at least {} fields",
    "maxProperties": "must have at most {} fields",
}


def _reason(rule: str | None, rule_def: Any, definition: Any, fallback: str) -> str:
    definition = definition if isinstance(definition, dict) else {}
    if rule == "type":
        names = rule_def if isinstance(rule_def, list) else [rule_def]
        return "must be " + " or ".join(_TYPE_WORDS.get(str(n), str(n)) for n in names)
    if rule == "enum" and isinstance(rule_def, list):
        return "must be one of " + ", ".join(_fmt(v) for v in rule_def)
    if rule == "const":
        return "must be " + _fmt(rule_def)
    if rule == "minimum":
        if definition.get("exclusiveMinimum") is True:  # draft-04 spelling
            return f"must be greater than {_fmt(rule_def)}"
        return f"must be at least {_fmt(rule_def)}"
    if rule == "maximum":
        if definition.get("exclusiveMaximum") is True:
            return f"must be less than {_fmt(rule_def)}"
        return f"must be at most {_fmt(rule_def)}"
    template = _RULE_REASONS.get(rule or "")
    if template is not None:
        return template.format(_fmt(rule_def))
    return fallback


def _unknown_key(value: Any, definition: Any) -> str | None:
    """The first key of `value` that neither `properties` nor `patternProperties` allows."""
    if not isinstance(value, dict) or not isinstance(definition, dict):
        return None
    known = definition.get("properties") or {}
    patterns = [re.compile(p) for p in (definition.get("patternProperties") or {})]
    for key in value:
        if key in known:
            continue
        if any(p.search(key) for p in patterns):
            continue
        return str(key)
    return None


def _invalid(exc: fastjsonschema.JsonSchemaValueException) -> InvalidInput:
    """An `InvalidInput` naming the offending field (dotted path from "data") and why."""
    field: str = exc.name or "data"
    message: str = exc.message or "is invalid"
    fallback = message[len(field) + 1 :] if message.startswith(field + " ") else message
    rule = exc.rule
    rule_def = exc.rule_definition
    if rule == "required" and isinstance(exc.value, dict) and isinstance(rule_def, list):
        for prop in rule_def:
            if prop not in exc.value:
                return InvalidInput("is required", f"{field}.{prop}")
    if rule == "additionalProperties" and rule_def is False:
        key = _unknown_key(exc.value, exc.definition)
        if key is not None:
            return InvalidInput("unknown field", f"{field}.{key}")
    return InvalidInput(_reason(rule, rule_def, exc.definition, fallback), field)


def _broken(exc: Exception) -> InvalidInput:
    return InvalidInput(f"cannot be checked against the type's schema ({exc})", "data")


_NOT_AN_OBJECT: Final = "must be a JSON object"


# ---------------------------------------------------------------------------------------------
# Checking a tenant's own schema


def _walk_schema(node: Any, depth: int) -> None:
    if depth > MAX_SCHEMA_DEPTH:
        raise InvalidInput(f"is nested deeper than {MAX_SCHEMA_DEPTH} levels", "schema")
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and not ref.startswith("#"):
            raise InvalidInput("may only use local references ($ref starting with #)", "schema")
        ident = node.get("$id")
        if isinstance(ident, str) and not ident.startswith("#"):
            raise InvalidInput("may not set a base URI ($id)", "schema")
        multiple = node.get("multipleOf")
        if isinstance(multiple, int | float) and not isinstance(multiple, bool) and multiple <= 0:
            raise InvalidInput("multipleOf must be greater than 0", "schema")
        for child in node.values():
            _walk_schema(child, depth + 1)
    elif isinstance(node, list):
        for child in node:
            _walk_schema(child, depth + 1)


# ---------------------------------------------------------------------------------------------
# The catalog


class Catalog:
    """A set of event types, looked up by name. Tenant types are passed in per call.

    `fast=False` checks data with the schema validators alone (no fast types): the reference
    the fast path is tested and measured against."""

    def __init__(self, types: Iterable[EventType], *, fast: bool = True) -> None:
        entries: dict[str, _Entry] = {}
        for event_type in types:
            if event_type.name in entries:
                raise ValueError(f"event type {event_type.name!r} is defined twice")
            entries[event_type.name] = _Entry(event_type, fast)
        self._entries = entries
        self._fast = fast
        # Custom validators by schema object: id -> (schema, validator, fast type or None). The
        # entry holds the schema, so its id cannot be reused while the entry lives. Misses fall
        # back to the content-keyed LRU caches of `_compile_canonical` and `_fast_canonical`.
        self._by_id: dict[int, tuple[Mapping[str, Any], Validator, Any]] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def get(self, name: str, custom: Mapping[str, EventType] | None = None) -> EventType | None:
        """The type called `name`: a built-in one, else one of `custom` (a tenant's types)."""
        entry = self._entries.get(name)
        if entry is not None:
            return entry.type
        if custom is not None:
            return custom.get(name)
        return None

    def validate(self, name: str, data: Any, custom: Mapping[str, EventType] | None = None) -> EventType | None:
        """Check `data` against the schema of type `name`; return the type (None if unknown).

        Raises `InvalidInput` with `field` a dotted path from "data" ("data.samples[1].value")
        when `data` is not a JSON object or breaks the schema. Unknown types accept any object.
        """
        if not isinstance(data, dict):
            raise InvalidInput(_NOT_AN_OBJECT, "data")
        entry = self._entries.get(name)
        if entry is not None:
            event_type, check, fast = entry.type, entry.check, entry.fast
            if check is None:
                return event_type
        else:
            if custom is None:
                return None
            found = custom.get(name)
            if found is None or found.schema is None:
                return found
            event_type, schema = found, found.schema
            hit = self._by_id.get(id(schema))
            _, check, fast = hit if hit is not None and hit[0] is schema else self._custom_check(name, schema)
        if fast is not None:
            try:
                msgspec.convert(data, fast)
                return event_type  # the fast type accepts only data the schema accepts
            except Exception:
                pass  # maybe stricter than the schema: the validator decides and words the error
        try:
            check(data)
        except fastjsonschema.JsonSchemaValueException as exc:
            raise _invalid(exc) from None
        except Exception as exc:
            raise _broken(exc) from None
        return event_type

    def _custom_check(self, name: str, schema: dict[str, Any]) -> tuple[Mapping[str, Any], Validator, Any]:
        try:
            canonical = _canonical(schema)
            check = _compile_canonical(canonical)
        except Exception as exc:
            raise InvalidInput(f"the schema of event type {name!r} is not usable ({exc})", "schema") from None
        hit = (schema, check, _fast_canonical(canonical) if self._fast else None)
        with self._lock:
            by_id = self._by_id
            while len(by_id) >= CACHE_SIZE:
                del by_id[next(iter(by_id))]
            by_id[id(schema)] = hit
        return hit

    def family(self, family: str) -> list[EventType]:
        """The types of one family, in catalog order."""
        return [e.type for e in self._entries.values() if e.type.family == family]

    def all(self) -> list[EventType]:
        return [e.type for e in self._entries.values()]

    def search(self, text: str) -> list[EventType]:
        """Types whose name, title or description contain `text` (any case).

        Ranked: exact name, then name matches, then title matches, then description matches;
        catalog order within each rank.
        """
        needle = text.casefold()
        ranked: list[tuple[int, int, EventType]] = []
        for index, entry in enumerate(self._entries.values()):
            et = entry.type
            name = et.name.casefold()
            if name == needle:
                rank = 0
            elif needle in name:
                rank = 1
            elif needle in et.title.casefold():
                rank = 2
            elif needle in et.description.casefold():
                rank = 3
            else:
                continue
            ranked.append((rank, index, et))
        ranked.sort(key=lambda item: (item[0], item[1]))
        return [et for _, _, et in ranked]

    @staticmethod
    def check_custom_schema(schema: Any) -> None:
        """Raise `InvalidInput(field="schema")` unless `schema` is a usable JSON Schema for
        a tenant's event type: an object schema (draft-07 subset) that compiles, with no
        remote references, at most MAX_SCHEMA_BYTES as JSON and MAX_SCHEMA_DEPTH deep.
        None passes: a type without a schema accepts any JSON object."""
        if schema is None:
            return
        if not isinstance(schema, dict):
            raise InvalidInput("must be a JSON object", "schema")
        if "type" in schema and schema["type"] != "object":
            raise InvalidInput('must describe a JSON object ("type": "object")', "schema")
        draft = schema.get("$schema")
        if draft is not None and draft not in _DRAFT07_URIS:
            raise InvalidInput("must be a draft-07 JSON Schema", "schema")
        try:
            canonical = _canonical(schema)
        except (TypeError, msgspec.EncodeError) as exc:
            raise InvalidInput(f"is not JSON ({exc})", "schema") from None
        if len(canonical) > MAX_SCHEMA_BYTES:
            raise InvalidInput(f"is larger than {MAX_SCHEMA_BYTES} bytes", "schema")
        _walk_schema(schema, 0)
        try:
            _compile_canonical(canonical)
        except Exception as exc:
            raise InvalidInput(f"is not a valid JSON Schema ({exc})", "schema") from None


@functools.cache
def builtin_catalog() -> Catalog:
    """The catalog of every built-in family (dt, span, pelion); built once."""
    from fleetlog.core.catalog import dt, pelion, span

    return Catalog((*dt.SENSOR_EVENT_TYPES, *span.ACTIVITY_EVENT_TYPES, *pelion.EVENT_LOG_CODES))
