"""Stream fan-out: one live feed per project, however many clients stream it.

A `Hub` follows a project's DT events with one `LiveFeed` (lossless: it refills from the store
when it falls behind) and hands each event, encoded once, to every client whose filters match.
A client's own cost per event is a filter check and a list append.

A client that does not keep up (more than MAX_BUFFERED frames waiting for its socket) leaves
the live set and catches up from the store on its own, as a client resuming after a reconnect
does, then rejoins. So a slow or stalled client holds at most MAX_BUFFERED frames, never slows
the hub or the others, and loses nothing.

Positions are store sequence numbers (the upper half of an event id) in commit order. A client
rejoins only once it has read the store up to the last event the hub handed out, and ignores
what it has already read (its floor), so no event is skipped or sent twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Final

import msgspec

from fleetlog.core.errors import NotFound
from fleetlog.core.event import Event
from fleetlog.core.registry import Device
from fleetlog.faces.dt.events import DT_TYPES, event_json
from fleetlog.faces.dt.filters import DeviceFilter
from fleetlog.pipeline.directory import Directory
from fleetlog.pipeline.live import LiveFeed
from fleetlog.ports.bus import Bus
from fleetlog.ports.store import EventStore

log = logging.getLogger(__name__)

MAX_BUFFERED: Final = 1000
FEED_CAPACITY: Final = 2000
CATCH_UP_PAGE: Final = 500
_encode = msgspec.json.Encoder().encode
Key = tuple[str, str]


def seq_of(event: Event) -> int:
    return int(event.id[:16], 16)


def frame(event: Event, sse: bool) -> bytes:
    """One event as a stream line (NDJSON) or an SSE frame carrying its id."""
    payload = b'{"result":{"event":' + _encode(event_json(event)) + b"}}"
    return b"id: " + event.id.encode() + b"\ndata: " + payload + b"\n\n" if sse else payload + b"\n"


class Client:
    """One stream's filters and its bounded buffer of frames waiting for its socket."""

    def __init__(self, devices: DeviceFilter, types: frozenset[str], sse: bool, after: int | None) -> None:
        self.devices = devices
        self.ids = devices.ids
        self.by_device = devices.on_device_properties
        self.types = types
        self.sse = sse
        self.buffer: list[bytes] = []
        self.ready = asyncio.Event()
        # Catching up from the store after `scan` (a resume point, or where it fell behind)?
        self.behind = after is not None
        self.scan = after or 0
        self.floor = 0  # events up to here were read from the store: the hub skips them
        self.last = 0  # the last event buffered

    def accepts(self, event: Event, device: Device | None) -> bool:
        if event.type not in self.types or (self.ids and event.device not in self.ids):
            return False
        return not self.by_device or (device is not None and self.devices.matches(device))


class Hub:
    def __init__(self, key: Key, feed: LiveFeed, directory: Directory, on_empty: Callable[[Hub], None]) -> None:
        self.key = key
        self._feed = feed
        self._directory = directory
        self._on_empty = on_empty
        self.members: set[Client] = set()
        self.live: list[Client] = []
        self.position = 0  # the last event handed out
        self.failed = False
        self._task = asyncio.create_task(self._run(), name=f"dt-stream-hub:{key[0]}/{key[1]}")

    def join(self, client: Client) -> None:
        self.members.add(client)
        if not client.behind:
            self._go_live(client, self.position)

    def leave(self, client: Client) -> None:
        self.members.discard(client)
        if client in self.live:
            self.live.remove(client)
        if not self.members:
            self._task.cancel()
            self._feed.close()
            self._on_empty(self)

    def try_rejoin(self, client: Client) -> bool:
        """Back to live once the client has read the store up to where the hub is."""
        if client.scan < self.position:
            return False
        self._go_live(client, client.scan)
        return True

    def _go_live(self, client: Client, floor: int) -> None:
        client.behind = False
        client.floor = floor
        client.last = max(client.last, floor)  # if it falls behind, it catches up from here
        self.live.append(client)

    async def _run(self) -> None:
        try:
            async for event in self._feed:
                seq = self.position = seq_of(event)
                live = self.live
                if not live:
                    continue
                device: Device | None = None
                if any(c.by_device for c in live):
                    try:
                        device = await self._directory.device(event.tenant, event.device or "")
                    except NotFound:
                        device = None
                lines: dict[bool, bytes] = {}
                for client in list(self.live):
                    if seq <= client.floor or not client.accepts(event, device):
                        continue
                    if len(client.buffer) >= MAX_BUFFERED:  # too slow: catch up from the store later
                        self.live.remove(client)
                        client.behind, client.scan = True, client.last
                        continue
                    line = lines.get(client.sse)
                    if line is None:
                        line = lines[client.sse] = frame(event, client.sse)
                    client.buffer.append(line)
                    client.last = seq
                    client.ready.set()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("DT stream hub %s failed", self.key)
            self.failed = True  # its streams end; clients reconnect (and resume)
            for client in self.members:
                client.ready.set()
            self.live.clear()


class Hubs:
    """The hubs of the projects being streamed; a hub lives while it has clients."""

    def __init__(self, store: EventStore, bus: Bus, directory: Directory) -> None:
        self._store = store
        self._bus = bus
        self._directory = directory
        self._hubs: dict[Key, Hub] = {}

    def __len__(self) -> int:
        return len(self._hubs)

    def join(self, tenant: str, project: str, client: Client) -> Hub:
        key = (tenant, project)
        hub = self._hubs.get(key)
        if hub is None:

            def match(e: Event) -> bool:
                return e.project == project and e.tenant == tenant and e.type in DT_TYPES and e.device is not None

            feed = LiveFeed(self._store, self._bus, tenant, match, capacity=FEED_CAPACITY)
            hub = self._hubs[key] = Hub(key, feed, self._directory, self._forget)
        hub.join(client)
        return hub

    def _forget(self, hub: Hub) -> None:
        if self._hubs.get(hub.key) is hub:
            del self._hubs[hub.key]

    async def catch_up(self, hub: Hub, client: Client) -> bytes:
        """The next page of what the client missed, read from the store; rejoins the hub when
        there is no more."""
        tenant, project = hub.key
        page = await self._store.since(tenant, client.scan, CATCH_UP_PAGE)
        lines: list[bytes] = []
        for event in page:
            client.scan = seq = seq_of(event)
            if event.project != project or event.type not in DT_TYPES or event.device is None:
                continue
            device = None
            if client.by_device:
                try:
                    device = await self._directory.device(tenant, event.device)
                except NotFound:
                    continue
            if client.accepts(event, device):
                lines.append(frame(event, client.sse))
                client.last = seq
        if len(page) < CATCH_UP_PAGE:
            hub.try_rejoin(client)
        return b"".join(lines)
