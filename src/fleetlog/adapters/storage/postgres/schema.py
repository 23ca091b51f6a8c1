"""Schema migrations: an ordered list of scripts; `schema_migrations` records which ran.

Tables land in the connection's current schema (the first of its `search_path`), so one
database can hold several installations, one schema each. Several processes may start at
once: an advisory lock lets one of them migrate while the others wait.
"""

from __future__ import annotations

from typing import Any

MIGRATION_LOCK = 0x666C_6565_746C_6F67  # "fleetlog" as a 64-bit advisory lock key

MIGRATIONS: list[str] = [
    # 1: registry, events, derived device state, sequence high-water mark, deferred inbox,
    # documents. Text keys use the "C" collation: byte order, as in SQLite, whatever the
    # database's locale.
    """
    CREATE TABLE tenants (
        pk integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        id text COLLATE "C" NOT NULL UNIQUE,
        doc bytea NOT NULL
    );
    CREATE TABLE projects (
        pk integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        tenant integer NOT NULL REFERENCES tenants(pk) ON DELETE CASCADE,
        id text COLLATE "C" NOT NULL,
        doc bytea NOT NULL,
        UNIQUE (tenant, id)
    );
    CREATE TABLE devices (
        pk integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        tenant integer NOT NULL REFERENCES tenants(pk) ON DELETE CASCADE,
        project integer NOT NULL REFERENCES projects(pk),
        id text COLLATE "C" NOT NULL,
        labels jsonb NOT NULL DEFAULT '{}',
        doc bytea NOT NULL,
        UNIQUE (tenant, id)
    );
    CREATE INDEX devices_project ON devices (project, id);
    CREATE TABLE api_keys (
        id text COLLATE "C" PRIMARY KEY,
        tenant integer REFERENCES tenants(pk) ON DELETE CASCADE,
        doc bytea NOT NULL
    );
    CREATE TABLE event_types (
        tenant integer NOT NULL REFERENCES tenants(pk) ON DELETE CASCADE,
        name text COLLATE "C" NOT NULL,
        doc bytea NOT NULL,
        PRIMARY KEY (tenant, name)
    );
    CREATE TABLE settings (name text COLLATE "C" PRIMARY KEY, value text NOT NULL);

    -- seq is the upper half of the event id (arrival order); tail the random lower half.
    -- doc is the event exactly as fleetlog.core.event.pack wrote it (JSON bytes: integers of
    -- any size and every JSON type survive). The three indexes end in seq, so a time range
    -- comes out in (time, seq) order, which is the keyset order of a page.
    CREATE TABLE events (
        seq bigint PRIMARY KEY,
        tail bigint NOT NULL,
        tenant integer NOT NULL,
        project integer NOT NULL,
        device integer,
        type text COLLATE "C" NOT NULL,
        time bigint NOT NULL,
        outcome text NOT NULL,
        severity smallint NOT NULL,
        state_change boolean NOT NULL,
        idem text,
        doc bytea NOT NULL
    );
    CREATE INDEX events_device ON events (device, time, seq);
    CREATE INDEX events_project ON events (project, time, seq);
    CREATE INDEX events_type ON events (project, type, time, seq);
    CREATE UNIQUE INDEX events_idem ON events (tenant, idem) WHERE idem IS NOT NULL;

    -- Derived state: the latest event of each type per device.
    CREATE TABLE device_state (
        device integer NOT NULL,
        type text COLLATE "C" NOT NULL,
        time bigint NOT NULL,
        seq bigint NOT NULL,
        PRIMARY KEY (device, type)
    );

    -- The highest seq committed by any process: writers lock this row, number above it and
    -- raise it, so seqs are unique and in commit order across processes.
    CREATE TABLE event_seq (one boolean PRIMARY KEY DEFAULT true CHECK (one), last bigint NOT NULL);
    INSERT INTO event_seq VALUES (true, 0);

    CREATE TABLE inbox (pk bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, payload bytea NOT NULL);

    CREATE TABLE documents (
        tenant text COLLATE "C" NOT NULL,
        kind text COLLATE "C" NOT NULL,
        id text COLLATE "C" NOT NULL,
        doc bytea NOT NULL,
        PRIMARY KEY (tenant, kind, id)
    );
    CREATE INDEX documents_kind ON documents (kind, id, tenant);
    """,
    # 2: the row keys of removed devices, so that their events can still be found by device id.
    """
    CREATE TABLE removed_devices (
        tenant bigint NOT NULL,
        id text COLLATE "C" NOT NULL,
        pk bigint NOT NULL,
        PRIMARY KEY (tenant, id, pk)
    );
    """,
]


async def migrate(conn: Any) -> int:
    """Bring the current schema to the newest version. Returns the version it is at."""
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            "version integer PRIMARY KEY, applied timestamptz NOT NULL DEFAULT now())"
        )
        version: int = await conn.fetchval("SELECT coalesce(max(version), 0) FROM schema_migrations")
        if version > len(MIGRATIONS):
            raise RuntimeError(
                f"database schema version {version} is newer than this fleetlog ({len(MIGRATIONS)}): upgrade fleetlog"
            )
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            async with conn.transaction():
                await conn.execute(script)
                await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", number)
        return len(MIGRATIONS)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)
