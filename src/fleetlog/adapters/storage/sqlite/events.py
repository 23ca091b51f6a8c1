"""The SQLite event store: group-committed appends, keyset queries over three indexes."""

from __future__ import annotations

import functools
import json
import os
import sqlite3
import struct
from collections.abc import AsyncIterator, Sequence
from itertools import chain
from typing import Any

import msgspec

from fleetlog.adapters.storage.sqlite.keys import KeyCache
from fleetlog.adapters.storage.sqlite.readers import Readers
from fleetlog.adapters.storage.sqlite.writer import Merge, Writer
from fleetlog.core.errors import NotFound
from fleetlog.core.event import Event, pack, same_content, unpack
from fleetlog.core.ids import SequenceClock
from fleetlog.core.query import EventQuery, Order, Page, Position, assemble_page
from fleetlog.ports.store import AppendResult, AppendStatus, Dedupe, export_by_pages

# Up to this many index ranges are read side by side (UNION ALL, each already in order and
# limited); beyond it one range is read with the rest as a filter.
MAX_BRANCHES = 64
_id_bytes = struct.Struct(">Qq").pack  # the 32 hex digits of an id: seq, then the tail's 64 bits
Row = tuple[int, int, int, bytes]  # seq, tail, time, doc


def _event(row: Row | tuple[int, int, bytes]) -> Event:
    seq, tail, doc = row[0], row[1], row[-1]
    event = unpack(doc)
    event.id = _id_bytes(seq, tail).hex()
    return event


class AppendBatch(list[AppendResult]):
    """The result of one append job: the writer's commit hook publishes its new events."""

    def created(self) -> list[Event]:
        return [r.event for r in self if r.status is AppendStatus.CREATED]


_Payload = tuple[Sequence[Event], Dedupe, list[bytes]]  # events, dedupe, their docs


class SqliteEventStore:
    def __init__(self, writer: Writer, readers: Readers, keys: KeyCache, seqs: SequenceClock) -> None:
        self._writer = writer
        self._readers = readers
        self._keys = keys
        self._seqs = seqs
        self._merge: Merge[_Payload, AppendBatch] = Merge(self._append_one, self._append_many)

    # -- writing -------------------------------------------------------------------------

    async def append(self, events: Sequence[Event], dedupe: Dedupe = Dedupe.KEY) -> list[AppendResult]:
        # The storage encoding is made here, on the event loop, not in the writer thread: the
        # writer is the one thread every append waits for, so it does as little as it can.
        docs = [pack(e) if not e.id else pack(msgspec.structs.replace(e, id="")) for e in events]
        return await self._writer.run_merged(self._merge, (events, dedupe, docs))

    def _append(self, conn: sqlite3.Connection, events: Sequence[Event], dedupe: Dedupe) -> AppendBatch:
        """One append job on its own, in the writer's transaction."""
        docs = [pack(e) if not e.id else pack(msgspec.structs.replace(e, id="")) for e in events]
        return self._append_one(conn, (events, dedupe, docs))

    def _append_one(self, conn: sqlite3.Connection, payload: _Payload) -> AppendBatch:
        ((result, exc),) = self._append_many(conn, [payload])
        if exc is not None:
            raise exc
        assert result is not None
        return result

    def _append_many(
        self, conn: sqlite3.Connection, payloads: Sequence[_Payload]
    ) -> list[tuple[AppendBatch | None, BaseException | None]]:
        """The append jobs of one commit, as if each ran after the other in its own savepoint.

        A job is refused whole (and writes nothing) if one of its events names a tenant,
        project or device that does not exist. Every dedupe check sees what the database held
        before, plus what the jobs before it and its own earlier events created, exactly as if
        each job had inserted its rows before the next one ran. The rows of all jobs are then
        inserted with one or a few multi-row statements.
        """
        keys, seqs = self._keys, self._seqs
        outcomes: list[tuple[AppendBatch | None, BaseException | None]] = []
        # 1. registry ids to row keys, per job
        resolved: list[list[tuple[int, int, int | None]] | None] = []
        tenant_pk = keys.tenant
        project_pk = keys.project
        device_pk = keys.device
        memo: dict[tuple[str, str, str | None], tuple[int, int, int | None]] = {}  # a fleet has few keys
        for events, _, _ in payloads:
            try:
                found: list[tuple[int, int, int | None]] = []
                for e in events:
                    names = (e.tenant, e.project, e.device)
                    row_keys = memo.get(names)
                    if row_keys is None:
                        t = tenant_pk(conn, e.tenant)
                        row_keys = memo[names] = (
                            t,
                            project_pk(conn, t, e.project),
                            device_pk(conn, t, e.device) if e.device else None,
                        )
                    found.append(row_keys)
            except Exception as exc:
                resolved.append(None)
                outcomes.append((None, exc))
                continue
            resolved.append(found)
            outcomes.append((None, None))
        # 2. what the database already holds for the keys the dedupe rules will ask about
        idem_keys: set[tuple[int, str]] = set()
        natural_keys: set[tuple[int, int, str]] = set()
        count = 0
        last_natural = -1  # the last job that checks natural keys: later ones need not be told
        for index, ((events, dedupe, _), pks) in enumerate(zip(payloads, resolved, strict=True)):
            if pks is None:
                continue
            count += len(events)
            natural = dedupe is Dedupe.NATURAL
            if natural:
                last_natural = index
            for e, (t, _, d) in zip(events, pks, strict=True):
                if e.idempotency_key is not None:
                    idem_keys.add((t, e.idempotency_key))
                if natural and d is not None:
                    natural_keys.add((d, e.time, e.type))
        stored_idem = _stored_by_idem(conn, idem_keys) if idem_keys else {}
        stored_natural = _stored_by_natural(conn, natural_keys) if natural_keys else {}
        # 3. each job in order: dedupe, ids, rows
        created_idem: dict[tuple[int, str], Event] = {}  # created by the jobs before, in this commit
        created_natural: dict[tuple[int, int, str], list[Event]] = {}
        rows: list[tuple[Any, ...]] = []
        state: dict[tuple[int, str], tuple[int, int]] = {}
        tails = iter(struct.unpack(f">{count}q", os.urandom(8 * count)))
        next_seq = seqs.next
        created, duplicate, conflict = AppendStatus.CREATED, AppendStatus.DUPLICATE, AppendStatus.CONFLICT
        for index, ((events, dedupe, docs), pks) in enumerate(zip(payloads, resolved, strict=True)):
            if pks is None:
                continue
            results = AppendBatch()
            own_idem: dict[tuple[int, str], Event] = {}
            own_natural: dict[tuple[int, int, str], list[Event]] = {}
            natural_mode = dedupe is Dedupe.NATURAL
            tell_later = index < last_natural
            first_row = len(rows)
            job_state: dict[tuple[int, str], tuple[int, int]] = {}
            job_natural: list[tuple[tuple[int, int, str], Event]] = []
            try:
                for e, (t, p, d), doc in zip(events, pks, docs, strict=True):
                    idem = e.idempotency_key
                    if idem is not None:
                        ikey = (t, idem)
                        earlier = own_idem.get(ikey) or created_idem.get(ikey) or stored_idem.get(ikey)
                        if earlier is not None:
                            results.append(AppendResult(duplicate, earlier))
                            continue
                    if natural_mode and d is not None:
                        nkey = (d, e.time, e.type)
                        twin = (
                            _twin(e, own_natural.get(nkey, ()))
                            or _twin(e, stored_natural.get(nkey, ()))
                            or _copy(_twin(e, created_natural.get(nkey, ())))
                        )
                        if twin is not None:
                            results.append(AppendResult(conflict, twin))
                            continue
                        own_natural.setdefault(nkey, []).append(e)
                    seq = next_seq(e.received // 1000)
                    tail = next(tails)
                    e.id = _id_bytes(seq, tail).hex()
                    when = e.time
                    rows.append(
                        (
                            seq,
                            tail,
                            t,
                            p,
                            d,
                            e.type,
                            when,
                            e.outcome.value,
                            e.severity,
                            e.state_change,
                            idem,
                            doc,
                        )
                    )
                    if idem is not None:
                        own_idem[(t, idem)] = e
                    if d is not None:
                        skey = (d, e.type)
                        prev = job_state.get(skey)
                        if prev is None or (when, seq) > prev:
                            job_state[skey] = (when, seq)
                        if tell_later:
                            job_natural.append(((d, when, e.type), e))
                    results.append(AppendResult(created, e))
            except Exception as exc:  # this job fails alone: forget its rows
                del rows[first_row:]
                outcomes[index] = (None, exc)
                continue
            outcomes[index] = (results, None)
            created_idem.update(own_idem)
            for nkey, e in job_natural:
                created_natural.setdefault(nkey, []).append(e)
            if not state:
                state = job_state
            else:
                for skey, value in job_state.items():
                    prev = state.get(skey)
                    if prev is None or value > prev:
                        state[skey] = value
        _insert(conn, _INSERT_EVENTS, rows)
        _insert(conn, _UPSERT_STATE, [(d, t, tm, s) for (d, t), (tm, s) in state.items()])
        return outcomes

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
        return assemble_page([(Position(r[2], r[0]), _event(r)) for r in rows[: q.limit + 1]], q)

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


def _copy(event: Event | None) -> Event | None:
    """What reading the stored row back gives: the caller keeps its own object."""
    return None if event is None else msgspec.structs.replace(event)


# -- multi-row statements --------------------------------------------------------------------
# Rows go in with `INSERT ... VALUES (...), (...), ...`: one statement per commit in the usual
# case instead of one step per row, so the writer releases and retakes the GIL (waiting up to
# the switch interval each time while the event loop runs) a few times per commit, not once per
# row. Up to 2048 rows take one statement of exactly that size (prepared once per size and kept
# in the connection's statement cache); more go in chunks of 2048.
_INSERT_EVENTS = ("INSERT INTO events VALUES ", 12, "")
_UPSERT_STATE = (
    "INSERT INTO device_state VALUES ",
    4,
    " ON CONFLICT (device, type) DO UPDATE SET "
    "time = excluded.time, seq = excluded.seq WHERE excluded.time > device_state.time "
    "OR (excluded.time = device_state.time AND excluded.seq > device_state.seq)",
)
_MAX_ROWS = 2048


@functools.lru_cache(maxsize=512)
def _values_sql(prefix: str, width: int, count: int, suffix: str) -> str:
    one = "(" + ",".join("?" * width) + ")"
    return prefix + ",".join([one] * count) + suffix


def _chunk(left: int) -> int:
    return min(left, _MAX_ROWS)


def _insert(conn: sqlite3.Connection, statement: tuple[str, int, str], rows: Sequence[tuple[Any, ...]]) -> None:
    prefix, width, suffix = statement
    done, total = 0, len(rows)
    while done < total:
        size = _chunk(total - done)
        conn.execute(_values_sql(prefix, width, size, suffix), list(chain.from_iterable(rows[done : done + size])))
        done += size


def _stored_by_idem(conn: sqlite3.Connection, wanted: set[tuple[int, str]]) -> dict[tuple[int, str], Event]:
    found: dict[tuple[int, str], Event] = {}
    by_tenant: dict[int, list[str]] = {}
    for tenant_pk, idem in wanted:
        by_tenant.setdefault(tenant_pk, []).append(idem)
    for tenant_pk, idems in by_tenant.items():
        for start in range(0, len(idems), 256):
            part = idems[start : start + 256]
            for seq, tail, idem, doc in conn.execute(
                f"SELECT seq, tail, idem, doc FROM events WHERE tenant = ? AND idem IN ({_marks(part)})",
                [tenant_pk, *part],
            ):
                found[(tenant_pk, idem)] = _event((seq, tail, doc))
    return found


def _stored_by_natural(
    conn: sqlite3.Connection, wanted: set[tuple[int, int, str]]
) -> dict[tuple[int, int, str], list[Event]]:
    """Stored events with these (device, time, type), each list in storage (seq) order."""
    rows: list[tuple[int, int, str, int, int, bytes]] = []
    keys = list(wanted)
    done = 0
    while done < len(keys):
        size = _chunk(len(keys) - done)
        rows += conn.execute(
            _values_sql(
                "WITH k(d, t, y) AS (VALUES ",
                3,
                size,
                ") SELECT e.device, e.time, e.type, e.seq, e.tail, e.doc FROM k "
                "JOIN events e ON e.device = k.d AND e.time = k.t AND e.type = k.y",
            ),
            list(chain.from_iterable(keys[done : done + size])),
        ).fetchall()
        done += size
    found: dict[tuple[int, int, str], list[Event]] = {}
    for device, time, kind, seq, tail, doc in sorted(rows, key=lambda r: r[3]):
        found.setdefault((device, time, kind), []).append(_event((seq, tail, doc)))
    return found


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
