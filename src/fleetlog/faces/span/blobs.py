"""/span/collections/{cid}/blobs: list, retrieve (fleetlog's addition; the spec has the response
shape but no path) and remove the blobs devices uploaded (device_http.py)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fleetlog.core.errors import NotFound
from fleetlog.core.registry import Role
from fleetlog.faces.http import JSONResponse
from fleetlog.faces.span import access
from fleetlog.faces.span.errors import endpoint
from fleetlog.faces.span.model import BLOB, BLOB_DATA
from fleetlog.faces.span.params import check_known, integer
from fleetlog.faces.span.runtime import SpanRuntime


def routes(rt: SpanRuntime) -> list[Route]:
    services = rt.services
    directory, docs = services.directory, services.documents

    async def find(tenant: str, cid: str, blob_id: str) -> dict[str, Any]:
        doc = await docs.get(tenant, BLOB, blob_id)
        if not isinstance(doc, dict) or doc.get("collectionId") != cid:
            raise NotFound("blob", blob_id)
        return doc

    @endpoint
    async def list_blobs(request: Request) -> Response:
        caller = await access.caller(directory, access.token_of(request))
        check_known(request.query_params, ["limit"])
        limit = integer(request.query_params, "limit", 1, 1000) or 100
        cid = request.path_params["cid"]
        await access.collection(directory, caller, cid)
        found: list[dict[str, Any]] = []
        after: str | None = None
        while True:
            page = await docs.list(caller.tenant, BLOB, after=after)
            found += [d for _, _, d in page if d.get("collectionId") == cid]
            if len(page) < 1000:
                break
            after = page[-1][1]
        found.sort(key=lambda d: int(d.get("created", "0")), reverse=True)
        return JSONResponse({"blobs": found[:limit]})

    @endpoint
    async def get_blob(request: Request) -> Response:
        caller = await access.caller(directory, access.token_of(request))
        cid = request.path_params["cid"]
        await access.collection(directory, caller, cid)
        doc = await find(caller.tenant, cid, request.path_params["bid"])
        data = await docs.get(caller.tenant, BLOB_DATA, doc["blobId"]) or {}
        return JSONResponse({"contentType": doc["contentType"], "size": int(doc["size"]), "data": data.get("data", "")})

    @endpoint
    async def delete_blob(request: Request) -> Response:
        caller = await access.caller(directory, access.token_of(request), Role.WRITE)
        cid = request.path_params["cid"]
        await access.collection(directory, caller, cid, Role.WRITE)
        doc = await find(caller.tenant, cid, request.path_params["bid"])
        await docs.delete(caller.tenant, BLOB, doc["blobId"])
        await docs.delete(caller.tenant, BLOB_DATA, doc["blobId"])
        return JSONResponse({})

    b = "/span/collections/{cid}/blobs"
    return [
        Route(b, list_blobs, methods=["GET"]),
        Route(b + "/{bid}", get_blob, methods=["GET"]),
        Route(b + "/{bid}", delete_blob, methods=["DELETE"]),
    ]
