"""The in-process bus: every subscriber has its own bounded queue and a match function."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence

from fleetlog.core.event import Event
from fleetlog.ports.bus import Match


class MemorySubscription:
    def __init__(self, bus: MemoryBus, match: Match, capacity: int) -> None:
        self._bus = bus
        self.match = match
        self._items: deque[Event] = deque()
        self._capacity = capacity
        self._waiter: asyncio.Future[None] | None = None
        self.dropped = 0
        self.closed = False

    def offer(self, event: Event) -> None:
        if len(self._items) >= self._capacity:
            self.dropped += 1
            return
        self._items.append(event)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def get(self) -> Event:
        while not self._items:
            if self.closed:
                raise asyncio.CancelledError("subscription closed")
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._items.popleft()

    def get_nowait(self) -> Event | None:
        return self._items.popleft() if self._items else None

    def __len__(self) -> int:
        return len(self._items)

    def close(self) -> None:
        self.closed = True
        self._bus.unsubscribe(self)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class MemoryBus:
    """Publish runs on the event loop and never blocks: a full subscriber drops, and counts."""

    def __init__(self) -> None:
        self._subs: list[MemorySubscription] = []
        self.published = 0

    def publish(self, events: Sequence[Event]) -> None:
        self.published += len(events)
        subs = self._subs
        if not subs:
            return
        for event in events:
            for sub in subs:
                if sub.match(event):
                    sub.offer(event)

    def subscribe(self, match: Match, capacity: int = 10_000) -> MemorySubscription:
        sub = MemorySubscription(self, match, capacity)
        self._subs = [*self._subs, sub]
        return sub

    def unsubscribe(self, sub: MemorySubscription) -> None:
        self._subs = [s for s in self._subs if s is not sub]

    @property
    def subscribers(self) -> int:
        return len(self._subs)
