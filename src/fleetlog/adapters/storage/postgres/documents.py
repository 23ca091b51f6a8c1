"""Documents in PostgreSQL: JSON bytes in one table keyed by (tenant, kind, id)."""

from __future__ import annotations

from typing import Any

import msgspec

from fleetlog.adapters.storage.postgres.appends import Commit, Conn
from fleetlog.adapters.storage.postgres.database import Database

_enc = msgspec.json.Encoder()


class PostgresDocuments:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, tenant: str, kind: str, id: str) -> Any | None:
        doc = await self._db.read(
            lambda c: c.fetchval(
                "SELECT doc FROM documents WHERE tenant = $1 AND kind = $2 AND id = $3", tenant, kind, id
            )
        )
        return msgspec.json.decode(doc) if doc is not None else None

    async def put(self, tenant: str, kind: str, id: str, doc: Any) -> None:
        blob = _enc.encode(doc)

        async def job(conn: Conn, _: Commit) -> None:
            await conn.execute(
                "INSERT INTO documents VALUES ($1, $2, $3, $4) "
                "ON CONFLICT (tenant, kind, id) DO UPDATE SET doc = excluded.doc",
                tenant,
                kind,
                id,
                blob,
            )

        await self._db.write(job)

    async def create(self, tenant: str, kind: str, id: str, doc: Any) -> bool:
        blob = _enc.encode(doc)

        async def job(conn: Conn, _: Commit) -> bool:
            status = await conn.execute(
                "INSERT INTO documents VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING", tenant, kind, id, blob
            )
            return bool(status.endswith(" 1"))

        return await self._db.write(job)

    async def delete(self, tenant: str, kind: str, id: str) -> bool:
        async def job(conn: Conn, _: Commit) -> bool:
            status = await conn.execute(
                "DELETE FROM documents WHERE tenant = $1 AND kind = $2 AND id = $3", tenant, kind, id
            )
            return bool(status != "DELETE 0")

        return await self._db.write(job)

    async def list(
        self, tenant: str | None, kind: str, after: str | None = None, limit: int = 1000
    ) -> list[tuple[str, str, Any]]:
        sql = "SELECT tenant, id, doc FROM documents WHERE kind = $1"
        params: list[Any] = [kind]
        if tenant is not None:
            params.append(tenant)
            sql += f" AND tenant = ${len(params)}"
        if after is not None:
            params.append(after)
            sql += f" AND id > ${len(params)}"
        params.append(limit)
        sql += f" ORDER BY id, tenant LIMIT ${len(params)}"
        rows = await self._db.read(lambda c: c.fetch(sql, *params))
        return [(t, i, msgspec.json.decode(d)) for t, i, d in rows]
