"""The event bus port: committed events, published in commit order, to live subscribers."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from fleetlog.core.event import Event

Match = Callable[[Event], bool]


class Subscription(Protocol):
    """A bounded queue of events. When the subscriber falls behind, events are dropped and
    `dropped` counts them: a subscriber that must not lose events resumes from the store."""

    dropped: int

    async def get(self) -> Event: ...
    def get_nowait(self) -> Event | None: ...
    def close(self) -> None: ...


class Bus(Protocol):
    def publish(self, events: Sequence[Event]) -> None:
        """Never blocks: a slow subscriber cannot slow the publisher."""
        ...

    def subscribe(self, match: Match, capacity: int = 10_000) -> Subscription: ...
