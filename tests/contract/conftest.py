"""Each adapter that implements the storage ports is listed here; every contract test runs
on each of them. A new adapter (PostgreSQL) adds a parameter, not a test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from fleetlog.adapters.bus.memory import MemoryBus
from fleetlog.adapters.storage.sqlite import SqliteStorage
from fleetlog.core.registry import Device, Project, Tenant


def _sqlite(tmp: Path, bus: MemoryBus) -> Any:
    return SqliteStorage(tmp / "contract.db", bus=bus)


ADAPTERS: dict[str, Callable[[Path, MemoryBus], Any]] = {"sqlite": _sqlite}


@pytest.fixture(params=sorted(ADAPTERS))
def adapter(request: pytest.FixtureRequest) -> Callable[[Path, MemoryBus], Any]:
    return ADAPTERS[request.param]


@pytest.fixture
def bus() -> MemoryBus:
    return MemoryBus()


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
    s.close()
