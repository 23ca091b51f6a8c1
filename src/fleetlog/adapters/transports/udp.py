"""UDP device transport: datagrams in, batched to the sink; replies sent back to the sender.

Datagrams arriving while a batch is being stored wait in a queue bounded in bytes (UDP is
lossy anyway: when fleetlog cannot keep up, the newest datagrams are dropped and counted rather
than memory growing); the next batch takes everything that waited, so batches grow with load.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections import deque

from fleetlog.adapters.transports import Address, DeviceSink

log = logging.getLogger(__name__)
NAME = "udp"


class _Receiver(asyncio.DatagramProtocol):
    def __init__(self, max_bytes: int) -> None:
        self.queue: deque[tuple[bytes, Address]] = deque()
        self.queued_bytes = 0
        self.max_bytes = max_bytes
        self.dropped = 0
        self.wake = asyncio.Event()

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        if self.queued_bytes + len(data) > self.max_bytes:
            self.dropped += 1
            return
        self.queue.append((data, (str(addr[0]), int(addr[1]))))
        self.queued_bytes += len(data)
        self.wake.set()

    def error_received(self, exc: Exception) -> None:
        log.debug("udp socket error: %s", exc)

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
        self.receiver: _Receiver | None = None

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self.sink.transport_status(NAME, "starting", f"{self.host}:{self.port}")
            try:
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                try:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 * 1024 * 1024)
                    sock.bind((self.host, self.port))
                except OSError:
                    sock.close()
                    raise
                transport, protocol = await loop.create_datagram_endpoint(
                    lambda: _Receiver(self.max_queued_bytes), sock=sock
                )
                receiver = protocol
            except OSError as exc:
                message = f"cannot listen on udp {self.host}:{self.port}: {exc}; retrying in {self.retry_seconds:g}s"
                log.error(message)
                self.sink.transport_status(NAME, "failed", message)
                await asyncio.sleep(self.retry_seconds)
                continue
            self.receiver = receiver
            self.sink.transport_status(NAME, "listening", f"{self.host}:{self.port}")
            log.info("span udp transport listening on %s:%d", self.host, self.port)
            try:
                await self._serve(receiver, transport)
            finally:
                transport.close()

    async def _serve(self, receiver: _Receiver, transport: asyncio.DatagramTransport) -> None:
        # Two batches in flight: the next one is prepared while the previous one commits.
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
                transport.sendto(data, addr)

        try:
            while True:
                await receiver.wake.wait()
                receiver.wake.clear()
                while receiver.queue:
                    await slots.acquire()
                    task = asyncio.create_task(store(receiver.take(self.batch)))
                    running.add(task)
                    task.add_done_callback(running.discard)
        finally:
            for task in running:
                task.cancel()
