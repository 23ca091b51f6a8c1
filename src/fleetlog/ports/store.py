"""The event store port: durable, group-committed appends and keyset-paginated queries."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from enum import StrEnum
from typing import NamedTuple, Protocol

from fleetlog.core.event import Event
from fleetlog.core.query import EventQuery, Page


class Dedupe(StrEnum):
    """How an append recognises an event it already holds."""

    KEY = "key"  # by idempotency key only (if the event has one)
    NATURAL = "natural"  # also by (tenant, device, type, time) with the same content: 409 rule


class AppendStatus(StrEnum):
    CREATED = "created"
    DUPLICATE = "duplicate"  # same idempotency key: `event` is the one stored earlier
    CONFLICT = "conflict"  # same device, type, time and content (Dedupe.NATURAL)


class AppendResult(NamedTuple):  # a tuple: made once per event on the ingest hot path
    status: AppendStatus
    event: Event  # the stored event, with its id


class EventStore(Protocol):
    async def append(self, events: Sequence[Event], dedupe: Dedupe = Dedupe.KEY) -> list[AppendResult]:
        """Store events in order. Returns only after they are committed (durable)."""
        ...

    async def get(self, tenant: str, event_id: str) -> Event | None: ...

    async def query(self, query: EventQuery) -> Page: ...

    def export(self, query: EventQuery, chunk: int = 1000) -> AsyncIterator[list[Event]]:
        """Every event the query matches (ignoring its limit), in chunks, without holding
        them all in memory."""
        ...

    async def latest_by_type(self, tenant: str, device: str) -> dict[str, Event]:
        """The derived state of a device: its latest event of each type."""
        ...

    async def purge(self, tenant: str, before: int, batch: int = 5000) -> int:
        """Remove the tenant's events older than `before` (µs), a batch per transaction."""
        ...

    async def since(self, tenant: str, after_seq: int, limit: int = 1000) -> list[Event]:
        """Events committed after `after_seq` (the upper half of an event id), in commit
        order: what a live subscriber missed while it was away."""
        ...

    async def count(self, tenant: str | None = None) -> int: ...


class DeferredInbox(Protocol):
    """Events accepted with 202: saved durably now, processed by a worker later."""

    async def put(self, payloads: Sequence[bytes]) -> None: ...

    async def take(self, limit: int) -> list[tuple[int, bytes]]: ...

    async def done(self, ids: Sequence[int]) -> None: ...


async def export_by_pages(store: EventStore, query: EventQuery, chunk: int = 1000) -> AsyncIterator[list[Event]]:
    """`EventStore.export` for any store: page by page with keyset cursors, so memory holds
    one chunk whatever the size of the export."""
    q = replace(query, limit=chunk)
    while True:
        page = await store.query(q)
        if page.events:
            yield page.events
        if page.next_cursor is None:
            return
        q = replace(q, cursor=page.next_cursor)
