"""Appending events inside the writer's group commit, with as few round trips as possible.

Every append job of a transaction first resolves its registry keys (cached), then one query
per kind looks up, for all of them at once, the stored events they may duplicate (same
idempotency key; same device, time and type for the 409 rule). Then each job, in order,
decides in memory and leaves its new rows in the transaction's `Commit`, which writes them
all with one COPY. A job that fails (an unknown device) adds nothing: its neighbours go on.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from fleetlog.core.event import Event, pack, same_content, unpack
from fleetlog.core.ids import SequenceClock
from fleetlog.ports.store import AppendResult, AppendStatus, Dedupe

Conn = Any  # asyncpg.Connection (asyncpg ships no type information)
IdemKey = tuple[int, str]  # (tenant, idempotency key)
NaturalKey = tuple[int, int, str]  # (device, time, type)
_MASK64 = (1 << 64) - 1
EVENT_COLUMNS = (
    "seq", "tail", "tenant", "project", "device", "type", "time",
    "outcome", "severity", "state_change", "idem", "doc",
)  # fmt: skip


def row_event(row: Any) -> Event:
    event = unpack(row["doc"])
    event.id = f"{row['seq']:016x}{row['tail'] & _MASK64:016x}"
    return event


class SharedSequence(SequenceClock):
    """The sequence clock of one process, raised to what other processes committed."""

    def at_least(self, high: int) -> None:
        self._last = max(self._last, high)

    @property
    def last(self) -> int:
        return self._last

    def rewind(self, last: int) -> None:
        """Forget the numbers of a transaction that did not commit (one bad value must not
        push every later number out of range)."""
        self._last = last


class Commit:
    """What the jobs of one transaction share: the sequence high-water mark and the rows the
    appends are waiting to write."""

    def __init__(self, prev_high: int, seqs: SharedSequence) -> None:
        self.prev_high = prev_high  # the highest seq committed before this transaction
        self.high = prev_high
        self.seqs = seqs
        self.rows: list[tuple[Any, ...]] = []
        self.state: dict[tuple[int, str], tuple[int, int]] = {}  # (device, type) -> (time, seq)
        self.idem: dict[IdemKey, Event] = {}
        self.natural: dict[NaturalKey, list[Event]] = {}

    async def flush(self, conn: Conn) -> None:
        """Write the waiting rows (before another kind of job runs, and before COMMIT)."""
        if self.rows:
            await conn.copy_records_to_table("events", records=self.rows, columns=EVENT_COLUMNS)
            self.high = max(self.high, self.rows[-1][0])
            self.rows = []
        if self.state:
            devices, types, times, seqs = zip(*((d, t, tm, s) for (d, t), (tm, s) in self.state.items()), strict=True)
            await conn.execute(
                "INSERT INTO device_state SELECT * FROM unnest($1::int[], $2::text[], $3::bigint[], $4::bigint[]) "
                "ON CONFLICT (device, type) DO UPDATE SET time = excluded.time, seq = excluded.seq "
                "WHERE (excluded.time, excluded.seq) > (device_state.time, device_state.seq)",
                devices, types, times, seqs,
            )  # fmt: skip
            self.state = {}


class AppendBatch(list[AppendResult]):
    """The result of one append job: the commit hook publishes its new events."""

    def created(self) -> list[Event]:
        return [r.event for r in self if r.status is AppendStatus.CREATED]


class AppendJob:
    def __init__(self, events: Sequence[Event], dedupe: Dedupe, keys: Any) -> None:
        self.events = events
        self.dedupe = dedupe
        self._keys = keys
        self._resolved: list[tuple[int, int, int | None]] = []

    async def resolve(self, conn: Conn) -> None:
        """Registry keys of every event; NotFound fails this job only."""
        keys, resolved = self._keys, []
        for event in self.events:
            tenant_pk = await keys.tenant(conn, event.tenant)
            project_pk = await keys.project(conn, tenant_pk, event.project)
            device_pk = await keys.device(conn, tenant_pk, event.device) if event.device else None
            resolved.append((tenant_pk, project_pk, device_pk))
        self._resolved = resolved

    def idem_keys(self) -> set[IdemKey]:
        return {
            (t, e.idempotency_key)
            for e, (t, _, _) in zip(self.events, self._resolved, strict=True)
            if e.idempotency_key
        }

    def natural_keys(self) -> set[NaturalKey]:
        if self.dedupe is not Dedupe.NATURAL:
            return set()
        return {(d, e.time, e.type) for e, (_, _, d) in zip(self.events, self._resolved, strict=True) if d is not None}

    def apply(
        self, commit: Commit, stored_idem: dict[IdemKey, Event], stored_natural: dict[NaturalKey, list[Event]]
    ) -> AppendBatch:
        """Decide each event in memory; hand the new rows to `commit` only if all went well."""
        results = AppendBatch()
        rows: list[tuple[Any, ...]] = []
        state: dict[tuple[int, str], tuple[int, int]] = {}
        batch_idem: dict[IdemKey, Event] = {}
        batch_natural: dict[NaturalKey, list[Event]] = {}
        for event, (tenant_pk, project_pk, device_pk) in zip(self.events, self._resolved, strict=True):
            idem = event.idempotency_key
            if idem is not None:
                ikey = (tenant_pk, idem)
                earlier = batch_idem.get(ikey) or commit.idem.get(ikey) or stored_idem.get(ikey)
                if earlier is not None:
                    results.append(AppendResult(AppendStatus.DUPLICATE, earlier))
                    continue
            if self.dedupe is Dedupe.NATURAL and device_pk is not None:
                natural = (device_pk, event.time, event.type)
                twin = (
                    _twin(event, batch_natural.get(natural, ()))
                    or _twin(event, commit.natural.get(natural, ()))
                    or _twin(event, stored_natural.get(natural, ()))
                )
                if twin is not None:
                    results.append(AppendResult(AppendStatus.CONFLICT, twin))
                    continue
                batch_natural.setdefault(natural, []).append(event)
            seq = commit.seqs.next(event.received // 1000)
            tail = int.from_bytes(os.urandom(8), "big", signed=True)
            event.id = ""
            doc = pack(event)
            event.id = f"{seq:016x}{tail & _MASK64:016x}"
            rows.append((
                seq, tail, tenant_pk, project_pk, device_pk, event.type, event.time,
                event.outcome.value, event.severity, event.state_change, idem, doc,
            ))  # fmt: skip
            if idem is not None:
                batch_idem[(tenant_pk, idem)] = event
            if device_pk is not None:
                skey = (device_pk, event.type)
                prev = state.get(skey)
                if prev is None or (event.time, seq) > prev:
                    state[skey] = (event.time, seq)
            results.append(AppendResult(AppendStatus.CREATED, event))

        commit.rows += rows
        commit.idem.update(batch_idem)
        for natural, twins in batch_natural.items():
            commit.natural.setdefault(natural, []).extend(twins)
        for skey, value in state.items():
            prev = commit.state.get(skey)
            if prev is None or value > prev:
                commit.state[skey] = value
        return results


async def run_appends(conn: Conn, commit: Commit, jobs: list[AppendJob]) -> list[tuple[Any, BaseException | None]]:
    """Run consecutive append jobs of one transaction: one lookup query per kind for all."""
    outcomes: list[tuple[Any, BaseException | None]] = []
    for job in jobs:
        try:
            await job.resolve(conn)
            outcomes.append((None, None))
        except Exception as exc:  # nothing of it is in the commit: only this job fails
            outcomes.append((None, exc))
    ready = [job for job, (_, error) in zip(jobs, outcomes, strict=True) if error is None]
    idem = set().union(*(j.idem_keys() for j in ready)) - commit.idem.keys()
    natural = set().union(*(j.natural_keys() for j in ready))
    stored_idem = await _by_idem(conn, idem)
    stored_natural = await _by_natural(conn, natural)
    for i, (job, (_, error)) in enumerate(zip(jobs, outcomes, strict=True)):
        if error is None:
            outcomes[i] = (job.apply(commit, stored_idem, stored_natural), None)
    return outcomes


def _twin(event: Event, candidates: Sequence[Event]) -> Event | None:
    return next((c for c in candidates if same_content(c, event)), None)


async def _by_idem(conn: Conn, wanted: set[IdemKey]) -> dict[IdemKey, Event]:
    if not wanted:
        return {}
    tenants, idems = zip(*wanted, strict=True)
    rows = await conn.fetch(
        "SELECT e.tenant, e.idem, e.seq, e.tail, e.doc FROM events e "
        "JOIN unnest($1::int[], $2::text[]) AS w(tenant, idem) ON e.tenant = w.tenant AND e.idem = w.idem",
        tenants, idems,
    )  # fmt: skip
    return {(r["tenant"], r["idem"]): row_event(r) for r in rows}


async def _by_natural(conn: Conn, wanted: set[NaturalKey]) -> dict[NaturalKey, list[Event]]:
    if not wanted:
        return {}
    devices, times, types = zip(*wanted, strict=True)
    rows = await conn.fetch(
        "SELECT e.device, e.time, e.type, e.seq, e.tail, e.doc FROM events e "
        "JOIN unnest($1::int[], $2::bigint[], $3::text[]) AS w(device, time, type) "
        "ON e.device = w.device AND e.time = w.time AND e.type = w.type",
        devices, times, types,
    )  # fmt: skip
    found: dict[NaturalKey, list[Event]] = {}
    for r in rows:
        found.setdefault((r["device"], r["time"], r["type"]), []).append(row_event(r))
    return found
