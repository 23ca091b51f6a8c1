"""The SQLite event store: group-committed appends, keyset queries over three indexes."""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from typing import Any

from fleetlog.adapters.storage.sqlite.keys import KeyCache
from fleetlog.adapters.storage.sqlite.readers import Readers
from fleetlog.adapters.storage.sqlite.writer import Writer
from fleetlog.core.errors import NotFound
from fleetlog.core.event import Event, pack, same_content, unpack
from fleetlog.core.ids import SequenceClock
from fleetlog.core.query import Cursor, EventQuery, Order, Page, Position
from fleetlog.ports.store import AppendResult, AppendStatus, Dedupe

# Up to this many index ranges are read side by side (UNION ALL, each already in order and
# limited); beyond it one range is read with the rest as a filter.
MAX_BRANCHES = 64
_MASK64 = (1 << 64) - 1
Row = tuple[int, int, int, bytes]  # seq, tail, time, doc


def _event(row: Row | tuple[int, int, bytes]) -> Event:
    seq, tail, doc = row[0], row[1], row[-1]
    event = unpack(doc)  # type: ignore[arg-type]
    event.id = f"{seq:016x}{tail & _MASK64:016x}"
    return event


class AppendBatch(list[AppendResult]):
    """The result of one append job: the writer's commit hook publishes its new events."""

    def created(self) -> list[Event]:
        return [r.event for r in self if r.status is AppendStatus.CREATED]


class SqliteEventStore:
    def __init__(self, writer: Writer, readers: Readers, keys: KeyCache, seqs: SequenceClock) -> None:
        self._writer = writer
        self._readers = readers
        self._keys = keys
        self._seqs = seqs

    # -- writing -------------------------------------------------------------------------

    async def append(self, events: Sequence[Event], dedupe: Dedupe = Dedupe.KEY) -> list[AppendResult]:
        return await self._writer.run(lambda conn: self._append(conn, events, dedupe))

    def _append(self, conn: sqlite3.Connection, events: Sequence[Event], dedupe: Dedupe) -> AppendBatch:
        keys, seqs = self._keys, self._seqs
        results = AppendBatch()
        rows: list[tuple[Any, ...]] = []
        state: dict[tuple[int, str], tuple[int, int]] = {}
        batch_idem: dict[tuple[int, str], Event] = {}
        batch_natural: dict[tuple[int, int, str], list[Event]] = {}
        for event in events:
            tenant_pk = keys.tenant(conn, event.tenant)
            project_pk = keys.project(conn, tenant_pk, event.project)
            device_pk = keys.device(conn, tenant_pk, event.device) if event.device else None
            idem = event.idempotency_key
            if idem is not None:
                earlier = batch_idem.get((tenant_pk, idem)) or self._by_idem(conn, tenant_pk, idem)
                if earlier is not None:
                    results.append(AppendResult(AppendStatus.DUPLICATE, earlier))
                    continue
            if dedupe is Dedupe.NATURAL and device_pk is not None:
                natural = (device_pk, event.time, event.type)
                twin = _twin(event, batch_natural.get(natural, ())) or _twin(
                    event, self._by_natural(conn, natural)
                )
                if twin is not None:
                    results.append(AppendResult(AppendStatus.CONFLICT, twin))
                    continue
                batch_natural.setdefault(natural, []).append(event)
            seq = seqs.next(event.received // 1000)
            tail = int.from_bytes(os.urandom(8), "big", signed=True)
            event.id = ""
            doc = pack(event)
            event.id = f"{seq:016x}{tail & _MASK64:016x}"
            rows.append((
                seq, tail, tenant_pk, project_pk, device_pk, event.type, event.time,
                event.outcome.value, event.severity, event.state_change, idem, doc,
            ))
            if idem is not None:
                batch_idem[(tenant_pk, idem)] = event
            if device_pk is not None:
                skey = (device_pk, event.type)
                prev = state.get(skey)
                if prev is None or (event.time, seq) > prev:
                    state[skey] = (event.time, seq)
            results.append(AppendResult(AppendStatus.CREATED, event))
        conn.executemany("INSERT INTO events VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", rows)
        conn.executemany(
            "INSERT INTO device_state VALUES (?,?,?,?) ON CONFLICT (device, type) DO UPDATE SET "
            "time = excluded.time, seq = excluded.seq WHERE excluded.time > device_state.time "
            "OR (excluded.time = device_state.time AND excluded.seq > device_state.seq)",
            [(d, t, tm, s) for (d, t), (tm, s) in state.items()],
        )
        return results

    @staticmethod
    def _by_idem(conn: sqlite3.Connection, tenant_pk: int, idem: str) -> Event | None:
        row = conn.execute(
            "SELECT seq, tail, doc FROM events WHERE tenant = ? AND idem = ?", (tenant_pk, idem)
        ).fetchone()
        return _event(row) if row else None

    @staticmethod
    def _by_natural(conn: sqlite3.Connection, natural: tuple[int, int, str]) -> list[Event]:
        rows = conn.execute(
            "SELECT seq, tail, doc FROM events WHERE device = ? AND time = ? AND type = ?", natural
        ).fetchall()
        return [_event(r) for r in rows]

    async def purge(self, tenant: str, before: int, batch: int = 5000) -> int:
        """Deletes in short transactions so ingest waits at most one batch."""
        total = 0
        while True:
            removed = await self._writer.run(lambda conn: self._purge_some(conn, tenant, before, batch))
            total += removed
            if removed < batch:
                return total

    def _purge_some(self, conn: sqlite3.Connection, tenant: str, before: int, batch: int) -> int:
        tenant_pk = self._keys.tenant(conn, tenant)
        removed = 0
        for (project_pk,) in conn.execute("SELECT pk FROM projects WHERE tenant = ?", (tenant_pk,)).fetchall():
            cur = conn.execute(
                "DELETE FROM events WHERE seq IN (SELECT seq FROM events WHERE project = ? "
                "AND time < ? LIMIT ?)",
                (project_pk, before, batch - removed),
            )
            removed += cur.rowcount
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

        def read(conn: sqlite3.Connection) -> Event | None:
            row = conn.execute(
                "SELECT e.seq, e.tail, e.doc FROM events e JOIN tenants t ON t.pk = e.tenant "
                "WHERE e.seq = ? AND e.tail = ? AND t.id = ?",
                (seq, tail, tenant),
            ).fetchone()
            return _event(row) if row else None

        return await self._readers.run(read)

    async def query(self, query: EventQuery) -> Page:
        return await self._readers.run(lambda conn: self._query(conn, query))

    def _query(self, conn: sqlite3.Connection, q: EventQuery) -> Page:
        plan = _plan(conn, self._keys, q)
        if plan is None:
            return Page([], False, None, None)
        sql, params = plan
        rows: list[Row] = conn.execute(sql, params).fetchall()
        has_more = len(rows) > q.limit
        rows = rows[: q.limit]
        backward = q.cursor is not None and q.cursor.backward
        if backward:
            rows.reverse()
        events = [_event(r) for r in rows]
        if not rows:
            return Page(events, False, None, None)
        first = Position(rows[0][2], rows[0][0])
        last = Position(rows[-1][2], rows[-1][0])
        if backward:
            next_cursor: Cursor | None = Cursor(last)
            prev_cursor = Cursor(first, backward=True) if has_more else None
            return Page(events, True, next_cursor, prev_cursor)
        next_cursor = Cursor(last) if has_more else None
        prev_cursor = Cursor(first, backward=True) if q.cursor is not None else None
        return Page(events, has_more, next_cursor, prev_cursor)

    async def export(self, query: EventQuery, chunk: int = 1000) -> AsyncIterator[list[Event]]:
        q = replace(query, limit=chunk)
        while True:
            page = await self.query(q)
            if page.events:
                yield page.events
            if page.next_cursor is None:
                return
            q = replace(q, cursor=page.next_cursor)

    async def latest_by_type(self, tenant: str, device: str) -> dict[str, Event]:
        def read(conn: sqlite3.Connection) -> dict[str, Event]:
            tenant_pk = self._keys.tenant(conn, tenant)
            device_pk = self._keys.device(conn, tenant_pk, device)
            rows = conn.execute(
                "SELECT e.seq, e.tail, e.doc FROM device_state s JOIN events e ON e.seq = s.seq "
                "WHERE s.device = ?",
                (device_pk,),
            ).fetchall()
            return {ev.type: ev for ev in map(_event, rows)}

        return await self._readers.run(read)

    async def since(self, tenant: str, after_seq: int, limit: int = 1000) -> list[Event]:
        """The tenant's events committed after `after_seq`, in commit order (for live resume)."""

        def read(conn: sqlite3.Connection) -> list[Event]:
            rows = conn.execute(
                "SELECT seq, tail, doc FROM events WHERE seq > ? "
                "AND tenant = (SELECT pk FROM tenants WHERE id = ?) ORDER BY seq LIMIT ?",
                (after_seq, tenant, limit),
            ).fetchall()
            return [_event(r) for r in rows]

        return await self._readers.run(read)

    async def count(self, tenant: str | None = None) -> int:
        def read(conn: sqlite3.Connection) -> int:
            if tenant is None:
                return int(conn.execute("SELECT count(*) FROM events").fetchone()[0])
            row = conn.execute(
                "SELECT count(*) FROM events WHERE tenant = (SELECT pk FROM tenants WHERE id = ?)",
                (tenant,),
            ).fetchone()
            return int(row[0])

        return await self._readers.run(read)


def _twin(event: Event, candidates: Sequence[Event]) -> Event | None:
    return next((c for c in candidates if same_content(c, event)), None)


def _plan(conn: sqlite3.Connection, keys: KeyCache, q: EventQuery) -> tuple[str, list[Any]] | None:
    """SQL for one page: one ordered, limited index range per branch, merged by UNION ALL."""
    try:
        tenant_pk = keys.tenant(conn, q.tenant)
    except NotFound:
        return None
    if q.projects:
        projects = [
            r[0]
            for p in q.projects
            for r in conn.execute("SELECT pk FROM projects WHERE tenant = ? AND id = ?", (tenant_pk, p))
        ]
    else:
        projects = [r[0] for r in conn.execute("SELECT pk FROM projects WHERE tenant = ?", (tenant_pk,))]
    if not projects:
        return None
    devices: list[int] | None = None
    if q.devices:
        devices = [
            r[0]
            for d in dict.fromkeys(q.devices)
            for r in conn.execute("SELECT pk FROM devices WHERE tenant = ? AND id = ?", (tenant_pk, d))
        ]
    if q.labels:
        labelled = _devices_with_labels(conn, projects, q.labels)
        devices = labelled if devices is None else [d for d in devices if d in set(labelled)]
    if devices is not None and not devices:
        return None

    desc = (q.order is Order.NEWEST) != (q.cursor is not None and q.cursor.backward)
    direction = "DESC" if desc else "ASC"
    where: list[str] = []
    params: list[Any] = []
    if q.since is not None:
        where.append("time >= ?")
        params.append(q.since)
    if q.until is not None:
        where.append("time < ?")
        params.append(q.until)
    if q.cursor is not None:
        pos = q.cursor.position
        cmp = "<" if desc else ">"
        where.append(f"time {cmp}= ? AND (time {cmp} ? OR seq {cmp} ?)")
        params += [pos.time, pos.time, pos.seq]
    if q.outcomes:
        where.append(f"outcome IN ({_marks(q.outcomes)})")
        params += [o.value for o in q.outcomes]
    if q.min_severity is not None:
        where.append("severity >= ?")
        params.append(q.min_severity)
    if q.max_severity is not None:
        where.append("severity <= ?")
        params.append(q.max_severity)
    if q.exclude_types:
        where.append(f"type NOT IN ({_marks(q.exclude_types)})")
        params += list(q.exclude_types)
    if q.state_change is not None:
        where.append("state_change = ?")
        params.append(int(q.state_change))

    # Choose the leading index: device, else project+type, else project.
    branches: list[tuple[str, list[Any]]] = []
    if devices is not None:
        scope = f"project IN ({_marks(projects)})"
        extra = [scope, *([f"type IN ({_marks(q.types)})"] if q.types else [])]
        extra_params: list[Any] = [*projects, *q.types]
        if len(devices) <= MAX_BRANCHES:
            branches = [("device = ?", [d]) for d in devices]
        else:
            branches = [(f"device IN ({_marks(devices)})", list(devices))]
    elif q.types:
        extra, extra_params = [], []
        pairs = [(p, t) for p in projects for t in dict.fromkeys(q.types)]
        if len(pairs) <= MAX_BRANCHES:
            branches = [("project = ? AND type = ?", [p, t]) for p, t in pairs]
        else:
            extra, extra_params = [f"type IN ({_marks(q.types)})"], list(q.types)
            branches = [(f"project IN ({_marks(projects)})", list(projects))]
    else:
        extra, extra_params = [], []
        if len(projects) <= MAX_BRANCHES:
            branches = [("project = ?", [p]) for p in projects]
        else:
            branches = [(f"project IN ({_marks(projects)})", list(projects))]

    order = f"ORDER BY time {direction}, seq {direction} LIMIT ?"
    limit = q.limit + 1
    parts: list[str] = []
    all_params: list[Any] = []
    for lead, lead_params in branches:
        clause = " AND ".join([lead, *extra, *where])
        parts.append(f"SELECT seq, tail, time, doc FROM events WHERE {clause} {order}")
        all_params += [*lead_params, *extra_params, *params, limit]
    if len(parts) == 1:
        return parts[0], all_params
    union = " UNION ALL ".join(f"SELECT * FROM ({p})" for p in parts)
    return f"SELECT * FROM ({union}) {order}", [*all_params, limit]


def _devices_with_labels(
    conn: sqlite3.Connection, projects: list[int], labels: tuple[tuple[str, str | None], ...]
) -> list[int]:
    clauses, params = [], []
    for key, value in labels:
        path = "$." + json.dumps(key)
        if value is None:
            clauses.append("json_type(labels, ?) IS NOT NULL")
            params.append(path)
        else:
            clauses.append("json_extract(labels, ?) = ?")
            params += [path, value]
    sql = f"SELECT pk FROM devices WHERE project IN ({_marks(projects)}) AND " + " AND ".join(clauses)
    return [r[0] for r in conn.execute(sql, [*projects, *params])]


def _marks(values: Sequence[Any]) -> str:
    return ",".join("?" * len(values))
