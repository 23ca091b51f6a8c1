"""Appending to the SQLite event store: the transaction that dedupes, numbers and inserts the
append jobs of one commit, run by the writer thread as one merged job (see writer.py).

It needs only a connection, the row-key cache and the sequence clock.
"""

from __future__ import annotations

import functools
import os
import sqlite3
import struct
from collections.abc import Sequence
from itertools import chain
from typing import Any

import msgspec

from fleetlog.adapters.storage.sqlite.keys import KeyCache
from fleetlog.adapters.storage.sqlite.writer import Merge
from fleetlog.core.event import Event, pack, same_content, unpack
from fleetlog.core.ids import SequenceClock
from fleetlog.ports.store import AppendResult, AppendStatus, Dedupe

# The two halves of the per-device index (schema.py, migration 4): every per-device read reads both.
DEVICE_INDEXES = ("device_index", "recent_device")
id_bytes = struct.Struct(">Qq").pack  # the 32 hex digits of an id: seq, then the tail's 64 bits
Row = tuple[int, int, int, bytes]  # seq, tail, time, doc


def event_of_row(row: Row | tuple[int, int, bytes]) -> Event:
    seq, tail, doc = row[0], row[1], row[-1]
    event = unpack(doc)
    event.id = id_bytes(seq, tail).hex()
    return event


def docs_of(events: Sequence[Event]) -> list[bytes]:
    """The storage encoding of each event (its id is not part of it: the row key is)."""
    return [pack(e) if not e.id else pack(msgspec.structs.replace(e, id="")) for e in events]


class AppendBatch(list[AppendResult]):
    """The result of one append job: the writer's commit hook publishes its new events."""

    def created(self) -> list[Event]:
        return [r.event for r in self if r.status is AppendStatus.CREATED]


Payload = tuple[Sequence[Event], Dedupe, list[bytes]]  # events, dedupe, their docs


# Rows of `recent_device` (the per-device index entries of the latest commits, schema.py) after
# which a commit also copies them into `device_index`: large enough that a copy touches each
# device's page of `device_index` once for many rows, small enough that `recent_device` stays a
# few hundred pages, of which a commit rewrites few.
MERGE_ROWS = 20_000


class Appends:
    def __init__(self, keys: KeyCache, seqs: SequenceClock, merge_rows: int = MERGE_ROWS) -> None:
        self._keys = keys
        self._seqs = seqs
        self._merge_rows = merge_rows
        self._recent: int | None = None  # rows in recent_device, counted on first use
        self.merge: Merge[Payload, AppendBatch] = Merge(self.one, self.many)

    def one(self, conn: sqlite3.Connection, payload: Payload) -> AppendBatch:
        ((result, exc),) = self.many(conn, [payload])
        if exc is not None:
            raise exc
        assert result is not None
        return result

    def many(
        self, conn: sqlite3.Connection, payloads: Sequence[Payload]
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
                    e.id = id_bytes(seq, tail).hex()
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
        self._merge_recent(conn, sum(1 for row in rows if row[4] is not None))
        return outcomes

    def _merge_recent(self, conn: sqlite3.Connection, added: int) -> None:
        """Count the index entries the insert trigger added; past the limit, move them all into
        `device_index` (in its own order, so each device's last page is touched once)."""
        if self._recent is None:
            self._recent = int(conn.execute("SELECT count(*) FROM recent_device").fetchone()[0])
        else:
            self._recent += added
        if self._recent >= self._merge_rows:
            conn.execute("INSERT INTO device_index SELECT * FROM recent_device")
            conn.execute("DELETE FROM recent_device")
            self._recent = 0


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
                f"SELECT seq, tail, idem, doc FROM events WHERE tenant = ? AND idem IN ({marks(part)})",
                [tenant_pk, *part],
            ):
                found[(tenant_pk, idem)] = event_of_row((seq, tail, doc))
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
        for index in DEVICE_INDEXES:
            rows += conn.execute(
                _values_sql(
                    "WITH k(d, t, y) AS (VALUES ",
                    3,
                    size,
                    f") SELECT e.device, e.time, e.type, e.seq, e.tail, e.doc FROM k CROSS JOIN {index} x "
                    "ON x.device = k.d AND x.time = k.t JOIN events e ON e.seq = x.seq AND e.type = k.y",
                ),
                list(chain.from_iterable(keys[done : done + size])),
            ).fetchall()
        done += size
    found: dict[tuple[int, int, str], list[Event]] = {}
    for device, time, kind, seq, tail, doc in sorted(rows, key=lambda r: r[3]):
        found.setdefault((device, time, kind), []).append(event_of_row((seq, tail, doc)))
    return found


def marks(values: Sequence[Any]) -> str:
    return ",".join("?" * len(values))
