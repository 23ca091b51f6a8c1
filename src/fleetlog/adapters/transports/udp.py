"""UDP device transport: datagrams in, batched to the sink; replies sent back to the sender.

The socket is read directly, up to a thousand datagrams per wake-up of the event loop (asyncio's
datagram transport reads one per wake-up, which costs more than storing it). Datagrams arriving
while a batch is being stored wait in a queue bounded in bytes: when fleetlog cannot keep up,
the newest are dropped and counted (UDP's usual loss) rather than memory growing; the next batch
takes everything that waited, so batches grow with load. Two batches are in flight, so one is
prepared while the other commits.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections import deque

from fleetlog.adapters.transports import Address, DeviceSink

log = logging.getLogger(__name__)
NAME = "udp"
READS_PER_WAKEUP = 1000
MAX_DATAGRAM = 65535


class _Inbox:
    def __init__(self, sock: socket.socket, max_bytes: int) -> None:
        self.sock = sock
        self.queue: deque[tuple[bytes, Address]] = deque()
        self.queued_bytes = 0
        self.max_bytes = max_bytes
        self.dropped = 0
        self.wake = asyncio.Event()

    def readable(self) -> None:
        """Called by the event loop when the socket has data: take all of it (up to a limit)."""
        recvfrom = self.sock.recvfrom
        queue = self.queue
        for _ in range(READS_PER_WAKEUP):
            try:
                data, addr = recvfrom(MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:  # e.g. an ICMP error for an earlier reply
                log.debug("udp receive error: %s", exc)
                break
            if self.queued_bytes + len(data) > self.max_bytes:
                self.dropped += 1
                continue
            queue.append((data, (addr[0], addr[1])))
            self.queued_bytes += len(data)
        if queue:
            self.wake.set()

    def take(self, limit: int) -> list[tuple[bytes, Address]]:
        batch: list[tuple[bytes, Address]] = []
        queue = self.queue
        while queue and len(batch) < limit:
            item = queue.popleft()
            self.queued_bytes -= len(item[0])
            batch.append(item)
        return batch


class UdpTransport:
    def __init__(
        self,
        host: str,
        port: int,
        sink: DeviceSink,
        batch: int = 5000,
        max_queued_bytes: int = 32 * 1024 * 1024,
        retry_seconds: float = 5.0,
        in_flight: int = 2,
    ) -> None:
        self.host = host
        self.port = port
        self.sink = sink
        self.batch = batch
        self.max_queued_bytes = max_queued_bytes
        self.retry_seconds = retry_seconds
        self.in_flight = in_flight
        self.inbox: _Inbox | None = None
        self.replies_dropped = 0

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self.sink.transport_status(NAME, "starting", f"{self.host}:{self.port}")
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 * 1024 * 1024)
                sock.setblocking(False)
                sock.bind((self.host, self.port))
            except OSError as exc:
                sock.close()
                message = f"cannot listen on udp {self.host}:{self.port}: {exc}; retrying in {self.retry_seconds:g}s"
                log.error(message)
                self.sink.transport_status(NAME, "failed", message)
                await asyncio.sleep(self.retry_seconds)
                continue
            inbox = self.inbox = _Inbox(sock, self.max_queued_bytes)
            loop.add_reader(sock.fileno(), inbox.readable)
            self.sink.transport_status(NAME, "listening", f"{self.host}:{self.port}")
            log.info("span udp transport listening on %s:%d", self.host, self.port)
            try:
                await self._serve(inbox)
            finally:
                loop.remove_reader(sock.fileno())
                sock.close()

    def _reply(self, sock: socket.socket, data: bytes, addr: Address) -> None:
        try:
            sock.sendto(data, addr)
        except OSError:  # a full send buffer or an unreachable sender: UDP, counted
            self.replies_dropped += 1

    async def _serve(self, inbox: _Inbox) -> None:
        slots = asyncio.Semaphore(self.in_flight)
        running: set[asyncio.Task[None]] = set()

        async def store(batch: list[tuple[bytes, Address]]) -> None:
            try:
                replies = await self.sink.udp_datagrams(batch, self.port)
            except Exception:  # one bad batch must not stop the transport
                log.exception("udp batch of %d datagrams failed", len(batch))
                return
            finally:
                slots.release()
            for data, addr in replies:
                self._reply(inbox.sock, data, addr)

        try:
            while True:
                await inbox.wake.wait()
                inbox.wake.clear()
                while inbox.queue:
                    await slots.acquire()
                    task = asyncio.create_task(store(inbox.take(self.batch)))
                    running.add(task)
                    task.add_done_callback(running.discard)
        finally:
            for task in running:
                task.cancel()
