"""Schema migrations: an ordered list of scripts; `PRAGMA user_version` records how many ran."""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Callable, Iterator

# Each migration is a script of plain statements, or a list of statements (for those, such as
# triggers, whose bodies hold semicolons).
MIGRATIONS: list[str | list[str]] = [
    # 1: registry, events, derived device state, deferred inbox.
    """
    CREATE TABLE tenants (
        pk INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        doc BLOB NOT NULL
    );
    CREATE TABLE projects (
        pk INTEGER PRIMARY KEY,
        tenant INTEGER NOT NULL REFERENCES tenants(pk) ON DELETE CASCADE,
        id TEXT NOT NULL,
        doc BLOB NOT NULL,
        UNIQUE (tenant, id)
    );
    CREATE TABLE devices (
        pk INTEGER PRIMARY KEY,
        tenant INTEGER NOT NULL REFERENCES tenants(pk) ON DELETE CASCADE,
        project INTEGER NOT NULL REFERENCES projects(pk),
        id TEXT NOT NULL,
        labels TEXT NOT NULL DEFAULT '{}',
        doc BLOB NOT NULL,
        UNIQUE (tenant, id)
    );
    CREATE INDEX devices_project ON devices (project, id);
    CREATE TABLE api_keys (
        id TEXT PRIMARY KEY,
        tenant INTEGER REFERENCES tenants(pk) ON DELETE CASCADE,
        doc BLOB NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE event_types (
        tenant INTEGER NOT NULL REFERENCES tenants(pk) ON DELETE CASCADE,
        name TEXT NOT NULL,
        doc BLOB NOT NULL,
        PRIMARY KEY (tenant, name)
    ) WITHOUT ROWID;
    CREATE TABLE settings (name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;

    -- seq is the upper half of the event id (arrival order); tail the random lower half.
    -- Three indexes serve per-device, per-project and per-project-and-type time ranges;
    -- every other filter is applied on top of one of them.
    CREATE TABLE events (
        seq INTEGER PRIMARY KEY,
        tail INTEGER NOT NULL,
        tenant INTEGER NOT NULL,
        project INTEGER NOT NULL,
        device INTEGER,
        type TEXT NOT NULL,
        time INTEGER NOT NULL,
        outcome TEXT NOT NULL,
        severity INTEGER NOT NULL,
        state_change INTEGER NOT NULL,
        idem TEXT,
        doc BLOB NOT NULL
    );
    CREATE INDEX events_device ON events (device, time);
    CREATE INDEX events_project ON events (project, time);
    CREATE INDEX events_type ON events (project, type, time);
    CREATE UNIQUE INDEX events_idem ON events (tenant, idem) WHERE idem IS NOT NULL;

    -- Derived state: the latest event of each type per device.
    CREATE TABLE device_state (
        device INTEGER NOT NULL,
        type TEXT NOT NULL,
        time INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        PRIMARY KEY (device, type)
    ) WITHOUT ROWID;

    CREATE TABLE inbox (pk INTEGER PRIMARY KEY, payload BLOB NOT NULL);
    """,
    # 2: documents: what a face or worker keeps for itself (service accounts, data connectors,
    # campaigns, gateways, ...), by tenant, kind and id.
    """
    CREATE TABLE documents (
        tenant TEXT NOT NULL,
        kind TEXT NOT NULL,
        id TEXT NOT NULL,
        doc BLOB NOT NULL,
        PRIMARY KEY (tenant, kind, id)
    ) WITHOUT ROWID;
    """,
    # 3: the row keys of removed devices, so that their events can still be found by device id.
    """
    CREATE TABLE removed_devices (
        tenant INTEGER NOT NULL,
        id TEXT NOT NULL,
        pk INTEGER NOT NULL,
        PRIMARY KEY (tenant, id, pk)
    ) WITHOUT ROWID;
    """,
    # 4: the per-device index in two parts. An index on events (device, time) rewrote one leaf
    # page per device in every commit: with events from 1,000 devices, most of the cost of an
    # insert. Each commit's entries now go (by trigger) into `recent_device`, small enough that
    # a commit touches few of its pages; every few tens of thousands of rows they are copied,
    # already in order, into `device_index` (appends.py). Per-device reads read both.
    [
        *(
            f"""CREATE TABLE {table} (
                device INTEGER NOT NULL,
                time INTEGER NOT NULL,
                seq INTEGER NOT NULL,
                PRIMARY KEY (device, time, seq)
            ) WITHOUT ROWID"""
            for table in ("device_index", "recent_device")
        ),
        "INSERT INTO device_index SELECT device, time, seq FROM events WHERE device IS NOT NULL ORDER BY 1, 2, 3",
        "DROP INDEX events_device",
        """CREATE TRIGGER events_device_added AFTER INSERT ON events WHEN new.device IS NOT NULL BEGIN
            INSERT INTO recent_device VALUES (new.device, new.time, new.seq);
        END""",
        """CREATE TRIGGER events_device_removed AFTER DELETE ON events WHEN old.device IS NOT NULL BEGIN
            DELETE FROM device_index WHERE device = old.device AND time = old.time AND seq = old.seq;
            DELETE FROM recent_device WHERE device = old.device AND time = old.time AND seq = old.seq;
        END""",
    ],
]


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the database to the newest schema. Returns the version it is at."""
    version: int = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > len(MIGRATIONS):
        raise RuntimeError(
            f"database schema version {version} is newer than this fleetlog ({len(MIGRATIONS)}): upgrade fleetlog"
        )
    for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _statements(script) if isinstance(script, str) else script:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version={number}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return len(MIGRATIONS)


def _statements(script: str) -> list[str]:
    lines = [line for line in script.splitlines() if not line.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


@contextlib.contextmanager
def bulk_load(conn: sqlite3.Connection, log: Callable[[str], None] = lambda _: None) -> Iterator[None]:
    """For tools that insert millions of events at once (bench/): the indexes and triggers of
    `events` are dropped while the block runs and built afterwards (a sort instead of millions
    of inserts), and the per-device index is filled for the events inserted."""
    kept = conn.execute(
        "SELECT type, name, sql FROM sqlite_master WHERE tbl_name = 'events' AND type IN ('index', 'trigger') "
        "AND sql IS NOT NULL ORDER BY type"
    ).fetchall()
    for kind, name, _ in kept:
        conn.execute(f"DROP {kind} {name}")
    yield
    started = time.perf_counter()
    conn.execute(
        "INSERT OR IGNORE INTO device_index "
        "SELECT device, time, seq FROM events WHERE device IS NOT NULL ORDER BY 1, 2, 3"
    )
    log(f"  device_index filled in {time.perf_counter() - started:.1f}s")
    for _, name, sql in kept:
        started = time.perf_counter()
        conn.execute(sql)
        log(f"  {name} built in {time.perf_counter() - started:.1f}s")
