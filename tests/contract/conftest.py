"""Each adapter that implements the storage ports is listed here; every contract test runs
on each of them. A new adapter adds a parameter, not a test."""

from __future__ import annotations

import hashlib
import importlib.util
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from fleetlog.adapters.bus.memory import MemoryBus
from fleetlog.adapters.storage.sqlite import SqliteStorage
from fleetlog.core.registry import Device, Project, Tenant
from tests.services import require

POSTGRES_DSN = "postgresql://postgres@127.0.0.1:5432/test"


def _sqlite(tmp: Path, bus: MemoryBus) -> Any:
    return SqliteStorage(tmp / "contract.db", bus=bus)


def _sqlite_merging(tmp: Path, bus: MemoryBus) -> Any:
    """SQLite moving its recent per-device index entries every few rows, so that every read
    in the contract finds events in both halves of that index."""
    return SqliteStorage(tmp / "contract.db", bus=bus, merge_rows=3)


def pg_schema(tmp: Path) -> str:
    """One schema per test, named after its temporary directory (so a reopen finds it)."""
    return "contract_" + hashlib.sha1(str(tmp).encode()).hexdigest()[:16]


def _postgres(tmp: Path, bus: MemoryBus) -> Any:
    from fleetlog.adapters.storage.postgres import PostgresStorage

    return PostgresStorage(f"{POSTGRES_DSN}?search_path={pg_schema(tmp)}", bus=bus)


ADAPTERS: dict[str, Callable[[Path, MemoryBus], Any]] = {
    "sqlite": _sqlite,
    "sqlite-merging": _sqlite_merging,
    "postgres": _postgres,
}


async def _postgres_schema(tmp: Path, create: bool) -> None:
    import asyncpg

    conn = await asyncpg.connect(POSTGRES_DSN)
    try:
        schema = pg_schema(tmp)
        await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        if create:
            await conn.execute(f"CREATE SCHEMA {schema}")
    finally:
        await conn.close()


@pytest.fixture(params=sorted(ADAPTERS))
async def adapter(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Callable[[Path, MemoryBus], Any]]:
    if request.param == "postgres":
        require("PostgreSQL", 5432)
        if importlib.util.find_spec("asyncpg") is None:
            pytest.skip("asyncpg is not installed")
        await _postgres_schema(tmp_path, create=True)
        yield ADAPTERS[request.param]
        await _postgres_schema(tmp_path, create=False)
    else:
        yield ADAPTERS[request.param]


@pytest.fixture
def bus() -> MemoryBus:
    return MemoryBus()


async def close(storage: Any) -> None:
    """Adapters with async connections close gracefully with `aclose()`."""
    aclose = getattr(storage, "aclose", None)
    if aclose is not None:
        await aclose()
    else:
        storage.close()


@pytest.fixture
async def storage(adapter: Callable[[Path, MemoryBus], Any], tmp_path: Path, bus: MemoryBus) -> AsyncIterator[Any]:
    s = adapter(tmp_path, bus)
    reg = s.registry
    for tenant in ("acme", "globex"):
        await reg.create_tenant(Tenant(id=tenant))
    await reg.create_project(Project(id="plant", tenant="acme"))
    await reg.create_project(Project(id="office", tenant="acme"))
    await reg.create_project(Project(id="lab", tenant="globex"))
    for device, project, labels in [
        ("d1", "plant", {"room": "cold", "name": "one"}),
        ("d2", "plant", {"room": "hot"}),
        ("d3", "office", {"room": "cold"}),
    ]:
        await reg.create_device(Device(id=device, tenant="acme", project=project, labels=labels))
    await reg.create_device(Device(id="g1", tenant="globex", project="lab"))
    yield s
    await close(s)
