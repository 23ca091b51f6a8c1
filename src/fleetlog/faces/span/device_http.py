"""The HTTP device transport and blob uploads: what a device itself calls, with a key that may
write to its collection (give each device a key scoped to its collection).

    POST /span/collections/{cid}/devices/{did}/upstream          body: the raw payload
        -> 200 {"stored": true, "downstream": [MessageDownstream, ...]}
    POST /span/collections/{cid}/devices/{did}/blobs?path=<path>  body: the blob
        -> 200 Blob (a blobUpload event)

An upstream message over HTTP has transport "unspecified" (Span's transports have no "http");
the messages waiting in the device's outbox come back in the response, marked sent.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fleetlog.core.errors import InvalidInput
from fleetlog.core.registry import Role
from fleetlog.faces.http import JSONResponse, read_body
from fleetlog.faces.span import access
from fleetlog.faces.span.errors import endpoint
from fleetlog.faces.span.model import BLOB, BLOB_DATA, b64, enabled, new_id
from fleetlog.faces.span.params import check_known, one
from fleetlog.faces.span.runtime import SpanRuntime, Uplink, span_event


def routes(rt: SpanRuntime) -> list[Route]:
    services = rt.services
    directory, docs = services.directory, services.documents

    @endpoint
    async def upstream(request: Request) -> Response:
        caller = await access.caller(directory, access.token_of(request), Role.WRITE)
        check_known(request.query_params, [])
        device = await access.device(
            directory, caller, request.path_params["cid"], request.path_params["did"], Role.WRITE
        )
        payload = await read_body(request, services.limits.max_event_bytes)
        if not payload:
            raise InvalidInput("the body (the message payload) is empty")
        if not enabled(device):
            raise InvalidInput("the device is disabled", "enabled")
        status = rt.status("http")
        status.state = "listening"
        status.received += 1
        stored, downlinks = await rt.uplink([Uplink(caller.tenant, device, payload, "unspecified", "token")])
        status.stored += sum(stored)
        return JSONResponse({"stored": all(stored), "downstream": [d.message for d in downlinks]})

    @endpoint
    async def upload_blob(request: Request) -> Response:
        caller = await access.caller(directory, access.token_of(request), Role.WRITE)
        params = request.query_params
        check_known(params, ["path"])
        cid = request.path_params["cid"]
        device = await access.device(directory, caller, cid, request.path_params["did"], Role.WRITE)
        path = one(params, "path") or ""
        if not path or len(path) > 512 or any(ord(c) < 32 for c in path):
            raise InvalidInput("a path of 1-512 printable characters is required", "path")
        data = await read_body(request, services.config.span_max_blob_bytes)
        if not data:
            raise InvalidInput("the body (the blob) is empty")
        now = services.clock.now_us()
        blob = {
            "blobId": new_id(),
            "blobPath": path,
            "contentType": request.headers.get("content-type", "application/octet-stream"),
            "size": str(len(data)),
            "created": str(now // 1000),
            "collectionId": cid,
            "deviceId": device.id,
            "properties": {},
        }
        await docs.put(caller.tenant, BLOB_DATA, blob["blobId"], {"data": b64(data)})
        await docs.put(caller.tenant, BLOB, blob["blobId"], blob)
        await rt.emit(
            [
                span_event(
                    caller.tenant,
                    "blobUpload",
                    {"bytes": str(len(data)), "path": path, "blobId": blob["blobId"]},
                    now,
                    device=device.id,
                )
            ]
        )
        return JSONResponse(blob)

    d = "/span/collections/{cid}/devices/{did}"
    return [
        Route(d + "/upstream", upstream, methods=["POST"]),
        Route(d + "/blobs", upload_blob, methods=["POST"]),
    ]
