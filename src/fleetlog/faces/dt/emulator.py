"""The emulator API, under /emulator/v2 (DT serves it on its own host with the same paths):

    POST   /emulator/v2/projects/{p}/devices               {"type": "humidity", "labels": {...}}
    GET    /emulator/v2/projects/{p}/devices               the project's emulated devices
    GET    /emulator/v2/projects/{p}/devices/{d}
    PUT    /emulator/v2/projects/{p}/devices/{d}           {"labels": {...}, "type": ...} (given fields replace)
    DELETE /emulator/v2/projects/{p}/devices/{d}
    POST   /emulator/v2/projects/{p}/devices/{d}:publish   {"<eventType>": {data}}

Emulated devices are ordinary registry devices (ids "emu" + 20 characters, attrs.emulated) and
their events go through the ingest pipeline like any other, so they reach history, streams,
`reported` and data connectors. A sensor's published event is accompanied by a networkStatus
event (as a real sensor's is): the device's latest one again, or an emulated Cloud Connector's.
"""

from __future__ import annotations

import copy
from typing import Any, Final

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route

from fleetlog.core.catalog.dt import device_type
from fleetlog.core.errors import FleetlogError, InvalidInput, NotFound
from fleetlog.core.event import Event
from fleetlog.core.registry import Device, Role
from fleetlog.faces.dt import params as qp
from fleetlog.faces.dt.accounts import new_id
from fleetlog.faces.dt.auth import Authenticator
from fleetlog.faces.dt.bodies import EmulatedDeviceIn, EmulatedDevicePatch, decode, decode_object
from fleetlog.faces.dt.errors import endpoint, error
from fleetlog.faces.dt.events import DT_TYPES
from fleetlog.faces.dt.names import device_name
from fleetlog.faces.dt.publish import normalize
from fleetlog.faces.dt.views import EMULATED_ATTR, DeviceViews, is_emulated
from fleetlog.faces.http import JSONResponse
from fleetlog.pipeline.services import Services

BASE: Final = "/emulator/v2/projects/{project}/devices"
NO_COMPANION: Final = frozenset({"networkStatus", "batteryStatus", "connectionStatus"})
EMULATED_NETWORK: Final = {
    "signalStrength": 80,
    "rssi": -70,
    "cloudConnectors": [{"id": "emulated-cloud-connector", "signalStrength": 80, "rssi": -70}],
    "transmissionMode": "LOW_POWER_STANDARD_MODE",
}


def _in_data(exc: FleetlogError, event_type: str) -> FleetlogError:
    """A schema error on `data.x` is reported on `<eventType>.x`, as the body spelt it."""
    if isinstance(exc, InvalidInput) and exc.field and exc.field.startswith("data"):
        return InvalidInput(exc.message, event_type + exc.field[4:])
    return exc


def routes(services: Services, auth: Authenticator, views: DeviceViews) -> list[Route]:
    directory, ingest = services.directory, services.ingest

    def device_type_of(name: str, field: str) -> str:
        if device_type(name) is None:
            raise InvalidInput(f"unknown device type {name!r}", field)
        return name

    async def emulated(request: Request, role: Role) -> tuple[Any, Device]:
        project, device_id = request.path_params["project"], request.path_params["device"]
        caller = await auth.caller(request, project)
        await auth.require(caller, project, role)
        try:
            device = await directory.device(caller.tenant, device_id)
        except NotFound:
            raise NotFound("emulated device", device_id) from None
        if device.project != project or not is_emulated(device):
            raise NotFound("emulated device", device_id)
        return caller, device

    @endpoint
    async def create(request: Request) -> Response:
        project = request.path_params["project"]
        caller = await auth.caller(request, project)
        await auth.require(caller, project, Role.WRITE)
        qp.check_known(request.query_params, [])
        body = await decode(request, EmulatedDeviceIn)
        kind = device_type_of(body.type, "type")
        device = await directory.create_device(
            Device(
                id=new_id("emu"),
                tenant=caller.tenant,
                project=project,
                type=kind,
                labels=body.labels,
                attrs={EMULATED_ATTR: True},
            )
        )
        return JSONResponse(await views.render(device))

    @endpoint
    async def list_devices(request: Request) -> Response:
        project = request.path_params["project"]
        caller = await auth.caller(request, project)
        await auth.require(caller, project, Role.READ)
        qp.check_known(request.query_params, qp.PAGE_PARAMS)
        size = qp.page_size(request.query_params, 100, 100)
        after = qp.page_token(request.query_params)
        found: list[Device] = []
        while len(found) <= size:
            batch = await directory.registry.list_devices(caller.tenant, project, (), after, 1000)
            found += [d for d in batch if is_emulated(d)]
            if len(batch) < 1000:
                break
            after = batch[-1].id
        page, more = found[:size], len(found) > size
        return JSONResponse(
            {"devices": [await views.render(d) for d in page], "nextPageToken": page[-1].id if more else ""}
        )

    @endpoint
    async def get(request: Request) -> Response:
        _, device = await emulated(request, Role.READ)
        return JSONResponse(await views.render(device))

    @endpoint
    async def update(request: Request) -> Response:
        _, device = await emulated(request, Role.WRITE)
        body = await decode(request, EmulatedDevicePatch)
        if body.name is not None and body.name != device_name(device.project, device.id):
            raise InvalidInput("does not name this device", "name")
        changed = msgspec.structs.replace(
            device,
            type=device.type if body.type is None else device_type_of(body.type, "type"),
            labels=device.labels if body.labels is None else body.labels,
        )
        if changed != device:
            device = await directory.update_device(changed)
        return JSONResponse(await views.render(device))

    @endpoint
    async def delete(request: Request) -> Response:
        _, device = await emulated(request, Role.WRITE)
        await directory.delete_device(device.tenant, device.id)
        return JSONResponse({})

    @endpoint
    async def publish(request: Request) -> Response:
        caller, device = await emulated(request, Role.WRITE)
        body = await decode_object(request, services.limits.max_event_bytes)
        if len(body) != 1:
            raise InvalidInput('must hold exactly one event type, e.g. {"touch": {}}')
        ((event_type, raw),) = body.items()
        if event_type == "labelsChanged":
            raise InvalidInput(
                "labelsChanged events cannot be published; change labels with devices:batchUpdate", event_type
            )
        if event_type not in DT_TYPES:
            raise InvalidInput("unknown event type", event_type)
        kind = device_type(device.type)
        if kind is None or event_type not in kind.events:
            raise InvalidInput(f"a {device.type} device does not emit {event_type} events", event_type)
        is_sensor = kind.heartbeat_seconds is not None
        data = normalize(event_type, raw, is_sensor)
        try:
            services.catalog.validate(event_type, data)
        except InvalidInput as exc:
            raise _in_data(exc, event_type) from None
        now = services.clock.now_us()
        events = [
            Event(tenant=caller.tenant, project=device.project, device=device.id, type=event_type, time=now, data=data)
        ]
        if is_sensor and event_type not in NO_COMPANION:
            latest = (await services.store.latest_by_type(device.tenant, device.id)).get("networkStatus")
            network = copy.deepcopy(latest.data) if latest else copy.deepcopy(EMULATED_NETWORK)
            events.append(
                Event(
                    tenant=caller.tenant,
                    project=device.project,
                    device=device.id,
                    type="networkStatus",
                    time=now,
                    data=network,
                )
            )
        for result in await ingest.submit_many(caller.principal, events, face="dt"):
            if isinstance(result, FleetlogError):
                raise _in_data(result, event_type)
        return JSONResponse({})

    publish_route = Route(BASE + "/{device}:publish", publish, methods=["POST"])
    table = [
        publish_route,
        Route(BASE, create, methods=["POST"]),
        Route(BASE, list_devices, methods=["GET"]),
        Route(BASE + "/{device}", get, methods=["GET"]),
        Route(BASE + "/{device}", update, methods=["PUT", "PATCH"]),
        Route(BASE + "/{device}", delete, methods=["DELETE"]),
    ]

    async def unknown(request: Request) -> Response:
        """Anything else under /emulator, answered in DT's shape (405 for a known path)."""
        scope = {"type": "http", "path": request.url.path, "method": "GET"}
        known = any(
            route.matches({**scope, "method": m})[0] is Match.FULL for route in table for m in (route.methods or ())
        )
        if known:
            return error(405, f"method {request.method} is not allowed here")
        return error(404, f"no such resource: {request.url.path}")

    methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
    return [*table, Route("/emulator/{rest:path}", unknown, methods=methods)]
