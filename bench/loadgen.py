"""An open-loop (fixed-rate) HTTP/1.1 load generator: asyncio + uvloop, raw keep-alive sockets,
responses parsed with httptools. `wrk` is closed-loop (it waits for each answer before the next
request on a connection), so it cannot hold a fixed rate; `wrk2` is not packaged here.

Request i is *due* at start + i / rate. It goes out on the first idle connection; if none is
idle it waits in a queue. Its latency is measured from the moment it was due, not from when it
was written, so a stalled server is charged for every request it delayed (no coordinated
omission).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import httptools
import uvloop

HOST = "127.0.0.1"


class _Conn(asyncio.Protocol):
    def __init__(self, gen: _Generator) -> None:
        self.gen = gen
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.due = 0.0
        self.busy = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_message_complete(self) -> None:
        status = self.parser.get_status_code()
        self.busy = False
        self.gen.completed(self, status)

    def connection_lost(self, exc: Exception | None) -> None:
        self.gen.lost(self)

    def send(self, request: bytes, due: float) -> None:
        self.busy = True
        self.due = due
        assert self.transport is not None
        self.transport.write(request)


class _Generator:
    def __init__(self, make: Callable[[int], bytes], rate: float, count: int, warmup: int) -> None:
        self.make = make
        self.rate = rate
        self.count = count
        self.warmup = warmup
        self.idle: deque[_Conn] = deque()
        self.queue: deque[tuple[int, float]] = deque()
        self.latencies: list[float] = []
        self.statuses: dict[int, int] = {}
        self.inflight: dict[_Conn, int] = {}
        self.done = 0
        self.finished: asyncio.Future[None] | None = None
        self.lost_connections = 0

    def dispatch(self) -> None:
        while self.queue and self.idle:
            conn = self.idle.popleft()
            i, due = self.queue.popleft()
            self.inflight[conn] = i
            conn.send(self.make(i), due)

    def completed(self, conn: _Conn, status: int) -> None:
        now = time.perf_counter()
        i = self.inflight.pop(conn)
        if i >= self.warmup:
            self.latencies.append(now - conn.due)
            self.statuses[status] = self.statuses.get(status, 0) + 1
        self.done += 1
        self.idle.append(conn)
        self.dispatch()
        if self.done == self.count and self.finished is not None and not self.finished.done():
            self.finished.set_result(None)

    def lost(self, conn: _Conn) -> None:
        if conn in self.inflight or conn in self.idle:
            self.lost_connections += 1


async def _run(
    make: Callable[[int], bytes], port: int, rate: float, seconds: float, connections: int, warmup_s: float
) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    warmup = int(rate * warmup_s)
    count = warmup + int(rate * seconds)
    gen = _Generator(make, rate, count, warmup)
    gen.finished = loop.create_future()
    conns = []
    for _ in range(connections):
        _, conn = await loop.create_connection(lambda: _Conn(gen), HOST, port)
        conns.append(conn)
        gen.idle.append(conn)
    start = time.perf_counter() + 0.05
    issued = 0
    while issued < count:
        now = time.perf_counter()
        due_now = min(count, int((now - start) * rate) + 1) if now >= start else 0
        while issued < due_now:
            gen.queue.append((issued, start + issued / rate))
            issued += 1
        gen.dispatch()
        # Until the next request is due, and at least 1 ms: uvloop's timers count whole
        # milliseconds, so a shorter sleep returns at once and the generator would spin,
        # taking a core from the server it measures. A request due meanwhile goes out up to
        # 1 ms late, and that delay counts against the server (latency runs from the due time).
        await asyncio.sleep(max(0.001, start + issued / rate - time.perf_counter()))
    await asyncio.wait_for(gen.finished, timeout=seconds + 60)
    elapsed = time.perf_counter() - start
    for conn in conns:
        if conn.transport is not None:
            conn.transport.close()
    lat = sorted(gen.latencies)

    def pct(p: float) -> float:
        return lat[min(len(lat) - 1, int(len(lat) * p / 100))] * 1e6

    ok = sum(n for s, n in gen.statuses.items() if 200 <= s < 300)
    return {
        "target_rate_per_s": rate,
        "rate_per_s": count / elapsed,
        "measured": len(lat),
        "ok": ok,
        "statuses": {str(k): v for k, v in sorted(gen.statuses.items())},
        "errors": len(lat) - ok + gen.lost_connections,
        "connections": connections,
        "p50_us": pct(50),
        "p90_us": pct(90),
        "p99_us": pct(99),
        "p999_us": pct(99.9),
        "lat_max_us": lat[-1] * 1e6,
        "lat_mean_us": sum(lat) / len(lat) * 1e6,
    }


def fixed_rate(
    make: Callable[[int], bytes],
    port: int,
    *,
    rate: float,
    seconds: float,
    connections: int = 64,
    warmup_s: float = 2.0,
) -> dict[str, Any]:
    """Send make(i) at `rate` requests/s for `seconds` (after `warmup_s` not measured)."""
    return uvloop.run(_run(make, port, rate, seconds, connections, warmup_s))
