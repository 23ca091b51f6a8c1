"""The delivery engine: keeps connectors in the document store and one worker per active one.

The faces call it to create, change, remove, replay and sync connectors; `run` is the
background task that owns the workers and the HTTP session.

Where a new or re-enabled connector starts: at the log's head at that moment. Events committed
earlier are not pushed (the vendor rule: no backfill), unless the operator asks for a replay
from a point in time.

One process delivers: the one holding the "delivery" lease of the store (with SQLite, the one
process that owns it). When processes share a PostgreSQL store, the others still answer the
connector APIs: what they change is in the documents, which the delivering process reads again
every `reconcile_seconds`; a replay or :sync asked of them is left there as a command for it;
their metrics are the ones the delivering process saves with each checkpoint.
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
from fleetlog.delivery.model import (
    COMMAND_KIND,
    CONNECTOR_KIND,
    METRICS_KIND,
    STATE_KIND,
    Connector,
    DeliveryState,
    Flavour,
    Status,
)
from fleetlog.delivery.pacer import Pacer
from fleetlog.delivery.sender import Pusher, Sender
from fleetlog.delivery.worker import Deps, Settings, Worker
from fleetlog.pipeline.directory import Directory
from fleetlog.ports.bus import Bus
from fleetlog.ports.clock import Clock
from fleetlog.ports.documents import DocumentStore
from fleetlog.ports.lease import Lease, Leases, SoleLeases
from fleetlog.ports.store import EventStore

log = logging.getLogger(__name__)

Key = tuple[str, str]  # (tenant, connector id)
HEAD_LOOKBACK_US = 60_000_000
LEASE = "delivery"
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
        leases: Leases | None = None,
    ) -> None:
        self._store = store
        self._bus = bus
        self._documents = documents
        self._directory = directory
        self._clock = clock
        self.settings = settings
        self._sender: Pusher = sender or Sender(settings.timeout_seconds)
        self._leases: Leases = leases or SoleLeases()
        self.leader = False  # this process holds the lease and runs the workers
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
        helpers = [
            asyncio.create_task(self._tap.run(), name="delivery:tap"),
            asyncio.create_task(self.pacer.run(), name="delivery:pacer"),
        ]
        try:
            while True:
                follower = asyncio.create_task(self._follow(), name="delivery:follow") if self._leases.shared else None
                try:
                    lease = await self._leases.acquire(LEASE)
                finally:
                    if follower is not None:
                        follower.cancel()
                try:
                    await self._lead(lease)
                finally:
                    await self._step_down()
                    await lease.release()
        finally:
            for helper in helpers:
                helper.cancel()
            await self._sender.close()
            await asyncio.gather(*helpers, return_exceptions=True)

    async def _lead(self, lease: Lease) -> None:
        """Run every active connector's worker until the lease is lost (never, with SQLite)."""
        self.leader = self._running = True
        log.info("delivery: this process delivers")
        while not lease.lost.is_set():
            try:
                await self._start_all()
                break
            except Exception:  # the store is not there yet: try again
                log.exception("starting the delivery workers failed; retrying")
                await _wait(lease.lost, 1.0)
        while not lease.lost.is_set():
            if not self._leases.shared:
                await lease.lost.wait()
                break
            await _wait(lease.lost, self.settings.reconcile_seconds)
            if lease.lost.is_set():
                break
            try:
                await self._reconcile()
            except Exception:
                log.exception("delivery: reading what other processes changed failed; trying again")
        log.warning("delivery: the lease is lost; stopping the workers")

    async def _step_down(self) -> None:
        self.leader = self._running = False
        for task in list(self._background):
            task.cancel()
        workers, self._workers = list(self._workers.values()), {}
        await asyncio.gather(*(w.stop() for w in workers), return_exceptions=True)

    async def _follow(self) -> None:
        """While another process delivers: its metrics, as it saves them."""
        while True:
            try:
                async for tenant, ident, doc in self._each(METRICS_KIND):
                    self._metrics[(tenant, ident)] = ConnectorMetrics.restore(doc)
            except Exception as exc:
                log.debug("delivery: reading the metrics failed: %s", exc)
            await asyncio.sleep(self.settings.reconcile_seconds)

    async def _reconcile(self) -> None:
        """Make the workers match the documents, which other processes change too; run the
        replays and syncs they asked for."""
        seen: set[Key] = set()
        async for _, _, doc in self._each(CONNECTOR_KIND):
            connector = msgspec.convert(doc, Connector)
            key = _key(connector)
            seen.add(key)
            worker = self._workers.get(key)
            running = worker.connector if worker is not None else None
            if running != connector and (running is not None or connector.status is Status.ACTIVE):
                async with self._lock(key):
                    await self._apply(connector)
        for key in [k for k in self._workers if k not in seen]:  # removed elsewhere
            async with self._lock(key):
                worker = self._workers.pop(key, None)
                if worker is not None:
                    await worker.stop()
                    await self._forget(*key)
        async for tenant, ident, doc in self._each(COMMAND_KIND):
            try:
                connector = await self.get(tenant, ident)
                if "replay_since" in doc:
                    await self.replay(connector, int(doc["replay_since"]))
                if doc.get("sync"):
                    await self.sync(connector)
            except NotFound:
                pass
            if await self._documents.get(tenant, COMMAND_KIND, ident) == doc:  # not asked again meanwhile
                await self._documents.delete(tenant, COMMAND_KIND, ident)

    async def _start_all(self) -> None:
        async for _, _, doc in self._each(CONNECTOR_KIND):
            connector = msgspec.convert(doc, Connector)
            async with self._lock(_key(connector)):
                if _key(connector) not in self._workers:
                    await self._apply(connector)

    async def _each(self, kind: str, tenant: str | None = None) -> AsyncIterator[tuple[str, str, Any]]:
        """(tenant, id, doc) of every document of `kind`, of one tenant or of all, page by page."""
        after: str | None = None
        while True:
            docs = await self._documents.list(tenant, kind, after=after, limit=500)
            for item in docs:
                yield item
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
        async for _, _, doc in self._each(CONNECTOR_KIND, tenant):
            yield msgspec.convert(doc, Connector)

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
            await self._forget(tenant, connector_id)
        self._locks.pop(key, None)

    async def _forget(self, tenant: str, connector_id: str) -> None:
        """What is kept beside a connector that is gone."""
        for kind in (STATE_KIND, METRICS_KIND, COMMAND_KIND):
            await self._documents.delete(tenant, kind, connector_id)
        self._metrics.pop((tenant, connector_id), None)

    async def replay(self, connector: Connector, since_us: int) -> None:
        """Push again everything that arrived at or after `since_us` (beyond the vendor)."""
        if not self.leader:  # the delivering process runs it (its worker owns the cursor)
            await self._command(connector, {"replay_since": since_us})
            return
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

    async def sync(self, connector: Connector) -> bool:
        """DT's :sync: push the latest event of each type of every device in the project, in
        the background (best effort: not resumed after a restart). False if not active."""
        if connector.status is not Status.ACTIVE:
            return False
        if not self.leader:
            await self._command(connector, {"sync": True})
            return True
        worker = self.worker(connector.tenant, connector.id)
        if worker is None:
            return False
        worker.run_alongside(self._sync(connector, worker), "sync")
        return True

    async def _command(self, connector: Connector, command: dict[str, Any]) -> None:
        """Leave work for the delivering process (one pending command per connector; a
        replay and a sync asked before it looks are both run)."""
        key = _key(connector)
        async with self._lock(key):
            pending = await self._documents.get(connector.tenant, COMMAND_KIND, connector.id) or {}
            await self._documents.put(connector.tenant, COMMAND_KIND, connector.id, {**pending, **command})

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
            "fleetlog_delivery_leader": int(self.leader),
            "fleetlog_delivery_workers": len(self._workers),
            "fleetlog_delivery_in_flight": sum(w.in_flight for w in self._workers.values()),
        }


def _key(connector: Connector) -> Key:
    return (connector.tenant, connector.id)


async def _wait(event: asyncio.Event, seconds: float) -> None:
    """Until `event` is set, for at most `seconds`."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await event.wait()


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
