"""`fleetlog codes`: look up event types and Pelion event log codes, offline, in the built-in
catalog (no server needed)."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer

from fleetlog.cli.common import JsonOption, console, fail, print_result, print_table

if TYPE_CHECKING:
    from fleetlog.core.catalog import EventType


class Family(StrEnum):
    dt = "dt"
    span = "span"
    pelion = "pelion"


def _as_json(event_type: EventType) -> dict[str, Any]:
    import msgspec

    out: dict[str, Any] = msgspec.to_builtins(event_type)
    return out


def _detail(event_type: EventType) -> None:
    from rich.console import Group
    from rich.json import JSON
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    rows = [
        ("name", event_type.name),
        ("family", event_type.family),
        ("title", event_type.title),
        ("description", event_type.description),
        ("corrective action", event_type.corrective_action),
        ("outcome", f"{event_type.outcome.value} (message type)"),
        ("category", event_type.category or ""),
        ("state change", "yes" if event_type.state_change else "no"),
        ("device types", ", ".join(event_type.device_types)),
    ]
    for label, value in rows:
        if value:
            grid.add_row(label, Text(value))
    parts: list[Any] = [grid]
    if event_type.schema is not None:
        parts += [Text(""), Text("data schema", style="bold"), JSON(json.dumps(event_type.schema), indent=2)]
    else:
        parts += [Text(""), Text("data schema: none (any JSON object)", style="bold")]
    console().print(Panel(Group(*parts), title=event_type.name, title_align="left", expand=False))


def _table(title: str, types: list[EventType]) -> None:
    print_table(
        title,
        ("name", "family", "title", "outcome", "category"),
        ((t.name, t.family, t.title, t.outcome.value, t.category or "") for t in types),
        no_wrap=("name",),
    )


def codes(
    query: Annotated[
        str | None,
        typer.Argument(
            metavar="QUERY", help="An event type or code (e.g. SYS_112, temperature), or text to search for"
        ),
    ] = None,
    family: Annotated[Family | None, typer.Option(help="Only this family", case_sensitive=False)] = None,
    json_: JsonOption = False,
) -> None:
    """Look up event types and event log codes in the built-in catalog (offline).

    An exact name shows the type in full, with the JSON schema of its data.

    Other text searches names, titles and descriptions; no QUERY lists every type."""
    from fleetlog.core.catalog import builtin_catalog

    catalog = builtin_catalog()
    wanted = family.value if family is not None else None
    if query:
        exact = catalog.get(query)
        if exact is None:
            folded = query.casefold()
            exact = next((t for t in catalog.all() if t.name.casefold() == folded), None)
        if exact is not None and wanted in (None, exact.family):
            print_result(_as_json(exact), json_, lambda: _detail(exact))
            return
        found = catalog.search(query)
    else:
        found = catalog.all()
    if wanted is not None:
        found = [t for t in found if t.family == wanted]
    if not found:
        where = f" in family {wanted}" if wanted else ""
        fail(f"no event type or code matches {query!r}{where}", hint="`fleetlog codes` lists them all")
    title = f"Event types matching {query!r}" if query else "Event types"
    if wanted:
        title += f" ({wanted})"
    print_result({"event_types": [_as_json(t) for t in found]}, json_, lambda: _table(f"{title}: {len(found)}", found))
