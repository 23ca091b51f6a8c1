"""A real HTTP receiver on 127.0.0.1 for delivery tests, in a thread with its own event loop.

Tests script its answers (`plan`: one answer per request, then `default`), slow it down, or
stop it; it records every request it got (headers and raw body).
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: str = "ok"
    delay: float = 0.0  # seconds before answering


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    path: str
    answered: int = 0  # the status the receiver answered with

    @property
    def json(self) -> Any:
        return json.loads(self.body)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Receiver:
    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.plan: list[Answer] = []
        self.default = Answer()
        self.answer_with: Callable[[Received], Answer] | None = None
        self._got: list[Received] = []
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None

    # -- what tests read --------------------------------------------------------------

    @property
    def received(self) -> list[Received]:
        with self._lock:
            return list(self._got)

    @property
    def accepted(self) -> list[Received]:
        """The requests answered 200: the deliveries."""
        return [r for r in self.received if r.answered == 200]

    def accepted_ids(self, key: Callable[[Any], str] = lambda b: b["event"]["eventId"]) -> list[str]:
        return [key(r.json) for r in self.accepted]

    def wait_for(self, predicate: Callable[[list[Received]], bool], timeout: float = 20.0) -> list[Received]:
        """Wait until `predicate(received)` holds (a liveness bound, not a timing assertion)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.received
            if predicate(got):
                return got
            time.sleep(0.01)
        got = self.received
        assert predicate(got), f"receiver never got what the test waited for ({len(got)} requests)"
        return got

    # -- the server -------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        got = Received(dict(request.headers), await request.read(), request.path)
        with self._lock:
            self._got.append(got)
            if self.answer_with is not None:
                answer = self.answer_with(got)
            else:
                answer = self.plan.pop(0) if self.plan else self.default
        if answer.delay:
            await asyncio.sleep(answer.delay)  # cancelled if the client gives up first
        got.answered = answer.status
        return web.Response(status=answer.status, headers=answer.headers, text=answer.body)

    def start(self) -> Receiver:
        ready = threading.Event()

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            app = web.Application()
            app.router.add_post("/{tail:.*}", self._handle)
            self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
            loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
            loop.run_until_complete(site.start())
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=serve, name=f"receiver-{self.port}", daemon=True)
        self._thread.start()
        assert ready.wait(10), "receiver did not start"
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop = None


@contextmanager
def receiving(port: int | None = None) -> Iterator[Receiver]:
    receiver = Receiver(port).start()
    try:
        yield receiver
    finally:
        receiver.stop()
