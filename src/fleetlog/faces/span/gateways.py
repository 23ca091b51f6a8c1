"""/span/collections/{cid}/gateways: gateway resources (documents of kind `span.gateway`).

`status` is `online` while the gateway is connected to the gateway endpoint (gateway_link.py).
A PATCH that changes `config` sends the new configuration to a connected gateway.
"""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fleetlog.core.errors import NotFound
from fleetlog.core.registry import Role
from fleetlog.faces.http import JSONResponse, read_body
from fleetlog.faces.span import access
from fleetlog.faces.span.errors import endpoint
from fleetlog.faces.span.gateway_link import GatewayHub
from fleetlog.faces.span.model import GATEWAY, new_id
from fleetlog.faces.span.params import check_known
from fleetlog.faces.span.runtime import SpanRuntime
from fleetlog.faces.span.schemas import CreateGatewayBody, UpdateGatewayBody, decode

BODY_LIMIT = 64 * 1024


def routes(rt: SpanRuntime, hub: GatewayHub) -> list[Route]:
    services = rt.services
    directory, docs = services.directory, services.documents

    async def who(request: Request, role: Role = Role.READ) -> access.Caller:
        return await access.caller(directory, access.token_of(request), role)

    def render(tenant: str, doc: dict[str, Any]) -> dict[str, Any]:
        return {**doc, "status": "online" if hub.online(tenant, doc["gatewayId"]) else "offline"}

    async def find(caller: access.Caller, cid: str, gid: str) -> dict[str, Any]:
        doc = await docs.get(caller.tenant, GATEWAY, gid)
        if not isinstance(doc, dict) or doc.get("collectionId") != cid:
            raise NotFound("gateway", gid)
        return doc

    @endpoint
    async def list_gateways(request: Request) -> Response:
        caller = await who(request)
        check_known(request.query_params, [])
        cid = request.path_params["cid"]
        await access.collection(directory, caller, cid)
        found = [d for _, _, d in await docs.list(caller.tenant, GATEWAY) if d.get("collectionId") == cid]
        return JSONResponse({"gateways": [render(caller.tenant, d) for d in found]})

    @endpoint
    async def create_gateway(request: Request) -> Response:
        caller = await who(request, Role.ADMIN)
        cid = request.path_params["cid"]
        await access.collection(directory, caller, cid, Role.ADMIN)
        body: CreateGatewayBody = decode(await read_body(request, BODY_LIMIT), CreateGatewayBody)
        doc = {
            "gatewayId": new_id(),
            "collectionId": cid,
            "name": body.name or "",
            "builtIn": False,
            "type": body.type or "custom",
            "config": msgspec.to_builtins(body.config) if body.config else {},
            "tags": body.tags or {},
            "enabled": True,
        }
        await docs.put(caller.tenant, GATEWAY, doc["gatewayId"], doc)
        return JSONResponse(render(caller.tenant, doc))

    @endpoint
    async def get_gateway(request: Request) -> Response:
        caller = await who(request)
        check_known(request.query_params, [])
        cid = request.path_params["cid"]
        await access.collection(directory, caller, cid)
        return JSONResponse(render(caller.tenant, await find(caller, cid, request.path_params["gid"])))

    @endpoint
    async def update_gateway(request: Request) -> Response:
        caller = await who(request, Role.ADMIN)
        cid = request.path_params["cid"]
        await access.collection(directory, caller, cid, Role.ADMIN)
        doc = dict(await find(caller, cid, request.path_params["gid"]))
        body: UpdateGatewayBody = decode(await read_body(request, BODY_LIMIT), UpdateGatewayBody)
        if body.collectionId and body.collectionId != cid:
            await access.collection(directory, caller, body.collectionId, Role.ADMIN)
            doc["collectionId"] = body.collectionId
        if body.name is not None:
            doc["name"] = body.name
        if body.type is not None:
            doc["type"] = body.type
        if body.tags is not None:
            merged = {**doc.get("tags", {}), **body.tags}
            doc["tags"] = {k: v for k, v in merged.items() if v != ""}
        if body.enabled is not None:
            doc["enabled"] = body.enabled
        config_changed = body.config is not None and msgspec.to_builtins(body.config) != doc.get("config")
        if body.config is not None:
            doc["config"] = msgspec.to_builtins(body.config)
        await docs.put(caller.tenant, GATEWAY, doc["gatewayId"], doc)
        if config_changed:
            await hub.config_changed(caller.tenant, doc["gatewayId"], doc)
        return JSONResponse(render(caller.tenant, doc))

    @endpoint
    async def delete_gateway(request: Request) -> Response:
        caller = await who(request, Role.ADMIN)
        cid = request.path_params["cid"]
        await access.collection(directory, caller, cid, Role.ADMIN)
        doc = await find(caller, cid, request.path_params["gid"])
        link = hub.links.get((caller.tenant, doc["gatewayId"]))
        if link is not None:
            await link.ws.close(1000, reason="gateway removed")
        await docs.delete(caller.tenant, GATEWAY, doc["gatewayId"])
        return JSONResponse(render(caller.tenant, doc))

    g = "/span/collections/{cid}/gateways"
    return [
        Route(g, list_gateways, methods=["GET"]),
        Route(g, create_gateway, methods=["POST"]),
        Route(g + "/{gid}", get_gateway, methods=["GET"]),
        Route(g + "/{gid}", update_gateway, methods=["PATCH"]),
        Route(g + "/{gid}", delete_gateway, methods=["DELETE"]),
    ]
