"""Render docs/event-types.md from the catalog data (a pure function returning the Markdown).

Regenerate the page after changing the catalog:

    .venv/bin/python -m fleetlog.core.catalog.render > docs/event-types.md

A unit test fails when the committed page differs from `render()`.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import msgspec

from fleetlog.core.catalog import dt, pelion, span
from fleetlog.core.catalog.model import Catalog, EventType, builtin_catalog

__all__ = ["render"]


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _code(text: str) -> str:
    return f"`{text}`" if text else ""


def _json(value: Any) -> str:
    return msgspec.json.encode(value).decode()


def _type_word(schema: dict[str, Any]) -> str:
    kind = schema.get("type", "any")
    if kind == "array":
        items = schema.get("items")
        inner = _type_word(items) if isinstance(items, dict) else "any"
        return f"array of {inner}"
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        return f"map of string to {_type_word(schema['additionalProperties'])}"
    return str(kind)


def _notes(schema: dict[str, Any]) -> str:
    notes: list[str] = []
    target = schema
    each = ""
    if schema.get("type") == "array" and isinstance(schema.get("items"), dict):
        if "maxItems" in schema:
            notes.append(f"at most {schema['maxItems']} items")
        target = schema["items"]
        each = "each "
    if "enum" in target:
        notes.append(each + "one of " + ", ".join(_code(str(v)) for v in target["enum"]))
    if "minimum" in target and "maximum" in target:
        notes.append(f"{target['minimum']} to {target['maximum']}")
    elif "minimum" in target:
        notes.append(f"at least {target['minimum']}")
    if target.get("format") == "date-time":
        notes.append("RFC 3339 date-time")
    return "; ".join(notes)


def _fields(schema: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, str, bool, str]]:
    """(path, type, required, notes) of each field of an object schema, depth first."""
    required = set(schema.get("required", ()))
    for name, sub in (schema.get("properties") or {}).items():
        path = f"{prefix}{name}"
        yield path, _type_word(sub), name in required, _notes(sub)
        if sub.get("type") == "object" and "properties" in sub:
            yield from _fields(sub, f"{path}.")
        items = sub.get("items")
        if sub.get("type") == "array" and isinstance(items, dict) and "properties" in items:
            yield from _fields(items, f"{path}[].")


def _dt_section(types: list[EventType]) -> list[str]:
    out = [
        "## Disruptive Technologies sensor events (`dt`)",
        "",
        "Canonical `data` is the inner object of DT's payload, without the type-name wrapper "
        "and without `updateTime` (the DT face adds both). `labelsChanged` is flat already. "
        "Every object is closed: an unknown field is refused and named. Every type except "
        "`labelsChanged` also accepts an optional `updateTime` (RFC 3339), which is ignored.",
        "",
        "### Device types",
        "",
        "| device type | product numbers | events | heartbeat | notes |",
        "|---|---|---|---|---|",
    ]
    for device in dt.DEVICE_TYPES:
        beat = "none" if device.heartbeat_seconds is None else f"{device.heartbeat_seconds} s"
        out.append(
            f"| `{device.name}` | {', '.join(device.product_numbers)} "
            f"| {', '.join(_code(e) for e in device.events)} | {beat} "
            f"| {_cell(device.description)} |"
        )
    out += ["", "Product numbers other than 102067 are placeholders (see `dt.py`).", ""]
    for et in types:
        out += [f"### `{et.name}`: {et.title}", "", f"Trigger: {et.description}", ""]
        if et.device_types:
            emitted = ", ".join(_code(d) for d in et.device_types)
            out += [f"Emitted by: {emitted}.", ""]
        out.append(f"State change by default: {'yes' if et.state_change else 'no'}.")
        out.append("")
        rows = list(_fields(et.schema or {}))
        if rows:
            out += ["| field | type | required | notes |", "|---|---|---|---|"]
            for path, kind, required, notes in rows:
                out.append(f"| `{path}` | {kind} | {'yes' if required else 'no'} | {_cell(notes)} |")
            out.append("")
        example = dt.EXAMPLES.get(et.name)
        if example is not None:
            out += ["Example `data`:", "", "```json", _json(example), "```", ""]
    return out


def _span_section(types: list[EventType]) -> list[str]:
    out = [
        "## Span activity events (`span`)",
        "",
        "`data` is a map of string to string. The keys fleetlog fills are listed per type "
        "(`DATA_KEYS` in `span.py`); other string values are accepted too.",
        "",
        "| event | title | data keys | state change | description |",
        "|---|---|---|---|---|",
    ]
    for et in types:
        keys = ", ".join(_code(k) for k in span.DATA_KEYS.get(et.name, ()))
        out.append(
            f"| `{et.name}` | {_cell(et.title)} | {keys or 'none'} "
            f"| {'yes' if et.state_change else 'no'} | {_cell(et.description)} |"
        )
    out.append("")
    return out


def _pelion_section(types: list[EventType]) -> list[str]:
    out = [
        "## Pelion device event log codes (`pelion`)",
        "",
        "`data` is any JSON object (Pelion's values are strings). The message type "
        "(`event_type_description`) is one of SUCCESS, FAIL, SKIPPED, INFO; the deprecated "
        f"{pelion.UNDETERMINED_ALIAS} reads as INFO. Categories and `state_change` are "
        "fleetlog's inference (no public table exists); see `pelion.py`.",
        "",
        "| code | message type | category | state change | portal text | explanation | possible corrective action |",
        "|---|---|---|---|---|---|---|",
    ]
    for et in types:
        out.append(
            f"| `{et.name}` | {et.outcome.value} | {et.category or ''} "
            f"| {'yes' if et.state_change else 'no'} | {_cell(et.title)} "
            f"| {_cell(et.description)} | {_cell(et.corrective_action)} |"
        )
    out.append("")
    return out


def render(catalog: Catalog | None = None) -> str:
    """The Markdown reference page of every event type in `catalog` (default: built-ins)."""
    catalog = builtin_catalog() if catalog is None else catalog
    dt_types = catalog.family("dt")
    span_types = catalog.family("span")
    pelion_types = catalog.family("pelion")
    out = [
        "# Event types",
        "",
        "<!-- Generated from src/fleetlog/core/catalog by "
        "`python -m fleetlog.core.catalog.render`; do not edit by hand. -->",
        "",
        f"fleetlog knows {len(catalog.all())} built-in event types: {len(dt_types)} Disruptive "
        f"Technologies sensor events, {len(span_types)} Span activity events and "
        f"{len(pelion_types)} Pelion event log codes. A tenant may add its own types "
        "(family `custom`) with a JSON Schema for their `data`; a built-in name cannot be "
        "redefined. Events of an unknown type are accepted with any JSON object as `data`.",
        "",
        "- [Disruptive Technologies sensor events](#disruptive-technologies-sensor-events-dt)",
        "- [Span activity events](#span-activity-events-span)",
        "- [Pelion device event log codes](#pelion-device-event-log-codes-pelion)",
        "",
    ]
    out += _dt_section(dt_types)
    out += _span_section(span_types)
    out += _pelion_section(pelion_types)
    return "\n".join(out).rstrip("\n") + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
