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

from fleetlog.cli.client import (
    DataDirOption,
    JsonOption,
    TokenOption,
    UrlOption,
    connect,
    console,
    fail,
    parse_labels,
    print_json,
    quote,
)

app = typer.Typer(help="Firmware update campaigns (Pelion's event log codes SYS_103 to SYS_112).", no_args_is_help=True)

TenantOption = Annotated[str, typer.Option("--tenant", "-t", help="Tenant id")]
CampaignArg = Annotated[str, typer.Argument(metavar="ID", help="Campaign id")]
STATES = "pending, skipped, succeeded, failed, removed, stopped_not_updated, stopped_may_update"


def _path(tenant: str, campaign_id: str | None = None, *rest: str) -> str:
    path = f"/v1/tenants/{quote(tenant)}/campaigns"
    if campaign_id is not None:
        path += f"/{quote(campaign_id)}"
    return path + "".join(f"/{quote(part)}" for part in rest)


def _summary(title: str, campaign: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(title=title, title_justify="left", show_header=False, box=None, padding=(0, 2, 0, 0))
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for key in ("id", "name", "firmware_version", "phase", "created_at", "started_at", "finished_at"):
        if campaign.get(key):
            table.add_row(key.replace("_", " "), str(campaign[key]))
    if campaign.get("device_ids") is not None:
        ids = campaign["device_ids"]
        table.add_row("devices", ", ".join(ids[:10]) + (f" and {len(ids) - 10} more" if len(ids) > 10 else ""))
    if campaign.get("device_labels"):
        table.add_row("labels", ", ".join(f"{k}={v}" for k, v in campaign["device_labels"].items()))
    counts = campaign.get("devices") or {}
    if counts.get("total"):
        table.add_row("outcomes", ", ".join(f"{k} {v}" for k, v in counts.items() if v and k != "total"))
    console().print(table)


@app.command("list")
def list_(
    tenant: TenantOption,
    json_: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """List a tenant's campaigns."""
    from rich.table import Table

    with connect(url, token, data_dir) as api:
        page = api.get(_path(tenant))
    if json_:
        print_json(page)
        return
    if not page["campaigns"]:
        console().print("no campaigns")
        return
    table = Table(title=f"Campaigns of {tenant}", title_justify="left")
    for column in ("id", "name", "firmware version", "phase", "created at"):
        table.add_column(column, overflow="fold")
    for c in page["campaigns"]:
        table.add_row(c["id"], c["name"], c["firmware_version"], c["phase"], c["created_at"])
    console().print(table)


@app.command()
def create(
    name: Annotated[str, typer.Argument(help="Campaign name")],
    tenant: TenantOption,
    version: Annotated[str, typer.Option("--version", help="The firmware version the devices should run")],
    device: Annotated[list[str] | None, typer.Option("--device", "-d", help="Device id (repeatable)")] = None,
    label: Annotated[
        list[str] | None, typer.Option("--label", "-l", help="Select devices by label key=value (repeatable)")
    ] = None,
    description: Annotated[str, typer.Option(help="What the campaign is for")] = "",
    json_: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Create a draft campaign for devices named by id (--device) or selected by labels (--label)."""
    if bool(device) == bool(label):
        fail("give either --device (one or more) or --label (one or more)")
    body: dict[str, Any] = {"name": name, "firmware_version": version, "description": description}
    if device:
        body["device_ids"] = device
    else:
        body["device_labels"] = parse_labels(label)
    with connect(url, token, data_dir) as api:
        campaign = api.post(_path(tenant), body)
    if json_:
        print_json(campaign)
    else:
        _summary(f"Created campaign {campaign['id']} (start it with `fleetlog campaigns start`)", campaign)


@app.command()
def show(
    campaign_id: CampaignArg,
    tenant: TenantOption,
    json_: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Show a campaign: its phase and how many devices are in each state."""
    with connect(url, token, data_dir) as api:
        campaign = api.get(_path(tenant, campaign_id))
    if json_:
        print_json(campaign)
    else:
        _summary(f"Campaign {campaign['name']}", campaign)


def _command(
    action: str, campaign_id: str, tenant: str, json_: bool, url: str | None, token: str | None, data_dir: Any
) -> None:
    with connect(url, token, data_dir) as api:
        campaign = api.post(_path(tenant, campaign_id, action), None)
    if json_:
        print_json(campaign)
    else:
        _summary(f"Campaign {campaign['name']} is {campaign['phase']}", campaign)


@app.command()
def start(
    campaign_id: CampaignArg,
    tenant: TenantOption,
    json_: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Start a draft campaign: its devices are added (SYS_108) or skipped (SYS_110)."""
    _command("start", campaign_id, tenant, json_, url, token, data_dir)


@app.command()
def stop(
    campaign_id: CampaignArg,
    tenant: TenantOption,
    json_: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Stop an active campaign: pending devices get SYS_103 or SYS_104."""
    _command("stop", campaign_id, tenant, json_, url, token, data_dir)


@app.command()
def devices(
    campaign_id: CampaignArg,
    tenant: TenantOption,
    state: Annotated[str | None, typer.Option(help=f"Only devices in this state: {STATES}")] = None,
    json_: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Each device's outcome: state, event log code, message type and message."""
    from rich.table import Table

    rows: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 1000}
    if state:
        params["state"] = state
    with connect(url, token, data_dir) as api:
        while True:
            page = api.get(_path(tenant, campaign_id, "devices"), params=params)
            rows += page["devices"]
            if not page["has_more"]:
                break
            params["after"] = page["devices"][-1]["device_id"]
    if json_:
        print_json({"devices": rows})
        return
    table = Table(title=f"Devices of campaign {campaign_id}: {len(rows)}", title_justify="left")
    for column in ("device", "state", "code", "message type", "message", "cause"):
        table.add_column(column, overflow="fold")
    for r in rows:
        table.add_row(r["device_id"], r["state"], r["event_type"], r["message_type"], r["message"], r["cause"] or "")
    console().print(table)


@app.command()
def add(
    campaign_id: CampaignArg,
    tenant: TenantOption,
    device: Annotated[list[str], typer.Option("--device", "-d", help="Device id (repeatable)")],
    json_: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Add devices to a draft or active campaign."""
    with connect(url, token, data_dir) as api:
        campaign = api.post(_path(tenant, campaign_id, "devices"), {"device_ids": device})
    if json_:
        print_json(campaign)
    else:
        _summary(f"Campaign {campaign['name']}", campaign)


@app.command()
def remove(
    campaign_id: CampaignArg,
    tenant: TenantOption,
    device: Annotated[str, typer.Option("--device", "-d", help="Device id")],
    json_: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Remove a pending device from a campaign (SYS_109)."""
    with connect(url, token, data_dir) as api:
        campaign = api.request("DELETE", _path(tenant, campaign_id, "devices", device))
    if json_:
        print_json(campaign)
    else:
        _summary(f"Campaign {campaign['name']}", campaign)
