"""/v2 devices: get, list, labels (devices:batchUpdate) and devices:transfer.

Label changes and transfers go through the registry (Directory), which records each change as an
event: `labelsChanged {added, modified, removed}`, `deviceMoved {from, to}`.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fleetlog.core.errors import FleetlogError, InvalidInput, NotFound
from fleetlog.core.registry import Device, Role
from fleetlog.faces.dt import params as qp
from fleetlog.faces.dt.auth import Authenticator
from fleetlog.faces.dt.bodies import BatchUpdateIn, TransferIn, decode
from fleetlog.faces.dt.errors import batch_code, endpoint
from fleetlog.faces.dt.listing import DeviceListing
from fleetlog.faces.dt.names import device_name, parse_device_name, parse_name
from fleetlog.faces.dt.views import DeviceViews
from fleetlog.faces.http import JSONResponse
from fleetlog.pipeline.directory import Directory

MAX_BATCH: Final = 1000


def _item_error(name: str, exc: FleetlogError) -> dict[str, Any]:
    return {"device": name, "status": {"code": batch_code(exc), "message": str(exc)}}


def routes(directory: Directory, auth: Authenticator, views: DeviceViews) -> list[Route]:
    listing = DeviceListing(directory, views)

    async def find(tenant: str, project: str, device_id: str, visible: Any) -> Device:
        """The device, if it is in `project` (any project the caller sees for `-`)."""
        try:
            device = await directory.device(tenant, device_id)
        except NotFound:
            raise NotFound("device", device_id) from None
        if (project != "-" and device.project != project) or not visible(device.project):
            raise NotFound("device", device_id)
        return device

    @endpoint
    async def get_device(request: Request) -> Response:
        project, device_id = request.path_params["project"], request.path_params["device"]
        caller = await auth.caller(request, project)
        qp.check_known(request.query_params, [])
        if project != "-":
            await auth.require(caller, project, Role.READ)
        else:
            await directory.require(caller.principal, caller.tenant, None, Role.READ)
        device = await find(
            caller.tenant, project, device_id, lambda p: caller.principal.sees_project(caller.tenant, p)
        )
        return JSONResponse(await views.render(device))

    @endpoint
    async def list_devices(request: Request) -> Response:
        project = request.path_params["project"]
        params = request.query_params
        org = qp.one(params, "organization")
        hint = parse_name(org, "organizations", "organization") if org else None
        caller = await auth.caller(request, project, hint)
        if hint is not None and hint != caller.tenant:
            raise NotFound("organization", hint)
        if project != "-":
            await auth.require(caller, project, Role.READ)
            projects: tuple[str, ...] | None = (project,)
        else:
            await directory.require(caller.principal, caller.tenant, None, Role.READ)
            named = tuple(parse_name(p, "projects", "projects") for p in qp.many(params, "projects"))
            projects = named or None
        return JSONResponse(await listing.page(caller.principal, caller.tenant, projects, params))

    @endpoint
    async def batch_update(request: Request) -> Response:
        project = request.path_params["project"]
        caller = await auth.caller(request, project)
        await auth.require(caller, project, Role.WRITE)
        qp.check_known(request.query_params, [])
        body = await decode(request, BatchUpdateIn)
        if not body.add_labels and not body.remove_labels:
            raise InvalidInput("give addLabels or removeLabels (or both)", "addLabels")
        if len(body.devices) > MAX_BATCH:
            raise InvalidInput(f"at most {MAX_BATCH} devices a request", "devices")
        errors: list[dict[str, Any]] = []
        for index, name in enumerate(body.devices):
            try:
                named_project, device_id = parse_device_name(name, f"devices[{index}]")
                if named_project not in {project, "-"}:
                    raise InvalidInput(f"is not in project {project!r}", f"devices[{index}]")
                device = await find(caller.tenant, project, device_id, lambda p: True)
                labels = {k: v for k, v in device.labels.items() if k not in body.remove_labels}
                labels.update(body.add_labels)
                if labels != device.labels:
                    await directory.update_device(msgspec.structs.replace(device, labels=labels))
            except FleetlogError as exc:
                errors.append(_item_error(name, exc))
        return JSONResponse({"batchErrors": errors})

    @endpoint
    async def transfer(request: Request) -> Response:
        target = request.path_params["project"]
        caller = await auth.caller(request, target)
        await auth.require(caller, target, Role.ADMIN)
        qp.check_known(request.query_params, [])
        body = await decode(request, TransferIn)
        if len(body.devices) > MAX_BATCH:
            raise InvalidInput(f"at most {MAX_BATCH} devices a request", "devices")
        moved: list[str] = []
        errors: list[dict[str, Any]] = []
        for index, name in enumerate(body.devices):
            try:
                source, device_id = parse_device_name(name, f"devices[{index}]")
                if source != "-":
                    await auth.require(caller, source, Role.ADMIN)
                device = await find(
                    caller.tenant, source, device_id, lambda p: caller.principal.sees_project(caller.tenant, p)
                )
                if source == "-":
                    await auth.require(caller, device.project, Role.ADMIN)
                if device.project != target:
                    await directory.update_device(msgspec.structs.replace(device, project=target))
                moved.append(device_name(target, device_id))
            except FleetlogError as exc:
                errors.append(_item_error(name, exc))
        return JSONResponse({"transferredDevices": moved, "transferErrors": errors})

    base = "/v2/projects/{project}"
    return [
        Route(base + "/devices:batchUpdate", batch_update, methods=["POST"]),
        Route(base + "/devices:transfer", transfer, methods=["POST"]),
        Route(base + "/devices", list_devices, methods=["GET"]),
        Route(base + "/devices/{device}", get_device, methods=["GET"]),
    ]
