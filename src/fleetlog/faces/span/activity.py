"""The activity WebSocket: /span/collections/{cid}/activity, one JSON object per message.

Best effort, as the vendor documents it: each client reads from the bus through a small bounded
queue. A client that reads slower than events arrive loses events (ingest never waits for it);
the loss is counted and told to the client in a frame `{"type": "dropped", "count": N}` (N lost
since the last such frame), which the vendor's CLI skips as it has no `collectionId`.

Beyond the vendor, every activity event is also in the event log (queryable like any event).
A device moved out of the collection is shown to both collections' streams.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import msgspec
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket

from fleetlog.core.errors import FleetlogError
from fleetlog.core.event import Event
from fleetlog.faces.span import access
from fleetlog.faces.span.render import ACTIVITY_NAMES, activity_frame
from fleetlog.faces.span.runtime import SpanRuntime
from fleetlog.faces.span.sockets import accept, confirm, open_session, refuse, run_until_closed
from fleetlog.ports.bus import Bus

_json = msgspec.json.Encoder()


def matcher(tenant: str, collection: str) -> Callable[[Event], bool]:
    def match(event: Event) -> bool:
        return (
            event.tenant == tenant
            and event.type in ACTIVITY_NAMES
            and (event.project == collection or (event.type == "deviceMoved" and event.data.get("from") == collection))
        )

    return match


class ActivityPump:
    """Copies a collection's activity from the bus to `send`, dropping (and saying so) when
    `send` is slower than the events."""

    def __init__(
        self, bus: Bus, tenant: str, collection: str, capacity: int, send: Callable[[str], Awaitable[None]]
    ) -> None:
        self._sub = bus.subscribe(matcher(tenant, collection), capacity)
        self._send = send
        self.reported_dropped = 0
        self.sent = 0

    @property
    def dropped(self) -> int:
        return self._sub.dropped

    def close(self) -> None:
        self._sub.close()

    async def run(self) -> None:
        try:
            while True:
                event = await self._sub.get()
                lost = self._sub.dropped - self.reported_dropped
                if lost:
                    self.reported_dropped += lost
                    await self._send(_json.encode({"type": "dropped", "count": lost}).decode())
                frame = activity_frame(event)
                if frame is not None:
                    await self._send(_json.encode(frame).decode())
                    self.sent += 1
        finally:
            self._sub.close()


def routes(rt: SpanRuntime) -> list[WebSocketRoute]:
    services = rt.services

    async def activity(ws: WebSocket) -> None:
        session = await open_session(ws, services.directory)
        if session is None:
            return
        cid = ws.path_params["cid"]
        try:
            await access.collection(services.directory, session.caller, cid)
        except FleetlogError as exc:
            await refuse(ws, exc)
            return
        # Subscribe before the handshake completes: what happens after it is seen.
        pump = ActivityPump(services.bus, session.caller.tenant, cid, services.config.span_activity_queue, ws.send_text)
        try:
            await accept(ws)
            await confirm(ws, session)
            await run_until_closed(ws, pump.run())
        finally:
            pump.close()

    return [WebSocketRoute("/span/collections/{cid}/activity", activity)]
