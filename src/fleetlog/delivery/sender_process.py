"""Pushes sent from a child process, so that their HTTP work leaves the server's interpreter.

A push costs the process that makes it ~150 µs of Python (aiohttp, the socket calls) and, worse,
each socket write wakes the receiver while the interpreter lock is held: on a busy machine the
writer may be descheduled right then, and ingest waits for the lock with it. Measured with 10
connectors pushing next to batch ingest: ~1 ms of stalled ingest per push.

`SenderProcess` has `Sender`'s interface. It hands each push to a child process (`python -m
fleetlog.delivery.sender_process`) over a socket pair, as length-prefixed msgpack frames, and
the child runs the ordinary `Sender` on its own event loop, at a lower CPU priority than the
server. Frames queued within one turn of the event loop go out in one write. The child exits
when the socket closes, so it never outlives the server, even after a `kill -9`. If the child
dies, the pushes in flight count as failed (the workers retry them: at-least-once) and the next
push starts a new child.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import struct
import sys
import time
from collections.abc import Mapping

import msgspec

from fleetlog.delivery.sender import Attempt, Sender
from fleetlog.delivery.targets import TargetPolicy

log = logging.getLogger(__name__)

CHILD_NICENESS = 10  # the server (ingest, queries) comes first
RESTART_PAUSE = 1.0  # seconds between starts when a child dies young
_length = struct.Struct(">I")


class _Push(msgspec.Struct, array_like=True):
    ref: int
    url: str
    body: bytes
    headers: list[tuple[str, str]]


class _Answer(msgspec.Struct, array_like=True):
    ref: int
    status: int
    latency: float
    error: str = ""
    excerpt: str = ""
    retry_after: str | None = None


_encode = msgspec.msgpack.Encoder().encode
_push = msgspec.msgpack.Decoder(_Push)
_answer = msgspec.msgpack.Decoder(_Answer)


class _Link:
    """A socket to the other side: frames out batched per loop turn, frames in one by one."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self._out: list[bytes] = []

    def send(self, payload: bytes) -> None:
        if not self._out:
            asyncio.get_running_loop().call_soon(self._flush)
        self._out += (_length.pack(len(payload)), payload)

    def _flush(self) -> None:
        out, self._out = self._out, []
        if not self.writer.is_closing():
            self.writer.write(b"".join(out))

    async def receive(self) -> bytes:
        (size,) = _length.unpack(await self.reader.readexactly(4))
        return await self.reader.readexactly(size)

    def close(self) -> None:
        self.writer.close()


class SenderProcess:
    """`Sender` with the HTTP work done by a child process (started at the first push)."""

    def __init__(self, timeout_seconds: float, deny_networks: str = "") -> None:
        """`deny_networks`: as FLEETLOG_DELIVERY_DENY_NETWORKS (the child parses it again)."""
        TargetPolicy.parse(deny_networks)  # a bad one fails here, not in the child
        self._timeout = timeout_seconds
        self._deny = deny_networks
        self._link: _Link | None = None
        self._child: asyncio.subprocess.Process | None = None
        self._reading: asyncio.Task[None] | None = None
        self._pending: dict[int, asyncio.Future[Attempt]] = {}
        self._next_ref = 0
        self._starting: asyncio.Lock | None = None
        self._started_at = 0.0
        self.starts = 0

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> Attempt:
        link = self._link or await self._start()
        self._next_ref += 1
        ref = self._next_ref
        answer: asyncio.Future[Attempt] = asyncio.get_running_loop().create_future()
        self._pending[ref] = answer
        link.send(_encode(_Push(ref, url, body, list(headers.items()))))
        try:
            # The child answers every push within its own timeout; this is for a child that hangs.
            # (asyncio.timeout, not wait_for: in 3.11 wait_for may swallow a cancellation.)
            async with asyncio.timeout(self._timeout + 10.0):
                return await answer
        except TimeoutError:
            return Attempt(0, self._timeout + 10.0, error="the delivery sender process did not answer")
        finally:
            self._pending.pop(ref, None)

    async def close(self) -> None:
        if self._reading is not None:
            self._reading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reading
        self._stopped("the delivery sender was closed")
        if self._child is not None and self._child.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._child.terminate()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._child.wait(), 5.0)
        self._child = None

    async def _start(self) -> _Link:
        if self._starting is None:
            self._starting = asyncio.Lock()
        async with self._starting:
            if self._link is not None:
                return self._link
            if time.monotonic() - self._started_at < RESTART_PAUSE:
                await asyncio.sleep(RESTART_PAUSE)  # it died young: do not start one in a loop
            ours, theirs = socket.socketpair()
            with theirs:
                self._child = await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    __name__,
                    str(theirs.fileno()),
                    str(self._timeout),
                    self._deny,
                    pass_fds=(theirs.fileno(),),
                    stdin=asyncio.subprocess.DEVNULL,
                )
            reader, writer = await asyncio.open_connection(sock=ours)
            self._link = _Link(reader, writer)
            self._started_at = time.monotonic()
            self.starts += 1
            self._reading = asyncio.get_running_loop().create_task(self._read(self._link), name="delivery:sender")
            return self._link

    async def _read(self, link: _Link) -> None:
        try:
            while True:
                answer = _answer.decode(await link.receive())
                waiting = self._pending.pop(answer.ref, None)
                if waiting is not None and not waiting.done():
                    waiting.set_result(
                        Attempt(answer.status, answer.latency, answer.error, answer.excerpt, answer.retry_after)
                    )
        except (asyncio.IncompleteReadError, ConnectionError, msgspec.DecodeError) as exc:
            log.warning("the delivery sender process went away (%s); pushes in flight are retried", exc)
            self._stopped("the delivery sender process exited")

    def _stopped(self, why: str) -> None:
        link, self._link = self._link, None
        if link is not None:
            link.close()
        pending, self._pending = self._pending, {}
        for answer in pending.values():
            if not answer.done():
                answer.set_result(Attempt(0, 0.0, error=why))


# -- the child ----------------------------------------------------------------------------------


async def _serve(fd: int, timeout_seconds: float, deny_networks: str) -> None:
    reader, writer = await asyncio.open_connection(sock=socket.socket(fileno=fd))
    link = _Link(reader, writer)
    sender = Sender(timeout_seconds, TargetPolicy.parse(deny_networks))
    running: set[asyncio.Task[None]] = set()

    async def one(push: _Push) -> None:
        try:
            attempt = await sender.post(push.url, push.body, dict(push.headers))
        except Exception as exc:  # answer whatever happens: the server waits for it
            attempt = Attempt(0, 0.0, error=f"{type(exc).__name__}: {exc}")
        link.send(
            _encode(
                _Answer(push.ref, attempt.status, attempt.latency, attempt.error, attempt.excerpt, attempt.retry_after)
            )
        )

    try:
        while True:
            try:
                push = _push.decode(await link.receive())
            except (asyncio.IncompleteReadError, ConnectionError):
                return  # the server is gone: so are we
            task = asyncio.create_task(one(push))
            running.add(task)
            task.add_done_callback(running.discard)
    finally:
        for task in running:
            task.cancel()
        await sender.close()


def main() -> None:
    fd, timeout_seconds, deny_networks = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
    with contextlib.suppress(OSError):
        os.nice(CHILD_NICENESS)
    try:
        import uvloop

        uvloop.run(_serve(fd, timeout_seconds, deny_networks))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
