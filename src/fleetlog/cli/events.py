"""Event commands: `fleetlog events query` (one page, as a table) and `fleetlog events export`
(every matching event, streamed to a file or stdout as NDJSON or CSV)."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated, Any

import typer

from fleetlog.cli.client import Server, tenant_path, with_server
from fleetlog.cli.common import JsonOption, TenantOption, console, fail, option_group, print_result, print_table

if TYPE_CHECKING:
    from rich.progress import Progress, Task

app = typer.Typer(help="Query and export events.", no_args_is_help=True)


class Order(StrEnum):
    newest = "newest"
    oldest = "oldest"


class Format(StrEnum):
    ndjson = "ndjson"
    csv = "csv"


@dataclass(frozen=True)
class Filters:
    """Which events: the options `query` and `export` share, mirroring the REST query parameters."""

    project: Annotated[list[str] | None, typer.Option("--project", "-p", help="Project id (repeatable)")] = None
    device: Annotated[list[str] | None, typer.Option("--device", "-d", help="Device id (repeatable)")] = None
    type_: Annotated[list[str] | None, typer.Option("--type", help="Event type (repeatable)")] = None
    since: Annotated[
        str | None,
        typer.Option(help="Events at or after this time (RFC 3339 or epoch milliseconds)"),
    ] = None
    until: Annotated[str | None, typer.Option(help="Events before this time (RFC 3339 or epoch milliseconds)")] = None
    outcome: Annotated[
        list[str] | None, typer.Option("--outcome", help="SUCCESS, FAIL, SKIPPED or INFO (repeatable)")
    ] = None
    min_severity: Annotated[
        int | None,
        typer.Option("--min-severity", min=1, max=5, help="Lowest severity, 1-5"),
    ] = None
    label: Annotated[
        list[str] | None,
        typer.Option("--label", "-l", help="Device label: key=value, or key to require it (repeatable)"),
    ] = None
    order: Annotated[Order, typer.Option(help="Newest or oldest first", case_sensitive=False)] = Order.newest

    def params(self) -> list[tuple[str, str]]:
        """The query parameters, a repeated option a repeated parameter."""
        params: list[tuple[str, str]] = []
        params += [("project", v) for v in self.project or []]
        params += [("device", v) for v in self.device or []]
        params += [("type", v) for v in self.type_ or []]
        if self.since is not None:
            params.append(("since", self.since))
        if self.until is not None:
            params.append(("until", self.until))
        params += [("outcome", v) for v in self.outcome or []]
        if self.min_severity is not None:
            params.append(("min_severity", str(self.min_severity)))
        params += [("label", v) for v in self.label or []]
        params.append(("order", self.order.value))
        return params


def with_filters(command: Callable[..., None]) -> Callable[..., None]:
    """The command's `filters: Filters` argument becomes the filter options, in its place."""
    return option_group(command, "filters", Filters)


# -- query ---------------------------------------------------------------------------------


def _compact(data: Any, limit: int = 80) -> str:
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False) if data else ""
    return text if len(text) <= limit else text[: limit - 1] + "…"


@app.command("query")
@with_server
@with_filters
def query(
    server: Server,
    tenant: TenantOption,
    filters: Filters = Filters(),
    limit: Annotated[int | None, typer.Option(min=1, max=1000, help="Page size, 1-1000 (default 100)")] = None,
    cursor: Annotated[str | None, typer.Option(help="Continue from the cursor a previous page printed")] = None,
    json_: JsonOption = False,
) -> None:
    """One page of events, newest first by default; prints the cursor of the next page."""
    params = filters.params()
    if limit is not None:
        params.append(("limit", str(limit)))
    if cursor:
        params.append(("cursor", cursor))
    with server.connect() as api:
        page = api.get(tenant_path(tenant, "events"), params)
    print_result(page, json_, lambda: _page(tenant, page))


def _page(tenant: str, page: dict[str, Any]) -> None:
    events = page.get("events", [])
    print_table(
        f"Events of {tenant}",
        ("time", "device", "type", "outcome", "severity", "project", "data", "id"),
        (
            (
                e.get("time", ""),
                e.get("device") or e.get("gateway") or "",
                e.get("type", ""),
                e.get("outcome", ""),
                str(e.get("severity", "")),
                e.get("project", ""),
                _compact(e.get("data")),
                e.get("id", ""),
            )
            for e in events
        ),
        empty="no events",
        no_wrap=("time", "id"),
    )
    more = f"next page: --cursor {page['next_cursor']}" if page.get("next_cursor") else "no more pages"
    console().print(f"{len(events)} events; {more}", soft_wrap=True)


# -- export --------------------------------------------------------------------------------


class RowCounter:
    """Counts the records in an NDJSON or CSV stream as it passes by, chunk by chunk.

    A CSV field may hold a line break inside quotes, so for CSV only line breaks outside
    quotes end a row (a `""` escape toggles the quote state twice, which is right)."""

    def __init__(self, fmt: Format) -> None:
        self.csv = fmt is Format.csv
        self.in_quotes = False
        self.lines = 0

    def feed(self, chunk: bytes) -> None:
        if not self.csv or (not self.in_quotes and b'"' not in chunk):
            self.lines += chunk.count(b"\n")
            return
        for index, part in enumerate(chunk.split(b'"')):
            if index:
                self.in_quotes = not self.in_quotes
            if not self.in_quotes:
                self.lines += part.count(b"\n")

    @property
    def rows(self) -> int:
        """Events seen: the CSV header line is not one."""
        return max(self.lines - 1, 0) if self.csv else self.lines


def _progress() -> Progress:
    from rich.filesize import decimal
    from rich.progress import (
        Progress,
        ProgressColumn,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
        TransferSpeedColumn,
    )
    from rich.text import Text

    class RowsColumn(ProgressColumn):
        def render(self, task: Task) -> Text:
            rows = int(task.fields.get("rows", 0))
            elapsed = task.finished_time if task.finished else task.elapsed
            rate = rows / elapsed if elapsed else 0.0
            return Text(f"{rows:,} events ({rate:,.0f}/s)", style="progress.data.speed")

    class BytesColumn(ProgressColumn):
        def render(self, task: Task) -> Text:
            return Text(decimal(int(task.completed)), style="progress.download")

    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        RowsColumn(),
        BytesColumn(),
        TransferSpeedColumn(),
        TimeElapsedColumn(),
        console=console(stderr=True),
        transient=False,
    )


def _file_mode(target: Path) -> int:
    """The mode the finished file gets: an existing file's, else what the umask allows
    (mkstemp makes its file private)."""
    try:
        return target.stat().st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


@app.command("export")
@with_server
@with_filters
def export(
    server: Server,
    tenant: TenantOption,
    format_: Annotated[Format, typer.Option("--format", "-f", help="ndjson or csv", case_sensitive=False)] = (
        Format.ndjson
    ),
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file (default: stdout)", dir_okay=False)
    ] = None,
    filters: Filters = Filters(),
) -> None:
    """Every matching event, streamed as NDJSON or CSV to a file or stdout.

    Written chunk by chunk, never held in memory.

    A file is written under a temporary name and renamed when complete: never left half-written."""
    params = filters.params()
    params.append(("format", format_.value))
    counter = RowCounter(format_)
    to_file = output is not None and str(output) != "-"
    show_progress = to_file or sys.stderr.isatty()
    sink: IO[bytes]
    temp: Path | None = None
    target: Path | None = None
    if to_file:
        assert output is not None
        target = output.resolve()
        if not target.parent.is_dir():
            fail(f"output: no such directory: {target.parent}")
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
        temp = Path(name)
        os.chmod(fd, _file_mode(target))
        sink = os.fdopen(fd, "wb")
    else:
        sink = sys.stdout.buffer
    written = 0
    done = False
    try:
        with (
            server.connect() as api,
            api.stream(tenant_path(tenant, "events", "export"), params) as response,
        ):
            progress = _progress() if show_progress else None
            task = progress.add_task("exporting", total=None, rows=0) if progress else None
            if progress is not None:
                progress.start()
            try:
                for chunk in response.iter_bytes():
                    sink.write(chunk)
                    written += len(chunk)
                    counter.feed(chunk)
                    if progress is not None and task is not None:
                        progress.update(task, completed=written, rows=counter.rows)
            finally:
                if progress is not None and task is not None:
                    progress.update(task, description="exported", completed=written, rows=counter.rows)
                    progress.stop()
        sink.flush()
        done = True
    finally:
        if temp is not None and target is not None:
            sink.close()
            if done:
                os.replace(temp, target)
            else:
                temp.unlink(missing_ok=True)
    if to_file:
        typer.echo(f"exported {counter.rows} events to {output} ({written:,} bytes)")
    else:
        typer.echo(f"exported {counter.rows} events to stdout ({written:,} bytes)", err=True)
