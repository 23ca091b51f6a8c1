"""The PostgreSQL event store: group-committed appends (see `appends`), keyset queries over
three indexes with the same plan as the SQLite store."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from fleetlog.adapters.storage.postgres.appends import AppendBatch, AppendJob, Conn, row_event
from fleetlog.adapters.storage.postgres.database import Database
from fleetlog.core.event import Event
from fleetlog.core.query import EventQuery, Order, Page, Position, assemble_page
from fleetlog.ports.store import AppendResult, Dedupe, export_by_pages

# Up to this many index ranges are read side by side (UNION ALL, each already in order and
# limited); beyond it one range is read with the rest as a filter.
MAX_BRANCHES = 64


class PostgresEventStore:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._keys = db.keys

    # -- writing -------------------------------------------------------------------------

    async def append(self, events: Sequence[Event], dedupe: Dedupe = Dedupe.KEY) -> list[AppendResult]:
        batch: AppendBatch = await self._db.write(AppendJob(events, dedupe, self._keys))
        return batch

    async def purge(self, tenant: str, before: int, batch: int = 5000) -> int:
        """Deletes in short transactions so ingest waits at most one batch."""
        total = 0
        while True:
            removed = await self._db.write(lambda conn, _: self._purge_some(conn, tenant, before, batch))
            total += removed
            if removed < batch:
                return total

    async def _purge_some(self, conn: Conn, tenant: str, before: int, batch: int) -> int:
        tenant_pk = await self._keys.tenant(conn, tenant)
        removed = 0
        for project_pk in await _column(conn, "SELECT pk FROM projects WHERE tenant = $1", tenant_pk):
            status = await conn.execute(
                "DELETE FROM events WHERE seq IN (SELECT seq FROM events WHERE project = $1 AND time < $2 LIMIT $3)",
                project_pk,
                before,
                batch - removed,
            )
            removed += int(status.split()[-1])
            if removed >= batch:
                break
        return removed

    # -- reading -------------------------------------------------------------------------

    async def get(self, tenant: str, event_id: str) -> Event | None:
        if len(event_id) != 32:
            return None
        try:
            seq, tail = int(event_id[:16], 16), int(event_id[16:], 16)
        except ValueError:
            return None
        if seq >= 1 << 63:  # not an id this store ever issued (row keys are signed 64-bit)
            return None
        if tail >= 1 << 63:
            tail -= 1 << 64
        row = await self._db.read(
            lambda conn: conn.fetchrow(
                "SELECT e.seq, e.tail, e.doc FROM events e JOIN tenants t ON t.pk = e.tenant "
                "WHERE e.seq = $1 AND e.tail = $2 AND t.id = $3",
                seq,
                tail,
                tenant,
            )
        )
        return row_event(row) if row else None

    async def query(self, query: EventQuery) -> Page:
        return await self._db.read(lambda conn: self._query(conn, query))

    async def _query(self, conn: Conn, q: EventQuery) -> Page:
        plan = await _plan(conn, q)
        if plan is None:
            return Page([], False, None, None)
        sql, params = plan
        rows = await conn.fetch(sql, *params)
        return assemble_page([(Position(r["time"], r["seq"]), row_event(r)) for r in rows[: q.limit + 1]], q)

    def export(self, query: EventQuery, chunk: int = 1000) -> AsyncIterator[list[Event]]:
        return export_by_pages(self, query, chunk)

    async def latest_by_type(self, tenant: str, device: str) -> dict[str, Event]:
        async def read(conn: Conn) -> dict[str, Event]:
            rows = await conn.fetch(
                "SELECT e.seq, e.tail, e.doc FROM device_state s JOIN events e ON e.seq = s.seq "
                "WHERE s.device = (SELECT d.pk FROM devices d JOIN tenants t ON t.pk = d.tenant "
                "WHERE t.id = $1 AND d.id = $2)",
                tenant,
                device,
            )
            return {ev.type: ev for ev in map(row_event, rows)}

        return await self._db.read(read)

    async def since(self, tenant: str, after_seq: int, limit: int = 1000) -> list[Event]:
        """The tenant's events committed after `after_seq`, in commit order (for live resume)."""
        if after_seq >= 1 << 63:
            return []
        rows = await self._db.read(
            lambda conn: conn.fetch(
                "SELECT seq, tail, doc FROM events WHERE seq > $1 "
                "AND tenant = (SELECT pk FROM tenants WHERE id = $2) ORDER BY seq LIMIT $3",
                after_seq,
                tenant,
                limit,
            )
        )
        return [row_event(r) for r in rows]

    async def count(self, tenant: str | None = None) -> int:
        if tenant is None:
            n = await self._db.read(lambda conn: conn.fetchval("SELECT count(*) FROM events"))
        else:
            n = await self._db.read(
                lambda conn: conn.fetchval(
                    "SELECT count(*) FROM events WHERE tenant = (SELECT pk FROM tenants WHERE id = $1)", tenant
                )
            )
        return int(n)


async def _column(conn: Conn, sql: str, *args: Any) -> list[Any]:
    return [r[0] for r in await conn.fetch(sql, *args)]


class _Params:
    """Numbered parameters ($1, $2, ...) for a query built piece by piece."""

    def __init__(self) -> None:
        self.values: list[Any] = []

    def __call__(self, value: Any) -> str:
        self.values.append(value)
        return f"${len(self.values)}"


async def _plan(conn: Conn, q: EventQuery) -> tuple[str, list[Any]] | None:
    """SQL for one page: one ordered, limited index range per branch, merged by UNION ALL."""
    tenant_pk = await conn.fetchval("SELECT pk FROM tenants WHERE id = $1", q.tenant)
    if tenant_pk is None:
        return None
    if q.projects:
        projects = await _column(
            conn,
            "SELECT pk FROM projects WHERE tenant = $1 AND id = ANY($2::text[]) ORDER BY pk",
            tenant_pk,
            list(q.projects),
        )
    else:
        projects = await _column(conn, "SELECT pk FROM projects WHERE tenant = $1 ORDER BY pk", tenant_pk)
    if not projects:
        return None
    devices: list[int] | None = None
    if q.devices:
        devices = await _column(
            conn,
            "SELECT pk FROM devices WHERE tenant = $1 AND id = ANY($2::text[]) "
            "UNION SELECT pk FROM removed_devices WHERE tenant = $1 AND id = ANY($2::text[]) ORDER BY pk",
            tenant_pk,
            list(dict.fromkeys(q.devices)),
        )
    if q.labels:
        labelled = await _devices_with_labels(conn, projects, q.labels)
        devices = labelled if devices is None else [d for d in devices if d in set(labelled)]
    if devices is not None and not devices:
        return None

    p = _Params()
    desc = (q.order is Order.NEWEST) != (q.cursor is not None and q.cursor.backward)
    direction = "DESC" if desc else "ASC"
    where: list[str] = []
    if q.since is not None:
        where.append(f"time >= {p(q.since)}")
    if q.until is not None:
        where.append(f"time < {p(q.until)}")
    if q.cursor is not None:
        pos = q.cursor.position
        cmp = "<" if desc else ">"
        where.append(f"(time, seq) {cmp} ({p(pos.time)}::bigint, {p(pos.seq)}::bigint)")
    if q.outcomes:
        where.append(f"outcome = ANY({p([o.value for o in q.outcomes])}::text[])")
    if q.min_severity is not None:
        where.append(f"severity >= {p(q.min_severity)}")
    if q.max_severity is not None:
        where.append(f"severity <= {p(q.max_severity)}")
    if q.exclude_types:
        where.append(f"type <> ALL({p(list(q.exclude_types))}::text[])")
    if q.state_change is not None:
        where.append(f"state_change = {p(q.state_change)}")

    # Choose the leading index: device, else project+type, else project.
    leads: list[str]
    extra: list[str] = []
    if devices is not None:
        extra.append(f"project = ANY({p(projects)}::int[])")
        if q.types:
            extra.append(f"type = ANY({p(list(q.types))}::text[])")
        if len(devices) <= MAX_BRANCHES:
            leads = [f"device = {p(d)}" for d in devices]
        else:
            leads = [f"device = ANY({p(devices)}::int[])"]
    elif q.types:
        pairs = [(pr, t) for pr in projects for t in dict.fromkeys(q.types)]
        if len(pairs) <= MAX_BRANCHES:
            leads = [f"project = {p(pr)} AND type = {p(t)}" for pr, t in pairs]
        else:
            extra.append(f"type = ANY({p(list(q.types))}::text[])")
            leads = [f"project = ANY({p(projects)}::int[])"]
    elif len(projects) <= MAX_BRANCHES:
        leads = [f"project = {p(pr)}" for pr in projects]
    else:
        leads = [f"project = ANY({p(projects)}::int[])"]

    order = f"ORDER BY time {direction}, seq {direction} LIMIT {p(q.limit + 1)}"
    parts = [
        f"SELECT seq, tail, time, doc FROM events WHERE {' AND '.join([lead, *extra, *where])} {order}"
        for lead in leads
    ]
    if len(parts) == 1:
        return parts[0], p.values
    union = " UNION ALL ".join(f"({part})" for part in parts)
    return f"SELECT * FROM ({union}) AS page {order}", p.values


async def _devices_with_labels(
    conn: Conn, projects: list[int], labels: tuple[tuple[str, str | None], ...]
) -> list[int]:
    p = _Params()
    clauses = [f"project = ANY({p(projects)}::int[])"]
    for key, value in labels:
        if value is None:
            clauses.append(f"labels ? {p(key)}")
        else:
            clauses.append(f"labels ->> {p(key)} = {p(value)}")
    return await _column(conn, f"SELECT pk FROM devices WHERE {' AND '.join(clauses)} ORDER BY pk", *p.values)
