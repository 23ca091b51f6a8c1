"""The deferred inbox: payloads accepted with 202, kept until a worker has processed them.

Several fleetlog processes may share the inbox. `take` locks the rows it hands out (FOR UPDATE
SKIP LOCKED, in a transaction on a connection of its own) until `done` deletes them and
commits: no two processes take the same payload, and if a process dies, its locks go with its
connection, so the payloads are taken again at once (by a restart or another process).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any

from fleetlog.adapters.storage.postgres.appends import Commit, Conn
from fleetlog.adapters.storage.postgres.database import Database


class PostgresInbox:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._conn: Conn = None
        self._tx: Any = None  # the open transaction holding taken rows, if any
        self._lock = asyncio.Lock()

    async def put(self, payloads: Sequence[bytes]) -> None:
        async def job(conn: Conn, _: Commit) -> None:
            await conn.execute("INSERT INTO inbox (payload) SELECT unnest($1::bytea[])", list(payloads))

        await self._db.write(job)

    async def take(self, limit: int) -> list[tuple[int, bytes]]:
        async with self._lock:
            conn = await self._connection()
            await self._end(conn, commit=False)  # rows taken before and not done go back
            tx = conn.transaction()
            await tx.start()
            self._tx = tx
            rows = await conn.fetch("SELECT pk, payload FROM inbox ORDER BY pk LIMIT $1 FOR UPDATE SKIP LOCKED", limit)
            if not rows:
                await self._end(conn, commit=False)
            return [(int(pk), bytes(payload)) for pk, payload in rows]

    async def done(self, ids: Sequence[int]) -> None:
        async with self._lock:
            conn = await self._connection()
            await conn.execute("DELETE FROM inbox WHERE pk = ANY($1::bigint[])", list(ids))
            await self._end(conn, commit=True)

    async def _connection(self) -> Conn:
        if self._conn is None or self._conn.is_closed():
            self._conn, self._tx = await self._db.connect(), None
        return self._conn

    async def _end(self, conn: Conn, *, commit: bool) -> None:
        tx, self._tx = self._tx, None
        if tx is not None:
            await (tx.commit() if commit else tx.rollback())

    async def aclose(self) -> None:
        async with self._lock:
            if self._conn is not None and not self._conn.is_closed():
                await self._conn.close()
            self._conn = None

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.terminate()
            self._conn = None
