"""The SQLite event store: group-committed appends, keyset queries over three indexes."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator, Sequence
from typing import Any

import msgspec

from fleetlog.adapters.storage.sqlite.appends import (
    DEVICE_INDEXES,
    MERGE_ROWS,
    Appends,
    docs_of,
    event_of_row,
    id_bytes,
    marks,
)
from fleetlog.adapters.storage.sqlite.keys import KeyCache
from fleetlog.adapters.storage.sqlite.readers import Readers
from fleetlog.adapters.storage.sqlite.writer import Writer
from fleetlog.core.errors import NotFound
from fleetlog.core.event import Event
from fleetlog.core.ids import SequenceClock
from fleetlog.core.query import EventQuery, Order, Page, Position, assemble_page
from fleetlog.ports.store import AppendResult, Dedupe, export_by_pages

# Pages of events are read as one row: SQLite joins the rows' keys and documents (JSON already)
# into one JSON text, decoded in one call. Python's sqlite3 gives up the GIL for every row it
# steps to and must take it back while the event loop and the other readers run; with a row per
# event, 101 hand-overs per page made pages under concurrent load several times slower than the SQL.
_ONE_ROW = "SELECT group_concat('[' || seq || ',' || tail || ',' || time || ',' || CAST(doc AS TEXT) || ']') FROM ({})"
_rows_decoder = msgspec.json.Decoder(list[tuple[int, int, int, Event]])
EventRow = tuple[int, int, int, Event]  # seq, tail, time, the event with its id


def _read_as_one_row(conn: sqlite3.Connection, sql: str, params: Sequence[Any]) -> list[EventRow]:
    """The events of `sql`, which selects seq, tail, time, doc. Not in its order: group_concat
    keeps the order of the rows it is given in practice, not by contract; the caller sorts."""
    (joined,) = conn.execute(_ONE_ROW.format(sql), params).fetchone()
    rows: list[EventRow] = _rows_decoder.decode(f"[{joined}]") if joined else []
    for seq, tail, _, event in rows:
        event.id = id_bytes(seq, tail).hex()
    return rows


def _position(row: EventRow) -> tuple[int, int]:
    return row[2], row[0]


def _seq(row: EventRow) -> int:
    return row[0]


def _descending(q: EventQuery) -> bool:
    """The order the store reads in: the query's, reversed for a backward cursor."""
    return (q.order is Order.NEWEST) != (q.cursor is not None and q.cursor.backward)


# Up to this many index ranges are read side by side (UNION ALL, each already in order and
# limited); beyond it one range is read with the rest as a filter.
MAX_BRANCHES = 64


class SqliteEventStore:
    def __init__(
        self, writer: Writer, readers: Readers, keys: KeyCache, seqs: SequenceClock, merge_rows: int = MERGE_ROWS
    ) -> None:
        self._writer = writer
        self._readers = readers
        self._keys = keys
        self._appends = Appends(keys, seqs, merge_rows)

    # -- writing -------------------------------------------------------------------------

    async def append(self, events: Sequence[Event], dedupe: Dedupe = Dedupe.KEY) -> list[AppendResult]:
        # The storage encoding is made here, on the event loop, not in the writer thread: the
        # writer is the one thread every append waits for, so it does as little as it can.
        docs = docs_of(events)
        return await self._writer.run_merged(self._appends.merge, (events, dedupe, docs))

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
                "DELETE FROM events WHERE seq IN (SELECT seq FROM events WHERE project = ? AND time < ? LIMIT ?)",
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
            return event_of_row(row) if row else None

        return await self._readers.run(read)

    async def query(self, query: EventQuery) -> Page:
        return await self._readers.run(lambda conn: self._query(conn, query))

    def _query(self, conn: sqlite3.Connection, q: EventQuery) -> Page:
        plan = _plan(conn, self._keys, q)
        if plan is None:
            return Page([], False, None, None)
        sql, params = plan
        rows = _read_as_one_row(conn, sql, params)
        rows.sort(key=_position, reverse=_descending(q))
        return assemble_page([(Position(time, seq), event) for seq, _, time, event in rows[: q.limit + 1]], q)

    def export(self, query: EventQuery, chunk: int = 1000) -> AsyncIterator[list[Event]]:
        return export_by_pages(self, query, chunk)

    async def latest_by_type(self, tenant: str, device: str) -> dict[str, Event]:
        def read(conn: sqlite3.Connection) -> dict[str, Event]:
            tenant_pk = self._keys.tenant(conn, tenant)
            device_pk = self._keys.device(conn, tenant_pk, device)
            rows = conn.execute(
                "SELECT e.seq, e.tail, e.doc FROM device_state s JOIN events e ON e.seq = s.seq WHERE s.device = ?",
                (device_pk,),
            ).fetchall()
            return {ev.type: ev for ev in map(event_of_row, rows)}

        return await self._readers.run(read)

    async def since(self, tenant: str, after_seq: int, limit: int = 1000) -> list[Event]:
        """The tenant's events committed after `after_seq`, in commit order (for live resume)."""

        def read(conn: sqlite3.Connection) -> list[Event]:
            rows = _read_as_one_row(
                conn,
                "SELECT seq, tail, time, doc FROM events WHERE seq > ? "
                "AND tenant = (SELECT pk FROM tenants WHERE id = ?) ORDER BY seq LIMIT ?",
                [after_seq, tenant, limit],
            )
            rows.sort(key=_seq)
            return [event for _, _, _, event in rows]

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
            # a removed device's events are still found by its id
            for r in conn.execute(
                "SELECT pk FROM devices WHERE tenant = ?1 AND id = ?2 "
                "UNION SELECT pk FROM removed_devices WHERE tenant = ?1 AND id = ?2",
                (tenant_pk, d),
            )
        ]
    if q.labels:
        labelled = _devices_with_labels(conn, projects, q.labels)
        devices = labelled if devices is None else [d for d in devices if d in set(labelled)]
    if devices is not None and not devices:
        return None

    desc = _descending(q)
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
        where.append(f"outcome IN ({marks(q.outcomes)})")
        params += [o.value for o in q.outcomes]
    if q.min_severity is not None:
        where.append("severity >= ?")
        params.append(q.min_severity)
    if q.max_severity is not None:
        where.append("severity <= ?")
        params.append(q.max_severity)
    if q.exclude_types:
        where.append(f"type NOT IN ({marks(q.exclude_types)})")
        params += list(q.exclude_types)
    if q.state_change is not None:
        where.append("state_change = ?")
        params.append(int(q.state_change))

    # Choose the leading index: device, else project+type, else project. A device's entries are
    # in two index tables (schema.py, migration 4), each walked in order and joined to its
    # events; USING makes `device`, `time` and `seq` those of the index table.
    branches: list[tuple[str, str, list[Any]]] = []  # rows from, leading condition, its values
    if devices is not None:
        scope = f"project IN ({marks(projects)})"
        extra = [scope, *([f"type IN ({marks(q.types)})"] if q.types else [])]
        extra_params: list[Any] = [*projects, *q.types]
        leads = (
            [("device = ?", [d]) for d in devices]
            if len(devices) <= MAX_BRANCHES
            else [(f"device IN ({marks(devices)})", list(devices))]
        )
        branches = [
            (f"{index} CROSS JOIN events USING (device, time, seq)", lead, values)
            for lead, values in leads
            for index in DEVICE_INDEXES
        ]
    elif q.types:
        extra, extra_params = [], []
        pairs = [(p, t) for p in projects for t in dict.fromkeys(q.types)]
        if len(pairs) <= MAX_BRANCHES:
            branches = [("events", "project = ? AND type = ?", [p, t]) for p, t in pairs]
        else:
            extra, extra_params = [f"type IN ({marks(q.types)})"], list(q.types)
            branches = [("events", f"project IN ({marks(projects)})", list(projects))]
    else:
        extra, extra_params = [], []
        if len(projects) <= MAX_BRANCHES:
            branches = [("events", "project = ?", [p]) for p in projects]
        else:
            branches = [("events", f"project IN ({marks(projects)})", list(projects))]

    order = f"ORDER BY time {direction}, seq {direction} LIMIT ?"
    limit = q.limit + 1
    parts: list[str] = []
    all_params: list[Any] = []
    for source, lead, lead_params in branches:
        clause = " AND ".join([lead, *extra, *where])
        parts.append(f"SELECT seq, tail, time, doc FROM {source} WHERE {clause} {order}")
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
    sql = f"SELECT pk FROM devices WHERE project IN ({marks(projects)}) AND " + " AND ".join(clauses)
    return [r[0] for r in conn.execute(sql, [*projects, *params])]
