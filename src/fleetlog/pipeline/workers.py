"""Background work of one server: drain deferred (202) events, enforce retention."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from fleetlog.pipeline.directory import Directory
from fleetlog.pipeline.ingest import Ingest
from fleetlog.ports.clock import Clock
from fleetlog.ports.store import EventStore

log = logging.getLogger(__name__)
DAY_US = 86_400_000_000


async def deferred_worker(ingest: Ingest, wake: asyncio.Event, idle_seconds: float = 1.0) -> None:
    """Runs until cancelled; wakes when told (a 202 was saved) or every `idle_seconds`."""
    while True:
        try:
            while await ingest.drain_deferred():
                pass
        except Exception:
            log.exception("processing deferred events failed; retrying")
        wake.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(idle_seconds):  # not wait_for: it may swallow a cancellation in 3.11
                await wake.wait()


async def retention_pass(store: EventStore, directory: Directory, now_us: int) -> int:
    """Remove, for every tenant, events older than its retention period."""
    removed = 0
    for tenant in await directory.registry.list_tenants():
        removed += await store.purge(tenant.id, now_us - tenant.retention_days * DAY_US)
    return removed


async def retention_worker(
    store: EventStore, directory: Directory, clock: Clock, interval_seconds: float = 3600.0
) -> None:
    while True:
        try:
            removed = await retention_pass(store, directory, clock.now_us())
            if removed:
                log.info("retention removed %d events", removed)
        except Exception:
            log.exception("retention pass failed; retrying later")
        await asyncio.sleep(interval_seconds)
