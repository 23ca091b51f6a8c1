"""What the commands share: the `--json` and `--tenant` options, groups of options that several
commands take (`option_group`), printing (tables, key-value tables and JSON) and the error exit.

Errors are printed in red on stderr as `error: <message>` and end the command with exit code 1.

rich is imported only when something is printed, so `fleetlog --help` stays fast.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import json
import os
import sys
import typing
from collections.abc import Callable, Container, Iterable, Sequence
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

if TYPE_CHECKING:
    from rich.console import Console

JsonOption = Annotated[bool, typer.Option("--json", help="Print the raw JSON (for scripts)")]
TenantOption = Annotated[str, typer.Option("--tenant", "-t", help="Tenant id")]


def option_group(command: Callable[..., None], name: str, group: type, *, last: bool = False) -> Callable[..., None]:
    """The command's argument `name`, a dataclass `group` whose fields are Typer options (an
    `Annotated` type and a default each), becomes those options: in its place, or after all the
    command's other options if `last`. The command is called with the group built from them.

    Typer reads a command's options from its signature, so the wrapper shows Typer the command's
    signature with the group's fields (and their annotations) instead of `name`."""
    signature = inspect.signature(command, eval_str=True)
    if name not in signature.parameters:
        raise TypeError(f"{command.__name__} has no argument {name!r}")
    hints = typing.get_type_hints(group, include_extras=True)
    fields = [
        inspect.Parameter(
            field.name,
            inspect.Parameter.KEYWORD_ONLY,
            default=inspect.Parameter.empty if field.default is dataclasses.MISSING else field.default,
            annotation=hints[field.name],
        )
        for field in dataclasses.fields(group)
    ]
    own = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in signature.parameters.values()]
    at = list(signature.parameters).index(name)
    before, after = own[:at], own[at + 1 :]
    parameters = [*before, *after, *fields] if last else [*before, *fields, *after]

    @functools.wraps(command)
    def run(**options: Any) -> None:
        grouped = group(**{field.name: options.pop(field.name) for field in fields})
        command(**options, **{name: grouped})

    run.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    run.__annotations__ = {p.name: p.annotation for p in parameters} | {"return": None}
    return run


def fail(message: str, hint: str | None = None) -> NoReturn:
    """Print `error: message` in red on stderr (and `hint: ...` below it) and exit with code 1."""
    typer.secho(f"error: {message}", fg="red", err=True)
    if hint:
        typer.echo(f"hint: {hint}", err=True)
    raise typer.Exit(1)


def parse_labels(raw: list[str] | None) -> dict[str, str]:
    """`key=value` options as a dict; exits 1 on a malformed one."""
    labels: dict[str, str] = {}
    for item in raw or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            fail(f"label: must be key=value, got {item!r}")
        labels[key] = value
    return labels


# -- output --------------------------------------------------------------------------------


def console(stderr: bool = False) -> Console:
    """A rich console. Piped output is not wrapped at 80 columns (it is read by tools)."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    width = None
    if not stream.isatty() and "COLUMNS" not in os.environ:
        width = 200
    return Console(stderr=stderr, width=width, highlight=False)


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))


def print_result(data: Any, as_json: bool, human: Callable[[], object]) -> None:
    """What a command answers: the API's JSON with `--json`, else what `human` prints."""
    if as_json:
        print_json(data)
    else:
        human()


def cell(value: Any) -> str:
    """A value as a table shows it: None blank, booleans yes/no, a dict as k=v pairs."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    return str(value)


def print_table(
    title: str,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    empty: str | None = None,
    no_wrap: Container[str] = (),
) -> None:
    """A titled table with a header, one row a record; `empty` is printed instead of a table
    without rows (without it the empty table is printed). Long cells fold."""
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column, overflow="fold", no_wrap=column in no_wrap)
    for row in rows:
        table.add_row(*(cell(value) for value in row))
    console().print(empty if empty is not None and not table.row_count else table)


def print_pairs(title: str, pairs: Iterable[tuple[str, Any]], *, boxed: bool = False) -> None:
    """A titled two-column table, a name in bold and its value on each line, without a header;
    without a box unless `boxed`."""
    from rich.table import Table

    style: dict[str, Any] = {} if boxed else {"box": None, "padding": (0, 2, 0, 0)}
    table = Table(title=title, title_justify="left", show_header=False, **style)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for name, value in pairs:
        table.add_row(name, cell(value))
    console().print(table)
