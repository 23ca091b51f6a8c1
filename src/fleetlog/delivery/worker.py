"""One active connector: reads its feed, pushes each event in its device's lane, and keeps a
durable cursor.

- Lanes: events are spread over `lanes` by device; a lane pushes one event at a time, in
  order, retrying its head until it is delivered or too old. So order is kept per device, and
  concurrency per connector is bounded by the number of lanes.
- Window: at most `window` events are held (queued or being pushed); the reader waits for room.
  Memory does not grow with the backlog, which stays in the log.
- Cursor: the position below which every event is delivered or dropped (the oldest unfinished
  event, or the feed's position when none is). It is saved every `checkpoint_seconds`; after a
  crash, delivery resumes from it: events after it may be pushed again (same eventId), none
  is lost.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import msgspec

from fleetlog.core.errors import NotFound
from fleetlog.core.event import Event
from fleetlog.core.registry import Device
from fleetlog.delivery import dt_body, native_body
from fleetlog.delivery.feed import LogFeed, Tap, seq_of
from fleetlog.delivery.metrics import ConnectorMetrics
from fleetlog.delivery.model import METRICS_KIND, STATE_KIND, Connector, DeliveryState, Flavour
from fleetlog.delivery.pacer import Pacer
from fleetlog.delivery.retry import RetryPolicy
from fleetlog.delivery.sender import Attempt, Pusher
from fleetlog.delivery.signing import sign
from fleetlog.delivery.targets import TargetPolicy
from fleetlog.pipeline.directory import Directory
from fleetlog.ports.clock import Clock
from fleetlog.ports.documents import DocumentStore
from fleetlog.ports.store import EventStore

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]
STOP_RECHECK_SECONDS = 0.05


@dataclass(frozen=True)
class Settings:
    timeout_seconds: float = 10.0
    max_age_seconds: float = 12 * 3600.0
    disable_after_seconds: float = 5 * 24 * 3600.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    lanes: int = 16
    window: int = 1000
    checkpoint_seconds: float = 1.0
    max_connectors: int = 100  # per tenant
    max_loop_lag_seconds: float = 0.005  # pushes slow down when the event loop lags more (0: off)
    # With a shared store: how often the delivering process looks for connectors changed, and
    # replays or syncs asked for, in other processes (and the others refresh their metrics).
    reconcile_seconds: float = 2.0
    targets: TargetPolicy = field(default_factory=TargetPolicy)  # networks pushes may not go to


@dataclass
class Deps:
    """What every worker shares, handed down by the engine."""

    store: EventStore
    documents: DocumentStore
    directory: Directory
    clock: Clock
    sender: Pusher
    tap: Tap
    settings: Settings
    sleep: Sleep
    pacer: Pacer
    on_disable: Callable[[Connector], None]


class _Entry:
    __slots__ = ("done", "received", "seq")

    def __init__(self, seq: int, received: int) -> None:
        self.seq = seq
        self.received = received
        self.done = False


class Worker:
    def __init__(self, connector: Connector, state: DeliveryState, metrics: ConnectorMetrics, deps: Deps) -> None:
        self.connector = connector
        self.state = state
        self.metrics = metrics
        self._deps = deps
        s = deps.settings
        self._max_age_us = int(s.max_age_seconds * 1_000_000)
        self._disable_after_us = int(s.disable_after_seconds * 1_000_000)
        self._pending: deque[_Entry] = deque()  # unfinished events from the log, in seq order
        self._entries: dict[int, _Entry] = {}
        self._room = asyncio.Event()
        self._lanes: list[asyncio.Queue[tuple[Event, bool]]] = [asyncio.Queue() for _ in range(max(1, s.lanes))]
        self._sync_slots = asyncio.Semaphore(s.window)
        self._saved = msgspec.structs.replace(state)
        self._disabled = False
        self._feed = LogFeed(
            deps.store,
            deps.tap,
            connector.tenant,
            projects=[connector.project],
            types=list(connector.filter.types) or [None],
            match=connector.in_scope,
            after_seq=state.seq,
            capacity=s.window,
        )
        self._tasks: list[asyncio.Task[None]] = []

    # -- life ---------------------------------------------------------------------------

    def start(self) -> None:
        name = f"delivery:{self.connector.id}"
        self._tasks = [
            asyncio.create_task(self._read(), name=f"{name}:read"),
            asyncio.create_task(self._checkpoints(), name=f"{name}:checkpoint"),
            *(asyncio.create_task(self._lane(q), name=f"{name}:lane{i}") for i, q in enumerate(self._lanes)),
        ]

    def run_alongside(self, work: Coroutine[Any, Any, None], name: str) -> None:
        """Background work that ends with this worker (a :sync)."""
        self._tasks.append(asyncio.create_task(work, name=f"delivery:{self.connector.id}:{name}"))

    async def stop(self) -> None:
        """Stop pushing and save the cursor (events in flight will be pushed again later)."""
        tasks, self._tasks = self._tasks, []
        # One cancellation is not always enough: in Python 3.11 `asyncio.wait_for` (and
        # aiohttp's timeouts) can swallow it when the awaited push completes at the same
        # moment, and the lane would then go on. Cancel again until every task has ended.
        while tasks:
            for task in tasks:
                task.cancel()
            _, still = await asyncio.wait(tasks, timeout=STOP_RECHECK_SECONDS)
            tasks = list(still)
        self._feed.close()
        await self.checkpoint()

    @property
    def cursor(self) -> int:
        return self._pending[0].seq - 1 if self._pending else self._feed.position

    @property
    def in_flight(self) -> int:
        return len(self._entries)

    def lag_seconds(self, now_us: int) -> float:
        """How long the oldest unfinished event has waited (0 when none is waiting)."""
        return max(0.0, (now_us - self._pending[0].received) / 1e6) if self._pending else 0.0

    # -- reading ------------------------------------------------------------------------

    async def _read(self) -> None:
        window = self._deps.settings.window
        refill_at = max(1, window // 4)  # read in batches, not one event per free slot
        while True:
            free = window - len(self._entries)
            if free < refill_at and self._entries:
                self._room.clear()
                await self._room.wait()
                continue
            try:
                events = await self._feed.next(free, self._deps.settings.checkpoint_seconds)
            except Exception:  # the store failed: the feed has not moved, so try again
                log.exception("reading the log for connector %s failed", self.connector.id)
                await asyncio.sleep(1.0)
                continue
            for event in events:
                if self.connector.filter.needs_device:
                    device = await self._device(event)
                    if not self.connector.filter.matches_labels(device.labels if device else {}):
                        continue
                seq = seq_of(event)
                entry = _Entry(seq, event.received)
                self._pending.append(entry)
                self._entries[seq] = entry
                self._lane_of(event).put_nowait((event, False))

    def _lane_of(self, event: Event) -> asyncio.Queue[tuple[Event, bool]]:
        key = event.device or event.gateway or event.project
        return self._lanes[hash(key) % len(self._lanes)]

    def _finish(self, seq: int) -> None:
        entry = self._entries.pop(seq)
        entry.done = True
        pending = self._pending
        while pending and pending[0].done:
            pending.popleft()
        if len(self._entries) <= self._deps.settings.window * 3 // 4:
            self._room.set()

    async def sync(self, events: list[Event]) -> None:
        """Push these events too (DT's :sync), outside the cursor: best effort, not durable."""
        for event in events:
            await self._sync_slots.acquire()
            self._lane_of(event).put_nowait((event, True))

    # -- pushing ------------------------------------------------------------------------

    async def _lane(self, queue: asyncio.Queue[tuple[Event, bool]]) -> None:
        while True:
            event, is_sync = await queue.get()
            await self._deliver(event)
            if is_sync:
                self._sync_slots.release()
            else:
                self._finish(seq_of(event))

    async def _deliver(self, event: Event) -> None:
        deps = self._deps
        body: bytes | None = None
        tries = 0
        while True:
            now = deps.clock.now_us()
            if now - self._age_base(event) > self._max_age_us:
                self.metrics.dropped()
                return
            if body is None:
                body = await self._body(event)
            await deps.pacer.admit()
            try:
                response = await deps.sender.post(self.connector.url, body, self._headers(event, body, now))
            except Exception as exc:  # a bug must not stop the lane: count it, retry
                log.exception("pushing event %s of connector %s failed", event.id, self.connector.id)
                response = Attempt(0, 0.0, error=f"{type(exc).__name__}: {exc}")
            tries += 1
            now = deps.clock.now_us()
            self.metrics.record(now, response, event.id, tries)
            if response.delivered:
                self.state.failing_since = None
                return
            if self.state.failing_since is None:
                self.state.failing_since = now
            elif now - self.state.failing_since >= self._disable_after_us and not self._disabled:
                self._disabled = True
                log.warning("connector %s failed for too long: SYSTEM_DISABLED", self.connector.id)
                deps.on_disable(self.connector)  # stops this worker
            if self._disabled:
                await asyncio.Event().wait()  # until stopped
            delay = deps.settings.retry.delay(tries - 1, response.status, response.retry_after, now / 1e6)
            await deps.sleep(delay)

    def _age_base(self, event: Event) -> int:
        """Maximum age counts from arrival, or from the replay request for replayed events."""
        if self.state.replay_until and seq_of(event) <= self.state.replay_until:
            return max(event.received, self.state.replay_at)
        return event.received

    async def _device(self, event: Event) -> Device | None:
        """The event's device now (None if removed). A failing registry is waited for: a
        label filter or a push body must not be decided on a guess."""
        name = event.device or event.gateway
        if name is None:
            return None
        while True:
            try:
                return await self._deps.directory.device(event.tenant, name)
            except NotFound:
                return None
            except Exception:
                log.exception("looking up device %s for connector %s failed", name, self.connector.id)
                await asyncio.sleep(1.0)

    async def _body(self, event: Event) -> bytes:
        if self.connector.flavour is Flavour.DT:
            return dt_body.push_body(event, await self._device(event), self.connector.include_labels)
        return native_body.push_body(event)

    def _headers(self, event: Event, body: bytes, now_us: int) -> dict[str, str]:
        c = self.connector
        headers = {**c.headers, "Content-Type": "application/json"}
        if c.flavour is Flavour.DT:
            if c.secret:
                headers["X-Dt-Signature"] = sign(body, c.secret, now_us // 1_000_000)
        else:
            headers["X-Fleetlog-Signature"] = sign(body, c.secret, now_us // 1_000_000)
            headers["X-Fleetlog-Event-Id"] = event.id
            headers["X-Fleetlog-Webhook"] = c.id
        return headers

    # -- the durable cursor ---------------------------------------------------------------

    async def _checkpoints(self) -> None:
        while True:
            await asyncio.sleep(self._deps.settings.checkpoint_seconds)
            try:
                await self.checkpoint()
            except Exception:  # a failed save is retried at the next tick
                log.exception("saving the cursor of connector %s failed", self.connector.id)

    async def checkpoint(self) -> None:
        c = self.connector
        if self.metrics.changed:
            try:
                await self._deps.documents.put(c.tenant, METRICS_KIND, c.id, self.metrics.snapshot())
            except BaseException:
                self.metrics.changed = True  # saved at the next checkpoint
                raise
        self.state.seq = max(self.state.seq, self.cursor)
        if self.state == self._saved:
            return
        snapshot = msgspec.structs.replace(self.state)
        await self._deps.documents.put(c.tenant, STATE_KIND, c.id, msgspec.to_builtins(snapshot))
        self._saved = snapshot
