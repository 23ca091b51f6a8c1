"""DT stream fan-out: many `devices:stream` clients, each receiving every event of a steady load.

    uv run python -m bench.dt_stream                       # 100 clients, 2,000 events/s, 20 s, 10 stalled
    uv run python -m bench.dt_stream --clients 10 --seconds 5 --stalled 2   # a quick look

`fleetlog serve` runs as a child process exactly as in production (one uvicorn worker, uvloop,
httptools). One client process (this one) sends the load through the native batch API (batches of
20 every 10 ms, each event stamped with its send time) and reads every stream with aiohttp.

Delivery latency = the moment a client reads an event - the moment the load generator stamped it,
so it includes the HTTP ingest, the group commit, the fan-out and both event loops. It is measured
on the first (oldest) complete line of each read and charged to every line of that read: an upper
bound for each event.

Phase 1: `--clients` readers. Phase 2: the same plus `--stalled` clients that send the request and
never read a byte; the server's RSS is sampled every second (the bound per stalled stream is the
point), and the readers' latency and completeness are measured again.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import multiprocessing
import os
import socket
import subprocess
import sys
import tempfile
import time
from array import array
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import aiohttp
import httpx

HOST = "127.0.0.1"
TOKEN = "fl_operator_dt-bench-operator-token-0123456789"
HEADERS = {"Authorization": f"Bearer {TOKEN}", "X-Fleetlog-Tenant": "bench"}
BATCH = 20
STREAM = "/v2/projects/plant/devices:stream"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stamp(us: int) -> str:
    return datetime.fromtimestamp(us / 1_000_000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


_MIDNIGHTS: dict[bytes, float] = {}


def parse_stamp(text: bytes) -> float:
    """`2026-11-22T02:57:36.366438Z` as epoch seconds, fast (the day is cached)."""
    day = text[:10]
    midnight = _MIDNIGHTS.get(day)
    if midnight is None:
        midnight = _MIDNIGHTS[day] = datetime.fromisoformat(day.decode() + "T00:00:00+00:00").timestamp()
    return midnight + int(text[11:13]) * 3600 + int(text[14:16]) * 60 + float(text[17:26])


class Reader(asyncio.Protocol):
    """One stream client, as lean as Python allows (a protocol on the raw socket, decoding HTTP's
    chunked framing itself): 100 of them share one core with the load generator."""

    def __init__(self) -> None:
        self.received = 0
        # (latency s, lines charged), in arrays: the client's GC must not pause it and skew the figures
        self.latencies: array[float] = array("d")
        self.counts: array[int] = array("q")
        self.connected = asyncio.Event()
        self._buffer = bytearray()
        self._headers_done = False
        self._chunk_left = 0  # body bytes left in the current chunk (then its CRLF)
        self._partial = b""  # an incomplete line carried over
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not an asyncio.Transport subclass
        auth = "".join(f"{k}: {v}\r\n" for k, v in HEADERS.items())
        transport.write(f"GET {STREAM} HTTP/1.1\r\nHost: {HOST}\r\n{auth}\r\n".encode())

    def data_received(self, data: bytes) -> None:
        now = time.time()
        buffer = self._buffer
        buffer += data
        if not self._headers_done:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            assert buffer.startswith(b"HTTP/1.1 200"), bytes(buffer[:200])
            del buffer[: end + 4]
            self._headers_done = True
            self.connected.set()
        payload = bytearray()
        while buffer:
            if self._chunk_left == 0:
                line_end = buffer.find(b"\r\n")
                if line_end < 0:
                    break
                if line_end == 0:  # the CRLF closing the previous chunk
                    del buffer[:2]
                    continue
                self._chunk_left = int(buffer[:line_end], 16)
                del buffer[: line_end + 2]
                if self._chunk_left == 0:
                    break
            take = min(self._chunk_left, len(buffer))
            payload += buffer[:take]
            del buffer[:take]
            self._chunk_left -= take
        if not payload:
            return
        data = self._partial + bytes(payload)
        cut = data.rfind(b"\n")
        if cut < 0:
            self._partial = data
            return
        lines, self._partial = data[: cut + 1], data[cut + 1 :]
        count = lines.count(b"\n")
        first = lines[: lines.find(b"\n")]
        at = first.rfind(b'"timestamp":"')
        self.latencies.append(now - parse_stamp(first[at + 13 : at + 40]))
        self.counts.append(count)
        self.received += count


async def connect(url: str) -> Reader:
    port = int(url.rsplit(":", 1)[1])
    _, reader = await asyncio.get_running_loop().create_connection(Reader, HOST, port)
    return reader


async def stall(url: str) -> asyncio.StreamWriter:
    """A client that sends its request and then never reads."""
    port = int(url.rsplit(":", 1)[1])
    reader, writer = await asyncio.open_connection(HOST, port)
    auth = "".join(f"{k}: {v}\r\n" for k, v in HEADERS.items())
    writer.write(f"GET {STREAM} HTTP/1.1\r\nHost: {HOST}\r\n{auth}\r\n".encode())
    await writer.drain()
    del reader
    return writer


async def load(
    session: aiohttp.ClientSession, url: str, rate: float, seconds: float, devices: list[str], posts: list[float]
) -> int:
    """`rate` events/s for `seconds`, in batches of BATCH, each event stamped when it is sent;
    the time each POST took goes to `posts`."""
    loop = asyncio.get_running_loop()
    interval = BATCH / rate
    in_flight = asyncio.Semaphore(16)
    tasks: list[asyncio.Task[None]] = []
    sent = 0

    async def post(body: bytes) -> None:
        began = time.perf_counter()
        async with (
            in_flight,
            session.post(
                url + "/v1/tenants/bench/events", data=body, headers={**HEADERS, "Content-Type": "application/json"}
            ) as response,
        ):
            assert response.status == 200, await response.text()
        posts.append(time.perf_counter() - began)

    start = next_at = loop.time()
    while loop.time() - start < seconds:
        now = stamp(time.time_ns() // 1000)
        body = [
            {"type": "temperature", "device": devices[(sent + i) % len(devices)], "time": now, "data": {"value": 20.5}}
            for i in range(BATCH)
        ]
        tasks.append(asyncio.create_task(post(json.dumps(body).encode())))
        sent += BATCH
        next_at += interval
        await asyncio.sleep(max(0.0, next_at - loop.time()))
    await asyncio.gather(*tasks)
    return sent


def percentile(samples: list[tuple[float, int]], q: float) -> float:
    ordered = sorted(samples)
    total = sum(n for _, n in ordered)
    goal, seen = q * total, 0
    for latency, n in ordered:
        seen += n
        if seen >= goal:
            return latency * 1000
    return ordered[-1][0] * 1000 if ordered else float("nan")


def read_streams(url: str, clients: int, conn: Connection) -> None:
    """A reader process: `clients` streams; says when all are connected, then reads until each has
    the number of events the parent names, and sends back what it measured."""
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(_read_streams(url, clients, conn))


async def _read_streams(url: str, clients: int, conn: Connection) -> None:
    readers = [await connect(url) for _ in range(clients)]
    await asyncio.wait_for(asyncio.gather(*(r.connected.wait() for r in readers)), 30)
    gc.collect()
    gc.freeze()
    cpu0 = time.process_time()
    conn.send("connected")
    expected = await asyncio.get_running_loop().run_in_executor(None, conn.recv)
    deadline = time.monotonic() + 60
    while any(r.received < expected for r in readers) and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)  # a poll, so the figures are not touched by extra wake-ups
    cpu = time.process_time() - cpu0
    for client in readers:
        assert client.transport is not None
        client.transport.abort()
    conn.send(
        {
            "received": [r.received for r in readers],
            "cpu": cpu,
            "latencies": b"".join(r.latencies.tobytes() for r in readers),
            "counts": b"".join(r.counts.tobytes() for r in readers),
        }
    )


async def phase(
    url: str, pid: int, clients: int, rate: float, seconds: float, stalled: int, devices: list[str], processes: int
) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    pipes, children = [], []
    for index in range(processes):
        mine, theirs = context.Pipe()
        share = clients // processes + (index < clients % processes)
        child = context.Process(target=read_streams, args=(url, share, theirs), daemon=True)
        child.start()
        pipes.append(mine)
        children.append(child)
    loop = asyncio.get_running_loop()
    for pipe in pipes:
        assert await loop.run_in_executor(None, pipe.recv) == "connected"
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=None)) as session:
        rss_before = rss_mb(pid)
        stalls = [await stall(url) for _ in range(stalled)]
        rss: list[float] = []

        async def sample() -> None:
            while True:
                rss.append(rss_mb(pid))
                await asyncio.sleep(1)

        sampler = asyncio.create_task(sample())
        cpu0, t0 = cpu_seconds(pid), time.monotonic()
        posts: list[float] = []
        sent = await load(session, url, rate, seconds, devices, posts)
        elapsed = time.monotonic() - t0
        cpu = (cpu_seconds(pid) - cpu0) / elapsed
        for pipe in pipes:
            pipe.send(sent)
        reports = [await loop.run_in_executor(None, pipe.recv) for pipe in pipes]
        sampler.cancel()
        rss.append(rss_mb(pid))
        for writer in stalls:
            writer.transport.abort()
        await asyncio.gather(sampler, return_exceptions=True)
    for child in children:
        child.join(10)
    received = [n for report in reports for n in report["received"]]
    latencies, counts = array("d"), array("q")
    for report in reports:
        latencies.frombytes(report["latencies"])
        counts.frombytes(report["counts"])
    samples = list(zip(latencies, counts, strict=True))
    return {
        "clients": clients,
        "stalled": stalled,
        "rate_target": rate,
        "seconds": round(elapsed, 1),
        "events": sent,
        "rate_sent": round(sent / elapsed),
        "complete_clients": sum(n == sent for n in received),
        "min_received": min(received),
        "deliveries": sum(received),
        "p50_ms": round(percentile(samples, 0.50), 1),
        "p99_ms": round(percentile(samples, 0.99), 1),
        "max_ms": round(max(s[0] for s in samples) * 1000, 1),
        "ingest_p99_ms": round(percentile([(p, 1) for p in posts], 0.99), 1),
        "server_cpu": round(cpu, 2),
        "reader_cpu": round(sum(r["cpu"] for r in reports) / elapsed, 2),
        "rss_before_mb": round(rss_before, 1),
        "rss_min_mb": round(min(rss), 1),
        "rss_max_mb": round(max(rss), 1),
        "rss_end_mb": round(rss[-1], 1),
        "rss_samples_mb": [round(x, 1) for x in rss],
        "load_average": os.getloadavg()[0],
    }


def setup(url: str, devices: int) -> list[str]:
    op = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=url, headers=op, timeout=30) as http:
        assert http.post("/v1/tenants", json={"id": "bench"}).status_code == 201
        assert http.post("/v1/tenants/bench/projects", json={"id": "plant"}).status_code == 201
        ids = [f"t{i:03d}" for i in range(devices)]
        for device in ids:
            body = {"id": device, "project": "plant", "type": "temperature"}
            made = http.post("/v1/tenants/bench/devices", json=body)
            assert made.status_code == 201, made.text
    return ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--rate", type=float, default=2000.0, help="events per second")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--stalled", type=int, default=10, help="clients that never read (phase 2)")
    parser.add_argument("--devices", type=int, default=100)
    parser.add_argument("--processes", type=int, default=2, help="reader processes")
    parser.add_argument(
        "--warmup", type=float, default=0.0, help="seconds of load before measuring, so SQLite's page caches are full"
    )
    args = parser.parse_args()

    port = free_port()
    url = f"http://{HOST}:{port}"
    with tempfile.TemporaryDirectory(prefix="dt-stream-bench-") as data_dir:
        env = {**os.environ, "FLEETLOG_ADMIN_TOKEN": TOKEN}
        log = Path(data_dir) / "server.log"
        with open(log, "wb") as out:
            server = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "fleetlog",
                    "serve",
                    "--data-dir",
                    data_dir,
                    "--port",
                    str(port),
                    "--log-level",
                    "warning",
                ],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(url + "/readyz", timeout=0.5).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit(f"the server did not start:\n{log.read_text()}")
                time.sleep(0.05)
            devices = setup(url, args.devices)
            if args.warmup:
                print(f"warm-up: {args.rate:g} events/s for {args.warmup:g} s, no clients", flush=True)
                asyncio.run(phase(url, server.pid, 1, args.rate, args.warmup, 0, devices, 1))
            results = {}
            for name, stalled in (("fan-out", 0), ("with stalled readers", args.stalled)):
                gc.collect()
                gc.freeze()  # the client's own GC pauses would count as delivery latency
                print(
                    f"{name}: {args.clients} clients, {stalled} stalled, {args.rate:g} events/s, {args.seconds:g} s",
                    flush=True,
                )
                results[name] = asyncio.run(
                    phase(url, server.pid, args.clients, args.rate, args.seconds, stalled, devices, args.processes)
                )
                print(json.dumps(results[name]), flush=True)
        finally:
            server.terminate()
            server.wait(10)
    print()
    print(
        "| phase | clients | stalled | events/s sent | every client got every event | deliveries | "
        "p50 ms | p99 ms | max ms | server CPU | server RSS MB (min-max) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, r in results.items():
        print(
            f"| {name} | {r['clients']} | {r['stalled']} | {r['rate_sent']:,} | "
            f"{'yes' if r['complete_clients'] == r['clients'] else 'NO'} | {r['deliveries']:,} | {r['p50_ms']} | "
            f"{r['p99_ms']} | {r['max_ms']} | {r['server_cpu']:.0%} | {r['rss_min_mb']}-{r['rss_max_mb']} |"
        )


if __name__ == "__main__":
    main()
