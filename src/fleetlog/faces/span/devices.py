"""/span/collections/{cid}/devices: the device registry in Span's terms, and each device's outbox.

A PATCH that sets another `collectionId` moves the device (the registry logs `deviceMoved`).
Tags are merged by a PATCH (a tag set to "" is removed), as the vendor's CLI sends only the tags
it changes. IMSI and IMEI are unique within a tenant (the network-attach report needs that).
"""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fleetlog.core.errors import InvalidInput, NotFound
from fleetlog.core.registry import Device, Role
from fleetlog.faces.http import JSONResponse, read_body
from fleetlog.faces.span import access
from fleetlog.faces.span.errors import SpanConflict, endpoint
from fleetlog.faces.span.model import FIRMWARE, GATEWAY, Reported, new_id, span_attrs, unb64, with_span_attrs
from fleetlog.faces.span.params import check_known, epoch_ms, integer, one
from fleetlog.faces.span.render import device_json
from fleetlog.faces.span.runtime import SpanRuntime
from fleetlog.faces.span.schemas import (
    IMEI_LENGTHS,
    IMSI_LENGTHS,
    AddDownstreamMessageBody,
    CreateDeviceBody,
    DeviceConfig,
    FirmwareMetadata,
    UpdateDeviceBody,
    decode,
    digits,
)

BODY_LIMIT = 64 * 1024


def routes(rt: SpanRuntime) -> list[Route]:
    services = rt.services
    directory, docs = services.directory, services.documents

    async def who(request: Request, role: Role = Role.READ) -> access.Caller:
        return await access.caller(directory, access.token_of(request), role)

    async def render(device: Device) -> dict[str, Any]:
        return device_json(device, Reported.of(await services.store.latest_by_type(device.tenant, device.id)))

    async def apply(
        tenant: str,
        collection: str,
        device_id: str,
        span: dict[str, Any],
        firmware: FirmwareMetadata | None,
        config: DeviceConfig | None,
        enabled: bool | None,
    ) -> dict[str, Any]:
        """Span's device settings with a create or update body applied, checked."""
        span = {**span, "config": dict(span.get("config", {})), "firmware": dict(span.get("firmware", {}))}
        if config is not None and config.ciot is not None:
            ciot = dict(span["config"].get("ciot", {}))
            imsi = digits(config.ciot.imsi, "config.ciot.imsi", IMSI_LENGTHS)
            imei = digits(config.ciot.imei, "config.ciot.imei", IMEI_LENGTHS)
            by_imsi, by_imei = await rt.ciot.owners(tenant, imsi or "", imei or "")
            if by_imsi not in (None, device_id):
                raise SpanConflict(f"config.ciot.imsi: device {by_imsi!r} already has IMSI {imsi}")
            if by_imei not in (None, device_id):
                raise SpanConflict(f"config.ciot.imei: device {by_imei!r} already has IMEI {imei}")
            for key, value in (("imsi", imsi), ("imei", imei)):
                if value == "":
                    ciot.pop(key, None)
                elif value is not None:
                    ciot[key] = value
            span["config"]["ciot"] = ciot
        if config is not None and config.inet is not None:
            span["config"]["inet"] = config.inet
        if config is not None and config.gateway is not None:
            gateways = dict(span["config"].get("gateway", {}))
            for gid, entry in config.gateway.items():
                if entry.gatewayId == "":
                    gateways.pop(gid, None)
                    continue
                found = await docs.get(tenant, GATEWAY, gid)
                if not isinstance(found, dict) or found.get("collectionId") != collection:
                    raise InvalidInput(f"no gateway {gid!r} in this collection", f"config.gateway.{gid}")
                gateways[gid] = {"gatewayId": gid, "params": entry.params or {}}
            span["config"]["gateway"] = gateways
        if firmware is not None:
            for key in ("serialNumber", "modelNumber", "manufacturer"):
                value = getattr(firmware, key)
                if value is not None:
                    span["firmware"][key] = value
            target = firmware.targetFirmwareId
            if target:
                image = await docs.get(tenant, FIRMWARE, target)
                if not isinstance(image, dict) or image.get("collectionId") != collection:
                    raise InvalidInput(f"no firmware image {target!r} in this collection", "firmware.targetFirmwareId")
            if target is not None:
                span["firmware"]["targetFirmwareId"] = target
        if enabled is not None:
            span["enabled"] = enabled
        return span

    @endpoint
    async def list_devices(request: Request) -> Response:
        caller = await who(request)
        check_known(request.query_params, [])
        cid = request.path_params["cid"]
        await access.collection(directory, caller, cid)
        out: list[dict[str, Any]] = []
        after: str | None = None
        while True:
            page = await directory.registry.list_devices(caller.tenant, cid, after=after, limit=1000)
            out += [await render(d) for d in page]
            if len(page) < 1000:
                break
            after = page[-1].id
        return JSONResponse({"devices": out})

    @endpoint
    async def create_device(request: Request) -> Response:
        caller = await who(request, Role.ADMIN)
        cid = request.path_params["cid"]
        await access.collection(directory, caller, cid, Role.ADMIN)
        body: CreateDeviceBody = decode(await read_body(request, BODY_LIMIT), CreateDeviceBody)
        device_id = new_id()
        span = await apply(caller.tenant, cid, device_id, {}, body.firmware, body.config, body.enabled)
        device = await directory.create_device(
            Device(id=device_id, tenant=caller.tenant, project=cid, labels=body.tags or {}, attrs={"span": span})
        )
        return JSONResponse(await render(device))

    @endpoint
    async def get_device(request: Request) -> Response:
        caller = await who(request)
        check_known(request.query_params, [])
        device = await access.device(directory, caller, request.path_params["cid"], request.path_params["did"])
        return JSONResponse(await render(device))

    @endpoint
    async def update_device(request: Request) -> Response:
        caller = await who(request, Role.ADMIN)
        cid = request.path_params["cid"]
        device = await access.device(directory, caller, cid, request.path_params["did"], Role.ADMIN)
        body: UpdateDeviceBody = decode(await read_body(request, BODY_LIMIT), UpdateDeviceBody)
        target = body.collectionId or cid
        span = span_attrs(device)
        if target != cid:
            await access.collection(directory, caller, target, Role.ADMIN)
            # Firmware images and gateways belong to a collection: the old ones do not follow.
            span = {
                **span,
                "firmware": {k: v for k, v in span.get("firmware", {}).items() if k != "targetFirmwareId"},
                "config": {k: v for k, v in span.get("config", {}).items() if k != "gateway"},
            }
        span = await apply(caller.tenant, target, device.id, span, body.firmware, body.config, body.enabled)
        labels = device.labels
        if body.tags is not None:
            merged = {**labels, **body.tags}
            labels = {k: v for k, v in merged.items() if v != ""}
        changed = msgspec.structs.replace(device, project=target, labels=labels, attrs=with_span_attrs(device, span))
        if changed.project == device.project and changed.labels == device.labels and changed.attrs == device.attrs:
            return JSONResponse(await render(device))  # nothing changed: no deviceUpdated event
        return JSONResponse(await render(await directory.update_device(changed)))

    @endpoint
    async def delete_device(request: Request) -> Response:
        caller = await who(request, Role.ADMIN)
        cid = request.path_params["cid"]
        device = await access.device(directory, caller, cid, request.path_params["did"], Role.ADMIN)
        out = await render(device)
        await directory.delete_device(caller.tenant, device.id)
        await rt.outbox.forget_device(caller.tenant, device.id)
        return JSONResponse(out)

    # -- outbox ----------------------------------------------------------------------------

    @endpoint
    async def list_outbox(request: Request) -> Response:
        caller = await who(request)
        params = request.query_params
        check_known(params, ["limit", "start", "end", "offset"])
        device = await access.device(directory, caller, request.path_params["cid"], request.path_params["did"])
        limit = integer(params, "limit", 1, 1000) or 100
        start, end, offset = epoch_ms(params, "start"), epoch_ms(params, "end"), one(params, "offset")
        messages = list(reversed(await rt.outbox.messages(caller.tenant, device.id)))  # newest first
        if offset is not None:
            messages = [m for m in messages if m["messageId"] < offset]
        if start is not None:
            messages = [m for m in messages if int(m["createdTime"]) * 1000 >= start]
        if end is not None:
            messages = [m for m in messages if int(m["createdTime"]) * 1000 <= end]
        return JSONResponse({"messages": messages[:limit]})

    @endpoint
    async def add_outbox(request: Request) -> Response:
        caller = await who(request, Role.WRITE)
        cid = request.path_params["cid"]
        device = await access.device(directory, caller, cid, request.path_params["did"], Role.WRITE)
        body: AddDownstreamMessageBody = decode(
            await read_body(request, services.limits.max_event_bytes), AddDownstreamMessageBody
        )
        payload = unb64(body.payload)
        if not payload:
            raise InvalidInput("must not be empty", "payload")
        message = await rt.outbox.add(caller.tenant, cid, device.id, payload)
        if rt.gateways is not None:
            sent = await rt.gateways.deliver_pending(device)
            message = next((m for m in sent if m["messageId"] == message["messageId"]), message)
        return JSONResponse(message)

    @endpoint
    async def delete_outbox(request: Request) -> Response:
        caller = await who(request, Role.WRITE)
        device = await access.device(
            directory, caller, request.path_params["cid"], request.path_params["did"], Role.WRITE
        )
        message_id = request.path_params["mid"]
        if not await rt.outbox.delete(caller.tenant, device.id, message_id):
            raise NotFound("message", message_id)
        return JSONResponse({"messageId": message_id})

    d = "/span/collections/{cid}/devices"
    return [
        Route(d, list_devices, methods=["GET"]),
        Route(d, create_device, methods=["POST"]),
        Route(d + "/{did}", get_device, methods=["GET"]),
        Route(d + "/{did}", update_device, methods=["PATCH"]),
        Route(d + "/{did}", delete_device, methods=["DELETE"]),
        Route(d + "/{did}/outbox", list_outbox, methods=["GET"]),
        Route(d + "/{did}/outbox", add_outbox, methods=["POST"]),
        Route(d + "/{did}/outbox/{mid}", delete_outbox, methods=["DELETE"]),
    ]
