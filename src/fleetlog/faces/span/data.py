"""Stored upstream data: /span/collections/{cid}/data, .../devices/{did}/data and .../inbox.

Upstream messages are events (upstreamMessage, gatewayUpstreamMessage) with the payload in
their data, so these lists are event-log queries, newest first, with Span's paging:
- `limit`: 1-1000, default 512 (the spec's default);
- `start`, `end`: epoch milliseconds, default the last 24 hours;
- `offset`: a `messageId`; the next page is the messages older than it. It cannot be combined
  with `start`/`end`, and without them it is not limited to the last 24 hours.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fleetlog.core.errors import InvalidInput, NotFound
from fleetlog.core.event import Event
from fleetlog.core.ids import seq_of
from fleetlog.core.query import Cursor, EventQuery, Position
from fleetlog.faces.http import JSONResponse
from fleetlog.faces.span import access
from fleetlog.faces.span.errors import endpoint
from fleetlog.faces.span.model import UPSTREAM_TYPES, Reported
from fleetlog.faces.span.params import check_known, epoch_ms, integer, one
from fleetlog.faces.span.render import data_message, device_json, upstream_message
from fleetlog.faces.span.runtime import SpanRuntime

DAY_US = 24 * 3600 * 1_000_000
DEFAULT_LIMIT = 512


def routes(rt: SpanRuntime) -> list[Route]:
    services = rt.services
    directory, store = services.directory, services.store

    async def page(request: Request, collection: str, device: str | None, tenant: str) -> list[Event]:
        params = request.query_params
        check_known(params, ["limit", "start", "end", "offset"])
        limit = integer(params, "limit", 1, 1000) or DEFAULT_LIMIT
        start, end, offset = epoch_ms(params, "start"), epoch_ms(params, "end"), one(params, "offset")
        cursor: Cursor | None = None
        if offset is not None:
            if start is not None or end is not None:
                raise InvalidInput("cannot be combined with start or end", "offset")
            anchor = await store.get(tenant, offset) if seq_of(offset) is not None else None
            if anchor is None or anchor.project != collection or (device and anchor.device != device):
                raise InvalidInput("not a message id of this collection", "offset")
            cursor = Cursor(Position(anchor.time, seq_of(offset) or 0))
        else:
            now = services.clock.now_us()
            end = now + 1 if end is None else end + 1000  # `end` is inclusive to the millisecond
            start = end - DAY_US if start is None else start
            if start >= end:
                raise InvalidInput("must be before end", "start")
        query = EventQuery(
            tenant=tenant,
            projects=(collection,),
            devices=(device,) if device else (),
            types=UPSTREAM_TYPES,
            since=start,
            until=end,
            limit=limit,
            cursor=cursor,
        )
        return (await store.query(query)).events

    async def devices_of(tenant: str, events: list[Event]) -> dict[str, dict[str, Any] | None]:
        out: dict[str, dict[str, Any] | None] = {}
        for event in events:
            if event.device and event.device not in out:
                try:
                    device = await directory.device(tenant, event.device)
                except NotFound:
                    out[event.device] = None
                    continue
                out[event.device] = device_json(device, Reported.of(await store.latest_by_type(tenant, device.id)))
        return out

    @endpoint
    async def collection_data(request: Request) -> Response:
        caller = await who(request)
        cid = request.path_params["cid"]
        await access.collection(directory, caller, cid)
        events = await page(request, cid, None, caller.tenant)
        devices = await devices_of(caller.tenant, events)
        return JSONResponse({"data": [data_message(e, devices.get(e.device or "")) for e in events]})

    @endpoint
    async def device_data(request: Request) -> Response:
        caller = await who(request)
        cid, did = request.path_params["cid"], request.path_params["did"]
        await access.device(directory, caller, cid, did)
        events = await page(request, cid, did, caller.tenant)
        devices = await devices_of(caller.tenant, events)
        return JSONResponse({"data": [data_message(e, devices.get(e.device or "")) for e in events]})

    @endpoint
    async def device_inbox(request: Request) -> Response:
        caller = await who(request)
        cid, did = request.path_params["cid"], request.path_params["did"]
        await access.device(directory, caller, cid, did)
        events = await page(request, cid, did, caller.tenant)
        return JSONResponse({"messages": [upstream_message(e) for e in events]})

    async def who(request: Request) -> access.Caller:
        return await access.caller(directory, access.token_of(request))

    c = "/span/collections/{cid}"
    return [
        Route(c + "/data", collection_data, methods=["GET"]),
        Route(c + "/devices/{did}/data", device_data, methods=["GET"]),
        Route(c + "/devices/{did}/inbox", device_inbox, methods=["GET"]),
    ]
