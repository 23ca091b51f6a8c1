"""The /v3/device-events query path: Pelion filters on fleetlog's event store.

What the store can answer itself goes into an `EventQuery` (devices, event types, excluded
types, time range, state_change: all served by its indexes, a page at constant cost). What it
cannot (descriptions, excluded devices, excluded ids or date-times) is checked here on the
events the store returns, chunk by chunk: memory stays bounded, and a scan that finds nothing
in `max_scan` events stops with a validation error instead of reading the whole account.

Order is (date_time, arrival) ascending or descending; `after` continues after that event's
place in the chosen order. `id__eq/__in` reads the named events directly; `date_time__eq/__in`
reads one exact-time range per value and merges them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, replace

from fleetlog.core.errors import InvalidInput
from fleetlog.core.event import Event
from fleetlog.core.ids import parse_id
from fleetlog.core.query import Cursor, EventQuery, Order, Position
from fleetlog.faces.pelion.filters import Filters
from fleetlog.ports.store import EventStore

SCAN_CHUNK = 1000
DEFAULT_MAX_SCAN = 200_000


@dataclass(frozen=True)
class Listing:
    events: list[Event]
    has_more: bool
    total_count: int | None = None


@dataclass(frozen=True)
class Request:
    tenant: str
    projects: tuple[str, ...]  # () = every project of the tenant
    filters: Filters
    ascending: bool = True
    limit: int = 50
    after: Event | None = None
    total: bool = False
    max_scan: int = DEFAULT_MAX_SCAN


def key(event: Event) -> tuple[int, int]:
    """An event's place in the total order: (time, arrival sequence)."""
    return event.time, int(event.id[:16], 16)


def matches(request: Request) -> Callable[[Event], bool]:
    """Every condition of the request, checked on one event."""
    f = request.filters
    projects = frozenset(request.projects)

    def check(e: Event) -> bool:
        return (
            (not projects or e.project in projects)
            and f.date_time.admits(e.time)
            and f.device_id.admits(e.device)
            and f.event_type.admits(e.type)
            and f.id.admits(e.id)
            and f.description.admits(e.description)
            and (f.state_change is None or e.state_change == f.state_change)
        )

    return check


def residual_param(request: Request) -> str | None:
    """The first given filter the store cannot apply itself (None: the store applies them all)."""
    filters = request.filters
    for field_name, op, name in filters.given:
        if field_name == "description" or (op in ("neq", "nin") and field_name in ("id", "date_time")):
            return name
        if field_name == "device_id" and op in ("neq", "nin") and filters.device_id.allowed is None:
            return name
    return None


def store_queries(request: Request) -> list[EventQuery] | None:
    """The store queries whose merged results hold every match (None: nothing can match)."""
    f = request.filters
    if f.impossible:
        return None
    devices = f.device_id.effective
    types = f.event_type.effective
    if (devices is not None and not devices) or (types is not None and not types):
        return None
    base = EventQuery(
        tenant=request.tenant,
        projects=request.projects,
        devices=tuple(sorted(devices)) if devices is not None else (),
        types=tuple(sorted(types)) if types is not None else (),
        exclude_types=tuple(sorted(f.event_type.excluded)) if types is None else (),
        since=f.date_time.gte,
        until=f.date_time.lte + 1 if f.date_time.lte is not None else None,
        state_change=f.state_change,
        order=Order.OLDEST if request.ascending else Order.NEWEST,
        cursor=Cursor(Position(*key(request.after))) if request.after is not None else None,
    )
    points = f.date_time.points
    if points is None:
        return [base]
    if not points:
        return None
    return [replace(base, since=t, until=t + 1) for t in points]


async def _stream(store: EventStore, query: EventQuery, chunk: int) -> AsyncGenerator[Event, None]:
    q = replace(query, limit=chunk)
    while True:
        page = await store.query(q)
        for event in page.events:
            yield event
        if page.next_cursor is None:
            return
        q = replace(q, cursor=page.next_cursor)


async def _merged(
    store: EventStore, queries: list[EventQuery], chunk: int, ascending: bool
) -> AsyncGenerator[Event, None]:
    """The events of several queries, in one order (each query is already in that order)."""
    if len(queries) == 1:
        async for event in _stream(store, queries[0], chunk):
            yield event
        return
    streams = [_stream(store, q, chunk) for q in queries]
    heads: list[Event | None] = list(await asyncio.gather(*(anext(s, None) for s in streams)))
    pick = min if ascending else max
    while True:
        live = [i for i, h in enumerate(heads) if h is not None]
        if not live:
            return
        best = pick(live, key=lambda i: key(heads[i]))  # type: ignore[arg-type]
        chosen = heads[best]
        assert chosen is not None
        yield chosen
        heads[best] = await anext(streams[best], None)


async def _by_ids(store: EventStore, request: Request, ids: frozenset[str]) -> list[Event]:
    """The named events that match, in order, after `after`."""
    wanted = [i for i in ids if parse_id(i) is not None]
    found = await asyncio.gather(*(store.get(request.tenant, i) for i in wanted))
    check = matches(request)
    events = sorted((e for e in found if e is not None and check(e)), key=key, reverse=not request.ascending)
    if request.after is not None:
        mark = key(request.after)
        events = [e for e in events if (key(e) > mark if request.ascending else key(e) < mark)]
    return events


async def list_events(store: EventStore, request: Request) -> Listing:
    ids = request.filters.id.effective
    if ids is not None:
        events = await _by_ids(store, request, ids)
        total = len(await _by_ids(store, replace(request, after=None), ids)) if request.total else None
        return Listing(events[: request.limit], len(events) > request.limit, total)
    queries = store_queries(request)
    if queries is None:
        return Listing([], False, 0 if request.total else None)
    residual = residual_param(request)
    check = matches(request)
    wanted = request.limit + 1  # one more than a page tells whether there is more
    chunk = SCAN_CHUNK if residual else wanted
    found: list[Event] = []
    scanned = 0
    stream = _merged(store, queries, chunk, request.ascending)
    try:
        async for event in stream:
            scanned += 1
            if check(event):
                found.append(event)
                if len(found) == wanted:
                    break
            elif scanned >= request.max_scan:
                if found:
                    return Listing(found, True, await _total(store, request) if request.total else None)
                why = f"no match among the first {request.max_scan} events this filter reads"
                raise InvalidInput(f"{why}; narrow it with date_time or event_type", residual)
    finally:
        await stream.aclose()
    total = await _total(store, request) if request.total else None
    return Listing(found[: request.limit], len(found) > request.limit, total)


async def _total(store: EventStore, request: Request) -> int:
    """How many events match, ignoring `after` and `limit`; at most `max_scan` are read."""
    plain = replace(request, after=None)
    f = request.filters
    if not request.projects and not f.given and not f.impossible:
        return await store.count(request.tenant)
    queries = store_queries(plain)
    if queries is None:
        return 0
    check = matches(plain)
    count = scanned = 0
    stream = _merged(store, queries, SCAN_CHUNK, True)
    try:
        async for event in stream:
            scanned += 1
            count += check(event)
            if scanned > request.max_scan:
                raise InvalidInput(
                    f"total_count is counted for queries reading at most {request.max_scan} events; "
                    "narrow the filter with date_time, device_id or event_type",
                    "include",
                )
    finally:
        await stream.aclose()
    return count
