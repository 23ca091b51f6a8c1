"""What was committed is there after the store is closed and opened again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fleetlog.adapters.bus.memory import MemoryBus
from fleetlog.core.event import Event
from fleetlog.core.query import EventQuery

pytestmark = pytest.mark.asyncio


async def test_reopen_keeps_events_and_ids_keep_increasing(storage: Any, adapter: Any, tmp_path: Path) -> None:
    e = Event(tenant="acme", project="plant", device="d1", type="t", time=1, received=10**15)
    first = [r.event.id for r in await storage.events.append([e])]
    storage.close()
    reopened = adapter(tmp_path, MemoryBus())
    try:
        page = await reopened.events.query(EventQuery(tenant="acme"))
        assert [x.id for x in page.events] == first
        # a clock that went backwards must not produce an older or equal id
        later = Event(tenant="acme", project="plant", device="d1", type="t", time=2, received=10**12)
        (r,) = await reopened.events.append([later])
        assert r.event.id > first[0]
    finally:
        reopened.close()
