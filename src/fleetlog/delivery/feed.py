"""A connector's view of the event log: its tenant's matching events after a position, in
commit order. The log is the queue; nothing is copied into a queue of its own.

While behind, a feed reads the store in pages; once caught up, it follows the bus. The bus
queue is bounded: if it overflows (a slow connector), the feed notices the drop and reads the
store again, so nothing is skipped and memory stays bounded (the same scheme as LiveFeed,
plus what a cursor needs: batches, a position that also moves past events that don't match,
and waits that return so the caller can checkpoint).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from fleetlog.core.event import Event
from fleetlog.ports.bus import Bus
from fleetlog.ports.store import EventStore

Match = Callable[[Event], bool]


def seq_of(event: Event) -> int:
    return int(event.id[:16], 16)


class HeadTracker:
    """The newest committed position of each tenant, as the bus publishes it.

    Its match function records and queues nothing. Publishing is in commit order and every
    subscriber of one publish sees it at once, so when a feed has taken everything from its own
    queue, it has seen every matching event up to the tenant's head and may move its position
    there: a connector that rarely matches still keeps a recent cursor (a short restart)."""

    def __init__(self, bus: Bus) -> None:
        self._heads: dict[str, str] = {}
        self._sub = bus.subscribe(self._see, capacity=1)

    def _see(self, event: Event) -> bool:
        self._heads[event.tenant] = event.id
        return False

    def head(self, tenant: str) -> int:
        last = self._heads.get(tenant)
        return int(last[:16], 16) if last else 0

    def close(self) -> None:
        self._sub.close()


class LogFeed:
    def __init__(
        self,
        store: EventStore,
        bus: Bus,
        heads: HeadTracker,
        tenant: str,
        match: Match,
        after_seq: int,
        capacity: int = 1000,
        page: int = 500,
    ) -> None:
        self._store = store
        self._heads = heads
        self._tenant = tenant
        self._match = match
        self._page = page
        # Subscribe before the first store read, so nothing falls between the two.
        self._sub = bus.subscribe(lambda e: e.tenant == tenant and match(e), capacity)
        self._dropped_seen = 0
        self._behind = True
        self.position = after_seq  # every event at or below it has been returned or skipped
        self.store_reads = 0

    def close(self) -> None:
        self._sub.close()

    async def next(self, limit: int, idle_seconds: float) -> list[Event]:
        """Up to `limit` (>= 1) matching events after the position; [] if none came within
        `idle_seconds` of being caught up."""
        while True:
            if self._behind:
                found = await self._read_store(limit)
                if found:
                    return found
                if self._behind:
                    continue
            if self._sub.dropped != self._dropped_seen:
                self._dropped_seen = self._sub.dropped
                while self._sub.get_nowait() is not None:
                    pass
                self._behind = True
                continue
            found = self._take(limit)
            if found:
                return found
            # Everything published so far has been seen: the position may move to the head.
            self.position = max(self.position, self._heads.head(self._tenant))
            event = await self._wait(idle_seconds)
            if event is None:
                return []
            if self._sub.dropped == self._dropped_seen and seq_of(event) > self.position:
                self.position = seq_of(event)
                return [event, *self._take(limit - 1)]

    async def _read_store(self, limit: int) -> list[Event]:
        page_size = max(1, min(self._page, limit))
        page = await self._store.since(self._tenant, self.position, page_size)
        self.store_reads += 1
        found: list[Event] = []
        for event in page:
            self.position = seq_of(event)
            if self._match(event):
                found.append(event)
        if len(page) < page_size:
            self._behind = False
        return found

    def _take(self, limit: int) -> list[Event]:
        found: list[Event] = []
        while len(found) < limit:
            event = self._sub.get_nowait()
            if event is None:
                break
            seq = seq_of(event)
            if seq <= self.position:
                continue  # already read from the store
            self.position = seq
            found.append(event)
        return found

    async def _wait(self, seconds: float) -> Event | None:
        """The next bus event, or None after `seconds`. An event is taken off the queue only
        when `get` returns, so a timeout never loses one."""
        getter = asyncio.ensure_future(self._sub.get())
        done, _ = await asyncio.wait({getter}, timeout=seconds)
        if getter not in done:
            getter.cancel()
        try:
            return await getter
        except asyncio.CancelledError:
            if getter.cancelled() and not _current_cancelling():
                return None
            raise


def _current_cancelling() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0
