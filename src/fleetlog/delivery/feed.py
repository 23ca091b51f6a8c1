"""A connector's view of the event log: its tenant's matching events after a position, in
commit order. The log is the queue; nothing is copied into a queue of its own.

While behind, a feed reads the store in pages; once caught up, it takes new events from the
tap. Its queue is bounded: if it overflows (a slow connector), the feed notices and reads the
store again, so nothing is skipped and memory stays bounded (the scheme of LiveFeed, plus what
a cursor needs: batches, a position that also moves past events that don't match, and waits
that return so the caller can checkpoint).

The tap is the engine's one bus subscription. It looks at each committed event once and hands
it only to the feeds indexed under its tenant, project and type, so connectors that do not
want an event cost ingest nothing, however many there are.
"""

from __future__ import annotations

import asyncio
from collections import Counter, deque
from collections.abc import Callable

from fleetlog.core.event import Event
from fleetlog.ports.bus import Bus
from fleetlog.ports.store import EventStore

Match = Callable[[Event], bool]
Key = tuple[str, str | None, str | None]  # (tenant, project or any, type or any)
TAP_CAPACITY = 10_000


def seq_of(event: Event) -> int:
    return int(event.id[:16], 16)


class Tap:
    def __init__(self, bus: Bus, capacity: int = TAP_CAPACITY) -> None:
        # Lists are replaced, never changed in place: a dispatch in progress keeps its own.
        self._index: dict[Key, list[LogFeed]] = {}
        # Feeds per tenant that take events from the tap (attached and not parked). The bus
        # passes the tap only events of these tenants: while every connector of a tenant is
        # behind (reading the store), its events cost the tap nothing at all.
        self._taking: Counter[str] = Counter()
        self._heads: dict[str, str] = {}  # tenant -> id of the newest event handed out
        self._sub = bus.subscribe(lambda e: e.tenant in self._taking, capacity)

    def attach(self, feed: LogFeed, keys: list[Key]) -> None:
        self._add(feed, keys)

    def detach(self, feed: LogFeed, keys: list[Key]) -> None:
        self._remove(feed, keys)

    def park(self, feed: LogFeed, keys: list[Key]) -> None:
        """A feed with a gap will read the store anyway: hand it nothing until it resumes."""
        self._remove(feed, keys)

    def resume(self, feed: LogFeed, keys: list[Key]) -> None:
        self._add(feed, keys)

    def _add(self, feed: LogFeed, keys: list[Key]) -> None:
        added = False
        for key in keys:
            feeds = self._index.get(key, [])
            if feed not in feeds:
                self._index[key] = [*feeds, feed]
                added = True
        if added:
            self._taking[keys[0][0]] += 1

    def _remove(self, feed: LogFeed, keys: list[Key]) -> None:
        removed = False
        for key in keys:
            feeds = self._index.get(key, [])
            remaining = [f for f in feeds if f is not feed]
            removed = removed or len(remaining) != len(feeds)
            if remaining:
                self._index[key] = remaining
            else:
                self._index.pop(key, None)
        tenant = keys[0][0]
        if removed:
            self._taking[tenant] -= 1
            if self._taking[tenant] <= 0:
                del self._taking[tenant]

    def head(self, tenant: str) -> int:
        """The newest position handed out for `tenant`: every event up to it has been offered
        to each feed that might want it."""
        last = self._heads.get(tenant)
        return int(last[:16], 16) if last else 0

    def lose_all(self) -> None:
        for feeds in list(self._index.values()):
            for feed in feeds:
                feed.lost()

    async def run(self) -> None:
        dropped_seen = 0
        try:
            while True:
                event = await self._sub.get()
                if self._sub.dropped != dropped_seen:  # the tap fell behind: every feed refills
                    dropped_seen = self._sub.dropped
                    self.lose_all()
                self._dispatch(event)
                while (more := self._sub.get_nowait()) is not None:
                    self._dispatch(more)
        finally:
            self._sub.close()

    def _dispatch(self, e: Event) -> None:
        t, p, y = e.tenant, e.project, e.type
        index = self._index
        for key in ((t, p, y), (t, p, None), (t, None, y), (t, None, None)):
            feeds = index.get(key)
            if feeds:
                for feed in feeds:
                    feed.offer(e)
        self._heads[t] = e.id


class LogFeed:
    def __init__(
        self,
        store: EventStore,
        tap: Tap,
        tenant: str,
        projects: list[str | None],
        types: list[str | None],
        match: Match,
        after_seq: int,
        capacity: int = 1000,
        page: int = 500,
    ) -> None:
        """`projects`/`types`: what to index the feed under ([None]: any); `match`: the full test."""
        self._store = store
        self._tap = tap
        self._tenant = tenant
        self._match = match
        self._page = page
        self._capacity = capacity
        self._queue: deque[Event] = deque()
        self._ready = asyncio.Event()
        self.dropped = 0
        self._dropped_seen = 0
        self._behind = True
        self.position = after_seq  # every event at or below it has been returned or skipped
        self.store_reads = 0
        # Attach before the first store read, so nothing falls between the two.
        self._keys: list[Key] = [(tenant, p, y) for p in projects for y in types]
        tap.attach(self, self._keys)

    def close(self) -> None:
        self._tap.detach(self, self._keys)

    # -- what the tap calls ---------------------------------------------------------------

    def offer(self, event: Event) -> None:
        if not self._match(event):
            return
        if len(self._queue) >= self._capacity:
            self.lost()
            return
        self._queue.append(event)
        self._ready.set()

    def lost(self) -> None:
        if self.dropped == self._dropped_seen:
            self._tap.park(self, self._keys)  # until the refill: a stuck connector costs ingest nothing
        self.dropped += 1
        self._ready.set()

    # -- what the worker calls ------------------------------------------------------------

    async def next(self, limit: int, idle_seconds: float) -> list[Event]:
        """Up to `limit` (>= 1) matching events after the position; [] if none came within
        `idle_seconds` of being caught up."""
        while True:
            if self.dropped != self._dropped_seen:
                self._dropped_seen = self.dropped
                self._queue.clear()
                self._tap.resume(self, self._keys)  # before the store read: nothing falls between
                self._behind = True
            if self._behind:
                found = await self._read_store(limit)
                if found:
                    return found
                if self._behind:
                    continue
            found = self._take(limit)
            if found:
                return found
            if self.dropped != self._dropped_seen:
                continue
            # Everything handed out so far was seen: the position may move to the head.
            self.position = max(self.position, self._tap.head(self._tenant))
            self._ready.clear()
            try:
                async with asyncio.timeout(idle_seconds):  # not wait_for: it may swallow a cancellation in 3.11
                    await self._ready.wait()
            except TimeoutError:
                return []

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
        queue = self._queue
        while queue and len(found) < limit:
            event = queue.popleft()
            seq = seq_of(event)
            if seq <= self.position:
                continue  # already read from the store
            self.position = seq
            found.append(event)
        return found
