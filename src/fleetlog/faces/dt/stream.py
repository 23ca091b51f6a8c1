"""GET /v2/projects/{p}/devices:stream: live events, as DT streams them.

- Framing: newline-delimited JSON by default, one `{"result": {"event": {...}}}` a line; with
  `Accept: text/event-stream` the same objects as SSE frames, each with `id: <eventId>`.
- Filters: device_ids, device_types, label_filters, product_numbers, event_types (proto and JSON
  spellings). Pings (`"eventType": "ping"`) every `ping_interval` (e.g. `10s`), if asked for.
- Resume (fleetlog's addition; DT loses events while a client reconnects): the SSE
  `Last-Event-ID` header, or `?last_event_id=<eventId>` for NDJSON clients, replays every
  matching event committed after that one, then follows live. DT's own client sends neither and
  works unchanged.
- After `dt_stream_max_seconds` the stream ends with DT's in-stream error "closing stream" (408),
  and clients reconnect, as with the vendor.

Every stream of a project shares one live feed (see fanout.py): memory per stream is bounded
(at most MAX_BUFFERED frames), and a reader that stops reading slows no one and loses nothing.
"""

from __future__ import annotations

import asyncio
import math
import weakref
from collections.abc import AsyncIterator, Callable
from typing import Final

import msgspec
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from fleetlog.core.errors import InvalidInput
from fleetlog.core.ids import parse_id
from fleetlog.core.registry import Role
from fleetlog.faces.dt import params as qp
from fleetlog.faces.dt.auth import Authenticator
from fleetlog.faces.dt.errors import endpoint
from fleetlog.faces.dt.events import DT_TYPES, ping_json
from fleetlog.faces.dt.fanout import Client, Hub, Hubs
from fleetlog.faces.dt.filters import FILTER_PARAMS, DeviceFilter
from fleetlog.pipeline.services import Services

PARAMS: Final = (*FILTER_PARAMS, "event_types", "eventTypes", "ping_interval", "pingInterval", "last_event_id")
NDJSON: Final = "application/x-ndjson"
SSE: Final = "text/event-stream"
CLOSING: Final = msgspec.json.encode(
    {
        "error": {
            "code": 408,
            "grpcCode": 1,
            "httpCode": 408,
            "message": "closing stream",
            "httpStatus": "Request Timeout",
            "details": [],
        }
    }
)
_encode = msgspec.json.Encoder().encode


def _control(payload: bytes, sse: bool) -> bytes:
    """A ping or the closing error, framed (without an event id)."""
    return b"data: " + payload + b"\n\n" if sse else payload + b"\n"


def routes(services: Services, auth: Authenticator, hubs: Hubs) -> list[Route]:
    clock = services.clock
    max_seconds = services.config.dt_stream_max_seconds

    @endpoint
    async def stream(request: Request) -> Response:
        project = request.path_params["project"]
        caller = await auth.caller(request, project)
        await auth.require(caller, project, Role.READ)
        params = request.query_params
        qp.check_known(params, PARAMS)
        devices = DeviceFilter.from_params(params)
        types = qp.many(params, "event_types", "eventTypes")
        for name in types:
            if name not in DT_TYPES:
                raise InvalidInput(f"unknown event type {name!r}", "event_types")
        ping = qp.duration(params, "ping_interval", 0.1, 3600.0) or qp.duration(params, "pingInterval", 0.1, 3600.0)
        resume = request.headers.get("last-event-id") or qp.one(params, "last_event_id") or None
        parsed = parse_id(resume) if resume is not None else None
        if resume is not None and parsed is None:
            raise InvalidInput("not an event id of this server", "last_event_id")
        sse = SSE in request.headers.get("accept", "")
        client = Client(devices, frozenset(types) or DT_TYPES, sse, parsed[0] if parsed else None)
        hub = hubs.join(caller.tenant, project, client)
        body = _body(hubs, hub, client, project, ping, max_seconds, clock.now_us)
        weakref.finalize(body, hub.leave, client)  # also when the body is never sent (the client left)
        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        return StreamingResponse(body, media_type=SSE if sse else NDJSON, headers=headers)

    return [Route("/v2/projects/{project}/devices:stream", stream, methods=["GET"])]


async def _body(
    hubs: Hubs,
    hub: Hub,
    client: Client,
    project: str,
    ping: float | None,
    max_seconds: float,
    now_us: Callable[[], int],
) -> AsyncIterator[bytes]:
    """Whatever has gathered for the client, as one chunk (one socket write for many events);
    the store while it is catching up; pings; the closing error at the end."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    next_ping = start + ping if ping else math.inf
    deadline = start + max_seconds
    try:
        while not hub.failed:
            if client.buffer:
                chunk = b"".join(client.buffer)
                client.buffer.clear()
                yield chunk
            elif client.behind:
                chunk = await hubs.catch_up(hub, client)
                if chunk:
                    yield chunk
                elif client.behind:
                    await asyncio.sleep(0.01)  # the hub is ahead of what the store shows yet: no busy loop
            else:
                client.ready.clear()
                try:
                    async with asyncio.timeout(max(0.0, min(next_ping, deadline) - loop.time())):
                        await client.ready.wait()
                except TimeoutError:
                    pass
            now = loop.time()
            if now >= next_ping:
                yield _control(_encode({"result": {"event": ping_json(project, now_us())}}), client.sse)
                next_ping = now + (ping or math.inf)
            if now >= deadline:
                yield _control(CLOSING, client.sse)
                return
    finally:
        hub.leave(client)
