"""The deferred inbox: payloads accepted with 202, kept until a worker has processed them."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from fleetlog.adapters.storage.sqlite.readers import Readers
from fleetlog.adapters.storage.sqlite.writer import Writer


class SqliteInbox:
    def __init__(self, writer: Writer, readers: Readers) -> None:
        self._writer = writer
        self._readers = readers

    async def put(self, payloads: Sequence[bytes]) -> None:
        def job(conn: sqlite3.Connection) -> None:
            conn.executemany("INSERT INTO inbox (payload) VALUES (?)", [(p,) for p in payloads])

        await self._writer.run(job)

    async def take(self, limit: int) -> list[tuple[int, bytes]]:
        rows = await self._readers.run(
            lambda c: c.execute("SELECT pk, payload FROM inbox ORDER BY pk LIMIT ?", (limit,)).fetchall()
        )
        return [(int(pk), bytes(payload)) for pk, payload in rows]

    async def done(self, ids: Sequence[int]) -> None:
        def job(conn: sqlite3.Connection) -> None:
            conn.executemany("DELETE FROM inbox WHERE pk = ?", [(i,) for i in ids])

        await self._writer.run(job)
