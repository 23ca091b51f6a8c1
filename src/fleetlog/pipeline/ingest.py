"""The ingest pipeline: every transport and face hands events to this one path.

validate -> fill from the catalog -> dedupe + persist (group commit) -> acknowledge;
the store's commit hook publishes to the bus and has already updated derived device state.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from fleetlog.core.catalog import Catalog, EventType
from fleetlog.core.errors import FleetlogError, InvalidInput, NotFound
from fleetlog.core.event import SEVERITY_MAX, SEVERITY_MIN, Event, SourceKind, pack, unpack
from fleetlog.core.registry import Device, Principal, Role
from fleetlog.pipeline.directory import Directory
from fleetlog.ports.clock import Clock
from fleetlog.ports.store import AppendResult, AppendStatus, Dedupe, DeferredInbox, EventStore


@dataclass
class IngestStats:
    created: int = 0
    duplicates: int = 0
    conflicts: int = 0
    rejected: int = 0
    deferred: int = 0
    by_face: dict[str, int] = field(default_factory=dict)


class Ingest:
    def __init__(
        self,
        store: EventStore,
        directory: Directory,
        catalog: Catalog,
        clock: Clock,
        inbox: DeferredInbox,
    ) -> None:
        self.store = store
        self.directory = directory
        self.catalog = catalog
        self.clock = clock
        self.inbox = inbox
        self.stats = IngestStats()

    async def prepare(self, principal: Principal | None, event: Event) -> Event:
        """Check an event against the registry, the caller's rights and the catalog; fill in
        what the catalog knows. `principal` None means a trusted internal producer."""
        directory = self.directory
        tenant = directory.cached_tenant(event.tenant) or await directory.tenant(event.tenant)
        device = None
        if event.device is not None:
            device = directory.cached_device(tenant.id, event.device) or await directory.device(tenant.id, event.device)
        self._check_source(principal, event, tenant.id, device)
        if device is None:
            await directory.project(tenant.id, event.project)
        custom = directory.cached_types(tenant.id)
        if custom is None:
            custom = await directory.custom_types(tenant.id)
        return self._check_content(event, custom, self.clock.now_us())

    def _prepare_cached(
        self, principal: Principal | None, event: Event, allowed: set[tuple[str, str]], now: int
    ) -> Event | None:
        """`prepare` without awaiting, for an event of a known device whose tenant, device and
        types are all cached; None when something must be looked up (then call `prepare`).
        `allowed` holds the (tenant, project) pairs already checked for this principal."""
        directory = self.directory
        tenant = directory.cached_tenant(event.tenant)
        if tenant is None or event.device is None:
            return None
        device = directory.cached_device(tenant.id, event.device)
        custom = directory.cached_types(tenant.id)
        if device is None or custom is None:
            return None
        checked = (tenant.id, device.project) in allowed
        self._check_source(None if checked else principal, event, tenant.id, device)
        allowed.add((tenant.id, device.project))
        return self._check_content(event, custom, now)

    @staticmethod
    def _check_source(principal: Principal | None, event: Event, tenant: str, device: Device | None) -> None:
        """Where the event belongs (its device's project, or the project it names) and whether
        the caller may write there."""
        if device is not None:
            if not event.project:
                event.project = device.project
            elif event.project != device.project:
                raise InvalidInput(f"device {device.id!r} is in project {device.project!r}", "project")
        elif not event.project:
            raise InvalidInput("an event without a device must name its project", "project")
        elif event.source is SourceKind.DEVICE:
            raise InvalidInput("a device event must name its device", "device")
        if principal is not None:
            Directory.check_rights(principal, tenant, event.project, Role.WRITE)

    def _check_content(self, event: Event, custom: dict[str, EventType], now: int) -> Event:
        """Severity and the data's schema; what the catalog knows of the type is filled in."""
        if not SEVERITY_MIN <= event.severity <= SEVERITY_MAX:
            raise InvalidInput("must be an integer from 1 to 5", "severity")
        known = self.catalog.validate(event.type, event.data, custom or None)
        if known is not None:
            if not event.description:
                event.description = known.title
            if event.category is None:
                event.category = known.category
            if known.family == "pelion":
                event.outcome = known.outcome
                event.state_change = event.state_change or known.state_change
        if not event.received:
            event.received = now
        return event

    async def submit(
        self, principal: Principal | None, event: Event, dedupe: Dedupe = Dedupe.KEY, face: str = ""
    ) -> AppendResult:
        """One event, durably stored before this returns. Raises FleetlogError if refused."""
        try:
            prepared = await self.prepare(principal, event)
        except FleetlogError:
            self.stats.rejected += 1
            raise
        results = await self.store.append([prepared], dedupe)
        self._count(results, face)
        return results[0]

    async def submit_many(
        self,
        principal: Principal | None,
        events: Sequence[Event | FleetlogError],
        dedupe: Dedupe = Dedupe.KEY,
        face: str = "",
    ) -> list[AppendResult | FleetlogError]:
        """A batch with partial success: each item is either stored or refused with a reason.
        Items that arrive as errors (they failed to parse) are passed through in place."""
        outcome: list[AppendResult | FleetlogError | None] = []
        ready: list[Event] = []
        slots: list[int] = []
        allowed: set[tuple[str, str]] = set()
        now = self.clock.now_us()
        cached = self._prepare_cached
        for item in events:
            if isinstance(item, FleetlogError):
                outcome.append(item)
                continue
            try:
                # The usual item costs no coroutine: its tenant, device and types are cached.
                ready.append(cached(principal, item, allowed, now) or await self.prepare(principal, item))
                slots.append(len(outcome))
                outcome.append(None)
            except FleetlogError as exc:
                outcome.append(exc)
        self.stats.rejected += len(outcome) - len(ready)
        if ready:
            results = await self.store.append(ready, dedupe)
            for slot, result in zip(slots, results, strict=True):
                outcome[slot] = result
            self._count(results, face)
        return [o for o in outcome if o is not None]

    async def defer(self, principal: Principal | None, event: Event) -> Event:
        """Validate now, save durably now, process later (HTTP 202)."""
        prepared = await self.prepare(principal, event)
        await self.inbox.put([pack(prepared)])
        self.stats.deferred += 1
        return prepared

    async def drain_deferred(self, limit: int = 1000, dedupe: Dedupe = Dedupe.NATURAL) -> int:
        """Process saved 202 events (also those left over from before a restart)."""
        taken = await self.inbox.take(limit)
        if not taken:
            return 0
        events = [unpack(payload) for _, payload in taken]
        ready: list[Event] = []
        for event in events:
            try:
                ready.append(await self.prepare(None, event))
            except NotFound:  # its device was removed meanwhile: nothing to attach it to
                self.stats.rejected += 1
        if ready:
            self._count(await self.store.append(ready, dedupe), "deferred")
        await self.inbox.done([pk for pk, _ in taken])
        return len(taken)

    def _count(self, results: Sequence[AppendResult], face: str) -> None:
        created = duplicates = 0
        for result in results:
            status = result.status
            if status is AppendStatus.CREATED:
                created += 1
            elif status is AppendStatus.DUPLICATE:
                duplicates += 1
        stats = self.stats
        stats.created += created
        stats.duplicates += duplicates
        stats.conflicts += len(results) - created - duplicates
        if created:
            stats.by_face[face] = stats.by_face.get(face, 0) + created
