"""The engine's parts on their own: retry policy, metrics, signatures, DT rendering, the feed."""

from __future__ import annotations

import asyncio
import hashlib
import random
import warnings
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

import jwt
import msgspec
import pytest

from fleetlog.adapters.bus.memory import MemoryBus
from fleetlog.adapters.storage.sqlite import SqliteStorage
from fleetlog.core.catalog import builtin_catalog
from fleetlog.core.catalog.dt import EXAMPLES
from fleetlog.core.event import Event
from fleetlog.core.registry import Device, Project, Tenant
from fleetlog.delivery import dt_body
from fleetlog.delivery.feed import LogFeed, Tap, seq_of
from fleetlog.delivery.metrics import ConnectorMetrics
from fleetlog.delivery.model import Connector, DeliveryState, Flavour
from fleetlog.delivery.pacer import Pacer
from fleetlog.delivery.retry import RetryPolicy, parse_retry_after
from fleetlog.delivery.sender import Attempt
from fleetlog.delivery.signing import sign
from fleetlog.delivery.worker import Deps, Settings, Worker
from fleetlog.pipeline.directory import Directory
from fleetlog.ports.clock import SystemClock

# -- retry -----------------------------------------------------------------------------------


def test_backoff_grows_exponentially_with_full_jitter_and_a_cap() -> None:
    policy = RetryPolicy(base_seconds=1.0, max_seconds=60.0)
    rng = random.Random(1)
    for attempt in range(12):
        ceiling = min(60.0, 2.0**attempt)
        samples = [policy.backoff(attempt, rng) for _ in range(200)]
        assert all(0 <= s <= ceiling for s in samples)
        assert max(samples) > ceiling * 0.8  # full jitter: the whole range is used
    assert policy.backoff(10_000, rng) <= 60.0


def test_retry_after_seconds_and_dates() -> None:
    now = 1_800_000_000.0
    assert parse_retry_after("120", now) == 120.0
    date = format_datetime(datetime.fromtimestamp(now + 30, UTC), usegmt=True)
    assert parse_retry_after(date, now) == pytest.approx(30.0)
    assert parse_retry_after("soon", now) is None
    policy = RetryPolicy(base_seconds=0.0, max_seconds=0.0)
    assert policy.delay(0, 429, "7", now) == 7.0
    assert policy.delay(0, 503, "99999", now) == 3600.0  # capped
    assert policy.delay(0, 500, "7", now) == 0.0  # only 429 and 503 are honoured
    assert policy.delay(0, 429, "garbage", now) == 0.0


# -- metrics ---------------------------------------------------------------------------------


def test_metrics_count_the_last_three_hours_and_p99() -> None:
    m = ConnectorMetrics()
    t0 = 1_800_000_000_000_000
    for i in range(99):
        m.record(t0, Attempt(200, 0.010), f"e{i}", 1)
    m.record(t0, Attempt(500, 2.0, error="HTTP 500", excerpt="boom"), "bad", 3)
    summary = m.summary(t0)
    assert (summary.success, summary.error) == (99, 1)
    assert summary.p99 is not None and 0.010 <= summary.p99 < 0.010 * 1.2  # bins are ~19 % wide
    assert m.failures[-1] == {
        "time": "2027-01-15T08:00:00.000000Z",
        "status": 500,
        "error": "HTTP 500",
        "body": "boom",
        "eventId": "bad",
        "attempt": 3,
    }
    later = t0 + 3 * 3600 * 1_000_000 + 60_000_000
    m.record(later, Attempt(200, 1.0), "late", 1)
    summary = m.summary(later)
    assert (summary.success, summary.error) == (1, 0)  # the old minute left the window
    assert summary.p99 is not None and 1.0 <= summary.p99 < 1.2
    assert (m.success_total, m.error_total) == (100, 1)  # totals since start stay


def test_metrics_survive_a_snapshot_and_a_damaged_one_is_ignored() -> None:
    m = ConnectorMetrics()
    t0 = 1_800_000_000_000_000
    for i in range(50):
        m.record(t0 + i * 30_000_000, Attempt(200 if i % 5 else 503, 0.001 * (i + 1), error="x"), f"e{i}", 1)
    assert m.changed
    doc = msgspec.json.decode(msgspec.json.encode(m.snapshot()))  # as the document store keeps it
    assert not m.changed
    back = ConnectorMetrics.restore(doc)
    now = t0 + 50 * 30_000_000
    assert back.summary(now) == m.summary(now)
    assert list(back.failures) == list(m.failures) and back.last_success == m.last_success
    assert ConnectorMetrics.restore({"buckets": "nonsense"}).summary(now).success == 0


# -- signatures --------------------------------------------------------------------------------


@pytest.mark.parametrize("secret", ["s", "a much longer secret than thirty-two bytes, as recommended"])
def test_signature_is_a_standard_hs256_jwt(secret: str) -> None:
    body = b'{"event":{}}'
    token = sign(body, secret, 1_700_000_000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PyJWT warns about short secrets; DT allows them
        claims = jwt.decode(token, secret, algorithms=["HS256"], options={"verify_exp": False})
        assert jwt.get_unverified_header(token) == {"alg": "HS256", "typ": "JWT"}
    assert claims == {
        "checksum": hashlib.sha1(body).hexdigest(),
        "checksum_sha256": hashlib.sha256(body).hexdigest(),
        "exp": 1_700_003_600,
        "iat": 1_700_000_000,
        "jti": claims["jti"],
    }
    assert sign(body, secret, 1_700_000_000) != token  # a fresh jti each time


# -- DT rendering -------------------------------------------------------------------------------


def dt_event(type_: str, data: dict[str, object]) -> Event:
    return Event(
        tenant="t", project="p", type=type_, time=1_700_000_000_123_456, data=data, id="a" * 32, device="d", received=1
    )


@pytest.mark.parametrize("type_", sorted(EXAMPLES))
def test_dt_rendering_agrees_with_the_dt_face(type_: str) -> None:
    face = pytest.importorskip("fleetlog.faces.dt.events", reason="the DT face renders events too")
    event = dt_event(type_, EXAMPLES[type_])
    assert dt_body.dt_event(event) == face.event_json(event)


def test_dt_rendering_wraps_data_and_keeps_labels_changed_flat() -> None:
    touch = dt_body.dt_event(dt_event("touch", {}))
    assert list(touch) == ["eventId", "targetName", "eventType", "data", "timestamp"]
    assert touch["data"] == {"touch": {"updateTime": "2023-11-14T22:13:20.123456Z"}}
    assert touch["timestamp"] == "2023-11-14T22:13:20.123456Z"
    flat = dt_body.dt_event(dt_event("labelsChanged", {"added": {"a": "1"}, "modified": {}, "removed": ["b"]}))
    assert flat["data"] == {"added": {"a": "1"}, "modified": {}, "removed": ["b"]}
    device = Device(id="d", tenant="t", project="p", type="temperature", labels={"name": "N", "x": "y"})
    body = dt_body.push_body(dt_event("touch", {}), device, ["name", "absent"])
    assert body.endswith(
        b'"labels":{"name":"N"},"metadata":{"deviceId":"d","projectId":"p","deviceType":"temperature",'
        b'"productNumber":"102058"}}'
    )


# -- the feed -----------------------------------------------------------------------------------


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[tuple[SqliteStorage, MemoryBus]]:
    bus = MemoryBus()
    storage = SqliteStorage(tmp_path / "feed.db", bus=bus)
    for tenant in ("acme", "other"):
        await storage.registry.create_tenant(Tenant(id=tenant))
        await storage.registry.create_project(Project(id="p", tenant=tenant))
        await storage.registry.create_device(Device(id="d", tenant=tenant, project="p"))
    yield storage, bus
    storage.close()


def ev(i: int, tenant: str = "acme", type_: str = "n") -> Event:
    return Event(tenant=tenant, project="p", device="d", type=type_, time=1, received=10**15 + i, data={"i": i})


async def test_a_slow_feed_refills_from_the_store_and_skips_nothing(world: tuple[SqliteStorage, MemoryBus]) -> None:
    storage, bus = world
    tap = Tap(bus)
    tapping = asyncio.create_task(tap.run())
    feed = LogFeed(storage.events, tap, "acme", [None], ["n"], lambda e: e.type == "n", after_seq=0, capacity=5, page=7)
    got: list[int] = []
    for burst in range(10):  # the feed's queue (5) overflows between reads
        await storage.events.append([ev(burst * 20 + i) for i in range(20)] + [ev(-1, "other"), ev(-2, type_="m")])
        await asyncio.sleep(0)  # the tap hands the new events out
        got += [e.data["i"] for e in await feed.next(13, idle_seconds=0.01)]
    while True:
        batch = await feed.next(13, idle_seconds=0.05)
        if not batch:
            break
        got += [e.data["i"] for e in batch]
    assert got == list(range(200))
    assert feed.store_reads > 2 and feed.dropped > 0  # it did overflow and refill
    feed.close()
    tapping.cancel()


async def test_an_idle_feed_moves_past_events_it_does_not_take(world: tuple[SqliteStorage, MemoryBus]) -> None:
    storage, bus = world
    tap = Tap(bus)
    tapping = asyncio.create_task(tap.run())
    feed = LogFeed(storage.events, tap, "acme", [None], ["n"], lambda e: e.type == "n", after_seq=0)
    assert await feed.next(10, idle_seconds=0.01) == []
    stored = await storage.events.append([ev(1, type_="m"), ev(2, type_="m")])
    assert await feed.next(10, idle_seconds=0.01) == []
    assert feed.position == seq_of(stored[-1].event)  # a restart would not re-read them
    taken = await storage.events.append([ev(3)])
    assert await asyncio.wait_for(feed.next(10, idle_seconds=1), 5) == [taken[0].event]
    feed.close()
    tapping.cancel()


async def test_the_tap_hands_events_only_to_feeds_indexed_for_them(world: tuple[SqliteStorage, MemoryBus]) -> None:
    storage, bus = world
    tap = Tap(bus)
    tapping = asyncio.create_task(tap.run())
    offered: list[str] = []

    def counting(name: str) -> Callable[[Event], bool]:
        def match(event: Event) -> bool:
            offered.append(name)
            return True

        return match

    feeds = [
        LogFeed(storage.events, tap, "acme", ["p"], ["n"], counting("p/n"), after_seq=0),
        LogFeed(storage.events, tap, "acme", [None], ["m"], counting("*/m"), after_seq=0),
        LogFeed(storage.events, tap, "acme", [None], [None], counting("*/*"), after_seq=0),
        LogFeed(storage.events, tap, "other", [None], [None], counting("other"), after_seq=0),
    ]
    await storage.events.append([ev(1), ev(2, type_="m")])
    await asyncio.sleep(0.05)
    assert sorted(offered) == ["*/*", "*/*", "*/m", "p/n"]
    for feed in feeds:
        feed.close()
    tapping.cancel()


# -- pacing ------------------------------------------------------------------------------------


async def test_pushes_slow_down_while_the_loop_lags_and_recover() -> None:
    import math
    import time

    from fleetlog.delivery.pacer import FLOOR, Pacer

    pacer = Pacer(target_lag=0.005)
    runner = asyncio.create_task(pacer.run())
    for _ in range(10):  # pushes while something else keeps the loop busy
        await pacer.admit()
        time.sleep(0.03)  # noqa: ASYNC251 -- on purpose: a callback holding the loop (a large batch)
        await asyncio.sleep(0)
    assert pacer.slowdowns > 0
    assert FLOOR <= pacer.rate < math.inf
    for _ in range(200):  # a calm loop: the limit grows until it is lifted
        if pacer.rate == math.inf:
            break
        await pacer.admit()
        await asyncio.sleep(0.005)
    assert pacer.rate == math.inf
    runner.cancel()


async def test_pacing_can_be_switched_off() -> None:
    import math

    from fleetlog.delivery.pacer import Pacer

    pacer = Pacer(target_lag=0)
    await pacer.run()  # returns at once
    await pacer.admit()
    assert pacer.rate == math.inf


# -- the worker ---------------------------------------------------------------------------------


class SwallowingPusher:
    """Never answers; swallows the first cancellation and answers 503 instead, as
    `asyncio.wait_for` does in Python 3.11 when the answer arrives with the cancellation."""

    def __init__(self) -> None:
        self.posting = asyncio.Event()
        self.swallowed = False

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> Attempt:
        self.posting.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            if self.swallowed:
                raise
            self.swallowed = True
        return Attempt(503, 0.0, error="HTTP 503")

    async def close(self) -> None:
        pass


async def test_a_worker_stops_even_when_a_push_swallows_its_cancellation(
    world: tuple[SqliteStorage, MemoryBus],
) -> None:
    storage, bus = world
    tap = Tap(bus)
    tapping = asyncio.create_task(tap.run())
    pusher = SwallowingPusher()
    clock = SystemClock()
    deps = Deps(
        store=storage.events,
        documents=storage.documents,
        directory=Directory(storage.registry, clock, builtin_catalog()),
        clock=clock,
        sender=pusher,
        tap=tap,
        settings=Settings(retry=RetryPolicy(base_seconds=0.001, max_seconds=0.001)),
        sleep=asyncio.sleep,
        pacer=Pacer(target_lag=0),
        on_disable=lambda connector: None,
    )
    connector = Connector(id="w1", tenant="acme", flavour=Flavour.NATIVE, project="p", url="http://127.0.0.1:9/")
    worker = Worker(connector, DeliveryState(seq=0), ConnectorMetrics(), deps)
    worker.start()
    fresh = Event(tenant="acme", project="p", device="d", type="n", time=1, received=clock.now_us())
    await storage.events.append([fresh])
    await asyncio.wait_for(pusher.posting.wait(), 5)
    await asyncio.wait_for(worker.stop(), 5)  # hangs if the swallowed cancellation were the only one
    assert pusher.swallowed
    # The event was not delivered: the saved cursor is still before it, so it is pushed again.
    assert [e.type for e in await storage.events.since("acme", worker.state.seq, 10)] == ["n"]
    tapping.cancel()
