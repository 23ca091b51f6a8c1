"""Upstream data WebSockets: /span/collections/{cid}/from and .../devices/{did}/from.

Each frame is an OutputDataMessage `{"type": "data", "device": {...}, "payload", "received",
"transport", "messageId", ...}`; `{"type": "keepalive"}` is sent when nothing else was for
`span_keepalive_seconds`. Unlike activity, data is not lost: the stream reads through a
LiveFeed, which refills from the event log whatever a slow reader missed. `?after=<messageId>`
(fleetlog's addition) resumes after a message seen before. A first-message login may narrow a
collection stream with `deviceId` and `gatewayId`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import msgspec
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket

from fleetlog.core.errors import FleetlogError, NotFound
from fleetlog.core.event import Event
from fleetlog.core.ids import seq_of
from fleetlog.faces.span import access
from fleetlog.faces.span.model import UPSTREAM_TYPES, Reported
from fleetlog.faces.span.render import data_message, device_json
from fleetlog.faces.span.runtime import SpanRuntime
from fleetlog.faces.span.sockets import KEEPALIVE, accept, confirm, open_session, refuse, run_until_closed
from fleetlog.pipeline.live import LiveFeed

_json = msgspec.json.Encoder()


def matcher(tenant: str, collection: str, device: str | None, gateway: str | None) -> Callable[[Event], bool]:
    def match(event: Event) -> bool:
        return (
            event.tenant == tenant
            and event.project == collection
            and event.type in UPSTREAM_TYPES
            and (device is None or event.device == device)
            and (gateway is None or event.gateway == gateway)
        )

    return match


def routes(rt: SpanRuntime) -> list[WebSocketRoute]:
    services = rt.services
    directory = services.directory

    async def stream(ws: WebSocket) -> None:
        session = await open_session(ws, directory)
        if session is None:
            return
        cid = ws.path_params["cid"]
        device = ws.path_params.get("did") or session.first.get("deviceId") or None
        gateway = session.first.get("gatewayId") or None
        after = ws.query_params.get("after")
        try:
            if device is not None:
                await access.device(directory, session.caller, cid, str(device))
            else:
                await access.collection(directory, session.caller, cid)
            if after is not None and seq_of(after) is None:
                raise NotFound("message", after)
        except FleetlogError as exc:
            await refuse(ws, exc)
            return
        tenant = session.caller.tenant
        feed = LiveFeed(
            services.store,
            services.bus,
            tenant,
            matcher(tenant, cid, device and str(device), gateway and str(gateway)),
            after=after,
        )
        lock = asyncio.Lock()
        last_send = [asyncio.get_running_loop().time()]

        async def send(text: str) -> None:
            async with lock:
                await ws.send_text(text)
                last_send[0] = asyncio.get_running_loop().time()

        async def pump() -> None:
            async for event in feed:
                found = None
                if event.device:
                    with contextlib.suppress(NotFound):  # removed since: the frame has no device
                        found = device_json(await directory.device(tenant, event.device), Reported(upstream=event))
                await send(_json.encode(data_message(event, found)).decode())

        async def keepalive() -> None:
            period = services.config.span_keepalive_seconds
            while True:
                await asyncio.sleep(period)
                if asyncio.get_running_loop().time() - last_send[0] >= period * 0.9:
                    await send(KEEPALIVE)

        try:
            await accept(ws)
            await confirm(ws, session)
            await run_until_closed(ws, pump(), keepalive())
        finally:
            feed.close()

    return [
        WebSocketRoute("/span/collections/{cid}/from", stream),
        WebSocketRoute("/span/collections/{cid}/devices/{did}/from", stream),
    ]
