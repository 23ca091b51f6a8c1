"""Documents in SQLite: JSON in one table keyed by (tenant, kind, id)."""

from __future__ import annotations

import sqlite3
from typing import Any

import msgspec

from fleetlog.adapters.storage.sqlite.readers import Readers
from fleetlog.adapters.storage.sqlite.writer import Writer

_enc = msgspec.json.Encoder()


class SqliteDocuments:
    def __init__(self, writer: Writer, readers: Readers) -> None:
        self._writer = writer
        self._readers = readers

    async def get(self, tenant: str, kind: str, id: str) -> Any | None:
        row = await self._readers.run(
            lambda c: c.execute(
                "SELECT doc FROM documents WHERE tenant = ? AND kind = ? AND id = ?", (tenant, kind, id)
            ).fetchone()
        )
        return msgspec.json.decode(row[0]) if row else None

    async def put(self, tenant: str, kind: str, id: str, doc: Any) -> None:
        blob = _enc.encode(doc)

        def job(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT OR REPLACE INTO documents VALUES (?, ?, ?, ?)", (tenant, kind, id, blob))

        await self._writer.run(job)

    async def create(self, tenant: str, kind: str, id: str, doc: Any) -> bool:
        blob = _enc.encode(doc)

        def job(conn: sqlite3.Connection) -> bool:
            cur = conn.execute("INSERT OR IGNORE INTO documents VALUES (?, ?, ?, ?)", (tenant, kind, id, blob))
            return cur.rowcount == 1

        return await self._writer.run(job)

    async def delete(self, tenant: str, kind: str, id: str) -> bool:
        def job(conn: sqlite3.Connection) -> bool:
            cur = conn.execute("DELETE FROM documents WHERE tenant = ? AND kind = ? AND id = ?", (tenant, kind, id))
            return cur.rowcount > 0

        return await self._writer.run(job)

    async def list(
        self, tenant: str | None, kind: str, after: str | None = None, limit: int = 1000
    ) -> list[tuple[str, str, Any]]:
        sql = "SELECT tenant, id, doc FROM documents WHERE kind = ?"
        params: list[Any] = [kind]
        if tenant is not None:
            sql += " AND tenant = ?"
            params.append(tenant)
        if after is not None:
            sql += " AND id > ?"
            params.append(after)
        sql += " ORDER BY id, tenant LIMIT ?"
        params.append(limit)
        rows = await self._readers.run(lambda c: c.execute(sql, params).fetchall())
        return [(t, i, msgspec.json.decode(d)) for t, i, d in rows]
