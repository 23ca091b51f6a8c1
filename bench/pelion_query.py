"""The Pelion /v3/device-events query over a store of 10 million events.

    uv run python -m bench.pelion_query                 # 10M events (built once, cached)
    uv run python -m bench.pelion_query --events 1000000 --samples 500

The store (bench/.cache/pelion-<n>/) is built directly, as bench/store.py builds the core's:
fleetlog's own storage makes the schema and registry (one tenant, 4 projects, 10,000 devices),
then the events go in with plain SQL in arrival order inside `schema.bulk_load` (indexes
dropped and built afterwards). Events are spread over 30 days: sensor readings and Pelion codes (update results,
campaign and registry codes), each filled from the catalog as ingest fills it.

Measured, each with p50/p99 over random windows, half ASC and half DESC:
- first page: `date_time__gte` + `date_time__lte` (a one-day window) + `event_type__in` (three
  update codes), limit 50: in-process (query-string parsing, the face's query path, rendering,
  JSON) and over HTTP (a `fleetlog serve` process, one client, sequential requests);
- paging: 200 pages of 100 through `after` over 30 days of common types, the cost of page 1-10
  against page 191-200.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
from starlette.datastructures import QueryParams

from bench.store import load_events
from fleetlog.adapters.storage.sqlite import SqliteStorage
from fleetlog.adapters.storage.sqlite.schema import MIGRATIONS, bulk_load
from fleetlog.core.catalog import builtin_catalog
from fleetlog.core.event import Event, Outcome, SourceKind, pack
from fleetlog.core.ids import SequenceClock
from fleetlog.core.registry import Device, Principal, Project, Role, Tenant
from fleetlog.core.timefmt import rfc3339
from fleetlog.faces.pelion import filters as flt
from fleetlog.faces.pelion import query as pq
from fleetlog.faces.pelion import render
from fleetlog.faces.pelion.auth import pelion_token
from fleetlog.faces.pelion.routes import filter_pairs, parse_limit, parse_order
from fleetlog.pipeline.directory import Directory
from fleetlog.ports.clock import SystemClock
from fleetlog.ports.store import EventStore

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(__file__).resolve().parent / ".cache"
OPERATOR_TOKEN = "fl_operator_pelion-bench-token-0123456789abcdef"
TENANT = "pelion-bench"
PROJECTS = 4
DEVICES = 10_000
DAY_US = 86_400_000_000
SPAN_US = 30 * DAY_US
FORMAT = 1  # bump when the generated data changes
UPDATE_CODES = ["UPD2_OK_18", "UPD4_FAIL_24", "SYS_112"]
COMMON = ["temperature", "touch"]
MIX = [  # (type, weight %)
    ("temperature", 45), ("touch", 15), ("networkStatus", 15), ("SYS_100", 4), ("SYS_108", 4),
    ("SYS_110", 2), ("SYS_111", 2), ("SYS_112", 4), ("UPD2_OK_18", 4), ("UPD4_FAIL_24", 2),
    ("UPD4_FAIL_33", 1), ("UPD4_FAIL_41", 1), ("SYS_105", 0.5), ("SYS_106", 0.5),
]  # fmt: skip
_json = msgspec.json.Encoder()


def log(message: str) -> None:
    print(message, flush=True)


# -- the store ---------------------------------------------------------------------------------


def ensure(events: int, rebuild: bool = False) -> dict[str, Any]:
    directory = CACHE / f"pelion-{events}"
    info_path = directory / "store.json"
    if info_path.exists() and not rebuild:
        info: dict[str, Any] = json.loads(info_path.read_text())
        if info.get("format") == FORMAT and info.get("schema_version") == len(MIGRATIONS):
            return info
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    started = time.perf_counter()
    log(f"building a store of {events:,} events in {directory} (cached for later runs) ...")
    read_key = asyncio.run(_registry(directory))
    first_us = _fill(directory / "fleetlog.db", events)
    info = {
        "format": FORMAT, "schema_version": len(MIGRATIONS), "events": events, "path": str(directory),
        "read_key": read_key, "first_us": first_us, "last_us": first_us + SPAN_US,
        "db_bytes": (directory / "fleetlog.db").stat().st_size,
        "build_seconds": round(time.perf_counter() - started, 1),
    }  # fmt: skip
    info_path.write_text(json.dumps(info, indent=2))
    return info


async def _registry(directory: Path) -> str:
    storage = SqliteStorage(directory / "fleetlog.db")
    try:
        d = Directory(storage.registry, SystemClock(), builtin_catalog())
        await d.ensure_operator_key(OPERATOR_TOKEN)
        await d.create_tenant(Tenant(id=TENANT, retention_days=36500))
        for p in range(PROJECTS):
            await d.create_project(Project(id=f"proj-{p}", tenant=TENANT))
        for start in range(0, DEVICES, 500):
            await asyncio.gather(
                *(
                    d.create_device(Device(id=f"dev-{i}", tenant=TENANT, project=f"proj-{i % PROJECTS}"))
                    for i in range(start, min(DEVICES, start + 500))
                )
            )
        operator = Principal(key_id="operator", role=Role.ADMIN)
        token, _ = await d.create_key(operator, TENANT, None, Role.READ, "pelion-bench")
        return pelion_token(token)
    finally:
        storage.close()


def _fill(db: Path, events: int) -> int:
    catalog = builtin_catalog()
    conn = sqlite3.connect(str(db), isolation_level=None)
    # (The journal stays WAL: switching it needs the only connection, and the storage's writer
    # connection is closed only when it is collected.)
    for pragma in ("synchronous=OFF", "cache_size=-1048576", "temp_store=MEMORY"):
        conn.execute(f"PRAGMA {pragma}")
    tenant_pk = conn.execute("SELECT pk FROM tenants WHERE id = ?", (TENANT,)).fetchone()[0]
    device_pk = dict(conn.execute("SELECT id, pk FROM devices").fetchall())
    project_pk = dict(conn.execute("SELECT id, pk FROM projects").fetchall())
    rnd = random.Random(20241122)
    names = [t for t, _ in MIX]
    weights = [w for _, w in MIX]
    first_us = (time.time_ns() // 1000) - SPAN_US
    clock = SequenceClock()

    def rows() -> Iterator[tuple[Any, ...]]:
        for k in range(events):
            d = rnd.randrange(DEVICES)
            kind = rnd.choices(names, weights)[0]
            received = first_us + k * SPAN_US // events
            when = received - rnd.randrange(0, 2_000_000)
            found = catalog.get(kind)
            code = found if found is not None and found.family == "pelion" else None  # as ingest fills it
            event = Event(
                tenant=TENANT, project=f"proj-{d % PROJECTS}", type=kind, time=when, received=received,
                data={"value": round(rnd.uniform(-20, 30), 2)} if kind == "temperature" else {},
                source=SourceKind.SYSTEM if kind.startswith("SYS_") else SourceKind.DEVICE, device=f"dev-{d}",
                description=code.title if code else "", category=code.category if code else None,
                outcome=code.outcome if code else Outcome.INFO, state_change=bool(code and code.state_change),
            )  # fmt: skip
            seq = clock.next(received // 1000)
            yield (seq, rnd.getrandbits(64) - (1 << 63), tenant_pk, project_pk[event.project],
                   device_pk[event.device], kind, when, event.outcome.value, event.severity, event.state_change,
                   None, pack(event))  # fmt: skip

    with bulk_load(conn, log):
        load_events(conn, rows(), events, log)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return first_us


# -- measuring ---------------------------------------------------------------------------------


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))]


def summary(seconds: list[float]) -> dict[str, float]:
    ms = [s * 1000 for s in seconds]
    return {"n": len(ms), "p50_ms": round(pct(ms, 50), 3), "p99_ms": round(pct(ms, 99), 3),
            "max_ms": round(max(ms), 3), "mean_ms": round(sum(ms) / len(ms), 3)}  # fmt: skip


def first_page_params(info: dict[str, Any], rnd: random.Random, n: int) -> str:
    start = rnd.randrange(info["first_us"], info["last_us"] - DAY_US)
    order = "ASC" if n % 2 == 0 else "DESC"
    return (
        f"date_time__gte={rfc3339(start)}&date_time__lte={rfc3339(start + DAY_US)}"
        f"&event_type__in={','.join(UPDATE_CODES)}&order={order}"
    )


async def face_page(store: EventStore, params: str, after: str | None = None) -> tuple[bytes, dict[str, Any]]:
    """The face's query path for one request (everything but authentication and HTTP)."""
    qs = QueryParams(params)
    after_event = await store.get(TENANT, after) if after else None
    request = pq.Request(
        tenant=TENANT, projects=(), filters=flt.parse(filter_pairs(qs)), ascending=parse_order(qs.get("order")),
        limit=parse_limit(qs.get("limit")), after=after_event,
    )  # fmt: skip
    listing = await pq.list_events(store, request)
    body = render.page(listing.events, has_more=listing.has_more, limit=request.limit, after=after,
                       ascending=request.ascending, total=None)  # fmt: skip
    return _json.encode(body), body


async def in_process(info: dict[str, Any], samples: int, pages: int) -> dict[str, Any]:
    storage = SqliteStorage(Path(info["path"]) / "fleetlog.db")
    store = storage.events
    try:
        rnd = random.Random(7)
        timings: list[float] = []
        sizes: list[int] = []
        for n in range(samples + 200):
            params = first_page_params(info, rnd, n)
            t0 = time.perf_counter()
            _, body = await face_page(store, params)
            if n >= 200:  # after a warm-up
                timings.append(time.perf_counter() - t0)
                sizes.append(len(body["data"]))
        paging: list[float] = []
        for order in ("ASC", "DESC"):
            after: str | None = None
            for _ in range(pages):
                params = f"event_type__in={','.join(COMMON)}&limit=100&order={order}"
                t0 = time.perf_counter()
                _, body = await face_page(store, params, after)
                paging.append(time.perf_counter() - t0)
                after = body["data"][-1]["id"]
        return {"first_page": summary(timings), "items_per_page_min": min(sizes), **_paging(paging, pages)}
    finally:
        storage.close()


def _paging(timings: list[float], pages: int) -> dict[str, Any]:
    """Early pages against late pages, both orders together."""
    early = [t for i, t in enumerate(timings) if i % pages < 10]
    late = [t for i, t in enumerate(timings) if i % pages >= pages - 10]
    return {"paging_pages_1_10": summary(early), f"paging_pages_{pages - 9}_{pages}": summary(late)}


def over_http(info: dict[str, Any], samples: int, pages: int) -> dict[str, Any]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "FLEETLOG_ADMIN_TOKEN": OPERATOR_TOKEN, "FLEETLOG_LOG_LEVEL": "warning"}
    log_file = Path(info["path"]) / "server.log"
    with open(log_file, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "fleetlog", "serve", "--data-dir", info["path"], "--port", str(port)],
            cwd=ROOT, env=env, stdout=out, stderr=out,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"server did not start: {log_file.read_text()[-2000:]}")
            time.sleep(0.1)
        headers = {"Authorization": f"Bearer {info['read_key']}"}
        rnd = random.Random(11)
        timings: list[float] = []
        with httpx.Client(base_url=url, headers=headers, timeout=30) as http:
            for n in range(samples + 200):
                params = first_page_params(info, rnd, n)
                t0 = time.perf_counter()
                response = http.get(f"/v3/device-events/?{params}")
                elapsed = time.perf_counter() - t0
                assert response.status_code == 200, response.text
                if n >= 200:
                    timings.append(elapsed)
            paging: list[float] = []
            for order in ("ASC", "DESC"):
                after = ""
                for _ in range(pages):
                    query = f"event_type__in={','.join(COMMON)}&limit=100&order={order}"
                    t0 = time.perf_counter()
                    response = http.get(f"/v3/device-events/?{query}" + (f"&after={after}" if after else ""))
                    paging.append(time.perf_counter() - t0)
                    after = response.json()["data"][-1]["id"]
        return {"first_page": summary(timings), **_paging(paging, pages)}
    finally:
        proc.terminate()
        proc.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--pages", type=int, default=200)
    parser.add_argument("--rebuild", action="store_true", help="build the store again even if cached")
    parser.add_argument("--no-http", action="store_true", help="only the in-process measurement")
    args = parser.parse_args()
    info = ensure(args.events, args.rebuild)
    log(f"store: {info['events']:,} events, {info['db_bytes'] / 1e9:.2f} GB ({info['path']})")
    results: dict[str, Any] = {"events": info["events"], "samples": args.samples, "pages": args.pages,
                               "load_before": os.getloadavg()}  # fmt: skip
    results["in_process"] = asyncio.run(in_process(info, args.samples, args.pages))
    log(f"in-process: {json.dumps(results['in_process'])}")
    if not args.no_http:
        results["http"] = over_http(info, args.samples, args.pages)
        log(f"over HTTP:  {json.dumps(results['http'])}")
    results["load_after"] = os.getloadavg()
    log(f"load average before {results['load_before']}, after {results['load_after']}")
    out = CACHE / f"pelion-query-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(results, indent=2))
    log(f"results: {out}")


if __name__ == "__main__":
    main()
