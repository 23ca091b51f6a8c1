"""Sensor connectivity: a sensor that sends nothing for max(15 min, 1.5 x its heartbeat interval)
is OFFLINE, and is back (SDS) with its next event. Both are recorded as ordinary
`connectionStatus` events (source system) through Ingest, so every face sees them.

Detection is precise: one heap holds each tracked sensor's deadline (at most one entry a sensor;
a popped entry whose sensor was heard since is pushed again at its new deadline), and one task
sleeps until the earliest deadline. Nothing polls. Time comes from the Clock port; tests move a
fake clock and call `poke()` (or `expire_due()`), so they run in milliseconds.

Only events the sensor itself sent count (source device): the registry's and this monitor's own
events do not keep a sensor online. Before a sensor is declared OFFLINE, the store is asked when
it was last heard, so an event the bus dropped under load never causes a false OFFLINE. State is
rebuilt from the store at start, so a restart neither forgets a deadline nor repeats an OFFLINE.
Cloud Connectors have no heartbeat: they report their own connectionStatus.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
from dataclasses import dataclass
from typing import Any, Final

from fleetlog.core.catalog.dt import device_type
from fleetlog.core.errors import FleetlogError, NotFound
from fleetlog.core.event import Event, SourceKind
from fleetlog.core.registry import Device
from fleetlog.pipeline.directory import Directory
from fleetlog.pipeline.ingest import Ingest
from fleetlog.ports.bus import Bus
from fleetlog.ports.clock import Clock
from fleetlog.ports.store import EventStore

log = logging.getLogger(__name__)

OFFLINE_FACTOR: Final = 1.5
HEARTBEAT_ATTR: Final = "heartbeat_seconds"  # a device's own heartbeat interval, overriding its type's
OFFLINE: Final = {"connection": "OFFLINE", "available": []}
ONLINE: Final = {"connection": "SDS", "available": ["SDS"]}
Key = tuple[str, str]  # (tenant, device)


def heartbeat_seconds(device: Device) -> float | None:
    """The sensor's heartbeat interval, or None if it has none (a Cloud Connector, a non-DT device)."""
    kind = device_type(device.type)
    if kind is None or kind.heartbeat_seconds is None:
        return None
    own = device.attrs.get(HEARTBEAT_ATTR)
    return float(own) if isinstance(own, int | float) and own > 0 else float(kind.heartbeat_seconds)


@dataclass(slots=True)
class _Sensor:
    project: str
    last_heard: int  # µs, the receive time of its latest own event
    threshold: int  # µs without an event before it is OFFLINE
    offline: bool = False
    queued: bool = False  # has an entry in the heap

    @property
    def deadline(self) -> int:
        return self.last_heard + self.threshold


class ConnectivityMonitor:
    def __init__(
        self,
        ingest: Ingest,
        directory: Directory,
        store: EventStore,
        bus: Bus,
        clock: Clock,
        min_offline_seconds: float = 900.0,
        capacity: int = 10_000,
    ) -> None:
        self._ingest = ingest
        self._directory = directory
        self._store = store
        self._bus = bus
        self._clock = clock
        self._min_us = int(min_offline_seconds * 1_000_000)
        self._capacity = capacity
        self._sensors: dict[Key, _Sensor] = {}
        self._heap: list[tuple[int, str, str]] = []
        self._wake = asyncio.Event()
        # One pass over due deadlines at a time: a caller returns only once every deadline due
        # when it was called is recorded (the timer's pass may be halfway through them).
        self._expiring = asyncio.Lock()
        self.offline_events = 0
        self.online_events = 0

    def threshold_us(self, device: Device) -> int | None:
        beat = heartbeat_seconds(device)
        return None if beat is None else max(self._min_us, int(beat * OFFLINE_FACTOR * 1_000_000))

    def is_offline(self, tenant: str, device: str) -> bool | None:
        """True/False for a tracked sensor, None for one never heard."""
        sensor = self._sensors.get((tenant, device))
        return None if sensor is None else sensor.offline

    def heard_at(self, tenant: str, device: str) -> int | None:
        """When the sensor was last heard (µs, receive time), None if never."""
        sensor = self._sensors.get((tenant, device))
        return None if sensor is None else sensor.last_heard

    def poke(self) -> None:
        """Re-check deadlines now (after the clock jumped, in tests)."""
        self._wake.set()

    # -- running ------------------------------------------------------------------------------

    async def run(self) -> None:
        sub = self._bus.subscribe(lambda e: e.device is not None, self._capacity)
        try:
            await self.load()
            timer = asyncio.create_task(self._timer(), name="connectivity-timer")
            try:
                dropped = 0
                while True:
                    event = await sub.get()
                    if sub.dropped != dropped:
                        dropped = sub.dropped
                        await self._recheck_offline()
                    try:
                        if not self._observe_now(event):
                            await self.observe(event)
                    except Exception:
                        log.exception("connectivity: could not follow an event of %s", event.device)
            finally:
                timer.cancel()
        finally:
            sub.close()

    async def _timer(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self.expire_due()
            except Exception:
                log.exception("connectivity: deadline check failed")
            delay = None
            if self._heap:
                delay = max(0.0, (self._heap[0][0] - self._clock.now_us()) / 1_000_000)
            try:
                async with asyncio.timeout(delay):
                    await self._wake.wait()
            except TimeoutError:
                pass

    async def load(self) -> None:
        """Rebuild each sensor's state from the store (its latest own event, its latest
        connectionStatus)."""
        for tenant in await self._directory.registry.list_tenants():
            after: str | None = None
            while True:
                devices = await self._directory.registry.list_devices(tenant.id, None, (), after, 1000)
                for device in devices:
                    await self._load_one(device)
                if len(devices) < 1000:
                    break
                after = devices[-1].id

    async def _load_one(self, device: Device) -> None:
        threshold = self.threshold_us(device)
        if threshold is None:
            return
        latest = await self._store.latest_by_type(device.tenant, device.id)
        heard = max((e.received for e in latest.values() if e.source is SourceKind.DEVICE), default=None)
        if heard is None:
            return
        status = latest.get("connectionStatus")
        offline = status is not None and status.data.get("connection") == "OFFLINE" and status.received >= heard
        key = (device.tenant, device.id)
        known = self._sensors.get(key)
        if known is not None and known.last_heard >= heard:
            return
        self._track(key, device.project, heard, threshold, offline)

    def _track(self, key: Key, project: str, heard: int, threshold: int, offline: bool) -> _Sensor:
        sensor = self._sensors.get(key)
        if sensor is None:
            sensor = self._sensors[key] = _Sensor(project, heard, threshold)
        sensor.project, sensor.threshold, sensor.offline = project, threshold, offline
        sensor.last_heard = max(sensor.last_heard, heard)
        if not offline and not sensor.queued:
            sensor.queued = True
            heapq.heappush(self._heap, (sensor.deadline, *key))
            if self._heap[0][1:] == key:
                self._wake.set()  # the earliest deadline moved: the timer must sleep less
        return sensor

    # -- events -------------------------------------------------------------------------------

    async def observe(self, event: Event) -> None:
        """Follow one committed event."""
        if event.source is not SourceKind.DEVICE or event.device is None:
            return
        device = self._directory.cached_device(event.tenant, event.device)
        if device is None:
            try:
                device = await self._directory.device(event.tenant, event.device)
            except NotFound:
                return
        if self._follow(event, device):
            await self._record(device, ONLINE, event.time, f"dt-online:{event.id}")
            self.online_events += 1

    def _observe_now(self, event: Event) -> bool:
        """`observe` for the usual event, which needs nothing awaited (the bus delivers one per
        committed event, so this saves a coroutine each); False when `observe` must run."""
        if event.source is not SourceKind.DEVICE or event.device is None:
            return True
        device = self._directory.cached_device(event.tenant, event.device)
        if device is None or self.is_offline(event.tenant, event.device):
            return False  # a lookup, or an ONLINE event to record
        self._follow(event, device)
        return True

    def _follow(self, event: Event, device: Device) -> bool:
        """Move the sensor's deadline; True when the event brings an offline sensor back."""
        threshold = self.threshold_us(device)
        if threshold is None:
            return False
        key = (event.tenant, device.id)
        was_offline = self.is_offline(*key) is True
        goes_offline = event.type == "connectionStatus" and event.data.get("connection") == "OFFLINE"
        self._track(key, device.project, event.received, threshold, goes_offline)
        return was_offline and not goes_offline

    async def expire_due(self) -> int:
        """Declare OFFLINE every sensor whose deadline has passed; returns how many."""
        async with self._expiring:
            return await self._expire_due()

    async def _expire_due(self) -> int:
        now = self._clock.now_us()
        count = 0
        while self._heap and self._heap[0][0] <= now:
            _, tenant, device_id = heapq.heappop(self._heap)
            key = (tenant, device_id)
            sensor = self._sensors.get(key)
            if sensor is None:
                continue
            sensor.queued = False
            if sensor.offline:
                continue
            heard = await self._last_heard(key)
            if heard is not None and heard > sensor.last_heard:
                sensor.last_heard = heard  # heard meanwhile (an event the bus dropped)
            if sensor.deadline > now:
                sensor.queued = True
                heapq.heappush(self._heap, (sensor.deadline, *key))
                continue
            sensor.offline = True
            try:
                device = await self._directory.device(tenant, device_id)
            except NotFound:
                del self._sensors[key]
                continue
            await self._record(device, OFFLINE, sensor.deadline, f"dt-offline:{device_id}:{sensor.deadline}")
            self.offline_events += 1
            count += 1
        return count

    async def _recheck_offline(self) -> None:
        """After the bus dropped events: a sensor believed OFFLINE may have been heard."""
        for key, sensor in list(self._sensors.items()):
            if not sensor.offline:
                continue
            heard = await self._last_heard(key)
            if heard is not None and heard > sensor.last_heard:
                try:
                    device = await self._directory.device(*key)
                except NotFound:
                    continue
                self._track(key, device.project, heard, sensor.threshold, False)
                await self._record(device, ONLINE, heard, f"dt-online:{key[1]}:{heard}")
                self.online_events += 1

    async def _last_heard(self, key: Key) -> int | None:
        latest = await self._store.latest_by_type(*key)
        return max((e.received for e in latest.values() if e.source is SourceKind.DEVICE), default=None)

    async def _record(self, device: Device, data: dict[str, Any], time: int, idempotency_key: str) -> None:
        event = Event(
            tenant=device.tenant,
            project=device.project,
            device=device.id,
            type="connectionStatus",
            time=time,
            source=SourceKind.SYSTEM,
            data={**data, "available": list(data["available"])},
            idempotency_key=idempotency_key,
        )
        try:
            await self._ingest.submit(None, event, face="connectivity")
        except FleetlogError as exc:
            log.warning("connectivity: could not record %s for %s: %s", data["connection"], device.id, exc)
