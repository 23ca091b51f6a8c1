"""The Bus contract, on every bus adapter; then what only the NATS bus does (several
processes, gap detection, subjects)."""

from __future__ import annotations

import asyncio
import importlib.util
import inspect
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from fleetlog.adapters.bus.memory import MemoryBus
from fleetlog.core.event import Event
from tests.services import require

NATS_URL = "nats://127.0.0.1:4222"
WAIT = 20.0  # seconds: a bound against hanging, not a speed requirement


def ev(seq: int, tenant: str = "acme", project: str = "plant", device: str = "d1", **kw: Any) -> Event:
    return Event(tenant=tenant, project=project, device=device, type="t", time=seq, id=f"{seq:016x}{seq:016x}", **kw)


async def nats_bus(name: str | None = None, **kw: Any) -> Any:
    require("NATS", 4222)
    if importlib.util.find_spec("nats") is None:
        pytest.skip("nats-py is not installed")
    from fleetlog.adapters.bus.nats import NatsBus

    bus = NatsBus(f"{NATS_URL}/{name or 't' + uuid.uuid4().hex[:12]}", **kw)
    await bus.open()
    return bus


async def close_bus(bus: Any) -> None:
    if hasattr(bus, "aclose"):
        await bus.delete_stream()
        await bus.aclose()


@pytest.fixture(params=["memory", "nats"])
async def bus(request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    b = MemoryBus() if request.param == "memory" else await nats_bus()
    yield b
    await close_bus(b)


async def receive(sub: Any, n: int) -> list[Event]:
    return [await asyncio.wait_for(sub.get(), WAIT) for _ in range(n)]


async def test_subscribers_get_what_matches_in_publish_order(bus: Any) -> None:
    acme = bus.subscribe(lambda e: e.tenant == "acme")
    d2 = bus.subscribe(lambda e: e.device == "d2")
    batches = [
        [ev(1), ev(2, device="d2"), ev(3, tenant="globex", project="lab")],
        [ev(4, device="d2")],
        [ev(5, project="office"), ev(6)],
    ]
    for batch in batches:
        bus.publish(batch)
    assert [e.id for e in await receive(acme, 5)] == [ev(s).id for s in (1, 2, 4, 5, 6)]
    assert [e.id for e in await receive(d2, 2)] == [ev(2).id, ev(4).id]
    # the last event published has arrived, so everything has: nothing else matched
    assert acme.get_nowait() is None and d2.get_nowait() is None


async def test_events_arrive_whole(bus: Any) -> None:
    sub = bus.subscribe(lambda e: True)
    sent = ev(1, data={"big": 2**70, "f": 2.5, "nested": [None, True, "x"]}, description="d", severity=5)
    bus.publish([sent])
    (got,) = await receive(sub, 1)
    assert got == sent and got.data["big"] == 2**70


async def test_a_full_queue_drops_and_counts_without_slowing_others(bus: Any) -> None:
    slow = bus.subscribe(lambda e: True, capacity=5)
    fast = bus.subscribe(lambda e: True, capacity=10_000)
    for start in range(0, 50, 10):
        bus.publish([ev(s) for s in range(start + 1, start + 11)])
    assert [e.id for e in await receive(fast, 50)] == [ev(s).id for s in range(1, 51)]
    kept = [slow.get_nowait() for _ in range(6)]
    assert [e.id for e in kept if e] == [ev(s).id for s in range(1, 6)] and kept[5] is None
    assert slow.dropped == 45 and fast.dropped == 0


async def test_publish_is_synchronous_and_returns_with_nobody_reading(bus: Any) -> None:
    assert not inspect.iscoroutinefunction(bus.publish)
    bus.subscribe(lambda e: True, capacity=1)  # never read
    for start in range(0, 5000, 500):
        assert bus.publish([ev(s) for s in range(start + 1, start + 501)]) is None
    watcher = bus.subscribe(lambda e: e.device == "last")
    bus.publish([ev(9999, device="last")])
    assert [e.id for e in await receive(watcher, 1)] == [ev(9999).id]


async def test_close_unsubscribes_and_releases_a_waiting_reader(bus: Any) -> None:
    sub = bus.subscribe(lambda e: True)
    watcher = bus.subscribe(lambda e: True)
    waiting = asyncio.ensure_future(sub.get())
    await asyncio.sleep(0)
    sub.close()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(waiting, WAIT)
    bus.publish([ev(1)])
    await receive(watcher, 1)
    assert sub.get_nowait() is None


# -- NATS only ---------------------------------------------------------------------------


async def test_processes_sharing_an_installation_see_each_others_events() -> None:
    name = "t" + uuid.uuid4().hex[:12]
    one, two = await nats_bus(name), await nats_bus(name)
    other_installation = await nats_bus()
    try:
        at_one, at_two = one.subscribe(lambda e: True), two.subscribe(lambda e: True)
        elsewhere = other_installation.subscribe(lambda e: True)
        one.publish_after(0, [ev(1), ev(2)])
        assert [e.id for e in await receive(at_two, 2)] == [ev(1).id, ev(2).id]
        two.publish_after(2, [ev(3)])  # the next commit, by the other process
        assert [e.id for e in await receive(at_two, 1)] == [ev(3).id]
        assert [e.id for e in await receive(at_one, 3)] == [ev(s).id for s in (1, 2, 3)]
        other_installation.publish([ev(7)])
        assert [e.id for e in await receive(elsewhere, 1)] == [ev(7).id]
        assert at_one.get_nowait() is None and at_two.get_nowait() is None
        assert one.gaps == two.gaps == 0
    finally:
        await close_bus(one)
        await close_bus(two)
        await close_bus(other_installation)


async def test_a_missed_commit_counts_as_dropped_and_a_late_one_is_skipped() -> None:
    bus = await nats_bus()
    try:
        sub = bus.subscribe(lambda e: True)
        bus.publish_after(0, [ev(1)])
        await receive(sub, 1)
        assert sub.dropped == 0
        bus.publish_after(5, [ev(7)])  # the commit that ended at seq 5 never arrived
        await receive(sub, 1)
        assert sub.dropped == 1 and bus.gaps == 1  # a LiveFeed now refills from the store
        bus.publish_after(1, [ev(5)])  # it arrives late: skipped (the refill covered it)
        bus.publish_after(7, [ev(8)])
        assert [e.id for e in await receive(sub, 1)] == [ev(8).id]
        assert bus.stale == 1 and sub.dropped == 1
    finally:
        await close_bus(bus)


async def test_a_large_commit_is_split_into_linked_messages_by_tenant_and_project() -> None:
    import nats

    bus = await nats_bus()
    nc = await nats.connect(NATS_URL)
    try:
        subjects: list[str] = []

        async def seen(msg: Any) -> None:
            subjects.append(msg.subject)

        await nc.subscribe(f"{bus.prefix}.>", cb=seen)
        await nc.flush()
        sub = bus.subscribe(lambda e: True, capacity=100_000)
        blob = "x" * 2000
        events = [ev(s, data={"blob": blob}) for s in range(1, 1001)]  # ~2 MB: several messages
        events += [ev(1001, tenant="t.with.dots", project="p*>")]
        bus.publish_after(0, events)
        got = await receive(sub, len(events))
        assert [e.id for e in got] == [e.id for e in events]
        assert bus.gaps == 0 and sub.dropped == 0
        assert len(subjects) > 2
        assert set(subjects) == {f"{bus.prefix}.acme.plant", f"{bus.prefix}.t%2Ewith%2Edots.p%2A%3E"}
    finally:
        await nc.close()
        await close_bus(bus)


async def test_publish_before_open_waits_and_a_full_outbox_drops() -> None:
    require("NATS", 4222)
    from fleetlog.adapters.bus.nats import NatsBus

    bus = NatsBus(f"{NATS_URL}/t{uuid.uuid4().hex[:12]}", max_outbox=100)
    sub = bus.subscribe(lambda e: True)
    bus.publish([ev(s) for s in range(1, 61)])
    bus.publish([ev(s) for s in range(61, 121)])  # would exceed the outbox: dropped
    assert bus.dropped == 60
    await bus.open()
    try:
        assert [e.id for e in await receive(sub, 60)] == [ev(s).id for s in range(1, 61)]
    finally:
        await close_bus(bus)


def test_installation_names_are_checked() -> None:
    if importlib.util.find_spec("nats") is None:
        pytest.skip("nats-py is not installed")
    from fleetlog.adapters.bus.nats import NatsBus

    assert NatsBus("nats://127.0.0.1:4222").stream == "FLEETLOG"
    assert NatsBus("nats://127.0.0.1:4222/site_b").prefix == "site_b.events"
    with pytest.raises(ValueError, match="installation name"):
        NatsBus("nats://127.0.0.1:4222/a.b")
