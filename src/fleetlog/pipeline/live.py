"""Live feeds: follow new events without gaps, from now or from a resume point.

A feed subscribes to the bus first, then replays from the store what was committed after the
resume point, then follows the bus. The bus queue of a feed is bounded: when a slow reader lets
it overflow, the bus drops (ingest never waits) and the feed refills the gap from the store. So
memory stays bounded and a reader loses nothing, however slow it is.

Positions are in commit order: the upper half of an event id (`seq`), so an event id is a
resume token (the SSE `Last-Event-ID`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from fleetlog.core.event import Event
from fleetlog.core.ids import seq_of
from fleetlog.ports.bus import Bus
from fleetlog.ports.store import EventStore

Match = Callable[[Event], bool]
REPLAY_PAGE = 500


class LiveFeed:
    def __init__(
        self,
        store: EventStore,
        bus: Bus,
        tenant: str,
        match: Match,
        after: str | None = None,
        capacity: int = 1000,
    ) -> None:
        """`after`: an event id to resume after (None: only events from now on).
        `match` must already include the tenant and the caller's scope."""
        self._store = store
        self._tenant = tenant
        self._match = match
        self._last = seq_of(after) if after else None
        self._sub = bus.subscribe(match, capacity)
        self._dropped_seen = 0
        self.refills = 0  # how often a gap was refilled from the store

    @property
    def position(self) -> int | None:
        return self._last

    def close(self) -> None:
        self._sub.close()

    async def __aiter__(self) -> AsyncIterator[Event]:
        try:
            if self._last is not None:
                async for event in self._replay():
                    yield event
            while True:
                event = await self._sub.get()
                if self._sub.dropped != self._dropped_seen:
                    # The reader fell behind and the bus dropped events: refill from the store.
                    self._dropped_seen = self._sub.dropped
                    self.refills += 1
                    while self._sub.get_nowait() is not None:
                        pass
                    if self._last is None:
                        self._last = _seq(event) - 1
                    async for missed in self._replay():
                        yield missed
                    continue
                seq = _seq(event)
                if self._last is not None and seq <= self._last:
                    continue  # already sent during a replay
                self._last = seq
                yield event
        finally:
            self.close()

    async def _replay(self) -> AsyncIterator[Event]:
        assert self._last is not None
        while True:
            page = await self._store.since(self._tenant, self._last, REPLAY_PAGE)
            for event in page:
                self._last = _seq(event)
                if self._match(event):
                    yield event
            if len(page) < REPLAY_PAGE:
                return


def _seq(event: Event) -> int:
    return int(event.id[:16], 16)
