"""GET /v2/projects/{p}/devices/{d}/events: a device's DT events, newest first.

`eventTypes` (repeated), `startTime` (default: 24 hours ago), `endTime` (inclusive), pages of
up to 1000 (default 100) with `pageToken`; camelCase and snake_case spellings. Only the events
the device reported while it was in project {p} are shown.
"""

from __future__ import annotations

from typing import Final

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fleetlog.core.errors import InvalidInput, NotFound
from fleetlog.core.query import Cursor, EventQuery, Order
from fleetlog.core.registry import Role
from fleetlog.faces.dt import params as qp
from fleetlog.faces.dt.auth import Authenticator
from fleetlog.faces.dt.errors import endpoint
from fleetlog.faces.dt.events import DT_TYPES, event_json
from fleetlog.faces.http import JSONResponse
from fleetlog.pipeline.directory import Directory
from fleetlog.ports.clock import Clock
from fleetlog.ports.store import EventStore

DEFAULT_WINDOW_US: Final = 24 * 3600 * 1_000_000
ALL_TYPES: Final = tuple(sorted(DT_TYPES))
PARAMS: Final = ("eventTypes", "event_types", "startTime", "start_time", "endTime", "end_time", *qp.PAGE_PARAMS)


def routes(directory: Directory, auth: Authenticator, store: EventStore, clock: Clock) -> list[Route]:
    @endpoint
    async def history(request: Request) -> Response:
        project, device_id = request.path_params["project"], request.path_params["device"]
        caller = await auth.caller(request, project)
        await auth.require(caller, project, Role.READ)
        params = request.query_params
        qp.check_known(params, PARAMS)
        types = qp.many(params, "eventTypes", "event_types")
        for name in types:
            if name not in DT_TYPES:
                raise InvalidInput(f"unknown event type {name!r}", "eventTypes")
        start = qp.time(params, "startTime", "start_time")
        end = qp.time(params, "endTime", "end_time")
        if start is None:
            start = (end if end is not None else clock.now_us()) - DEFAULT_WINDOW_US
        if end is not None and start > end:
            raise InvalidInput("must not be after endTime", "startTime")
        size = qp.page_size(params, 100, 1000)
        token = qp.page_token(params)
        device = await directory.device(caller.tenant, device_id)
        if device.project != project:
            raise NotFound("device", device_id)
        page = await store.query(
            EventQuery(
                tenant=caller.tenant,
                projects=(project,),
                devices=(device_id,),
                types=types or ALL_TYPES,
                since=start,
                until=None if end is None else end + 1,
                order=Order.NEWEST,
                limit=size,
                cursor=Cursor.decode(token, "pageToken") if token else None,
            )
        )
        return JSONResponse(
            {
                "events": [event_json(e) for e in page.events],
                "nextPageToken": page.next_cursor.encode() if page.has_more and page.next_cursor else "",
            }
        )

    return [Route("/v2/projects/{project}/devices/{device}/events", history, methods=["GET"])]
