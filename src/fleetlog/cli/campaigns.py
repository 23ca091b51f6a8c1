"""`fleetlog campaigns`: firmware update campaigns, over /v1/tenants/{t}/campaigns.

fleetlog campaigns create spring --tenant acme --version 2.0 --device freezer-3 --device oven-1
fleetlog campaigns create spring --tenant acme --version 2.0 --label site=oslo
fleetlog campaigns start ID --tenant acme
fleetlog campaigns show ID --tenant acme           # phase and device counts
fleetlog campaigns devices ID --tenant acme --state failed
fleetlog campaigns stop ID --tenant acme
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from fleetlog.cli.client import Server, tenant_path, with_server
from fleetlog.cli.common import JsonOption, TenantOption, fail, parse_labels, print_pairs, print_result, print_table

app = typer.Typer(help="Firmware update campaigns (Pelion's event log codes SYS_103 to SYS_112).", no_args_is_help=True)

CampaignArg = Annotated[str, typer.Argument(metavar="ID", help="Campaign id")]
STATES = "pending, skipped, succeeded, failed, removed, stopped_not_updated, stopped_may_update"


def _path(tenant: str, *segments: str) -> str:
    """The tenant's campaigns, or a campaign (the first segment) and what is below it."""
    return tenant_path(tenant, "campaigns", *segments)


def _summary(title: str, campaign: dict[str, Any]) -> None:
    rows = [
        (key.replace("_", " "), str(campaign[key]))
        for key in ("id", "name", "firmware_version", "phase", "created_at", "started_at", "finished_at")
        if campaign.get(key)
    ]
    if campaign.get("device_ids") is not None:
        ids = campaign["device_ids"]
        rows.append(("devices", ", ".join(ids[:10]) + (f" and {len(ids) - 10} more" if len(ids) > 10 else "")))
    if campaign.get("device_labels"):
        rows.append(("labels", ", ".join(f"{k}={v}" for k, v in campaign["device_labels"].items())))
    counts = campaign.get("devices") or {}
    if counts.get("total"):
        rows.append(("outcomes", ", ".join(f"{k} {v}" for k, v in counts.items() if v and k != "total")))
    print_pairs(title, rows)


@app.command("list")
@with_server
def list_(server: Server, tenant: TenantOption, json_: JsonOption = False) -> None:
    """List a tenant's campaigns."""
    with server.connect() as api:
        page = api.get(_path(tenant))
    print_result(page, json_, lambda: _list(tenant, page["campaigns"]))


def _list(tenant: str, campaigns: list[dict[str, Any]]) -> None:
    print_table(
        f"Campaigns of {tenant}",
        ("id", "name", "firmware version", "phase", "created at"),
        ((c["id"], c["name"], c["firmware_version"], c["phase"], c["created_at"]) for c in campaigns),
        empty="no campaigns",
    )


@app.command()
@with_server
def create(
    server: Server,
    name: Annotated[str, typer.Argument(help="Campaign name")],
    tenant: TenantOption,
    version: Annotated[str, typer.Option("--version", help="The firmware version the devices should run")],
    device: Annotated[list[str] | None, typer.Option("--device", "-d", help="Device id (repeatable)")] = None,
    label: Annotated[
        list[str] | None, typer.Option("--label", "-l", help="Select devices by label key=value (repeatable)")
    ] = None,
    description: Annotated[str, typer.Option(help="What the campaign is for")] = "",
    json_: JsonOption = False,
) -> None:
    """Create a draft campaign for devices named by id (--device) or selected by labels (--label)."""
    if bool(device) == bool(label):
        fail("give either --device (one or more) or --label (one or more)")
    body: dict[str, Any] = {"name": name, "firmware_version": version, "description": description}
    if device:
        body["device_ids"] = device
    else:
        body["device_labels"] = parse_labels(label)
    with server.connect() as api:
        campaign = api.post(_path(tenant), body)
    title = f"Created campaign {campaign['id']} (start it with `fleetlog campaigns start`)"
    print_result(campaign, json_, lambda: _summary(title, campaign))


@app.command()
@with_server
def show(server: Server, campaign_id: CampaignArg, tenant: TenantOption, json_: JsonOption = False) -> None:
    """Show a campaign: its phase and how many devices are in each state."""
    with server.connect() as api:
        campaign = api.get(_path(tenant, campaign_id))
    print_result(campaign, json_, lambda: _summary(f"Campaign {campaign['name']}", campaign))


def _act(server: Server, action: str, campaign_id: str, tenant: str, json_: bool) -> None:
    with server.connect() as api:
        campaign = api.post(_path(tenant, campaign_id, action), None)
    print_result(campaign, json_, lambda: _summary(f"Campaign {campaign['name']} is {campaign['phase']}", campaign))


@app.command()
@with_server
def start(server: Server, campaign_id: CampaignArg, tenant: TenantOption, json_: JsonOption = False) -> None:
    """Start a draft campaign: its devices are added (SYS_108) or skipped (SYS_110)."""
    _act(server, "start", campaign_id, tenant, json_)


@app.command()
@with_server
def stop(server: Server, campaign_id: CampaignArg, tenant: TenantOption, json_: JsonOption = False) -> None:
    """Stop an active campaign: pending devices get SYS_103 or SYS_104."""
    _act(server, "stop", campaign_id, tenant, json_)


@app.command()
@with_server
def devices(
    server: Server,
    campaign_id: CampaignArg,
    tenant: TenantOption,
    state: Annotated[str | None, typer.Option(help=f"Only devices in this state: {STATES}")] = None,
    json_: JsonOption = False,
) -> None:
    """Each device's outcome: state, event log code, message type and message."""
    rows: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 1000}
    if state:
        params["state"] = state
    with server.connect() as api:
        while True:
            page = api.get(_path(tenant, campaign_id, "devices"), params=params)
            rows += page["devices"]
            if not page["has_more"]:
                break
            params["after"] = page["devices"][-1]["device_id"]
    print_result({"devices": rows}, json_, lambda: _devices(campaign_id, rows))


def _devices(campaign_id: str, rows: list[dict[str, Any]]) -> None:
    print_table(
        f"Devices of campaign {campaign_id}: {len(rows)}",
        ("device", "state", "code", "message type", "message", "cause"),
        (
            (r["device_id"], r["state"], r["event_type"], r["message_type"], r["message"], r["cause"] or "")
            for r in rows
        ),
    )


@app.command()
@with_server
def add(
    server: Server,
    campaign_id: CampaignArg,
    tenant: TenantOption,
    device: Annotated[list[str], typer.Option("--device", "-d", help="Device id (repeatable)")],
    json_: JsonOption = False,
) -> None:
    """Add devices to a draft or active campaign."""
    with server.connect() as api:
        campaign = api.post(_path(tenant, campaign_id, "devices"), {"device_ids": device})
    print_result(campaign, json_, lambda: _summary(f"Campaign {campaign['name']}", campaign))


@app.command()
@with_server
def remove(
    server: Server,
    campaign_id: CampaignArg,
    tenant: TenantOption,
    device: Annotated[str, typer.Option("--device", "-d", help="Device id")],
    json_: JsonOption = False,
) -> None:
    """Remove a pending device from a campaign (SYS_109)."""
    with server.connect() as api:
        campaign = api.request("DELETE", _path(tenant, campaign_id, "devices", device))
    print_result(campaign, json_, lambda: _summary(f"Campaign {campaign['name']}", campaign))
