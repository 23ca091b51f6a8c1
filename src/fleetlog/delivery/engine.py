"""The delivery engine: keeps connectors in the document store and one worker per active one.

The faces call it to create, change, remove, replay and sync connectors; `run` is the
background task that owns the workers and the HTTP session.

Where a new or re-enabled connector starts: at the log's head at that moment. Events committed
earlier are not pushed (the vendor rule: no backfill), unless the operator asks for a replay
from a point in time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import msgspec

from fleetlog.core.errors import Conflict, NotFound
from fleetlog.core.event import Event
from fleetlog.core.ids import COUNTER_BITS
from fleetlog.delivery.feed import Tap, seq_of
from fleetlog.delivery.metrics import ConnectorMetrics
from fleetlog.delivery.model import CONNECTOR_KIND, METRICS_KIND, STATE_KIND, Connector, DeliveryState, Flavour, Status
from fleetlog.delivery.pacer import Pacer
from fleetlog.delivery.sender import Pusher, Sender
from fleetlog.delivery.worker import Deps, Settings, Worker
from fleetlog.pipeline.directory import Directory
from fleetlog.ports.bus import Bus
from fleetlog.ports.clock import Clock
from fleetlog.ports.documents import DocumentStore
from fleetlog.ports.store import EventStore

log = logging.getLogger(__name__)

Key = tuple[str, str]  # (tenant, connector id)
HEAD_LOOKBACK_US = 60_000_000
Sleep = Callable[[float], Awaitable[None]]


class TooMany(Conflict):
    """A tenant has as many connectors as it may (memory is bounded per connector)."""


def seq_at(us: int) -> int:
    """The last position before anything that arrived at or after `us`."""
    return max(0, ((us // 1000) << COUNTER_BITS) - 1)


class DeliveryEngine:
    def __init__(
        self,
        store: EventStore,
        bus: Bus,
        documents: DocumentStore,
        directory: Directory,
        clock: Clock,
        settings: Settings,
        sender: Pusher | None = None,
    ) -> None:
        self._store = store
        self._bus = bus
        self._documents = documents
        self._directory = directory
        self._clock = clock
        self.settings = settings
        self._sender: Pusher = sender or Sender(settings.timeout_seconds)
        self._workers: dict[Key, Worker] = {}
        self._metrics: dict[Key, ConnectorMetrics] = {}
        self._locks: dict[Key, asyncio.Lock] = {}
        self._tap: Tap | None = None
        self._running = False
        self._background: set[asyncio.Task[None]] = set()
        self.pacer = Pacer(settings.max_loop_lag_seconds)
        # Injectable so tests can see the waits the retry policy asks for without waiting.
        self.sleep: Sleep = asyncio.sleep

    # -- the background task ----------------------------------------------------------------

    async def run(self) -> None:
        self._tap = Tap(self._bus)
        self._running = True
        helpers = [
            asyncio.create_task(self._tap.run(), name="delivery:tap"),
            asyncio.create_task(self.pacer.run(), name="delivery:pacer"),
        ]
        try:
            while True:
                try:
                    await self._start_all()
                    break
                except Exception:  # the store is not there yet: try again
                    log.exception("starting the delivery workers failed; retrying")
                    await asyncio.sleep(1.0)
            await asyncio.Event().wait()
        finally:
            self._running = False
            for helper in helpers:
                helper.cancel()
            for task in list(self._background):
                task.cancel()
            workers, self._workers = list(self._workers.values()), {}
            await asyncio.gather(*(w.stop() for w in workers), return_exceptions=True)
            await self._sender.close()
            await asyncio.gather(*helpers, return_exceptions=True)

    async def _start_all(self) -> None:
        after: str | None = None
        while True:
            docs = await self._documents.list(None, CONNECTOR_KIND, after=after, limit=500)
            for _, _, doc in docs:
                connector = msgspec.convert(doc, Connector)
                async with self._lock(_key(connector)):
                    if _key(connector) not in self._workers:
                        await self._apply(connector)
            if len(docs) < 500:
                return
            after = docs[-1][1]

    def _deps(self) -> Deps:
        assert self._tap is not None
        return Deps(
            store=self._store,
            documents=self._documents,
            directory=self._directory,
            clock=self._clock,
            sender=self._sender,
            tap=self._tap,
            settings=self.settings,
            sleep=lambda seconds: self.sleep(seconds),
            pacer=self.pacer,
            on_disable=self._system_disable,
        )

    async def _apply(self, connector: Connector) -> None:
        """Make the running workers match the stored connector (call under its lock)."""
        key = _key(connector)
        worker = self._workers.pop(key, None)
        if worker is not None:
            await worker.stop()
        if key not in self._metrics:  # first seen since start: what the last run saved
            saved = await self._documents.get(connector.tenant, METRICS_KIND, connector.id)
            self._metrics[key] = ConnectorMetrics.restore(saved) if saved is not None else ConnectorMetrics()
        if not self._running or connector.status is not Status.ACTIVE:
            return
        doc = await self._documents.get(connector.tenant, STATE_KIND, connector.id)
        if doc is not None:
            state = msgspec.convert(doc, DeliveryState)
        else:
            state = DeliveryState(seq=await self._head(connector))
        worker = Worker(connector, state, self.metrics(connector.tenant, connector.id), self._deps())
        self._workers[key] = worker
        worker.start()

    async def _save_state(self, connector: Connector, state: DeliveryState) -> None:
        await self._documents.put(connector.tenant, STATE_KIND, connector.id, msgspec.to_builtins(state))

    async def _head(self, connector: Connector) -> int:
        """Where a connector starts: after everything its tenant has committed so far.

        Read from the store, from a minute before now on (sequence numbers follow the clock;
        the pages after that are few): the clock alone is not enough, as sequence numbers may
        run ahead of it (many events in one millisecond, a clock stepped back)."""
        position = seq_at(self._clock.now_us() - HEAD_LOOKBACK_US)
        if self._tap is not None:
            position = max(position, self._tap.head(connector.tenant))
        while True:
            page = await self._store.since(connector.tenant, position, 1000)
            if page:
                position = seq_of(page[-1])
            if len(page) < 1000:
                return position

    def _system_disable(self, connector: Connector) -> None:
        async def disable() -> None:
            key = _key(connector)
            async with self._lock(key):
                doc = await self._documents.get(connector.tenant, CONNECTOR_KIND, connector.id)
                if doc is None:
                    return
                stored = msgspec.convert(doc, Connector)
                stored.status = Status.SYSTEM_DISABLED
                stored.updated = self._clock.now_us()
                await self._documents.put(stored.tenant, CONNECTOR_KIND, stored.id, msgspec.to_builtins(stored))
                await self._apply(stored)

        self._spawn(disable(), f"delivery:{connector.id}:disable")

    def _spawn(self, work: Awaitable[None], name: str) -> None:
        async def guarded() -> None:
            try:
                await work
            except Exception:
                log.exception("%s failed", name)

        task = asyncio.get_running_loop().create_task(guarded(), name=name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _lock(self, key: Key) -> asyncio.Lock:
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        return lock

    # -- what the faces call ------------------------------------------------------------

    def metrics(self, tenant: str, connector_id: str) -> ConnectorMetrics:
        key = (tenant, connector_id)
        found = self._metrics.get(key)
        if found is None:
            found = self._metrics[key] = ConnectorMetrics()
        return found

    def all_metrics(self) -> list[tuple[Key, ConnectorMetrics]]:
        return list(self._metrics.items())

    def worker(self, tenant: str, connector_id: str) -> Worker | None:
        return self._workers.get((tenant, connector_id))

    async def get(self, tenant: str, connector_id: str, flavour: Flavour | None = None) -> Connector:
        doc = await self._documents.get(tenant, CONNECTOR_KIND, connector_id)
        connector = msgspec.convert(doc, Connector) if doc is not None else None
        if connector is None or (flavour is not None and connector.flavour is not flavour):
            raise NotFound("connector", connector_id)
        return connector

    async def list(self, tenant: str) -> AsyncIterator[Connector]:
        after: str | None = None
        while True:
            docs = await self._documents.list(tenant, CONNECTOR_KIND, after=after, limit=500)
            for _, _, doc in docs:
                yield msgspec.convert(doc, Connector)
            if len(docs) < 500:
                return
            after = docs[-1][1]

    async def create(self, connector: Connector) -> Connector:
        count = 0
        async for _ in self.list(connector.tenant):
            count += 1
        if count >= self.settings.max_connectors:
            raise TooMany(f"a tenant may have at most {self.settings.max_connectors} connectors and webhooks")
        connector.id = connector.id or secrets.token_hex(10)
        connector.created = connector.updated = self._clock.now_us()
        key = _key(connector)
        async with self._lock(key):
            await self._save_state(connector, DeliveryState(seq=await self._head(connector)))
            await self._documents.put(connector.tenant, CONNECTOR_KIND, connector.id, msgspec.to_builtins(connector))
            await self._apply(connector)
        return connector

    async def update(self, connector: Connector) -> Connector:
        """Store a changed connector. Enabling one that was disabled starts it at the head."""
        key = _key(connector)
        async with self._lock(key):
            before = await self.get(connector.tenant, connector.id)
            connector.updated = self._clock.now_us()
            if before.status is not Status.ACTIVE and connector.status is Status.ACTIVE:
                worker = self._workers.pop(key, None)
                if worker is not None:
                    await worker.stop()
                await self._save_state(connector, DeliveryState(seq=await self._head(connector)))
            await self._documents.put(connector.tenant, CONNECTOR_KIND, connector.id, msgspec.to_builtins(connector))
            await self._apply(connector)
        return connector

    async def delete(self, tenant: str, connector_id: str) -> None:
        key = (tenant, connector_id)
        async with self._lock(key):
            worker = self._workers.pop(key, None)
            if worker is not None:
                await worker.stop()
            if not await self._documents.delete(tenant, CONNECTOR_KIND, connector_id):
                raise NotFound("connector", connector_id)
            await self._documents.delete(tenant, STATE_KIND, connector_id)
            await self._documents.delete(tenant, METRICS_KIND, connector_id)
        self._metrics.pop(key, None)
        self._locks.pop(key, None)

    async def replay(self, connector: Connector, since_us: int) -> None:
        """Push again everything that arrived at or after `since_us` (beyond the vendor)."""
        key = _key(connector)
        async with self._lock(key):
            worker = self._workers.pop(key, None)
            if worker is not None:
                await worker.stop()
            state = DeliveryState(
                seq=seq_at(since_us), replay_until=await self._head(connector), replay_at=self._clock.now_us()
            )
            if worker is not None:
                state.failing_since = worker.state.failing_since
            await self._save_state(connector, state)
            await self._apply(connector)

    def sync(self, connector: Connector) -> bool:
        """DT's :sync: push the latest event of each type of every device in the project, in
        the background (best effort: not resumed after a restart). False if not active."""
        worker = self.worker(connector.tenant, connector.id)
        if worker is None:
            return False
        worker.run_alongside(self._sync(connector, worker), "sync")
        return True

    async def _sync(self, connector: Connector, worker: Worker) -> None:
        after: str | None = None
        while True:
            devices = await self._directory.registry.list_devices(
                connector.tenant, connector.project, after=after, limit=500
            )
            for device in devices:
                latest = await self._store.latest_by_type(connector.tenant, device.id)
                events: list[Event] = sorted(
                    (e for e in latest.values() if connector.in_scope(e)), key=lambda e: (e.time, e.id)
                )
                await worker.sync(events)
            if len(devices) < 500:
                return
            after = devices[-1].id

    def stats(self) -> dict[str, Any]:
        return {
            "fleetlog_delivery_workers": len(self._workers),
            "fleetlog_delivery_in_flight": sum(w.in_flight for w in self._workers.values()),
        }


def _key(connector: Connector) -> Key:
    return (connector.tenant, connector.id)


@contextlib.asynccontextmanager
async def running(engine: DeliveryEngine) -> AsyncIterator[DeliveryEngine]:
    """Run the engine for the length of a block (tests and benchmarks)."""
    task = asyncio.create_task(engine.run())
    await asyncio.sleep(0)
    try:
        yield engine
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
