"""Registry changes made by other processes, heard through PostgreSQL LISTEN/NOTIFY.

Each process caches the registry (credentials, devices, tenants, key lookups). When one
process changes it (a key revoked, a device moved or removed, retention changed), the change's
transaction also sends a notice, delivered to every listening process when it commits; the
others then drop their caches. So a revoked key stops working everywhere, not only where it
was revoked. While the listening connection is down, nothing can be heard: caches are dropped
again whenever it (re)connects.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger(__name__)
CHANNEL = "fleetlog_registry"
Conn = Any


class RegistryNotices:
    def __init__(self, connect: Callable[[], Awaitable[Conn]], forget_keys: Callable[[], None]) -> None:
        self._connect = connect
        self._forget_keys = forget_keys
        self._listeners: list[Callable[[], None]] = []
        self._origin = secrets.token_hex(8)  # this process: it does not need its own notices
        self._schema = ""
        self._task: asyncio.Task[None] | None = None
        self.heard = 0

    def on_change(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    def start(self, schema: str) -> None:
        self._schema = schema
        self._task = asyncio.get_running_loop().create_task(self._listen(), name="fleetlog-registry-notices")

    async def send(self, conn: Conn) -> None:
        """Inside a registry write's transaction: delivered if and when it commits."""
        await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, f"{self._schema} {self._origin}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def abort(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _listen(self) -> None:
        while True:
            conn: Conn = None
            try:
                conn = await self._connect()
                lost = asyncio.Event()
                conn.add_termination_listener(lambda _, lost=lost: lost.set())
                await conn.add_listener(CHANNEL, self._heard)
                self._changed()  # whatever changed while nobody listened
                await lost.wait()
                log.warning("registry notices: connection lost; reconnecting")
            except asyncio.CancelledError:
                if conn is not None and not conn.is_closed():
                    conn.terminate()
                raise
            except Exception as exc:
                log.warning("registry notices: %s; retrying", exc)
            await asyncio.sleep(1.0)

    def _heard(self, _conn: Conn, _pid: int, _channel: str, payload: str) -> None:
        schema, _, origin = payload.rpartition(" ")
        if schema == self._schema and origin != self._origin:
            self.heard += 1
            self._changed()

    def _changed(self) -> None:
        self._forget_keys()
        for listener in self._listeners:
            try:
                listener()
            except Exception:
                log.exception("registry change listener failed")
