"""Live feeds: resume without gaps, refill after overflow, bounded memory."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from fleetlog.adapters.bus.memory import MemoryBus
from fleetlog.adapters.storage.sqlite import SqliteStorage
from fleetlog.core.event import Event
from fleetlog.core.registry import Device, Project, Tenant
from fleetlog.pipeline.live import LiveFeed


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[tuple[SqliteStorage, MemoryBus]]:
    bus = MemoryBus()
    storage = SqliteStorage(tmp_path / "live.db", bus=bus)
    await storage.registry.create_tenant(Tenant(id="acme"))
    await storage.registry.create_tenant(Tenant(id="other"))
    await storage.registry.create_project(Project(id="p", tenant="acme"))
    await storage.registry.create_project(Project(id="q", tenant="other"))
    await storage.registry.create_device(Device(id="d", tenant="acme", project="p"))
    await storage.registry.create_device(Device(id="x", tenant="other", project="q"))
    yield storage, bus
    storage.close()


def ev(i: int, tenant: str = "acme") -> Event:
    return Event(
        tenant=tenant,
        project="p" if tenant == "acme" else "q",
        device="d" if tenant == "acme" else "x",
        type="n",
        time=1,
        received=10**15 + i,
        data={"i": i},
    )


async def take(feed: LiveFeed, n: int) -> list[int]:
    out: list[int] = []
    async for event in feed:
        out.append(event.data["i"])
        if len(out) == n:
            break
    return out


async def test_resume_after_an_event_id_replays_then_follows(world: tuple[SqliteStorage, MemoryBus]) -> None:
    storage, bus = world
    first = await storage.events.append([ev(i) for i in range(10)])
    feed = LiveFeed(storage.events, bus, "acme", lambda e: e.tenant == "acme", after=first[3].event.id)
    reader = asyncio.create_task(take(feed, 10))
    await asyncio.sleep(0.01)
    await storage.events.append([ev(i) for i in range(10, 14)] + [ev(99, "other")])
    assert await asyncio.wait_for(reader, 5) == list(range(4, 14))


async def test_a_slow_reader_loses_nothing_and_memory_stays_bounded(world: tuple[SqliteStorage, MemoryBus]) -> None:
    storage, bus = world
    feed = LiveFeed(storage.events, bus, "acme", lambda e: e.tenant == "acme", capacity=5)
    iterator = feed.__aiter__()
    await storage.events.append([ev(0)])
    got = [(await iterator.__anext__()).data["i"]]
    for start in range(1, 200, 20):  # 199 more, while the reader does not read
        await storage.events.append([ev(i) for i in range(start, start + 20)])
        assert len(feed._sub) <= 5  # type: ignore[attr-defined]
    while len(got) < 200:
        got.append((await asyncio.wait_for(iterator.__anext__(), 5)).data["i"])
    assert got == list(range(200))
    assert feed.refills >= 1
    await iterator.aclose()
    assert bus.subscribers == 0
