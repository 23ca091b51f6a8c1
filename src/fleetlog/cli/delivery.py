"""Delivery commands: `fleetlog webhooks ...` (native webhooks of a tenant) and
`fleetlog connectors ...` (DT data connectors of a project): list, show (with metrics and the
last failures), replay. They talk to the running server, like the other commands.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from fleetlog.cli.client import Client, Server, quote, tenant_path, with_server
from fleetlog.cli.common import JsonOption, TenantOption, print_pairs, print_result, print_table

webhooks = typer.Typer(help="Native webhooks of a tenant: list, show with failures, replay.", no_args_is_help=True)
connectors = typer.Typer(
    help="DT data connectors of a project: list, show with metrics and failures, replay.", no_args_is_help=True
)

OptionalTenant = Annotated[
    str | None,
    typer.Option("--tenant", "-t", help="Tenant id (needed by an operator key if the project id is in several)"),
]
ProjectOption = Annotated[str, typer.Option("--project", "-p", help="Project id")]
SinceOption = Annotated[str, typer.Option("--since", help="Push again what arrived since (RFC 3339 or epoch ms)")]
IdArgument = Annotated[str, typer.Argument(help="Webhook or data connector id")]
TENANT_HEADER = "X-Fleetlog-Tenant"


def _failures(failures: list[dict[str, Any]]) -> None:
    print_table(
        "Last failures (newest first)",
        ("time", "status", "error", "body", "event", "attempt"),
        (
            (
                f.get("time", ""),
                str(f.get("status", "")),
                f.get("error", ""),
                (f.get("body") or "")[:120],
                f.get("eventId", ""),
                str(f.get("attempt", "")),
            )
            for f in failures
        ),
        empty="no failures",
    )


# -- native webhooks -----------------------------------------------------------------------


@webhooks.command("list")
@with_server
def list_webhooks(server: Server, tenant: TenantOption, json_: JsonOption = False) -> None:
    """The tenant's webhooks."""
    with server.connect() as api:
        found = api.get(tenant_path(tenant, "webhooks"))
    print_result(found, json_, lambda: _webhooks(tenant, found["webhooks"]))


def _webhooks(tenant: str, hooks: list[dict[str, Any]]) -> None:
    print_table(
        f"Webhooks of {tenant}",
        ("id", "status", "project", "url", "types", "name"),
        (
            (w["id"], w["status"], w.get("project") or "(all)", w["url"], ", ".join(w["types"]), w["name"])
            for w in hooks
        ),
    )


@webhooks.command("show")
@with_server
def show_webhook(server: Server, ident: IdArgument, tenant: TenantOption, json_: JsonOption = False) -> None:
    """A webhook, its delivery metrics and its last failures."""
    base = tenant_path(tenant, "webhooks", ident)
    with server.connect() as api:
        hook = api.get(base)
        report = api.get(base + "/metrics")
    print_result({"webhook": hook, "metrics": report}, json_, lambda: _show_webhook(ident, hook, report))


def _show_webhook(ident: str, hook: dict[str, Any], report: dict[str, Any]) -> None:
    last = report["last_3h"]
    p99 = last["latency_p99_seconds"]
    print_pairs(
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
        boxed=True,
    )
    _failures(report["failures"])


def _filters(hook: dict[str, Any]) -> str:
    parts = [f"{name}={','.join(hook[name])}" for name in ("types", "devices", "labels", "outcomes") if hook[name]]
    if (hook["min_severity"], hook["max_severity"]) != (1, 5):
        parts.append(f"severity {hook['min_severity']}-{hook['max_severity']}")
    return "; ".join(parts) or "(every event)"


@webhooks.command("replay")
@with_server
def replay_webhook(server: Server, ident: IdArgument, tenant: TenantOption, since: SinceOption) -> None:
    """Push again every matching event that arrived since a time."""
    with server.connect() as api:
        answer = api.post(tenant_path(tenant, "webhooks", ident, "replay"), {"since": since})
    typer.echo(f"replaying webhook {ident} since {answer['replaying_since']}")


# -- DT data connectors --------------------------------------------------------------------


def _dt(server: Server, tenant: str | None) -> Client:
    """A client for the /v2 routes: an operator key names the tenant in a header."""
    return server.connect({TENANT_HEADER: tenant} if tenant else None)


@connectors.command("list")
@with_server
def list_connectors(
    server: Server, project: ProjectOption, tenant: OptionalTenant = None, json_: JsonOption = False
) -> None:
    """The project's data connectors."""
    found: list[dict[str, Any]] = []
    with _dt(server, tenant) as api:
        page_token = ""
        while True:
            page = api.get(f"/v2/projects/{quote(project)}/dataconnectors", {"pageToken": page_token})
            found += page["dataConnectors"]
            page_token = page["nextPageToken"]
            if not page_token:
                break
    print_result({"dataConnectors": found}, json_, lambda: _connectors(project, found))


def _connectors(project: str, found: list[dict[str, Any]]) -> None:
    print_table(
        f"Data connectors of {project}",
        ("id", "status", "url", "events", "displayName"),
        (
            (
                c["name"].rsplit("/", 1)[-1],
                c["status"],
                c["httpConfig"]["url"],
                ", ".join(c["events"]),
                c["displayName"],
            )
            for c in found
        ),
    )


@connectors.command("show")
@with_server
def show_connector(
    server: Server, ident: IdArgument, project: ProjectOption, tenant: OptionalTenant = None, json_: JsonOption = False
) -> None:
    """A data connector, its :metrics (last 3 hours) and its last failures."""
    base = f"/v2/projects/{quote(project)}/dataconnectors/{quote(ident)}"
    with _dt(server, tenant) as api:
        connector = api.get(base)
        report = api.get(base + ":metrics")
    print_result({"dataConnector": connector, "metrics": report}, json_, lambda: _show_connector(connector, report))


def _show_connector(connector: dict[str, Any], report: dict[str, Any]) -> None:
    m = report["metrics"]
    print_pairs(
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
        boxed=True,
    )
    _failures(report.get("failures", []))


@connectors.command("replay")
@with_server
def replay_connector(
    server: Server, ident: IdArgument, project: ProjectOption, since: SinceOption, tenant: OptionalTenant = None
) -> None:
    """Push again every event the connector takes that arrived since a time."""
    with _dt(server, tenant) as api:
        api.post(f"/v2/projects/{quote(project)}/dataconnectors/{quote(ident)}:replay", {"startTime": since})
    typer.echo(f"replaying data connector {ident} since {since}")
