"""/v1 registry: tenants, projects, devices, API keys and tenant-defined event types."""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fleetlog.core.catalog import EventType
from fleetlog.core.errors import Forbidden, InvalidInput, NotFound
from fleetlog.core.registry import ApiKey, Device, Principal, Project, Role, Tenant
from fleetlog.core.timefmt import rfc3339
from fleetlog.faces.http import JSONResponse, bearer, decode_error_field, read_body
from fleetlog.faces.native import params as qp
from fleetlog.faces.native.errors import endpoint
from fleetlog.faces.native.schemas import (
    DeviceIn,
    DevicePatch,
    EventTypeIn,
    KeyIn,
    KeyOut,
    ProjectIn,
    TenantIn,
    TenantPatch,
)
from fleetlog.pipeline.services import Services

T = TypeVar("T")
ROLES = {"read": Role.READ, "write": Role.WRITE, "admin": Role.ADMIN}


async def _body(request: Request, kind: type[T], limit: int = 64 * 1024) -> T:
    raw = await read_body(request, limit)
    try:
        return msgspec.json.decode(raw, type=kind)
    except msgspec.ValidationError as exc:
        where, why = decode_error_field(exc)
        raise InvalidInput(why, where) from None
    except msgspec.DecodeError as exc:
        raise InvalidInput(f"body is not valid JSON ({exc})") from None


def tenant_out(t: Tenant) -> dict[str, Any]:
    return {
        "id": t.id,
        "name": t.name,
        "retention_days": t.retention_days,
        "license_valid": t.license_valid,
        "created": rfc3339(t.created),
    }


def project_out(p: Project) -> dict[str, Any]:
    return {"id": p.id, "tenant": p.tenant, "name": p.name, "created": rfc3339(p.created)}


def device_out(d: Device) -> dict[str, Any]:
    return {
        "id": d.id,
        "tenant": d.tenant,
        "project": d.project,
        "type": d.type,
        "labels": d.labels,
        "attrs": d.attrs,
        "created": rfc3339(d.created),
        "updated": rfc3339(d.updated),
    }


def key_out(k: ApiKey, token: str | None = None) -> KeyOut:
    return KeyOut(
        id=k.id,
        tenant=k.tenant,
        project=k.project,
        role=k.role.name.lower(),
        name=k.name,
        created=rfc3339(k.created),
        token=token,
    )


def type_out(t: EventType) -> dict[str, Any]:
    return msgspec.to_builtins(t)  # type: ignore[no-any-return]


def routes(services: Services) -> list[Route]:
    directory = services.directory

    async def who(request: Request) -> Principal:
        return await directory.authenticate(bearer(request))

    async def operator(request: Request) -> Principal:
        principal = await who(request)
        if not principal.is_operator:
            raise Forbidden("only an operator key may do this")
        return principal

    @endpoint
    async def list_tenants(request: Request) -> Response:
        principal = await who(request)
        qp.check_known(request.query_params, [])
        if principal.is_operator:
            tenants = await directory.registry.list_tenants()
        else:
            tenants = [await directory.tenant(principal.tenant or "")]
        return JSONResponse({"tenants": [tenant_out(t) for t in tenants]})

    @endpoint
    async def create_tenant(request: Request) -> Response:
        await operator(request)
        body = await _body(request, TenantIn)
        tenant = await directory.create_tenant(
            Tenant(id=body.id, name=body.name, retention_days=body.retention_days, license_valid=body.license_valid)
        )
        return JSONResponse(tenant_out(tenant), status_code=201)

    @endpoint
    async def get_tenant(request: Request) -> Response:
        tenant_id = request.path_params["tenant"]
        tenant = await directory.require(await who(request), tenant_id, None, Role.READ)
        return JSONResponse(tenant_out(tenant))

    @endpoint
    async def patch_tenant(request: Request) -> Response:
        await operator(request)
        tenant = await directory.tenant(request.path_params["tenant"])
        patch = await _body(request, TenantPatch)
        changed = msgspec.structs.replace(
            tenant,
            name=tenant.name if patch.name is None else patch.name,
            retention_days=tenant.retention_days if patch.retention_days is None else patch.retention_days,
            license_valid=tenant.license_valid if patch.license_valid is None else patch.license_valid,
        )
        return JSONResponse(tenant_out(await directory.update_tenant(changed)))

    @endpoint
    async def list_projects(request: Request) -> Response:
        tenant_id = request.path_params["tenant"]
        principal = await who(request)
        await directory.require(principal, tenant_id, None, Role.READ)
        projects = await directory.registry.list_projects(tenant_id)
        visible = [p for p in projects if principal.sees_project(tenant_id, p.id)]
        return JSONResponse({"projects": [project_out(p) for p in visible]})

    @endpoint
    async def create_project(request: Request) -> Response:
        tenant_id = request.path_params["tenant"]
        principal = await who(request)
        await directory.require(principal, tenant_id, None, Role.ADMIN)
        if principal.project is not None:
            raise Forbidden("a project key cannot create projects")
        body = await _body(request, ProjectIn)
        project = await directory.create_project(Project(id=body.id, tenant=tenant_id, name=body.name))
        return JSONResponse(project_out(project), status_code=201)

    @endpoint
    async def get_project(request: Request) -> Response:
        tenant_id, project_id = request.path_params["tenant"], request.path_params["project"]
        await directory.require(await who(request), tenant_id, project_id, Role.READ)
        return JSONResponse(project_out(await directory.project(tenant_id, project_id)))

    @endpoint
    async def delete_project(request: Request) -> Response:
        tenant_id, project_id = request.path_params["tenant"], request.path_params["project"]
        principal = await who(request)
        await directory.require(principal, tenant_id, project_id, Role.ADMIN)
        if principal.project is not None:
            raise Forbidden("a project key cannot delete projects")
        await directory.delete_project(tenant_id, project_id)
        return Response(status_code=204)

    @endpoint
    async def list_devices(request: Request) -> Response:
        tenant_id = request.path_params["tenant"]
        principal = await who(request)
        await directory.require(principal, tenant_id, None, Role.READ)
        params = request.query_params
        qp.check_known(params, ["project", "label", "after", "limit"])
        project = qp.one(params, "project")
        if principal.project is not None:
            if project not in (None, principal.project):
                raise Forbidden(f"this key has access to project {principal.project!r} only")
            project = principal.project
        labels = []
        for raw in params.getlist("label"):
            key, sep, value = raw.partition("=")
            labels.append((key, value if sep else None))
        limit = qp.integer(params, "limit", 1, 1000) or 100
        devices = await directory.registry.list_devices(
            tenant_id, project, tuple(labels), qp.one(params, "after"), limit + 1
        )
        more = len(devices) > limit
        devices = devices[:limit]
        return JSONResponse(
            {"devices": [device_out(d) for d in devices], "next_after": devices[-1].id if more else None}
        )

    @endpoint
    async def create_device(request: Request) -> Response:
        tenant_id = request.path_params["tenant"]
        principal = await who(request)
        body = await _body(request, DeviceIn)
        await directory.require(principal, tenant_id, body.project, Role.ADMIN)
        device = await directory.create_device(
            Device(
                id=body.id, tenant=tenant_id, project=body.project, type=body.type, labels=body.labels, attrs=body.attrs
            )
        )
        return JSONResponse(device_out(device), status_code=201)

    async def _device(request: Request, role: Role) -> Device:
        tenant_id, device_id = request.path_params["tenant"], request.path_params["device"]
        principal = await who(request)
        await directory.require(principal, tenant_id, None, role)
        device = await directory.device(tenant_id, device_id)
        if not principal.sees_project(tenant_id, device.project):
            raise NotFound("device", device_id)
        return device

    @endpoint
    async def get_device(request: Request) -> Response:
        return JSONResponse(device_out(await _device(request, Role.READ)))

    @endpoint
    async def patch_device(request: Request) -> Response:
        device = await _device(request, Role.ADMIN)
        patch = await _body(request, DevicePatch)
        if patch.project is not None and patch.project != device.project:
            principal = await who(request)
            await directory.require(principal, device.tenant, patch.project, Role.ADMIN)
            await directory.project(device.tenant, patch.project)
        changed = msgspec.structs.replace(
            device,
            project=patch.project or device.project,
            type=device.type if patch.type is None else patch.type,
            labels=device.labels if patch.labels is None else patch.labels,
            attrs=device.attrs if patch.attrs is None else patch.attrs,
        )
        return JSONResponse(device_out(await directory.update_device(changed)))

    @endpoint
    async def delete_device(request: Request) -> Response:
        device = await _device(request, Role.ADMIN)
        await directory.delete_device(device.tenant, device.id)
        return Response(status_code=204)

    @endpoint
    async def list_keys(request: Request) -> Response:
        tenant_id = request.path_params["tenant"]
        principal = await who(request)
        await directory.require(principal, tenant_id, None, Role.ADMIN)
        keys = [
            k
            for k in await directory.registry.list_keys(tenant_id)
            if principal.project is None or k.project == principal.project
        ]
        return JSONResponse({"keys": [key_out(k) for k in keys]})

    @endpoint
    async def create_key(request: Request) -> Response:
        tenant_id = request.path_params["tenant"]
        body = await _body(request, KeyIn)
        token, key = await directory.create_key(
            await who(request), tenant_id, body.project, ROLES[body.role], body.name
        )
        return JSONResponse(key_out(key, token), status_code=201)

    @endpoint
    async def delete_key(request: Request) -> Response:
        await directory.delete_key(await who(request), request.path_params["tenant"], request.path_params["key"])
        return Response(status_code=204)

    @endpoint
    async def list_event_types(request: Request) -> Response:
        tenant_id = request.path_params["tenant"]
        await directory.require(await who(request), tenant_id, None, Role.READ)
        return JSONResponse({"event_types": [type_out(t) for t in (await directory.custom_types(tenant_id)).values()]})

    @endpoint
    async def put_event_type(request: Request) -> Response:
        tenant_id, name = request.path_params["tenant"], request.path_params["name"]
        principal = await who(request)
        await directory.require(principal, tenant_id, None, Role.ADMIN)
        if principal.project is not None:
            raise Forbidden("a project key cannot define event types")
        body = await _body(request, EventTypeIn)
        event_type = EventType(
            name=name,
            family="custom",
            title=body.title or name,
            description=body.description,
            schema=body.schema,
            outcome=body.outcome,
            category=body.category,
            state_change=body.state_change,
        )
        return JSONResponse(type_out(await directory.put_event_type(tenant_id, event_type)))

    @endpoint
    async def delete_event_type(request: Request) -> Response:
        tenant_id, name = request.path_params["tenant"], request.path_params["name"]
        principal = await who(request)
        await directory.require(principal, tenant_id, None, Role.ADMIN)
        if principal.project is not None:
            raise Forbidden("a project key cannot remove event types")
        await directory.delete_event_type(tenant_id, name)
        return Response(status_code=204)

    @endpoint
    async def catalog(request: Request) -> Response:
        await who(request)
        params = request.query_params
        qp.check_known(params, ["q", "family"])
        text, family = qp.one(params, "q"), qp.one(params, "family")
        types = services.catalog.search(text) if text else services.catalog.all()
        if family:
            types = [t for t in types if t.family == family]
        return JSONResponse({"event_types": [type_out(t) for t in types]})

    @endpoint
    async def catalog_one(request: Request) -> Response:
        await who(request)
        found = services.catalog.get(request.path_params["name"])
        if found is None:
            raise NotFound("event type", request.path_params["name"])
        return JSONResponse(type_out(found))

    t = "/v1/tenants/{tenant}"
    return [
        Route("/v1/tenants", list_tenants, methods=["GET"]),
        Route("/v1/tenants", create_tenant, methods=["POST"]),
        Route(t, get_tenant, methods=["GET"]),
        Route(t, patch_tenant, methods=["PATCH"]),
        Route(f"{t}/projects", list_projects, methods=["GET"]),
        Route(f"{t}/projects", create_project, methods=["POST"]),
        Route(t + "/projects/{project}", get_project, methods=["GET"]),
        Route(t + "/projects/{project}", delete_project, methods=["DELETE"]),
        Route(f"{t}/devices", list_devices, methods=["GET"]),
        Route(f"{t}/devices", create_device, methods=["POST"]),
        Route(t + "/devices/{device}", get_device, methods=["GET"]),
        Route(t + "/devices/{device}", patch_device, methods=["PATCH"]),
        Route(t + "/devices/{device}", delete_device, methods=["DELETE"]),
        Route(f"{t}/keys", list_keys, methods=["GET"]),
        Route(f"{t}/keys", create_key, methods=["POST"]),
        Route(t + "/keys/{key}", delete_key, methods=["DELETE"]),
        Route(f"{t}/event-types", list_event_types, methods=["GET"]),
        Route(t + "/event-types/{name}", put_event_type, methods=["PUT"]),
        Route(t + "/event-types/{name}", delete_event_type, methods=["DELETE"]),
        Route("/v1/event-types", catalog, methods=["GET"]),
        Route("/v1/event-types/{name}", catalog_one, methods=["GET"]),
    ]
