"""Delivery commands: `fleetlog webhooks ...` (native webhooks of a tenant) and
`fleetlog connectors ...` (DT data connectors of a project): list, show (with metrics and the
last failures), replay. They talk to the running server, like the other commands.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from fleetlog.cli.client import (
    DEFAULT_URL,
    Client,
    DataDirOption,
    JsonOption,
    TokenOption,
    UrlOption,
    connect,
    console,
    print_json,
    quote,
    resolve_token,
)

webhooks = typer.Typer(help="Native webhooks of a tenant: list, show with failures, replay.", no_args_is_help=True)
connectors = typer.Typer(
    help="DT data connectors of a project: list, show with metrics and failures, replay.", no_args_is_help=True
)

TenantOption = Annotated[str, typer.Option("--tenant", "-t", help="Tenant id")]
OptionalTenant = Annotated[
    str | None,
    typer.Option("--tenant", "-t", help="Tenant id (needed by an operator key if the project id is in several)"),
]
ProjectOption = Annotated[str, typer.Option("--project", "-p", help="Project id")]
SinceOption = Annotated[str, typer.Option("--since", help="Push again what arrived since (RFC 3339 or epoch ms)")]
IdArgument = Annotated[str, typer.Argument(help="Webhook or data connector id")]
TENANT_HEADER = "X-Fleetlog-Tenant"


def _failures(failures: list[dict[str, Any]]) -> None:
    from rich.table import Table

    out = console()
    if not failures:
        out.print("no failures")
        return
    table = Table(title="Last failures (newest first)", title_justify="left")
    for column in ("time", "status", "error", "body", "event", "attempt"):
        table.add_column(column, overflow="fold")
    for f in failures:
        table.add_row(
            f.get("time", ""),
            str(f.get("status", "")),
            f.get("error", ""),
            (f.get("body") or "")[:120],
            f.get("eventId", ""),
            str(f.get("attempt", "")),
        )
    out.print(table)


def _pairs(title: str, pairs: list[tuple[str, Any]]) -> None:
    from rich.table import Table

    table = Table(title=title, title_justify="left", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    for name, value in pairs:
        table.add_row(name, "" if value is None else str(value))
    console().print(table)


# -- native webhooks -----------------------------------------------------------------------


@webhooks.command("list")
def list_webhooks(
    tenant: TenantOption,
    json_: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """The tenant's webhooks."""
    with connect(url, token, data_dir) as api:
        found = api.get(f"/v1/tenants/{quote(tenant)}/webhooks")
    if json_:
        print_json(found)
        return
    from rich.table import Table

    table = Table(title=f"Webhooks of {tenant}", title_justify="left")
    for column in ("id", "status", "project", "url", "types", "name"):
        table.add_column(column, overflow="fold")
    for w in found["webhooks"]:
        table.add_row(w["id"], w["status"], w.get("project") or "(all)", w["url"], ", ".join(w["types"]), w["name"])
    console().print(table)


@webhooks.command("show")
def show_webhook(
    ident: IdArgument,
    tenant: TenantOption,
    json_: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """A webhook, its delivery metrics and its last failures."""
    base = f"/v1/tenants/{quote(tenant)}/webhooks/{quote(ident)}"
    with connect(url, token, data_dir) as api:
        hook = api.get(base)
        report = api.get(base + "/metrics")
    if json_:
        print_json({"webhook": hook, "metrics": report})
        return
    last = report["last_3h"]
    p99 = last["latency_p99_seconds"]
    _pairs(
        f"Webhook {ident}",
        [
            ("status", hook["status"]),
            ("url", hook["url"]),
            ("project", hook.get("project") or "(all)"),
            ("filters", _filters(hook)),
            ("last 3 h", f"{last['success_count']} delivered, {last['error_count']} failed"),
            ("p99 latency", f"{p99:.3f} s" if p99 is not None else "-"),
            ("since start", ", ".join(f"{k} {v}" for k, v in report["since_start"].items())),
            ("in flight", report["in_flight"]),
            ("failing since", report["failing_since"]),
            ("last success", report["last_success"]),
        ],
    )
    _failures(report["failures"])


def _filters(hook: dict[str, Any]) -> str:
    parts = [f"{name}={','.join(hook[name])}" for name in ("types", "devices", "labels", "outcomes") if hook[name]]
    if (hook["min_severity"], hook["max_severity"]) != (1, 5):
        parts.append(f"severity {hook['min_severity']}-{hook['max_severity']}")
    return "; ".join(parts) or "(every event)"


@webhooks.command("replay")
def replay_webhook(
    ident: IdArgument,
    tenant: TenantOption,
    since: SinceOption,
    url: UrlOption = None,
    token: TokenOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Push again every matching event that arrived since a time."""
    with connect(url, token, data_dir) as api:
        answer = api.post(f"/v1/tenants/{quote(tenant)}/webhooks/{quote(ident)}/replay", {"since": since})
    typer.echo(f"replaying webhook {ident} since {answer['replaying_since']}")


# -- DT data connectors --------------------------------------------------------------------


class _DtClient(Client):
    """The /v2 routes: an operator key names the tenant in a header."""

    def __init__(self, url: str, token: str, tenant: str | None) -> None:
        super().__init__(url, token)
        if tenant:
            self._http.headers[TENANT_HEADER] = tenant


def _dt(url: str | None, token: str | None, data_dir: Path | None, tenant: str | None) -> Client:
    return _DtClient(url or DEFAULT_URL, resolve_token(token, data_dir), tenant)


@connectors.command("list")
def list_connectors(
    project: ProjectOption,
    tenant: OptionalTenant = None,
    json_: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """The project's data connectors."""
    found: list[dict[str, Any]] = []
    with _dt(url, token, data_dir, tenant) as api:
        page_token = ""
        while True:
            page = api.get(f"/v2/projects/{quote(project)}/dataconnectors", {"pageToken": page_token})
            found += page["dataConnectors"]
            page_token = page["nextPageToken"]
            if not page_token:
                break
    if json_:
        print_json({"dataConnectors": found})
        return
    from rich.table import Table

    table = Table(title=f"Data connectors of {project}", title_justify="left")
    for column in ("id", "status", "url", "events", "displayName"):
        table.add_column(column, overflow="fold")
    for c in found:
        table.add_row(
            c["name"].rsplit("/", 1)[-1], c["status"], c["httpConfig"]["url"], ", ".join(c["events"]), c["displayName"]
        )
    console().print(table)


@connectors.command("show")
def show_connector(
    ident: IdArgument,
    project: ProjectOption,
    tenant: OptionalTenant = None,
    json_: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """A data connector, its :metrics (last 3 hours) and its last failures."""
    base = f"/v2/projects/{quote(project)}/dataconnectors/{quote(ident)}"
    with _dt(url, token, data_dir, tenant) as api:
        connector = api.get(base)
        report = api.get(base + ":metrics")
    if json_:
        print_json({"dataConnector": connector, "metrics": report})
        return
    m = report["metrics"]
    _pairs(
        f"Data connector {connector['name']}",
        [
            ("status", connector["status"]),
            ("url", connector["httpConfig"]["url"]),
            ("events", ", ".join(connector["events"]) or "(all)"),
            ("labels", ", ".join(connector["labels"])),
            ("last 3 h", f"{m['successCount']} delivered, {m['errorCount']} failed"),
            ("p99 latency", m["latency99p"]),
            ("dropped (too old)", report.get("droppedCount", 0)),
        ],
    )
    _failures(report.get("failures", []))


@connectors.command("replay")
def replay_connector(
    ident: IdArgument,
    project: ProjectOption,
    since: SinceOption,
    tenant: OptionalTenant = None,
    url: UrlOption = None,
    token: TokenOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Push again every event the connector takes that arrived since a time."""
    with _dt(url, token, data_dir, tenant) as api:
        api.post(f"/v2/projects/{quote(project)}/dataconnectors/{quote(ident)}:replay", {"startTime": since})
    typer.echo(f"replaying data connector {ident} since {since}")
