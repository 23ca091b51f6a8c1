"""The SQLite store's per-device index in two halves (schema.py, migration 4): entries of the
latest commits in `recent_device`, moved in bulk into `device_index`. The contract suite reads
through both halves (its "sqlite-merging" adapter); these check the tables themselves."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from fleetlog.adapters.storage.sqlite import SqliteStorage
from fleetlog.adapters.storage.sqlite.schema import MIGRATIONS, _statements
from fleetlog.core.event import Event
from fleetlog.core.query import EventQuery
from fleetlog.core.registry import Device, Project, Tenant

pytestmark = pytest.mark.asyncio
T0 = 1_700_000_000_000_000


def ev(device: str, t: int) -> Event:
    return Event(tenant="acme", project="plant", device=device, type="touch", time=T0 + t, received=T0 + t)


async def fleet(storage: SqliteStorage) -> None:
    await storage.registry.create_tenant(Tenant(id="acme"))
    await storage.registry.create_project(Project(tenant="acme", id="plant"))
    for device in ("d1", "d2"):
        await storage.registry.create_device(Device(tenant="acme", project="plant", id=device))


def entries(path: Path) -> tuple[int, int, int]:
    """(events with a device, entries in device_index, entries in recent_device)"""
    with sqlite3.connect(path) as conn:
        counts = [
            conn.execute(sql).fetchone()[0]
            for sql in (
                "SELECT count(*) FROM events WHERE device IS NOT NULL",
                "SELECT count(*) FROM device_index",
                "SELECT count(*) FROM recent_device",
            )
        ]
    conn.close()
    return counts[0], counts[1], counts[2]


async def test_recent_entries_move_in_bulk_and_purged_events_leave_none(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    storage = SqliteStorage(path, merge_rows=10)
    try:
        await fleet(storage)
        for i in range(25):
            await storage.events.append([ev("d1" if i % 2 else "d2", i * 1000)])
        events, merged, recent = entries(path)
        assert events == 25 and merged + recent == 25
        assert merged >= 20 and recent < 10  # moved twice, in bulk
        assert await storage.events.purge("acme", T0 + 12 * 1000) == 12
        events, merged, recent = entries(path)
        assert events == 13 and merged + recent == 13  # the trigger took their entries along
        page = await storage.events.query(EventQuery(tenant="acme", devices=("d1",), limit=100))
        assert [e.time - T0 for e in page.events] == [t * 1000 for t in range(23, 12, -2)]
    finally:
        storage.close()


async def test_a_store_of_schema_3_gets_its_device_index_filled(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    storage = SqliteStorage(path)
    try:
        await fleet(storage)
        await storage.events.append([ev("d1", i * 1000) for i in range(5)])
    finally:
        storage.close()
    with sqlite3.connect(path, isolation_level=None) as conn:  # back to how schema 3 kept it
        conn.execute("DROP TRIGGER events_device_added")
        conn.execute("DROP TRIGGER events_device_removed")
        conn.execute("DROP TABLE device_index")
        conn.execute("DROP TABLE recent_device")
        conn.execute(next(s for s in _statements(str(MIGRATIONS[0])) if "events_device" in s))
        conn.execute("PRAGMA user_version=3")
    conn.close()
    storage = SqliteStorage(path)
    try:
        assert entries(path) == (5, 5, 0)
        page = await storage.events.query(EventQuery(tenant="acme", devices=("d1",), limit=100))
        assert len(page.events) == 5
        await storage.events.append([ev("d1", 9000)])
        assert entries(path) == (6, 5, 1)
        with sqlite3.connect(path) as conn:
            assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'events_device'").fetchone()[0] == 0
        conn.close()
    finally:
        storage.close()
