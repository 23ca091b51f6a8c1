"""Ingest rate through the PostgreSQL adapter vs raw asyncpg COPY of the same rows (and SQLite).

uv run python -m bench.pg_ingest [events]
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import asyncpg

from fleetlog.adapters.storage.postgres import PostgresStorage
from fleetlog.adapters.storage.postgres.appends import EVENT_COLUMNS
from fleetlog.adapters.storage.sqlite import SqliteStorage
from fleetlog.core.event import Event, pack
from fleetlog.core.ids import SequenceClock
from fleetlog.core.registry import Device, Project, Tenant
from fleetlog.ports.store import Dedupe

DSN = "postgresql://postgres@127.0.0.1:5432/test"
N = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
DEVICES = 1000
T0 = 1_790_000_000_000_000


def events(n: int, seed: int) -> list[Event]:
    r = random.Random(seed)
    return [
        Event(
            tenant="acme",
            project="plant",
            device=f"dev-{r.randrange(DEVICES)}",
            type=r.choice(["temperature", "touch", "humidity"]),
            time=T0 + i * 1000,
            received=T0 + i * 1000,
            data={"value": round(r.uniform(-20, 40), 2), "updateTime": "2026-11-22T10:00:00Z"},
            description="",
            severity=2,
        )
        for i in range(n)
    ]


async def setup(storage: object) -> None:
    reg = storage.registry  # type: ignore[attr-defined]
    await reg.create_tenant(Tenant(id="acme"))
    await reg.create_project(Project(id="plant", tenant="acme"))
    for i in range(DEVICES):
        await reg.create_device(Device(id=f"dev-{i}", tenant="acme", project="plant"))


async def schema(conn: asyncpg.Connection, name: str) -> None:
    await conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE; CREATE SCHEMA {name}")


async def run_batches(storage: object, evs: list[Event], batch: int, callers: int, dedupe: Dedupe) -> float:
    store = storage.events  # type: ignore[attr-defined]
    chunks = [evs[i : i + batch] for i in range(0, len(evs), batch)]
    queue = list(reversed(chunks))

    async def caller() -> None:
        while queue:
            await store.append(queue.pop(), dedupe)

    start = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(callers)))
    return len(evs) / (time.perf_counter() - start)


async def adapter(kind: str, batch: int, callers: int, dedupe: Dedupe = Dedupe.KEY) -> float:
    n = N if batch > 1 else N // 5
    evs = events(n, 1)
    if kind == "postgres":
        admin = await asyncpg.connect(DSN)
        await schema(admin, "bench_pg")
        storage: object = PostgresStorage(f"{DSN}?search_path=bench_pg")
        await setup(storage)
        rate = await run_batches(storage, evs, batch, callers, dedupe)
        await storage.aclose()  # type: ignore[attr-defined]
        await admin.execute("DROP SCHEMA bench_pg CASCADE")
        await admin.close()
        return rate
    with tempfile.TemporaryDirectory() as tmp:
        storage = SqliteStorage(Path(tmp) / "b.db")
        await setup(storage)
        rate = await run_batches(storage, evs, batch, callers, dedupe)
        storage.close()  # type: ignore[attr-defined]
        return rate


async def raw_copy(batch: int) -> float:
    """The floor: the same rows, already built, COPYed in transactions of `batch` rows."""
    admin = await asyncpg.connect(DSN)
    await schema(admin, "bench_raw")
    storage = PostgresStorage(f"{DSN}?search_path=bench_raw")
    await setup(storage)
    await storage.aclose()
    conn = await asyncpg.connect(f"{DSN}?search_path=bench_raw")
    pks = dict(await conn.fetch("SELECT id, pk FROM devices"))
    seqs = SequenceClock()
    rows = []
    for e in events(N, 1):
        seq = seqs.next(e.received // 1000)
        rows.append(
            (
                seq,
                int.from_bytes(os.urandom(8), "big", signed=True),
                1,
                1,
                pks[e.device],
                e.type,
                e.time,
                e.outcome.value,
                e.severity,
                e.state_change,
                None,
                pack(e),
            )
        )
    start = time.perf_counter()
    for i in range(0, len(rows), batch):
        async with conn.transaction():
            await conn.copy_records_to_table("events", records=rows[i : i + batch], columns=EVENT_COLUMNS)
    rate = N / (time.perf_counter() - start)
    await conn.close()
    await admin.execute("DROP SCHEMA bench_raw CASCADE")
    await admin.close()
    return rate


async def main() -> None:
    print(f"{N} events, {DEVICES} devices, 3 indexes + idem index; rates in events/s")
    print(f"raw asyncpg COPY, 1000 a transaction:            {await raw_copy(1000):>9,.0f}")
    for kind in ("postgres", "sqlite"):
        print(f"{kind:8} adapter, batches of 1000, 1 caller:       {await adapter(kind, 1000, 1):>9,.0f}")
        print(f"{kind:8} adapter, batches of 100, 16 callers:      {await adapter(kind, 100, 16):>9,.0f}")
        print(f"{kind:8} adapter, single events, 64 callers:       {await adapter(kind, 1, 64):>9,.0f}")
        print(f"{kind:8} adapter, single, 64 callers, 409 dedupe:  {await adapter(kind, 1, 64, Dedupe.NATURAL):>9,.0f}")


asyncio.run(main())
