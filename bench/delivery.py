"""Delivery benchmarks (docs/benchmarks.md, "Delivery"): signed pushes per second to a local
receiver, server memory with a dead endpoint and a large backlog, ingest speed with 10 active
connectors.

    uv run python -m bench.delivery                    # everything (1M backlog: a few minutes)
    uv run python -m bench.delivery --only pushes      # some of: pushes, backlog, ingest, overhead
    uv run python -m bench.delivery --backlog 100000   # a smaller backlog

fleetlog runs exactly as `fleetlog serve` (one uvicorn worker) in a child process; the receiver
is an aiohttp server in another child process; the load comes from this process. Everything on
127.0.0.1. Results: a table on stdout and JSON in bench/results/delivery-<time>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

HOST = "127.0.0.1"
TOKEN = "fl_operator_bench-delivery-token-0123456789abcdef"
OP = {"Authorization": f"Bearer {TOKEN}"}
ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
DEVICES = 100

# A receiver in its own process: 200 to every POST (or never an answer, when "hang"), counts them.
RECEIVER = r"""
import asyncio, sys
from aiohttp import web
count = 0
hang = sys.argv[2] == "hang"
async def push(request):
    global count
    await request.read()
    count += 1
    if hang:
        await asyncio.sleep(3600)
    return web.Response(text="ok")
async def counted(request):
    return web.Response(text=str(count))
app = web.Application()
app.router.add_post("/hook", push)
app.router.add_get("/count", counted)
try:
    import uvloop
    uvloop.install()
except ImportError:
    pass
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"child exited with {proc.returncode}")
        try:
            with socket.create_connection((HOST, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def child(argv: list[str], port: int, env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[bytes]]:
    output = tempfile.TemporaryFile()  # noqa: SIM115 -- closed below, after the child
    proc = subprocess.Popen(argv, cwd=ROOT, env={**os.environ, **(env or {})}, stdout=output, stderr=output)
    try:
        try:
            wait_listening(port, proc)
        except RuntimeError as exc:
            output.seek(0)
            raise RuntimeError(f"{exc}: {output.read().decode(errors='replace')[-2000:]}") from None
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        output.close()


@contextmanager
def fleetlog(env: dict[str, str] | None = None) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = free_port()
    with (
        tempfile.TemporaryDirectory(prefix="bench-delivery-") as data,
        child(
            [
                sys.executable,
                "-m",
                "fleetlog",
                "serve",
                "--data-dir",
                data,
                "--port",
                str(port),
                "--log-level",
                "error",
            ],
            port,
            {"FLEETLOG_ADMIN_TOKEN": TOKEN, **(env or {})},
        ) as proc,
    ):
        url = f"http://{HOST}:{port}"
        for path, body in [("/v1/tenants", {"id": "acme"}), ("/v1/tenants/acme/projects", {"id": "plant"})]:
            httpx.post(url + path, json=body, headers=OP).raise_for_status()
        for i in range(DEVICES):
            body = {"id": f"dev-{i}", "project": "plant", "labels": {"name": f"Device {i}"}}
            httpx.post(url + "/v1/tenants/acme/devices", json=body, headers=OP).raise_for_status()
        yield url, proc


@contextmanager
def receiver(mode: str = "ok") -> Iterator[tuple[str, str]]:
    port = free_port()
    with child([sys.executable, "-c", RECEIVER, str(port), mode], port):
        yield f"http://{HOST}:{port}/hook", f"http://{HOST}:{port}/count"


def connector(url: str, target: str, events: list[str] | None = None) -> None:
    body = {
        "displayName": "bench",
        "events": events or [],
        "labels": ["name"],
        "httpConfig": {"url": target, "signatureSecret": "bench-secret-of-thirty-two-bytes!"},
    }
    httpx.post(f"{url}/v2/projects/plant/dataconnectors", json=body, headers=OP).raise_for_status()


def batch(n: int, offset: int, type_: str = "touch") -> list[dict[str, Any]]:
    return [{"type": type_, "device": f"dev-{(offset + i) % DEVICES}"} for i in range(n)]


async def ingest(url: str, total: int, size: int = 1000, clients: int = 2, type_: str = "touch") -> float:
    """Post `total` events in batches from `clients` concurrent clients; events/s."""
    per_client = total // clients

    async def run(n: int) -> None:
        async with httpx.AsyncClient(base_url=url, headers=OP, timeout=120) as c:
            for start in range(0, per_client, size):
                r = await c.post("/v1/tenants/acme/events", json=batch(min(size, per_client - start), start, type_))
                r.raise_for_status()

    started = time.perf_counter()
    await asyncio.gather(*(run(n) for n in range(clients)))
    return clients * per_client / (time.perf_counter() - started)


def count(counter: str) -> int:
    return int(httpx.get(counter, timeout=10).text)


def log(message: str) -> None:
    print(message, flush=True)


# -- the three measurements --------------------------------------------------------------------


def pushes(total: int, lanes: int) -> dict[str, Any]:
    """Signed pushes/s of one data connector to a local receiver, draining a backlog."""
    with fleetlog({"FLEETLOG_DELIVERY_LANES": str(lanes)}) as (url, proc), receiver() as (target, counter):
        connector(url, target)
        asyncio.run(ingest(url, total))
        started, first = time.perf_counter(), count(counter)
        cpu0 = cpu_seconds(proc.pid)
        while (done := count(counter)) < total:
            time.sleep(0.2)
        seconds = time.perf_counter() - started
        return {
            "lanes": lanes,
            "events": total,
            "pushed_while_ingesting": first,
            "pushes_per_s": round((done - first) / seconds),
            "server_cpu_per_push_us": round((cpu_seconds(proc.pid) - cpu0) / max(1, done - first) * 1e6, 1),
        }


def backlog(total: int) -> dict[str, Any]:
    """Server memory while a dead endpoint's connector has a backlog of `total` events."""
    out: dict[str, Any] = {"events": total}
    for label, dead in (("no connector", False), ("dead endpoint", True)):
        with fleetlog() as (url, proc), receiver("hang") as (target, counter):
            if dead:
                connector(url, target)
            before = rss_mb(proc.pid)
            peak = before
            done = 0
            started = time.perf_counter()
            while done < total:
                n = min(100_000, total - done)
                asyncio.run(ingest(url, n))
                done += n
                peak = max(peak, rss_mb(proc.pid))
            rate = total / (time.perf_counter() - started)
            time.sleep(3)
            out[label] = {
                "rss_before_mb": round(before, 1),
                "rss_peak_mb": round(peak, 1),
                "rss_after_mb": round(rss_mb(proc.pid), 1),
                "ingest_events_per_s": round(rate),
                "pushes_started": count(counter),
            }
    return out


SETUPS = {  # label: (connectors, their event types, receiver mode, server settings)
    "no connector": (0, None, "ok", {}),
    "10 following": (10, ["co2"], "ok", {}),  # their type never comes: they read the log and skip
    "10 dead endpoints": (10, None, "hang", {}),  # backlogs behind endpoints that never answer
    "10 pushing everything": (10, None, "ok", {}),  # backlogs being pushed as fast as they go
    "10 pushing, no pacing": (10, None, "ok", {"FLEETLOG_DELIVERY_MAX_LOOP_LAG_SECONDS": "0"}),
}


def ingest_with_connectors(total: int, repeats: int) -> dict[str, Any]:
    """Batch ingest speed (the median of `repeats` runs) next to 10 connectors in each state."""
    out: dict[str, Any] = {"events": total, "repeats": repeats}
    rates: dict[str, list[float]] = {label: [] for label in SETUPS}
    pushed: dict[str, list[float]] = {label: [] for label in SETUPS}
    cpu: dict[str, list[float]] = {label: [] for label in SETUPS}  # server CPU µs per ingested event
    for _ in range(repeats):
        for label, (n, types, mode, env) in SETUPS.items():  # interleaved: drift hits each alike
            with fleetlog(env) as (url, proc), receiver(mode) as (target, counter):
                for _ in range(n):
                    connector(url, target, events=types)
                asyncio.run(ingest(url, 20_000))  # warm up (and build backlogs)
                before, started, cpu0 = count(counter), time.perf_counter(), cpu_seconds(proc.pid)
                rates[label].append(asyncio.run(ingest(url, total)))
                pushed[label].append((count(counter) - before) / (time.perf_counter() - started))
                cpu[label].append((cpu_seconds(proc.pid) - cpu0) / total * 1e6)
                log(
                    f"  {label}: {rates[label][-1]:,.0f} events/s, {pushed[label][-1]:,.0f} pushes/s, "
                    f"server CPU {cpu[label][-1]:.1f} µs/event"
                )
    for label in SETUPS:
        out[label] = {
            "ingest_events_per_s": round(statistics.median(rates[label])),
            "pushes_per_s": round(statistics.median(pushed[label])),
            "server_cpu_us_per_event": round(statistics.median(cpu[label]), 1),
            "runs": [round(r) for r in rates[label]],
        }
    return out


def ingest_while_pushing(requests: int) -> dict[str, Any]:
    """Single-event ingest latency, one request at a time (so the load generator is never the
    bottleneck), while 10 connectors push a backlog of 200,000 events; with and without pacing."""
    out: dict[str, Any] = {"requests": requests}
    for label in ("no connector", "10 pushing everything", "10 pushing, no pacing"):
        n, _, _, env = SETUPS[label]
        with fleetlog(env) as (url, _proc), receiver() as (target, counter):
            for _ in range(n):
                connector(url, target)
            asyncio.run(ingest(url, 20_000))  # the backlog: 10 x 20,000 pushes
            latencies: list[float] = []
            before, started = count(counter), time.perf_counter()
            with httpx.Client(base_url=url, headers=OP, timeout=30) as c:
                for i in range(requests):
                    sent = time.perf_counter()
                    c.post("/v1/tenants/acme/events", json={"type": "touch", "device": f"dev-{i % DEVICES}"})
                    latencies.append(time.perf_counter() - sent)
            pushes = (count(counter) - before) / (time.perf_counter() - started)
            latencies.sort()
            out[label] = {
                "p50_ms": round(latencies[len(latencies) // 2] * 1e3, 2),
                "p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1e3, 2),
                "pushes_per_s": round(pushes),
            }
            log(f"  {label}: {out[label]}")
    return out


async def _overhead_run(connectors: int, types: list[str] | None, target: str, total: int) -> dict[str, float]:
    """In one process, without HTTP: the store, the bus and the engine, appends of 1,000 events."""
    from fleetlog.adapters.bus.memory import MemoryBus
    from fleetlog.adapters.storage.sqlite import SqliteStorage
    from fleetlog.core.catalog import builtin_catalog
    from fleetlog.core.event import Event
    from fleetlog.core.registry import Device, Project, Tenant
    from fleetlog.delivery.engine import DeliveryEngine, running
    from fleetlog.delivery.model import Connector, Filter, Flavour
    from fleetlog.delivery.worker import Settings
    from fleetlog.pipeline.directory import Directory
    from fleetlog.ports.clock import SystemClock

    with tempfile.TemporaryDirectory(prefix="bench-delivery-") as data:
        bus = MemoryBus()
        storage = SqliteStorage(Path(data) / "fleetlog.db", bus=bus)
        await storage.registry.create_tenant(Tenant(id="acme"))
        await storage.registry.create_project(Project(id="plant", tenant="acme"))
        for i in range(DEVICES):
            await storage.registry.create_device(Device(id=f"dev-{i}", tenant="acme", project="plant"))
        clock = SystemClock()
        directory = Directory(storage.registry, clock, builtin_catalog())
        engine = DeliveryEngine(storage.events, bus, storage.documents, directory, clock, Settings(timeout_seconds=60))
        async with running(engine):
            for _ in range(connectors):
                await engine.create(
                    Connector(
                        id="",
                        tenant="acme",
                        flavour=Flavour.DT,
                        project="plant",
                        url=target,
                        secret="bench-secret-of-thirty-two-bytes!",
                        filter=Filter(types=types or []),
                    )
                )

            async def append(n: int) -> float:
                now = clock.now_us()
                started = time.perf_counter()
                for _ in range(n // 1000):
                    await storage.events.append(
                        [
                            Event(
                                tenant="acme",
                                project="plant",
                                device=f"dev-{i % DEVICES}",
                                type="touch",
                                time=now,
                                received=now,
                            )
                            for i in range(1000)
                        ]
                    )
                return n / (time.perf_counter() - started)

            await append(20_000)
            cpu = time.process_time()
            rate = await append(total)
            cpu_us = (time.process_time() - cpu) / total * 1e6
        storage.close()
    return {"events_per_s": round(rate), "cpu_us_per_event": round(cpu_us, 1)}


def overhead(total: int, repeats: int) -> dict[str, Any]:
    """What connectors cost the commit path itself (CPU per event, all threads), in-process."""
    setups = {
        "no connector": (0, None, "ok"),
        "10 following": (10, ["co2"], "ok"),
        "10 dead endpoints": (10, None, "hang"),
    }
    runs: dict[str, list[dict[str, float]]] = {label: [] for label in setups}
    for _ in range(repeats):
        for label, (n, types, mode) in setups.items():
            with receiver(mode) as (target, _):
                runs[label].append(asyncio.run(_overhead_run(n, types, target, total)))
                log(f"  {label}: {runs[label][-1]}")
    return {
        label: {key: statistics.median(r[key] for r in results) for key in results[0]}
        for label, results in runs.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", action="append", choices=["pushes", "backlog", "ingest", "overhead"])
    parser.add_argument("--pushes", type=int, default=100_000, help="events pushed in the throughput run")
    parser.add_argument("--backlog", type=int, default=1_000_000, help="events behind the dead endpoint")
    parser.add_argument("--ingest", type=int, default=200_000, help="events per batch ingest run")
    parser.add_argument("--repeats", type=int, default=3, help="batch ingest runs per setup")
    args = parser.parse_args()
    only = set(args.only or ["pushes", "backlog", "ingest", "overhead"])
    results: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M %Z"), "cores": os.cpu_count()}
    if "pushes" in only:
        results["pushes"] = []
        for lanes in (16, 64):
            log(f"pushes: {args.pushes:,} events, {lanes} lanes ...")
            results["pushes"].append(pushes(args.pushes, lanes))
            log(f"  {results['pushes'][-1]}")
    if "backlog" in only:
        log(f"backlog: {args.backlog:,} events behind a dead endpoint ...")
        results["backlog"] = backlog(args.backlog)
        log(f"  {results['backlog']}")
    if "ingest" in only:
        log(f"ingest: {args.ingest:,} events per run, batches of 1,000 ...")
        results["ingest"] = ingest_with_connectors(args.ingest, args.repeats)
        log("ingest latency, one request at a time, while 10 connectors push a backlog ...")
        results["ingest_while_pushing"] = ingest_while_pushing(500)
    if "overhead" in only:
        log("overhead: CPU per committed event, in-process, 100,000 events per run ...")
        results["overhead"] = overhead(100_000, args.repeats)
        log(f"  {results['overhead']}")
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"delivery-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(results, indent=2))
    log(f"results: {path}")


if __name__ == "__main__":
    main()
