"""Schema migrations: an ordered list of scripts; `PRAGMA user_version` records how many ran."""

from __future__ import annotations

import sqlite3

MIGRATIONS: list[str] = [
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
            for statement in _statements(script):
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
