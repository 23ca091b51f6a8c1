"""The EventStore contract: what every storage adapter must do, written once."""

from __future__ import annotations

import asyncio
import random
import re
from dataclasses import replace
from typing import Any

import pytest
from msgspec.structs import replace as copy

from fleetlog.adapters.bus.memory import MemoryBus
from fleetlog.core.event import Event, Outcome
from fleetlog.core.ids import seq_of
from fleetlog.core.query import Cursor, EventQuery, Order, Position
from fleetlog.ports.store import AppendStatus, Dedupe

pytestmark = pytest.mark.asyncio
T0 = 1_700_000_000_000_000


def ev(device: str | None = "d1", type_: str = "touch", t: int = 0, **kw: Any) -> Event:
    project = kw.pop("project", {"d1": "plant", "d2": "plant", "d3": "office", "g1": "lab"}.get(device or "", "plant"))
    tenant = kw.pop("tenant", "globex" if device == "g1" else "acme")
    return Event(tenant=tenant, project=project, device=device, type=type_, time=T0 + t, received=T0 + t, **kw)


async def fill(storage: Any, n: int, seed: int = 1) -> list[Event]:
    rnd = random.Random(seed)
    events = [
        ev(
            rnd.choice(["d1", "d2", "d3"]),
            rnd.choice(["touch", "temperature", "co2"]),
            rnd.randrange(0, 5000) * 1000,
            data={"i": i},
            severity=rnd.randint(1, 5),
            outcome=rnd.choice(list(Outcome)),
        )
        for i in range(n)
    ]
    results = await storage.events.append(events)
    return [r.event for r in results]


def key(e: Event) -> tuple[int, str]:
    return (e.time, e.id)


async def test_append_assigns_time_ordered_pelion_ids(storage: Any) -> None:
    results = await storage.events.append([ev(t=i, data={"i": i}) for i in range(50)])
    ids = [r.event.id for r in results]
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    assert ids == sorted(ids) and len(set(ids)) == 50
    assert all(r.status is AppendStatus.CREATED for r in results)


async def test_get_returns_the_event_with_json_types_kept(storage: Any) -> None:
    data = {"source": "Software", "version": 2.5, "active": True, "count": 3, "nested": {"a": [1, "x", None]}}
    (result,) = await storage.events.append([ev(data=data, description="d", severity=4, app_id="app")])
    got = await storage.events.get("acme", result.event.id)
    assert got == result.event
    assert got.data == data and isinstance(got.data["version"], float) and got.data["active"] is True
    assert await storage.events.get("globex", result.event.id) is None  # another tenant
    assert await storage.events.get("acme", "0" * 32) is None
    assert await storage.events.get("acme", "not-an-id") is None
    assert await storage.events.get("acme", result.event.id[:16] + "0" * 16) is None  # wrong random half


async def test_a_query_page_returns_each_event_exactly_as_stored(storage: Any) -> None:
    tricky = [
        {"big": 2**70, "neg": -(2**63), "tiny": 1e-7, "tenth": 0.1, "exp": 6.02e23, "zero": 0.0},
        {"text": 'quote " backslash \\ newline \n tab \t', "sep": "],[", "uni": "é €  𝄞 \u2028 \u0000"},
        {"nested": [[], {}, [1, [2, [3]]], {"a": {"b": None}}], "empty": ""},
    ]
    stored = [
        r.event
        for r in await storage.events.append(
            [
                ev(t=i * 1000, data=data, description='d "],[" \\', app_id="app,1", category="c", state_change=True)
                for i, data in enumerate(tricky)
            ]
        )
    ]
    for order in Order:
        page = await storage.events.query(EventQuery(tenant="acme", devices=("d1",), order=order))
        expected = stored if order is Order.OLDEST else stored[::-1]
        assert page.events == expected
        assert [type(e.data.get("tenth")) for e in page.events] == [type(e.data.get("tenth")) for e in expected]


async def test_since_pages_through_one_tenants_events_in_commit_order(storage: Any) -> None:
    events = [ev("g1" if i % 3 == 0 else "d1", t=(i * 7919) % 50 * 1000, data={"i": i}) for i in range(60)]
    stored = [r.event for r in await storage.events.append(events[:30])]
    stored += [r.event for r in await storage.events.append(events[30:])]
    acme = [e for e in stored if e.tenant == "acme"]
    got: list[Event] = []
    position = 0
    while page := await storage.events.since("acme", position, 7):
        assert len(page) <= 7
        got += page
        position = seq_of(page[-1].id) or 0
    assert got == acme  # every event once, with its id, in commit order, none of globex
    assert await storage.events.since("acme", seq_of(acme[-1].id) or 0) == []


async def test_query_newest_first_by_default_and_oldest_on_request(storage: Any) -> None:
    await fill(storage, 200)
    newest = await storage.events.query(EventQuery(tenant="acme", limit=1000))
    oldest = await storage.events.query(EventQuery(tenant="acme", order=Order.OLDEST, limit=1000))
    assert len(newest.events) == 200 and not newest.has_more
    assert [key(e) for e in newest.events] == sorted(map(key, newest.events), reverse=True)
    assert [e.id for e in oldest.events] == [e.id for e in reversed(newest.events)]


@pytest.mark.parametrize("order", list(Order))
@pytest.mark.parametrize(
    "filters",
    [
        {},
        {"devices": ("d1",)},
        {"devices": ("d1", "d3")},
        {"types": ("co2",)},
        {"types": ("co2", "touch"), "projects": ("plant",)},
        {"labels": (("room", "cold"),)},
        {"min_severity": 4},
    ],
)
async def test_cursor_pages_cover_everything_once_in_both_directions(
    storage: Any, order: Order, filters: dict[str, Any]
) -> None:
    stored = await fill(storage, 300)
    everything = (await storage.events.query(EventQuery(tenant="acme", order=order, limit=1000, **filters))).events
    assert everything, "the filter should match something"
    q = EventQuery(tenant="acme", order=order, limit=17, **filters)
    pages = []
    page = await storage.events.query(q)
    pages.append(page)
    while page.next_cursor is not None:
        page = await storage.events.query(replace(q, cursor=page.next_cursor))
        pages.append(page)
    walked = [e.id for p in pages for e in p.events]
    assert walked == [e.id for e in everything]
    assert not pages[-1].has_more and all(p.has_more for p in pages[:-1])
    # and back again with prev cursors
    back: list[str] = []
    page = pages[-1]
    back = [e.id for e in page.events]
    while page.prev_cursor is not None:
        page = await storage.events.query(replace(q, cursor=page.prev_cursor))
        back = [e.id for e in page.events] + back
    assert back == walked
    assert len(stored) == 300


async def test_filters(storage: Any) -> None:
    stored = await fill(storage, 300)
    acme = [e for e in stored if e.tenant == "acme"]

    async def ids(**kw: Any) -> set[str]:
        page = await storage.events.query(EventQuery(tenant="acme", limit=1000, **kw))
        return {e.id for e in page.events}

    assert await ids(devices=("d2",)) == {e.id for e in acme if e.device == "d2"}
    assert await ids(types=("co2", "touch")) == {e.id for e in acme if e.type in ("co2", "touch")}
    assert await ids(exclude_types=("co2",)) == {e.id for e in acme if e.type != "co2"}
    assert await ids(projects=("office",)) == {e.id for e in acme if e.project == "office"}
    assert await ids(since=T0 + 1_000_000_000, until=T0 + 2_000_000_000) == {
        e.id for e in acme if T0 + 1_000_000_000 <= e.time < T0 + 2_000_000_000
    }
    assert await ids(outcomes=(Outcome.FAIL,)) == {e.id for e in acme if e.outcome is Outcome.FAIL}
    assert await ids(min_severity=2, max_severity=3) == {e.id for e in acme if 2 <= e.severity <= 3}
    assert await ids(labels=(("room", "cold"),)) == {e.id for e in acme if e.device in ("d1", "d3")}
    assert await ids(labels=(("name", None),)) == {e.id for e in acme if e.device == "d1"}
    assert await ids(labels=(("room", "cold"),), projects=("plant",)) == {e.id for e in acme if e.device == "d1"}
    assert await ids(devices=("nope",)) == set()
    assert await ids(projects=("nope",)) == set()


async def test_tenants_are_isolated(storage: Any) -> None:
    await fill(storage, 50)
    await storage.events.append([ev("g1", t=i) for i in range(5)])
    globex = await storage.events.query(EventQuery(tenant="globex", limit=1000))
    assert {e.device for e in globex.events} == {"g1"} and len(globex.events) == 5
    # naming another tenant's device or project finds nothing
    assert not (await storage.events.query(EventQuery(tenant="acme", devices=("g1",)))).events
    assert not (await storage.events.query(EventQuery(tenant="acme", projects=("lab",)))).events
    assert not (await storage.events.query(EventQuery(tenant="nobody"))).events


async def test_idempotency_key_dedupes_within_and_across_batches(storage: Any) -> None:
    first = await storage.events.append(
        [ev(idempotency_key="k1", data={"n": 1}), ev(idempotency_key="k1", data={"n": 2})]
    )
    assert [r.status for r in first] == [AppendStatus.CREATED, AppendStatus.DUPLICATE]
    assert first[1].event.id == first[0].event.id
    again = await storage.events.append([ev(idempotency_key="k1", data={"n": 3})])
    assert again[0].status is AppendStatus.DUPLICATE and again[0].event.data == {"n": 1}
    other_tenant = await storage.events.append([ev("g1", idempotency_key="k1")])
    assert other_tenant[0].status is AppendStatus.CREATED
    assert await storage.events.count("acme") == 1


async def test_natural_dedupe_needs_same_content(storage: Any) -> None:
    a = ev(type_="door", t=5, data={"x": 1}, description="d", severity=2, app_id="a")
    (r1,) = await storage.events.append([a], Dedupe.NATURAL)
    (r2,) = await storage.events.append([copy(a)], Dedupe.NATURAL)
    (r3,) = await storage.events.append([copy(a, data={"x": 2})], Dedupe.NATURAL)
    (r4,) = await storage.events.append([copy(a)], Dedupe.KEY)
    assert r1.status is AppendStatus.CREATED
    assert r2.status is AppendStatus.CONFLICT and r2.event.id == r1.event.id
    assert r3.status is AppendStatus.CREATED  # different content: a different event
    assert r4.status is AppendStatus.CREATED  # the natural rule applies only when asked
    in_one_batch = await storage.events.append([ev(type_="win", data={}), ev(type_="win", data={})], Dedupe.NATURAL)
    assert [r.status for r in in_one_batch] == [AppendStatus.CREATED, AppendStatus.CONFLICT]
    for i in range(10):  # many events later, the twin is still found
        await storage.events.append([ev(type_="other", t=1000 + i)])
    (late,) = await storage.events.append([copy(a)], Dedupe.NATURAL)
    assert late.status is AppendStatus.CONFLICT and late.event.id == r1.event.id


async def test_latest_by_type_is_the_newest_event_time_of_each_type(storage: Any) -> None:
    await storage.events.append(
        [
            ev(type_="temperature", t=10, data={"value": 1.0}),
            ev(type_="temperature", t=30, data={"value": 3.0}),
            ev(type_="touch", t=20),
        ]
    )
    await storage.events.append([ev(type_="temperature", t=20, data={"value": 2.0})])  # late, older
    latest = await storage.events.latest_by_type("acme", "d1")
    assert set(latest) == {"temperature", "touch"}
    assert latest["temperature"].data == {"value": 3.0}
    assert await storage.events.latest_by_type("acme", "d2") == {}


async def test_purge_removes_only_old_events_of_that_tenant(storage: Any) -> None:
    await storage.events.append([ev(t=i * 1000) for i in range(120)] + [ev("g1", t=i) for i in range(10)])
    removed = await storage.events.purge("acme", T0 + 100 * 1000, batch=7)
    assert removed == 100
    left = (await storage.events.query(EventQuery(tenant="acme", limit=1000))).events
    assert len(left) == 20 and min(e.time for e in left) == T0 + 100 * 1000
    assert await storage.events.count("globex") == 10


async def test_export_streams_every_match_in_chunks(storage: Any) -> None:
    await fill(storage, 250)
    chunks = [
        c async for c in storage.events.export(EventQuery(tenant="acme", devices=("d1", "d2"), limit=5), chunk=40)
    ]
    assert all(len(c) <= 40 for c in chunks) and len(chunks) > 1
    exported = [e.id for c in chunks for e in c]
    expected = (await storage.events.query(EventQuery(tenant="acme", devices=("d1", "d2"), limit=1000))).events
    assert exported == [e.id for e in expected]


async def test_concurrent_appends_are_group_committed_and_all_kept(storage: Any) -> None:
    async def one(i: int) -> str:
        (r,) = await storage.events.append([ev(t=i, data={"i": i})])
        return r.event.id

    ids = await asyncio.gather(*(one(i) for i in range(500)))
    assert len(set(ids)) == 500
    assert await storage.events.count("acme") == 500
    if hasattr(storage, "stats"):
        assert storage.stats["commits"] < 500  # many callers shared a commit


async def test_committed_events_are_published_in_commit_order(storage: Any, bus: MemoryBus) -> None:
    sub = bus.subscribe(lambda e: e.tenant == "acme")
    results = await storage.events.append([ev(t=i) for i in range(20)] + [ev("g1")])
    seen = [sub.get_nowait() for _ in range(20)]
    assert [e.id for e in seen if e] == [r.event.id for r in results[:20]]
    assert sub.get_nowait() is None  # the other tenant's event was not matched


async def test_a_failed_job_leaves_the_others_committed(storage: Any) -> None:
    good = asyncio.ensure_future(storage.events.append([ev(data={"ok": 1})]))
    bad = asyncio.ensure_future(storage.events.append([ev("ghost")]))  # unknown device: refused
    await asyncio.gather(good, bad, return_exceptions=True)
    assert bad.exception() is not None
    assert (await good)[0].status is AppendStatus.CREATED
    assert await storage.events.count("acme") == 1


async def test_bad_cursor_position_is_harmless(storage: Any) -> None:
    await fill(storage, 20)
    page = await storage.events.query(EventQuery(tenant="acme", cursor=Cursor(Position(-5, -5))))
    assert page.events == [] and not page.has_more


async def test_deferred_inbox_keeps_payloads_until_done(storage: Any) -> None:
    await storage.inbox.put([b"one", b"two"])
    taken = await storage.inbox.take(10)
    assert [p for _, p in taken] == [b"one", b"two"]
    await storage.inbox.done([taken[0][0]])
    assert [p for _, p in await storage.inbox.take(10)] == [b"two"]


async def test_a_removed_devices_events_are_still_found_by_its_id(storage: Any) -> None:
    await storage.events.append([ev("d2", t=i) for i in range(3)])
    assert await storage.registry.delete_device("acme", "d2") is True
    page = await storage.events.query(EventQuery(tenant="acme", devices=("d2",), limit=10))
    assert len(page.events) == 3 and {e.device for e in page.events} == {"d2"}
    assert await storage.registry.get_device("acme", "d2") is None
