"""Operator commands: tenants, projects, devices and API keys, over the native /v1 API.

Lists and details print as tables; `--json` prints the API's JSON instead (for scripts).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from enum import StrEnum
from typing import Annotated, Any

import typer

from fleetlog.cli.client import (
    DataDirOption,
    JsonOption,
    TokenOption,
    UrlOption,
    connect,
    console,
    parse_labels,
    print_json,
    quote,
)

tenants = typer.Typer(help="Tenants (operator only, except `show` and `list`).", no_args_is_help=True)
projects = typer.Typer(help="Projects of a tenant.", no_args_is_help=True)
devices = typer.Typer(help="Devices of a tenant.", no_args_is_help=True)
keys = typer.Typer(help="API keys of a tenant.", no_args_is_help=True)

TenantOption = Annotated[str, typer.Option("--tenant", "-t", help="Tenant id")]
LabelsOption = Annotated[
    list[str] | None,
    typer.Option("--label", "-l", help="Device label as key=value (repeatable)"),
]


# -- output --------------------------------------------------------------------------------


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    return str(value)


def _table(title: str, columns: Sequence[str], rows: Iterable[dict[str, Any]]) -> None:
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column.replace("_", " "), overflow="fold")
    count = 0
    for row in rows:
        table.add_row(*(_cell(row.get(c)) for c in columns))
        count += 1
    out = console()
    if count:
        out.print(table)
    else:
        out.print(f"no {title.lower()}")


def _details(title: str, item: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(title=title, title_justify="left", show_header=False, box=None, padding=(0, 2, 0, 0))
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for key, value in item.items():
        if key == "token":
            continue
        table.add_row(key.replace("_", " "), _cell(value))
    console().print(table)


TENANT_COLUMNS = ["id", "name", "retention_days", "license_valid", "created"]
PROJECT_COLUMNS = ["id", "name", "created"]
DEVICE_COLUMNS = ["id", "project", "type", "labels", "updated"]
KEY_COLUMNS = ["id", "role", "project", "name", "created"]


# -- tenants -------------------------------------------------------------------------------


@tenants.command("list")
def tenants_list(
    json_: JsonOption = False, url: UrlOption = None, token: TokenOption = None, data_dir: DataDirOption = None
) -> None:
    """List the tenants (an operator sees all; a tenant key sees its own)."""
    with connect(url, token, data_dir) as api:
        page = api.get("/v1/tenants")
    if json_:
        print_json(page)
    else:
        _table("Tenants", TENANT_COLUMNS, page["tenants"])


@tenants.command("create")
def tenants_create(
    tenant_id: Annotated[str, typer.Argument(metavar="ID", help="Tenant id")],
    name: Annotated[str | None, typer.Option(help="Display name")] = None,
    retention_days: Annotated[int | None, typer.Option(help="Keep events this many days (default 31)")] = None,
    json_: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Create a tenant."""
    body: dict[str, Any] = {"id": tenant_id}
    if name is not None:
        body["name"] = name
    if retention_days is not None:
        body["retention_days"] = retention_days
    with connect(url, token, data_dir) as api:
        tenant = api.post("/v1/tenants", body)
    if json_:
        print_json(tenant)
    else:
        _details(f"Created tenant {tenant['id']}", tenant)


@tenants.command("show")
def tenants_show(
    tenant_id: Annotated[str, typer.Argument(metavar="ID", help="Tenant id")],
    json_: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Show one tenant."""
    with connect(url, token, data_dir) as api:
        tenant = api.get(f"/v1/tenants/{quote(tenant_id)}")
    if json_:
        print_json(tenant)
    else:
        _details(f"Tenant {tenant['id']}", tenant)


@tenants.command("update")
def tenants_update(
    tenant_id: Annotated[str, typer.Argument(metavar="ID", help="Tenant id")],
    name: Annotated[str | None, typer.Option(help="Display name")] = None,
    retention_days: Annotated[int | None, typer.Option(help="Keep events this many days")] = None,
    license_valid: Annotated[
        bool | None,
        typer.Option("--license-valid/--license-invalid", help="Mark the licence valid or invalid"),
    ] = None,
    json_: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Change a tenant's name, retention or licence state."""
    body: dict[str, Any] = {}
    if name is not None:
        body["name"] = name
    if retention_days is not None:
        body["retention_days"] = retention_days
    if license_valid is not None:
        body["license_valid"] = license_valid
    if not body:
        raise typer.BadParameter(
            "nothing to change: give --name, --retention-days or --license-valid/--license-invalid"
        )
    with connect(url, token, data_dir) as api:
        tenant = api.patch(f"/v1/tenants/{quote(tenant_id)}", body)
    if json_:
        print_json(tenant)
    else:
        _details(f"Updated tenant {tenant['id']}", tenant)


# -- projects ------------------------------------------------------------------------------


@projects.command("list")
def projects_list(
    tenant: TenantOption,
    json_: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """List a tenant's projects."""
    with connect(url, token, data_dir) as api:
        page = api.get(f"/v1/tenants/{quote(tenant)}/projects")
    if json_:
        print_json(page)
    else:
        _table(f"Projects of {tenant}", PROJECT_COLUMNS, page["projects"])


@projects.command("create")
def projects_create(
    project_id: Annotated[str, typer.Argument(metavar="ID", help="Project id")],
    tenant: TenantOption,
    name: Annotated[str | None, typer.Option(help="Display name")] = None,
    json_: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Create a project in a tenant."""
    body: dict[str, Any] = {"id": project_id}
    if name is not None:
        body["name"] = name
    with connect(url, token, data_dir) as api:
        project = api.post(f"/v1/tenants/{quote(tenant)}/projects", body)
    if json_:
        print_json(project)
    else:
        _details(f"Created project {project['id']} in {tenant}", project)


@projects.command("delete")
def projects_delete(
    project_id: Annotated[str, typer.Argument(metavar="ID", help="Project id")],
    tenant: TenantOption,
    url: UrlOption = None,
    token: TokenOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Delete a project."""
    with connect(url, token, data_dir) as api:
        api.delete(f"/v1/tenants/{quote(tenant)}/projects/{quote(project_id)}")
    typer.echo(f"deleted project {project_id} of {tenant}")


# -- devices -------------------------------------------------------------------------------


@devices.command("list")
def devices_list(
    tenant: TenantOption,
    project: Annotated[str | None, typer.Option("--project", "-p", help="Only this project")] = None,
    label: LabelsOption = None,
    json_: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """List a tenant's devices (all pages), optionally by project and labels.

    `--label key=value` requires that value; `--label key` only requires the label."""
    params: list[tuple[str, str]] = [("limit", "1000")]
    if project:
        params.append(("project", project))
    params += [("label", raw) for raw in label or []]
    found: list[dict[str, Any]] = []
    with connect(url, token, data_dir) as api:
        after: str | None = None
        while True:
            page = api.get(f"/v1/tenants/{quote(tenant)}/devices", params + ([("after", after)] if after else []))
            found += page["devices"]
            after = page.get("next_after")
            if not after:
                break
    if json_:
        print_json({"devices": found, "next_after": None})
    else:
        _table(f"Devices of {tenant}", DEVICE_COLUMNS, found)


@devices.command("create")
def devices_create(
    device_id: Annotated[str, typer.Argument(metavar="ID", help="Device id")],
    tenant: TenantOption,
    project: Annotated[str, typer.Option("--project", "-p", help="Project the device belongs to")],
    type_: Annotated[str | None, typer.Option("--type", help="Device type, e.g. temperature")] = None,
    label: LabelsOption = None,
    json_: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Register a device."""
    body: dict[str, Any] = {"id": device_id, "project": project, "labels": parse_labels(label)}
    if type_ is not None:
        body["type"] = type_
    with connect(url, token, data_dir) as api:
        device = api.post(f"/v1/tenants/{quote(tenant)}/devices", body)
    if json_:
        print_json(device)
    else:
        _details(f"Created device {device['id']}", device)


@devices.command("show")
def devices_show(
    device_id: Annotated[str, typer.Argument(metavar="ID", help="Device id")],
    tenant: TenantOption,
    json_: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Show one device."""
    with connect(url, token, data_dir) as api:
        device = api.get(f"/v1/tenants/{quote(tenant)}/devices/{quote(device_id)}")
    if json_:
        print_json(device)
    else:
        _details(f"Device {device['id']}", device)


@devices.command("update")
def devices_update(
    device_id: Annotated[str, typer.Argument(metavar="ID", help="Device id")],
    tenant: TenantOption,
    project: Annotated[str | None, typer.Option("--project", "-p", help="Move to this project")] = None,
    type_: Annotated[str | None, typer.Option("--type", help="Device type")] = None,
    label: Annotated[
        list[str] | None,
        typer.Option("--label", "-l", help="Replace the labels with these key=value ones (repeatable)"),
    ] = None,
    clear_labels: Annotated[bool, typer.Option("--clear-labels", help="Remove every label")] = False,
    json_: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Move a device, change its type, or replace its labels."""
    body: dict[str, Any] = {}
    if project is not None:
        body["project"] = project
    if type_ is not None:
        body["type"] = type_
    if label:
        body["labels"] = parse_labels(label)
    elif clear_labels:
        body["labels"] = {}
    if not body:
        raise typer.BadParameter("nothing to change: give --project, --type, --label or --clear-labels")
    with connect(url, token, data_dir) as api:
        device = api.patch(f"/v1/tenants/{quote(tenant)}/devices/{quote(device_id)}", body)
    if json_:
        print_json(device)
    else:
        _details(f"Updated device {device['id']}", device)


@devices.command("delete")
def devices_delete(
    device_id: Annotated[str, typer.Argument(metavar="ID", help="Device id")],
    tenant: TenantOption,
    url: UrlOption = None,
    token: TokenOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Delete a device (its events stay)."""
    with connect(url, token, data_dir) as api:
        api.delete(f"/v1/tenants/{quote(tenant)}/devices/{quote(device_id)}")
    typer.echo(f"deleted device {device_id} of {tenant}")


# -- keys ----------------------------------------------------------------------------------


@keys.command("list")
def keys_list(
    tenant: TenantOption,
    json_: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """List a tenant's API keys (never their secrets)."""
    with connect(url, token, data_dir) as api:
        page = api.get(f"/v1/tenants/{quote(tenant)}/keys")
    if json_:
        print_json(page)
    else:
        _table(f"Keys of {tenant}", KEY_COLUMNS, page["keys"])


class Role(StrEnum):
    read = "read"
    write = "write"
    admin = "admin"


@keys.command("create")
def keys_create(
    tenant: TenantOption,
    role: Annotated[Role, typer.Option(help="What the key may do", case_sensitive=False)],
    project: Annotated[str | None, typer.Option("--project", "-p", help="Limit the key to one project")] = None,
    name: Annotated[str | None, typer.Option(help="A name to recognise the key by")] = None,
    json_: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Create an API key. Its token is shown once: store it now."""
    body: dict[str, Any] = {"role": role.value}
    if project is not None:
        body["project"] = project
    if name is not None:
        body["name"] = name
    with connect(url, token, data_dir) as api:
        key = api.post(f"/v1/tenants/{quote(tenant)}/keys", body)
    if json_:
        print_json(key)
        return
    _details(f"Created {key['role']} key {key['id']}", key)
    out = console()
    out.print()
    out.print(f"  token: [bold green]{key['token']}[/]", soft_wrap=True)  # no wrapping: copy it whole
    out.print()
    out.print("[yellow]Store this token now: it will not be shown again.[/]")


@keys.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(metavar="KEY_ID", help="Key id (not the token)")],
    tenant: TenantOption,
    url: UrlOption = None,
    token: TokenOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Revoke (delete) an API key; requests with its token fail from now on."""
    with connect(url, token, data_dir) as api:
        api.delete(f"/v1/tenants/{quote(tenant)}/keys/{quote(key_id)}")
    typer.echo(f"revoked key {key_id} of {tenant}")
