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

Memory per stream is bounded whatever the reader does: a LiveFeed (bus queue of FEED_CAPACITY
events; when it overflows, the feed refills from the store) and at most MAX_BUFFERED rendered
frames waiting for the socket. A reader that stops reading stops its own feed; ingest and other
streams never wait for it.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Final

import msgspec
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from fleetlog.core.errors import InvalidInput, NotFound
from fleetlog.core.event import Event
from fleetlog.core.ids import parse_id
from fleetlog.core.registry import Role
from fleetlog.faces.dt import params as qp
from fleetlog.faces.dt.auth import Authenticator
from fleetlog.faces.dt.errors import endpoint
from fleetlog.faces.dt.events import DT_TYPES, RenderCache, ping_json
from fleetlog.faces.dt.filters import FILTER_PARAMS, DeviceFilter
from fleetlog.pipeline.live import LiveFeed
from fleetlog.pipeline.services import Services

log = logging.getLogger(__name__)

FEED_CAPACITY: Final = 1000
MAX_BUFFERED: Final = 1000
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

Frame = Callable[[bytes, str], bytes]


def _ndjson(payload: bytes, _event_id: str) -> bytes:
    return payload + b"\n"


def _sse(payload: bytes, event_id: str) -> bytes:
    head = f"id: {event_id}\n".encode() if event_id else b""
    return head + b"data: " + payload + b"\n\n"


def _result(event_json: bytes) -> bytes:
    return b'{"result":{"event":' + event_json + b"}}"


def routes(services: Services, auth: Authenticator, cache: RenderCache) -> list[Route]:
    directory, clock = services.directory, services.clock
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
        wanted = frozenset(types) or DT_TYPES
        ping = qp.duration(params, "ping_interval", 0.1, 3600.0) or qp.duration(params, "pingInterval", 0.1, 3600.0)
        resume = request.headers.get("last-event-id") or qp.one(params, "last_event_id") or None
        if resume is not None and parse_id(resume) is None:
            raise InvalidInput("not an event id of this server", "last_event_id")
        tenant, ids = caller.tenant, devices.ids

        def match(e: Event) -> bool:
            return (
                e.project == project
                and e.tenant == tenant
                and e.type in wanted
                and e.device is not None
                and (not ids or e.device in ids)
            )

        feed = LiveFeed(services.store, services.bus, tenant, match, after=resume, capacity=FEED_CAPACITY)
        sse = SSE in request.headers.get("accept", "")
        frame: Frame = _sse if sse else _ndjson

        async def keep(event: Event) -> bool:
            if not devices.on_device_properties:
                return True
            try:
                return devices.matches(await directory.device(tenant, event.device or ""))
            except NotFound:
                return False

        body = _frames(feed, keep, frame, cache, project, ping, max_seconds, clock.now_us)
        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        return StreamingResponse(body, media_type=SSE if sse else NDJSON, headers=headers)

    return [Route("/v2/projects/{project}/devices:stream", stream, methods=["GET"])]


async def _frames(
    feed: LiveFeed,
    keep: Callable[[Event], Awaitable[bool]],
    frame: Frame,
    cache: RenderCache,
    project: str,
    ping: float | None,
    max_seconds: float,
    now_us: Callable[[], int],
) -> AsyncIterator[bytes]:
    """The response body: a pump task moves events from the feed into a bounded buffer; this
    generator writes whatever has gathered as one chunk (one socket write for many events)."""
    buffer: list[bytes] = []
    ready, room = asyncio.Event(), asyncio.Event()
    room.set()

    async def pump() -> None:
        async for event in feed:
            if not await keep(event):
                continue
            buffer.append(frame(_result(cache.encoded(event)), event.id))
            ready.set()
            if len(buffer) >= MAX_BUFFERED:
                room.clear()
                await room.wait()

    task = asyncio.create_task(pump(), name="dt-stream-pump")
    loop = asyncio.get_running_loop()
    start = loop.time()
    next_ping = start + ping if ping else math.inf
    deadline = start + max_seconds
    try:
        while True:
            if not buffer:
                if task.done():
                    if not task.cancelled() and task.exception() is not None:
                        log.error("stream feed failed", exc_info=task.exception())
                    return
                try:
                    async with asyncio.timeout(max(0.0, min(next_ping, deadline) - loop.time())):
                        await ready.wait()
                except TimeoutError:
                    pass
            ready.clear()
            if buffer:
                chunk = b"".join(buffer)
                buffer.clear()
                room.set()
                yield chunk
            now = loop.time()
            if now >= next_ping:
                yield frame(_result(_encode(ping_json(project, now_us()))), "")
                next_ping = now + (ping or math.inf)
            if now >= deadline:
                yield frame(CLOSING, "")
                return
    finally:
        task.cancel()
        feed.close()
