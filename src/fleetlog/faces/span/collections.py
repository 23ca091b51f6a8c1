"""/span/collections: list, create, get, update, delete (a collection is a fleetlog project)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fleetlog.core.errors import Forbidden, InvalidInput
from fleetlog.core.query import EventQuery
from fleetlog.core.registry import Project, Role
from fleetlog.faces.http import JSONResponse, read_body
from fleetlog.faces.span import access
from fleetlog.faces.span.errors import SpanConflict, endpoint
from fleetlog.faces.span.model import COLLECTION, FIRMWARE, GATEWAY, UPSTREAM_TYPES, new_id
from fleetlog.faces.span.params import check_known, flag
from fleetlog.faces.span.render import collection_json
from fleetlog.faces.span.runtime import SpanRuntime
from fleetlog.faces.span.schemas import CollectionFirmware, CreateCollectionRequest, UpdateCollectionBody, decode

BODY_LIMIT = 64 * 1024


def _firmware(current: dict[str, Any], patch: CollectionFirmware | None) -> dict[str, Any]:
    if patch is None:
        return current
    out = dict(current)
    if patch.targetFirmwareId is not None:
        out["targetFirmwareId"] = patch.targetFirmwareId
    if patch.management is not None:
        out["management"] = patch.management
    return out


def routes(rt: SpanRuntime) -> list[Route]:
    services = rt.services
    directory, docs = services.directory, services.documents

    async def who(request: Request, role: Role = Role.READ) -> access.Caller:
        return await access.caller(directory, access.token_of(request), role)

    async def check_target(tenant: str, collection: str, firmware: dict[str, Any]) -> None:
        target = firmware.get("targetFirmwareId")
        if target:
            image = await docs.get(tenant, FIRMWARE, target)
            if not isinstance(image, dict) or image.get("collectionId") != collection:
                raise InvalidInput(f"no firmware image {target!r} in this collection", "firmware.targetFirmwareId")

    async def render(project: Project, request: Request | None = None) -> dict[str, Any]:
        out = collection_json(project, await docs.get(project.tenant, COLLECTION, project.id))
        if request is not None and flag(request.query_params, "upstream"):
            now = services.clock.now_us()
            page = await services.store.query(
                EventQuery(
                    tenant=project.tenant,
                    projects=(project.id,),
                    types=UPSTREAM_TYPES,
                    since=now - 3600 * 1_000_000,
                    limit=100,
                )
            )
            out["upstreamTimestamps"] = [str(e.time // 1000) for e in page.events]
        if request is not None and flag(request.query_params, "downstream"):
            out["downstreamTimestamps"] = []  # sent times are per device (see the device outbox)
        return out

    @endpoint
    async def list_collections(request: Request) -> Response:
        caller = await who(request)
        check_known(request.query_params, [])
        projects = await directory.registry.list_projects(caller.tenant)
        visible = [p for p in projects if caller.sees(p.id)]
        return JSONResponse({"collections": [await render(p) for p in visible]})

    @endpoint
    async def create_collection(request: Request) -> Response:
        caller = await who(request, Role.ADMIN)
        access.require_tenant_wide(caller, "create collections")
        body: CreateCollectionRequest = decode(await read_body(request, BODY_LIMIT), CreateCollectionRequest)
        if body.teamId not in (None, "", caller.tenant):
            raise InvalidInput(f"this key belongs to team {caller.tenant!r}", "teamId")
        tags = body.tags or {}
        firmware = _firmware({}, body.firmware)
        if firmware.get("targetFirmwareId"):
            raise InvalidInput("a new collection has no firmware images yet", "firmware.targetFirmwareId")
        project = await directory.create_project(Project(id=new_id(), tenant=caller.tenant, name=tags.get("name", "")))
        await docs.put(caller.tenant, COLLECTION, project.id, {"tags": tags, "firmware": firmware, "enabled": True})
        return JSONResponse(await render(project))

    @endpoint
    async def get_collection(request: Request) -> Response:
        caller = await who(request)
        check_known(request.query_params, ["upstream", "downstream"])
        project = await access.collection(directory, caller, request.path_params["cid"])
        return JSONResponse(await render(project, request))

    @endpoint
    async def update_collection(request: Request) -> Response:
        caller = await who(request, Role.ADMIN)
        project = await access.collection(directory, caller, request.path_params["cid"], Role.ADMIN)
        body: UpdateCollectionBody = decode(await read_body(request, BODY_LIMIT), UpdateCollectionBody)
        if body.teamId not in (None, "", caller.tenant):
            raise Forbidden("collections cannot move to another team")
        doc = await docs.get(caller.tenant, COLLECTION, project.id) or {}
        if body.tags is not None:
            tags = {**doc.get("tags", {}), **body.tags}
            doc["tags"] = {k: v for k, v in tags.items() if v != ""}
        doc["firmware"] = _firmware(doc.get("firmware", {}), body.firmware)
        await check_target(caller.tenant, project.id, doc["firmware"])
        if body.enabled is not None:
            doc["enabled"] = body.enabled
        await docs.put(caller.tenant, COLLECTION, project.id, doc)
        return JSONResponse(await render(project))

    @endpoint
    async def delete_collection(request: Request) -> Response:
        caller = await who(request, Role.ADMIN)
        access.require_tenant_wide(caller, "delete collections")
        project = await access.collection(directory, caller, request.path_params["cid"], Role.ADMIN)
        if await directory.registry.list_devices(caller.tenant, project.id, limit=1):
            raise SpanConflict("the collection still has devices; remove or move them first")
        for kind, what in ((FIRMWARE, "firmware images"), (GATEWAY, "gateways")):
            if any(d.get("collectionId") == project.id for _, _, d in await docs.list(caller.tenant, kind)):
                raise SpanConflict(f"the collection still has {what}; remove them first")
        out = await render(project)
        await directory.delete_project(caller.tenant, project.id)
        await docs.delete(caller.tenant, COLLECTION, project.id)
        return JSONResponse(out)

    c = "/span/collections"
    return [
        Route(c, list_collections, methods=["GET"]),
        Route(c, create_collection, methods=["POST"]),
        Route(c + "/{cid}", get_collection, methods=["GET"]),
        Route(c + "/{cid}", update_collection, methods=["PATCH"]),
        Route(c + "/{cid}", delete_collection, methods=["DELETE"]),
    ]
