"""Leases among the processes sharing one PostgreSQL store: session advisory locks.

A lease is a `pg_try_advisory_lock` held on a connection of its own. PostgreSQL lets go of it
when that session ends, so a holder that dies, or whose connection drops, frees it for the
others, which try again every `retry_seconds`. The holder checks its connection every
`check_seconds`; when the connection ends or a check fails, the lease is `lost` and the holder
stops the work. Until the holder notices (at most a check interval plus its timeout), another
process may already have taken over: work done under a lease must tolerate a short overlap
(delivery does: it is at-least-once, and cursors only move forward).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from typing import Any

from fleetlog.adapters.storage.postgres.database import Database
from fleetlog.ports.lease import Lease

log = logging.getLogger(__name__)
Conn = Any


def lock_key(schema: str, name: str) -> int:
    """Advisory locks are per database: the schema (the installation) is part of the key."""
    digest = hashlib.blake2b(f"fleetlog:{schema}:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class PostgresLease:
    def __init__(self, conn: Conn, key: int, check_seconds: float) -> None:
        self._conn = conn
        self._key = key
        self._check_seconds = check_seconds
        self._lost = asyncio.Event()
        conn.add_termination_listener(lambda _conn: self._lost.set())
        self._watch = asyncio.get_running_loop().create_task(self._watching(), name="fleetlog-lease-watch")

    @property
    def lost(self) -> asyncio.Event:
        return self._lost

    async def _watching(self) -> None:
        try:
            while not self._lost.is_set():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._check_seconds):
                        await self._lost.wait()
                if self._lost.is_set():
                    break
                async with asyncio.timeout(max(1.0, self._check_seconds)):
                    await self._conn.fetchval("SELECT 1")
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("lease: the connection holding it failed (%s); giving it up", exc)
        self._lost.set()
        self._conn.terminate()  # the session ends: PostgreSQL lets go of the lock

    async def release(self) -> None:
        self._watch.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._watch
        self._lost.set()
        if self._conn.is_closed():
            return
        try:
            async with asyncio.timeout(5.0):
                await self._conn.execute("SELECT pg_advisory_unlock($1)", self._key)
                await self._conn.close()
        except Exception:
            self._conn.terminate()


class PostgresLeases:
    shared = True

    def __init__(self, db: Database, *, retry_seconds: float = 2.0, check_seconds: float = 2.0) -> None:
        self._db = db
        self._retry_seconds = retry_seconds
        self._check_seconds = check_seconds

    async def acquire(self, name: str) -> Lease:
        conn: Conn = None
        try:
            while True:
                try:
                    if conn is None or conn.is_closed():
                        conn = await self._db.connect()
                    key = lock_key(await conn.fetchval("SELECT current_schema()"), name)
                    if await conn.fetchval("SELECT pg_try_advisory_lock($1)", key):
                        lease, conn = PostgresLease(conn, key, self._check_seconds), None
                        return lease
                except Exception as exc:
                    log.warning("lease %r: %s; trying again", name, exc)
                    if conn is not None:
                        conn.terminate()
                    conn = None
                await asyncio.sleep(self._retry_seconds)
        finally:
            if conn is not None:  # cancelled while waiting: the connection goes too
                conn.terminate()
