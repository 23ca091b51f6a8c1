"""Firmware: images with a target per collection or device, and the device side of an update.

Images are documents (`span.firmware`; the bytes in `span.firmware.image`). A device's target:
- collection `firmware.management` "disabled": none;
- "collection": the collection's `targetFirmwareId`;
- "device": the device's own `firmware.targetFirmwareId`;
- "unspecified" (default): the device's own target if set, else the collection's.

Firmware state machine (the spec leaves `state` a free string; these are fleetlog's states):

    ""/Current/UpdatePending --report, version == target--> Current        (firmwareCurrent)
    ""/Current/UpdatePending --report, version != target--> UpdatePending  (firmwareUpdateRequired)
    any                      --device downloads image-----> Downloading    (firmwareRequested)
    Downloading/Updating     --report, version != target--> unchanged      (firmwareUpdateRequired)
    any                      --report state=Updating-------> Updating
    any                      --report state=Failed---------> Failed (stateMessage = message)
    Failed                   --DELETE .../fwerror----------> UpdatePending or Current
Every report is a firmwareCheck; every change of state is a firmwareStateChange {from, to}.
With no target, a report is only a firmwareCheck.

Device side (a key that may write to the collection):
    POST .../devices/{did}/fota        {"version", "state"?, "message"?}  report
    GET  .../devices/{did}/fota/image  the target image (application/octet-stream)
"""

from __future__ import annotations

import hashlib
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fleetlog.core.errors import InvalidInput, NotFound
from fleetlog.core.event import Event
from fleetlog.core.registry import Device, Role
from fleetlog.faces.http import JSONResponse, read_body
from fleetlog.faces.span import access
from fleetlog.faces.span.errors import SpanConflict, endpoint
from fleetlog.faces.span.model import (
    COLLECTION,
    FIRMWARE,
    FIRMWARE_IMAGE,
    Reported,
    b64,
    new_id,
    span_attrs,
    unb64,
)
from fleetlog.faces.span.params import check_known
from fleetlog.faces.span.runtime import SpanRuntime, span_event
from fleetlog.faces.span.schemas import CreateFirmwareBody, FirmwareReport, UpdateFirmwareBody, decode

BODY_LIMIT = 64 * 1024
IN_PROGRESS = ("Downloading", "Updating")


class Firmware:
    def __init__(self, rt: SpanRuntime) -> None:
        self.rt = rt
        self.docs = rt.services.documents

    async def image(self, tenant: str, image_id: str) -> dict[str, Any] | None:
        found = await self.docs.get(tenant, FIRMWARE, image_id)
        return found if isinstance(found, dict) else None

    async def target(self, device: Device) -> dict[str, Any] | None:
        collection = await self.docs.get(device.tenant, COLLECTION, device.project) or {}
        settings = collection.get("firmware", {})
        management = settings.get("management", "unspecified")
        own = span_attrs(device).get("firmware", {}).get("targetFirmwareId", "")
        if management == "disabled":
            return None
        if management == "collection":
            target_id = settings.get("targetFirmwareId", "")
        elif management == "device":
            target_id = own
        else:
            target_id = own or settings.get("targetFirmwareId", "")
        image = await self.image(device.tenant, target_id) if target_id else None
        if image is None or image.get("collectionId") != device.project or image.get("enabled") is False:
            return None
        return image

    async def current_state(self, device: Device) -> str:
        return Reported.of(await self.rt.services.store.latest_by_type(device.tenant, device.id)).state

    def _change(self, device: Device, old: str, new: str, now: int, message: str = "") -> list[Event]:
        if old == new:
            return []
        data = {"from": old, "to": new}
        if message:
            data["message"] = message
        return [span_event(device.tenant, "firmwareStateChange", data, now, device=device.id)]

    async def report(self, device: Device, report: FirmwareReport) -> dict[str, Any]:
        now = self.rt.services.clock.now_us()
        target = await self.target(device)
        state = await self.current_state(device)
        check = {"version": report.version}
        matching = await self._image_with_version(device, report.version)
        if matching:
            check["imageId"] = matching
        events = [span_event(device.tenant, "firmwareCheck", check, now, device=device.id)]
        new_state = state
        if target is not None:
            if report.version == target["version"]:
                events.append(
                    span_event(device.tenant, "firmwareCurrent", {"version": report.version}, now, device=device.id)
                )
                new_state = "Current"
            else:
                events.append(
                    span_event(
                        device.tenant,
                        "firmwareUpdateRequired",
                        {"current": report.version, "target": target["version"], "imageId": target["imageId"]},
                        now,
                        device=device.id,
                    )
                )
                new_state = state if state in IN_PROGRESS else "UpdatePending"
        if report.state is not None:
            new_state = report.state
        events += self._change(device, state, new_state, now, report.message or "")
        await self.rt.emit(events)
        out: dict[str, Any] = {"state": new_state, "version": report.version}
        if target is not None:
            out["targetVersion"] = target["version"]
            out["imageId"] = target["imageId"]
        return out

    async def _image_with_version(self, device: Device, version: str) -> str:
        for _, image_id, doc in await self.docs.list(device.tenant, FIRMWARE):
            if doc.get("collectionId") == device.project and doc.get("version") == version:
                return str(image_id)
        return ""

    async def download(self, device: Device) -> tuple[dict[str, Any], bytes]:
        target = await self.target(device)
        if target is None:
            raise NotFound("firmware target for device", device.id)
        blob = await self.docs.get(device.tenant, FIRMWARE_IMAGE, target["imageId"])
        if not isinstance(blob, dict):
            raise NotFound("firmware image", target["imageId"])
        now = self.rt.services.clock.now_us()
        state = await self.current_state(device)
        events = [
            span_event(
                device.tenant,
                "firmwareRequested",
                {"imageId": target["imageId"], "version": target["version"]},
                now,
                device=device.id,
            )
        ]
        events += self._change(device, state, "Downloading", now)
        await self.rt.emit(events)
        return target, unb64(blob["data"])

    async def clear_error(self, device: Device) -> str:
        state = await self.current_state(device)
        if state != "Failed":
            return state
        target = await self.target(device)
        version = Reported.of(await self.rt.services.store.latest_by_type(device.tenant, device.id)).firmware_version
        new = "" if target is None else ("Current" if version == target["version"] else "UpdatePending")
        await self.rt.emit(self._change(device, state, new, self.rt.services.clock.now_us()))
        return new


def routes(rt: SpanRuntime) -> list[Route]:
    services = rt.services
    directory, docs = services.directory, services.documents
    fw = Firmware(rt)
    image_limit = services.config.span_max_image_bytes * 4 // 3 + 64 * 1024  # base64 in JSON

    async def who(request: Request, role: Role = Role.READ) -> access.Caller:
        return await access.caller(directory, access.token_of(request), role)

    async def find(caller: access.Caller, cid: str, image_id: str) -> dict[str, Any]:
        doc = await fw.image(caller.tenant, image_id)
        if doc is None or doc.get("collectionId") != cid:
            raise NotFound("firmware image", image_id)
        return doc

    async def images_of(tenant: str, cid: str) -> list[dict[str, Any]]:
        return [d for _, _, d in await docs.list(tenant, FIRMWARE) if d.get("collectionId") == cid]

    @endpoint
    async def list_images(request: Request) -> Response:
        caller = await who(request)
        check_known(request.query_params, [])
        cid = request.path_params["cid"]
        await access.collection(directory, caller, cid)
        return JSONResponse({"images": await images_of(caller.tenant, cid)})

    @endpoint
    async def create_image(request: Request) -> Response:
        caller = await who(request, Role.ADMIN)
        cid = request.path_params["cid"]
        await access.collection(directory, caller, cid, Role.ADMIN)
        body: CreateFirmwareBody = decode(await read_body(request, image_limit), CreateFirmwareBody)
        data = unb64(body.image, "image")
        if not data:
            raise InvalidInput("must not be empty", "image")
        if len(data) > services.config.span_max_image_bytes:
            raise InvalidInput(f"larger than {services.config.span_max_image_bytes} bytes", "image")
        if any(d.get("version") == body.version for d in await images_of(caller.tenant, cid)):
            raise SpanConflict(f"version: an image with version {body.version!r} exists in this collection")
        doc = {
            "imageId": new_id(),
            "version": body.version,
            "filename": body.filename or "",
            "sha256": hashlib.sha256(data).hexdigest(),
            "length": len(data),
            "collectionId": cid,
            "created": str(services.clock.now_us() // 1000),
            "tags": body.tags or {},
            "enabled": True,
        }
        await docs.put(caller.tenant, FIRMWARE_IMAGE, doc["imageId"], {"data": b64(data)})
        await docs.put(caller.tenant, FIRMWARE, doc["imageId"], doc)
        return JSONResponse(doc)

    @endpoint
    async def get_image(request: Request) -> Response:
        caller = await who(request)
        check_known(request.query_params, [])
        cid = request.path_params["cid"]
        await access.collection(directory, caller, cid)
        return JSONResponse(await find(caller, cid, request.path_params["iid"]))

    @endpoint
    async def update_image(request: Request) -> Response:
        caller = await who(request, Role.ADMIN)
        cid = request.path_params["cid"]
        await access.collection(directory, caller, cid, Role.ADMIN)
        doc = dict(await find(caller, cid, request.path_params["iid"]))
        body: UpdateFirmwareBody = decode(await read_body(request, BODY_LIMIT), UpdateFirmwareBody)
        if body.collectionId and body.collectionId != cid:
            await access.collection(directory, caller, body.collectionId, Role.ADMIN)
            doc["collectionId"] = body.collectionId
        if body.version is not None and body.version != doc["version"]:
            if any(d.get("version") == body.version for d in await images_of(caller.tenant, doc["collectionId"])):
                raise SpanConflict(f"version: an image with version {body.version!r} exists in this collection")
            doc["version"] = body.version
        if body.tags is not None:
            merged = {**doc.get("tags", {}), **body.tags}
            doc["tags"] = {k: v for k, v in merged.items() if v != ""}
        if body.enabled is not None:
            doc["enabled"] = body.enabled
        await docs.put(caller.tenant, FIRMWARE, doc["imageId"], doc)
        return JSONResponse(doc)

    @endpoint
    async def delete_image(request: Request) -> Response:
        caller = await who(request, Role.ADMIN)
        cid = request.path_params["cid"]
        await access.collection(directory, caller, cid, Role.ADMIN)
        doc = await find(caller, cid, request.path_params["iid"])
        collection = await docs.get(caller.tenant, COLLECTION, cid) or {}
        if collection.get("firmware", {}).get("targetFirmwareId") == doc["imageId"]:
            raise SpanConflict("the image is the collection's firmware target; change the target first")
        if await usage(caller.tenant, cid, doc["imageId"], targeted_only=True):
            raise SpanConflict("devices target this image; change their target first")
        await docs.delete(caller.tenant, FIRMWARE, doc["imageId"])
        await docs.delete(caller.tenant, FIRMWARE_IMAGE, doc["imageId"])
        return JSONResponse(doc)

    async def usage(tenant: str, cid: str, image_id: str, targeted_only: bool = False) -> list[str]:
        targeted: list[str] = []
        after: str | None = None
        while True:
            page = await directory.registry.list_devices(tenant, cid, after=after)
            targeted += [d.id for d in page if span_attrs(d).get("firmware", {}).get("targetFirmwareId") == image_id]
            if len(page) < 1000:
                return targeted
            after = page[-1].id

    @endpoint
    async def image_usage(request: Request) -> Response:
        caller = await who(request)
        cid = request.path_params["cid"]
        await access.collection(directory, caller, cid)
        doc = await find(caller, cid, request.path_params["iid"])
        targeted, current = [], []
        after: str | None = None
        while True:
            page = await directory.registry.list_devices(caller.tenant, cid, after=after)
            for device in page:
                target = await fw.target(device)
                if target is not None and target["imageId"] == doc["imageId"]:
                    targeted.append(device.id)
                reported = Reported.of(await services.store.latest_by_type(caller.tenant, device.id))
                if reported.firmware_version == doc["version"]:
                    current.append(device.id)
            if len(page) < 1000:
                break
            after = page[-1].id
        return JSONResponse({"imageId": doc["imageId"], "targeted": targeted, "current": current})

    # -- the device side -------------------------------------------------------------------

    async def device_for(request: Request) -> Device:
        caller = await who(request, Role.WRITE)
        return await access.device(
            directory, caller, request.path_params["cid"], request.path_params["did"], Role.WRITE
        )

    @endpoint
    async def report(request: Request) -> Response:
        device = await device_for(request)
        body: FirmwareReport = decode(await read_body(request, BODY_LIMIT), FirmwareReport)
        return JSONResponse(await fw.report(device, body))

    @endpoint
    async def download(request: Request) -> Response:
        device = await device_for(request)
        check_known(request.query_params, [])
        image, data = await fw.download(device)
        headers = {
            "X-Firmware-Image-Id": image["imageId"],
            "X-Firmware-Version": image["version"],
            "X-Firmware-Sha256": image["sha256"],
        }
        return Response(data, media_type="application/octet-stream", headers=headers)

    @endpoint
    async def clear_error(request: Request) -> Response:
        device = await device_for(request)
        return JSONResponse({"result": await fw.clear_error(device)})

    f = "/span/collections/{cid}/firmware"
    d = "/span/collections/{cid}/devices/{did}"
    return [
        Route(f, list_images, methods=["GET"]),
        Route(f, create_image, methods=["POST"]),
        Route(f + "/{iid}", get_image, methods=["GET"]),
        Route(f + "/{iid}", update_image, methods=["PATCH"]),
        Route(f + "/{iid}", delete_image, methods=["DELETE"]),
        Route(f + "/{iid}/usage", image_usage, methods=["GET"]),
        Route(d + "/fota", report, methods=["POST"]),
        Route(d + "/fota/image", download, methods=["GET"]),
        Route(d + "/fwerror", clear_error, methods=["DELETE"]),
    ]
