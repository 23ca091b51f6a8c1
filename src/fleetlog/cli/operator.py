"""Operator commands: tenants, projects, devices and API keys, over the native /v1 API.

Lists and details print as tables; `--json` prints the API's JSON instead (for scripts).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from enum import StrEnum
from typing import Annotated, Any

import typer

from fleetlog.cli.client import Server, tenant_path, with_server
from fleetlog.cli.common import JsonOption, TenantOption, console, parse_labels, print_pairs, print_result, print_table

tenants = typer.Typer(help="Tenants (operator only, except `show` and `list`).", no_args_is_help=True)
projects = typer.Typer(help="Projects of a tenant.", no_args_is_help=True)
devices = typer.Typer(help="Devices of a tenant.", no_args_is_help=True)
keys = typer.Typer(help="API keys of a tenant.", no_args_is_help=True)

TenantId = Annotated[str, typer.Argument(metavar="ID", help="Tenant id")]
ProjectId = Annotated[str, typer.Argument(metavar="ID", help="Project id")]
DeviceId = Annotated[str, typer.Argument(metavar="ID", help="Device id")]
NameOption = Annotated[str | None, typer.Option(help="Display name")]
LabelsOption = Annotated[
    list[str] | None,
    typer.Option("--label", "-l", help="Device label as key=value (repeatable)"),
]


# -- output --------------------------------------------------------------------------------


def _table(title: str, columns: Sequence[str], rows: Iterable[dict[str, Any]]) -> None:
    """Records, a column a field (`no <title>` when there are none)."""
    print_table(
        title,
        [column.replace("_", " ") for column in columns],
        ([row.get(column) for column in columns] for row in rows),
        empty=f"no {title.lower()}",
    )


def _details(title: str, item: dict[str, Any]) -> None:
    """One record, a field a line (a key's token is never among them)."""
    print_pairs(title, ((key.replace("_", " "), value) for key, value in item.items() if key != "token"))


def _delete(server: Server, path: str, done: str) -> None:
    with server.connect() as api:
        api.delete(path)
    typer.echo(done)


def _given(**fields: Any) -> dict[str, Any]:
    """The fields of a request body that were given (not None)."""
    return {name: value for name, value in fields.items() if value is not None}


TENANT_COLUMNS = ["id", "name", "retention_days", "license_valid", "created"]
PROJECT_COLUMNS = ["id", "name", "created"]
DEVICE_COLUMNS = ["id", "project", "type", "labels", "updated"]
KEY_COLUMNS = ["id", "role", "project", "name", "created"]


# -- tenants -------------------------------------------------------------------------------


@tenants.command("list")
@with_server
def tenants_list(server: Server, json_: JsonOption = False) -> None:
    """List the tenants (an operator sees all; a tenant key sees its own)."""
    with server.connect() as api:
        page = api.get("/v1/tenants")
    print_result(page, json_, lambda: _table("Tenants", TENANT_COLUMNS, page["tenants"]))


@tenants.command("create")
@with_server
def tenants_create(
    server: Server,
    tenant_id: TenantId,
    name: NameOption = None,
    retention_days: Annotated[int | None, typer.Option(help="Keep events this many days (default 31)")] = None,
    json_: JsonOption = False,
) -> None:
    """Create a tenant."""
    with server.connect() as api:
        tenant = api.post("/v1/tenants", {"id": tenant_id, **_given(name=name, retention_days=retention_days)})
    print_result(tenant, json_, lambda: _details(f"Created tenant {tenant['id']}", tenant))


@tenants.command("show")
@with_server
def tenants_show(server: Server, tenant_id: TenantId, json_: JsonOption = False) -> None:
    """Show one tenant."""
    with server.connect() as api:
        tenant = api.get(tenant_path(tenant_id))
    print_result(tenant, json_, lambda: _details(f"Tenant {tenant['id']}", tenant))


@tenants.command("update")
@with_server
def tenants_update(
    server: Server,
    tenant_id: TenantId,
    name: NameOption = None,
    retention_days: Annotated[int | None, typer.Option(help="Keep events this many days")] = None,
    license_valid: Annotated[
        bool | None,
        typer.Option("--license-valid/--license-invalid", help="Mark the licence valid or invalid"),
    ] = None,
    json_: JsonOption = False,
) -> None:
    """Change a tenant's name, retention or licence state."""
    body = _given(name=name, retention_days=retention_days, license_valid=license_valid)
    if not body:
        raise typer.BadParameter(
            "nothing to change: give --name, --retention-days or --license-valid/--license-invalid"
        )
    with server.connect() as api:
        tenant = api.patch(tenant_path(tenant_id), body)
    print_result(tenant, json_, lambda: _details(f"Updated tenant {tenant['id']}", tenant))


# -- projects ------------------------------------------------------------------------------


@projects.command("list")
@with_server
def projects_list(server: Server, tenant: TenantOption, json_: JsonOption = False) -> None:
    """List a tenant's projects."""
    with server.connect() as api:
        page = api.get(tenant_path(tenant, "projects"))
    print_result(page, json_, lambda: _table(f"Projects of {tenant}", PROJECT_COLUMNS, page["projects"]))


@projects.command("create")
@with_server
def projects_create(
    server: Server, project_id: ProjectId, tenant: TenantOption, name: NameOption = None, json_: JsonOption = False
) -> None:
    """Create a project in a tenant."""
    with server.connect() as api:
        project = api.post(tenant_path(tenant, "projects"), {"id": project_id, **_given(name=name)})
    print_result(project, json_, lambda: _details(f"Created project {project['id']} in {tenant}", project))


@projects.command("delete")
@with_server
def projects_delete(server: Server, project_id: ProjectId, tenant: TenantOption) -> None:
    """Delete a project."""
    _delete(server, tenant_path(tenant, "projects", project_id), f"deleted project {project_id} of {tenant}")


# -- devices -------------------------------------------------------------------------------


@devices.command("list")
@with_server
def devices_list(
    server: Server,
    tenant: TenantOption,
    project: Annotated[str | None, typer.Option("--project", "-p", help="Only this project")] = None,
    label: LabelsOption = None,
    json_: JsonOption = False,
) -> None:
    """List a tenant's devices (all pages), optionally by project and labels.

    `--label key=value` requires that value; `--label key` only requires the label."""
    params: list[tuple[str, str]] = [("limit", "1000")]
    if project:
        params.append(("project", project))
    params += [("label", raw) for raw in label or []]
    found: list[dict[str, Any]] = []
    with server.connect() as api:
        after: str | None = None
        while True:
            page = api.get(tenant_path(tenant, "devices"), params + ([("after", after)] if after else []))
            found += page["devices"]
            after = page.get("next_after")
            if not after:
                break
    print_result(
        {"devices": found, "next_after": None}, json_, lambda: _table(f"Devices of {tenant}", DEVICE_COLUMNS, found)
    )


@devices.command("create")
@with_server
def devices_create(
    server: Server,
    device_id: DeviceId,
    tenant: TenantOption,
    project: Annotated[str, typer.Option("--project", "-p", help="Project the device belongs to")],
    type_: Annotated[str | None, typer.Option("--type", help="Device type, e.g. temperature")] = None,
    label: LabelsOption = None,
    json_: JsonOption = False,
) -> None:
    """Register a device."""
    body = {"id": device_id, "project": project, "labels": parse_labels(label), **_given(type=type_)}
    with server.connect() as api:
        device = api.post(tenant_path(tenant, "devices"), body)
    print_result(device, json_, lambda: _details(f"Created device {device['id']}", device))


@devices.command("show")
@with_server
def devices_show(server: Server, device_id: DeviceId, tenant: TenantOption, json_: JsonOption = False) -> None:
    """Show one device."""
    with server.connect() as api:
        device = api.get(tenant_path(tenant, "devices", device_id))
    print_result(device, json_, lambda: _details(f"Device {device['id']}", device))


@devices.command("update")
@with_server
def devices_update(
    server: Server,
    device_id: DeviceId,
    tenant: TenantOption,
    project: Annotated[str | None, typer.Option("--project", "-p", help="Move to this project")] = None,
    type_: Annotated[str | None, typer.Option("--type", help="Device type")] = None,
    label: Annotated[
        list[str] | None,
        typer.Option("--label", "-l", help="Replace the labels with these key=value ones (repeatable)"),
    ] = None,
    clear_labels: Annotated[bool, typer.Option("--clear-labels", help="Remove every label")] = False,
    json_: JsonOption = False,
) -> None:
    """Move a device, change its type, or replace its labels."""
    labels = parse_labels(label) if label else ({} if clear_labels else None)
    body = _given(project=project, type=type_, labels=labels)
    if not body:
        raise typer.BadParameter("nothing to change: give --project, --type, --label or --clear-labels")
    with server.connect() as api:
        device = api.patch(tenant_path(tenant, "devices", device_id), body)
    print_result(device, json_, lambda: _details(f"Updated device {device['id']}", device))


@devices.command("delete")
@with_server
def devices_delete(server: Server, device_id: DeviceId, tenant: TenantOption) -> None:
    """Delete a device (its events stay)."""
    _delete(server, tenant_path(tenant, "devices", device_id), f"deleted device {device_id} of {tenant}")


# -- keys ----------------------------------------------------------------------------------


@keys.command("list")
@with_server
def keys_list(server: Server, tenant: TenantOption, json_: JsonOption = False) -> None:
    """List a tenant's API keys (never their secrets)."""
    with server.connect() as api:
        page = api.get(tenant_path(tenant, "keys"))
    print_result(page, json_, lambda: _table(f"Keys of {tenant}", KEY_COLUMNS, page["keys"]))


class Role(StrEnum):
    read = "read"
    write = "write"
    admin = "admin"


@keys.command("create")
@with_server
def keys_create(
    server: Server,
    tenant: TenantOption,
    role: Annotated[Role, typer.Option(help="What the key may do", case_sensitive=False)],
    project: Annotated[str | None, typer.Option("--project", "-p", help="Limit the key to one project")] = None,
    name: Annotated[str | None, typer.Option(help="A name to recognise the key by")] = None,
    json_: JsonOption = False,
) -> None:
    """Create an API key. Its token is shown once: store it now."""
    with server.connect() as api:
        key = api.post(tenant_path(tenant, "keys"), {"role": role.value, **_given(project=project, name=name)})
    print_result(key, json_, lambda: _new_key(key))


def _new_key(key: dict[str, Any]) -> None:
    _details(f"Created {key['role']} key {key['id']}", key)
    out = console()
    out.print()
    out.print(f"  token: [bold green]{key['token']}[/]", soft_wrap=True)  # no wrapping: copy it whole
    out.print()
    out.print("[yellow]Store this token now: it will not be shown again.[/]")


@keys.command("revoke")
@with_server
def keys_revoke(
    server: Server,
    key_id: Annotated[str, typer.Argument(metavar="KEY_ID", help="Key id (not the token)")],
    tenant: TenantOption,
) -> None:
    """Revoke (delete) an API key; requests with its token fail from now on."""
    _delete(server, tenant_path(tenant, "keys", key_id), f"revoked key {key_id} of {tenant}")
