"""fleetlog's additions for the network side and for operations:

POST /span/ciot/attach   a network-attach report (operator key; see ciot.py)
    {"imsi", "imei"?, "ip", "cellId"?, "mcc"?, "mnc"?, "network"?, "tenant"?}
    -> 200 {"event": "ciotConnect" | "imsiMismatch" | "imeiMismatch", "collectionId", "deviceId"}
GET  /span/system        the spec's SystemInfoResponse
GET  /span/transports    the device transports: state, address or error, counters (any key)
"""

from __future__ import annotations

from importlib import metadata

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fleetlog.core.errors import Forbidden, NotFound
from fleetlog.faces.http import JSONResponse, read_body
from fleetlog.faces.span import access
from fleetlog.faces.span.errors import SpanConflict, endpoint
from fleetlog.faces.span.runtime import SpanRuntime, span_event
from fleetlog.faces.span.schemas import IMEI_LENGTHS, IMSI_LENGTHS, AttachReport, decode, digits

BODY_LIMIT = 16 * 1024


class AttachIn(AttachReport, kw_only=True):
    tenant: str | None = None


def routes(rt: SpanRuntime) -> list[Route]:
    services = rt.services
    directory = services.directory

    @endpoint
    async def attach(request: Request) -> Response:
        principal = await directory.authenticate(access.token_of(request))
        if not principal.is_operator:
            raise Forbidden("network-attach reports come from the network: they need the operator key")
        body: AttachIn = decode(await read_body(request, BODY_LIMIT), AttachIn)
        imsi = digits(body.imsi, "imsi", IMSI_LENGTHS)
        imei = digits(body.imei, "imei", IMEI_LENGTHS) or ""
        if not imsi:
            raise NotFound("device with IMSI", str(body.imsi))
        if body.tenant is not None:
            tenants = [(await directory.tenant(body.tenant)).id]
        else:
            tenants = [t.id for t in await directory.registry.list_tenants()]
        verdicts = await rt.ciot.judge_any(tenants, imsi, imei)
        if not verdicts:
            raise NotFound("device with IMSI or IMEI", imsi if not imei else f"{imsi}/{imei}")
        if len(verdicts) > 1:
            raise SpanConflict("imsi: configured on devices of more than one tenant; name the tenant")
        verdict = verdicts[0]
        device = verdict.device
        data = dict(verdict.data)
        if verdict.event == "ciotConnect":
            data["ip"] = body.ip
            for key in ("cellId", "mcc", "mnc", "network"):
                value = getattr(body, key)
                if value is not None:
                    data[key] = str(value)
            await rt.ciot.allocate(body.ip, device.tenant, device.id)
        now = services.clock.now_us()
        await rt.emit([span_event(device.tenant, verdict.event, data, now, device=device.id)])
        return JSONResponse({"event": verdict.event, "collectionId": device.project, "deviceId": device.id})

    @endpoint
    async def system(request: Request) -> Response:
        await directory.authenticate(access.token_of(request))
        try:
            version = metadata.version("fleetlog")
        except metadata.PackageNotFoundError:
            version = "unknown"
        return JSONResponse({"version": version, "buildDate": "", "releaseName": "fleetlog"})

    @endpoint
    async def transports(request: Request) -> Response:
        await directory.authenticate(access.token_of(request))
        return JSONResponse({"transports": [t.json() for t in rt.transports.values()]})

    return [
        Route("/span/ciot/attach", attach, methods=["POST"]),
        Route("/span/system", system, methods=["GET"]),
        Route("/span/transports", transports, methods=["GET"]),
    ]
