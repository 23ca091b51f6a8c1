"""The big store for the query benchmark, built directly (not over HTTP) and cached.

Build: fleetlog's own storage creates the schema and the registry (tenant, 10 projects,
10,000 devices, keys), then the events go in with plain SQL in arrival (seq) order inside
`schema.bulk_load` (the indexes and triggers of `events` dropped, then built afterwards and the
per-device index filled: a sort instead of millions of random inserts). The rows are what
fleetlog itself writes: same columns, JSON docs of real `Event`s, derived `device_state`
filled. No ANALYZE is run: a store grown by ingest has no planner statistics either.

Timing: the store query itself in-process (`SqliteEventStore._query` on a reader connection,
exactly what a GET of /v1/tenants/T/events?device=D&limit=100 runs), the same through the
reader thread pool (`await store.query`), and the floor: the bare keyset SQL without decoding.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import random
import shutil
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from starlette.datastructures import QueryParams

from bench.servers import OPERATOR_TOKEN
from fleetlog.adapters.storage.sqlite import SqliteStorage
from fleetlog.adapters.storage.sqlite.connection import connect
from fleetlog.adapters.storage.sqlite.events import _plan
from fleetlog.adapters.storage.sqlite.keys import KeyCache
from fleetlog.adapters.storage.sqlite.schema import MIGRATIONS, bulk_load
from fleetlog.core.catalog import builtin_catalog
from fleetlog.core.event import Event, SourceKind, pack
from fleetlog.core.ids import SequenceClock
from fleetlog.core.query import EventQuery
from fleetlog.core.registry import Device, Principal, Project, Role, Tenant
from fleetlog.faces.native import params as qp
from fleetlog.pipeline.directory import Directory
from fleetlog.ports.clock import SystemClock

CACHE = Path(os.environ.get("BENCH_CACHE") or Path(__file__).resolve().parent / ".cache")
TENANT = "bench"
PROJECTS = 10
FORMAT = 2  # bump when the generated data changes: cached stores of another format are rebuilt
TYPES = [  # (type, weight, data maker)
    ("temperature", 50, lambda r: {"value": round(r.uniform(-25, 40), 2), "updateTime": "2024-05-01T12:00:01Z"}),
    (
        "humidity",
        20,
        lambda r: {"temperature": round(r.uniform(-25, 40), 2), "relativeHumidity": round(r.uniform(0, 100), 1)},
    ),
    ("batteryStatus", 10, lambda r: {"percentage": r.randint(0, 100)}),
    ("networkStatus", 10, lambda r: {"signalStrength": r.randint(0, 100), "rssi": r.randint(-100, -40)}),
    ("touch", 10, lambda r: {}),
]


def label(events: int) -> str:
    return f"{events // 1_000_000}m" if events % 1_000_000 == 0 else f"{events // 1000}k"


def ensure(events: int, devices: int = 10_000, log: Any = print) -> dict[str, Any]:
    """The cached store of `events` events (built if missing); returns its description."""
    directory = CACHE / f"store-{label(events)}"
    info_path = directory / "store.json"
    if info_path.exists():
        info: dict[str, Any] = json.loads(info_path.read_text())
        if info.get("format") == FORMAT and info.get("schema_version") == len(MIGRATIONS):
            info["reused"] = True
            return info
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    started = time.perf_counter()
    log(f"building a store of {events:,} events in {directory} (cached for later runs) ...")
    keys = asyncio.run(_registry(directory, devices))
    _fill(directory / "fleetlog.db", events, devices, log)
    info = {
        "format": FORMAT,
        "schema_version": len(MIGRATIONS),
        "events": events,
        "devices": devices,
        "projects": PROJECTS,
        "tenant": TENANT,
        **keys,
        "path": str(directory),
        "db_bytes": (directory / "fleetlog.db").stat().st_size,
        "build_seconds": round(time.perf_counter() - started, 1),
        "built": time.strftime("%Y-%m-%d %H:%M"),
    }
    info_path.write_text(json.dumps(info, indent=2))
    info["reused"] = False
    return info


async def _registry(directory: Path, devices: int) -> dict[str, str]:
    storage = SqliteStorage(directory / "fleetlog.db")
    try:
        d = Directory(storage.registry, SystemClock(), builtin_catalog())
        await d.ensure_operator_key(OPERATOR_TOKEN)
        await d.create_tenant(Tenant(id=TENANT, retention_days=36500))
        for p in range(PROJECTS):
            await d.create_project(Project(id=f"proj-{p}", tenant=TENANT))
        for start in range(0, devices, 500):
            await asyncio.gather(
                *(
                    d.create_device(Device(id=f"dev-{i}", tenant=TENANT, project=f"proj-{i % PROJECTS}"))
                    for i in range(start, min(devices, start + 500))
                )
            )
        operator = Principal(key_id="operator", role=Role.ADMIN)
        write, _ = await d.create_key(operator, TENANT, None, Role.WRITE, "bench")
        read, _ = await d.create_key(operator, TENANT, None, Role.READ, "bench")
        return {"write_key": write, "read_key": read}
    finally:
        storage.close()


def load_events(conn: sqlite3.Connection, rows: Iterator[tuple[Any, ...]], total: int, log: Any) -> None:
    """Rows of `events` (built by the caller) in transactions of 50,000, with progress every
    million: how the bench stores are filled inside `schema.bulk_load`."""
    started = time.perf_counter()
    done = 0
    while chunk := list(itertools.islice(rows, 50_000)):
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO events VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", chunk)
        conn.execute("COMMIT")
        done += len(chunk)
        if done % 1_000_000 == 0 or done == total:
            log(f"  {done:,} events ({done / (time.perf_counter() - started):,.0f}/s)")


def _fill(db: Path, events: int, devices: int, log: Any) -> None:
    conn = sqlite3.connect(str(db), isolation_level=None)
    conn.execute("PRAGMA synchronous=OFF")  # a crash while building just means building again
    conn.execute("PRAGMA cache_size=-1048576")
    conn.execute("PRAGMA temp_store=MEMORY")
    tenant_pk = conn.execute("SELECT pk FROM tenants WHERE id = ?", (TENANT,)).fetchone()[0]
    device_pk = dict(conn.execute("SELECT id, pk FROM devices").fetchall())
    project_pk = dict(conn.execute("SELECT id, pk FROM projects").fetchall())
    rnd = random.Random(20240501)
    names = [t for t, _, _ in TYPES]
    weights = [w for _, w, _ in TYPES]
    makers = {t: m for t, _, m in TYPES}
    now_us = time.time_ns() // 1000
    span_us = 30 * 86_400_000_000  # the last 30 days
    first_us = now_us - span_us
    clock = SequenceClock()
    state: dict[tuple[int, str], tuple[int, int]] = {}

    def rows() -> Iterator[tuple[Any, ...]]:
        for k in range(events):
            d = rnd.randrange(devices)
            kind = rnd.choices(names, weights)[0]
            received = first_us + k * span_us // events
            when = received - rnd.randrange(0, 2_000_000)  # measured up to 2 s before arrival
            event = Event(
                tenant=TENANT,
                project=f"proj-{d % PROJECTS}",
                type=kind,
                time=when,
                data=makers[kind](rnd),
                received=received,
                source=SourceKind.DEVICE,
                device=f"dev-{d}",
                description="",
                severity=3,
                app_id="bench-agent",
            )
            seq = clock.next(received // 1000)
            dpk = device_pk[f"dev-{d}"]
            prev = state.get((dpk, kind))
            if prev is None or (when, seq) > prev:
                state[(dpk, kind)] = (when, seq)
            yield (
                seq,
                rnd.getrandbits(64) - (1 << 63),
                tenant_pk,
                project_pk[event.project],
                dpk,
                kind,
                when,
                event.outcome.value,
                event.severity,
                event.state_change,
                None,
                pack(event),
            )

    with bulk_load(conn, log):
        load_events(conn, rows(), events, log)
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO device_state VALUES (?,?,?,?)", [(d, t, tm, s) for (d, t), (tm, s) in state.items()]
        )
        conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))]


def summary(seconds: list[float]) -> dict[str, float]:
    ms = [s * 1000 for s in seconds]
    return {
        "n": len(ms),
        "p50_ms": _pct(ms, 50),
        "p90_ms": _pct(ms, 90),
        "p99_ms": _pct(ms, 99),
        "p999_ms": _pct(ms, 99.9),
        "max_ms": max(ms),
        "mean_ms": sum(ms) / len(ms),
    }


def query_timings(info: dict[str, Any], samples: int, warmup: int = 500) -> dict[str, Any]:
    """Latency of one newest-first page of 100 events of a random device, in-process."""
    db = Path(info["path"]) / "fleetlog.db"
    storage = SqliteStorage(db)
    store = storage.events
    conn = connect(db, readonly=True)
    rnd = random.Random(7)
    devices = info["devices"]
    pks = dict(conn.execute("SELECT id, pk FROM devices").fetchall())

    def query_for(d: int) -> EventQuery:
        # exactly what GET ?device=dev-d&limit=100 builds for a tenant-wide read key
        return qp.event_query(TENANT, QueryParams(f"device=dev-{d}&limit=100"))

    # the device's index range (all of it in device_index after a bulk load) and its 101 rows
    raw_sql = (
        "SELECT e.seq, e.tail, e.time, e.doc FROM device_index d CROSS JOIN events e ON e.seq = d.seq "
        "WHERE d.device = ? ORDER BY d.time DESC, d.seq DESC LIMIT 101"
    )
    plan = [r[-1] for r in conn.execute(f"EXPLAIN QUERY PLAN {raw_sql}", (1,)).fetchall()]
    conn.execute("BEGIN")
    store_sql = _plan(conn, KeyCache(), query_for(0))
    conn.execute("COMMIT")
    assert store_sql is not None
    store_plan = [r[-1] for r in conn.execute(f"EXPLAIN QUERY PLAN {store_sql[0]}", store_sql[1]).fetchall()]
    direct: list[float] = []
    raw: list[float] = []
    sizes: list[int] = []
    for n in range(warmup + samples):
        d = rnd.randrange(devices)
        q = query_for(d)
        t0 = time.perf_counter()
        conn.execute("BEGIN")
        page = store._query(conn, q)  # the store query itself, as a reader thread runs it
        conn.execute("COMMIT")
        t1 = time.perf_counter()
        conn.execute("BEGIN")
        rows = conn.execute(raw_sql, (pks[f"dev-{d}"],)).fetchall()
        conn.execute("COMMIT")
        t2 = time.perf_counter()
        if n >= warmup:
            direct.append(t1 - t0)
            raw.append(t2 - t1)
            sizes.append(len(page.events))
        assert len(rows) >= len(page.events)

    async def through_pool() -> list[float]:
        out = []
        for n in range(warmup + samples):
            q = query_for(rnd.randrange(devices))
            t0 = time.perf_counter()
            await store.query(q)
            if n >= warmup:
                out.append(time.perf_counter() - t0)
        return out

    pooled = asyncio.run(through_pool())
    conn.close()
    storage.close()
    return {
        "store_query": summary(direct),
        "store_query_via_pool": summary(pooled),
        "raw_sql_floor": summary(raw),
        "events_per_page_min": min(sizes),
        "raw_plan": plan,
        "store_plan": store_plan,
        "store_sql": store_sql[0],
    }
