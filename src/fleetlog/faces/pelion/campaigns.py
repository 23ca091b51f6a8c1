"""Firmware update campaigns and the event log codes they produce.

A campaign targets devices (by ids, or by labels resolved when it starts) with a firmware
version. Its life: draft -> starting -> active -> completed, or -> stopping -> stopped.

    start       each device is added (SYS_108); a device that already runs the version (its
                attribute, else its label, `firmware_version`) is skipped (SYS_110)
    result      the device's own update result, reported through any ingest path:
                UPD2_OK_18 (any UPD*_OK_*) -> SYS_112 reached desired state (and the device's
                `firmware_version` attribute is set: a deviceUpdated event); UPD4_FAIL_* ->
                SYS_111 failed
    add/remove  devices added to or removed from an active campaign (SYS_108 / SYS_109); a
                device deregistered during a campaign is removed from it (SYS_109)
    stop        each device still pending: SYS_104 "may still update" if it has reported any
                event since the campaign started (it may have the update), else SYS_103
                "not updated". A later result of a SYS_104 device is still recorded.
    complete    when no device is pending.

A result belongs to the campaign named by its data `campaign_id`; without one, to the most
recently started campaign in which the device is pending.

State is kept as documents: the campaign ("pelion.campaign", id = campaign id) and one per
device ("pelion.campaign-device", id = "<campaign id>/<device id>"). Every campaign event has
an idempotency key, and each step emits its events before it records the new state: a step cut
short by a crash is simply done again (at start-up), and its events are not duplicated.

Results are followed on the bus. When the bus drops events for this slow reader, and at
start-up, the pending devices are reconciled from the store (their UPD events received since
the campaign started), so no result is lost.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
from collections.abc import Iterable
from enum import StrEnum
from typing import Annotated, Any

import msgspec

from fleetlog.core.errors import Conflict, FleetlogError, InvalidInput, NotFound
from fleetlog.core.event import Event, SourceKind
from fleetlog.core.query import EventQuery, Order
from fleetlog.core.registry import Device, DeviceChange
from fleetlog.core.timefmt import rfc3339
from fleetlog.pipeline.services import Services
from fleetlog.ports.store import AppendResult

log = logging.getLogger(__name__)

CAMPAIGN_KIND = "pelion.campaign"
DEVICE_KIND = "pelion.campaign-device"
FIRMWARE_ATTR = "firmware_version"
MAX_DEVICE_IDS = 100_000
BATCH = 1000
# Device times may lag the server's: the reconciliation reads results whose time is up to this
# much before the start, and keeps those *received* after it.
CLOCK_SLACK_US = 24 * 3600 * 1_000_000
RESULT = re.compile(r"UPD\d+_(OK|FAIL)_\d+")
QUEUE = 10_000  # results the follower's bus queue holds; beyond, they are read from the store


class Phase(StrEnum):
    DRAFT = "draft"
    STARTING = "starting"
    ACTIVE = "active"
    STOPPING = "stopping"
    STOPPED = "stopped"
    COMPLETED = "completed"


class State(StrEnum):
    PENDING = "pending"
    SKIPPED = "skipped"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    REMOVED = "removed"
    STOPPED_NOT_UPDATED = "stopped_not_updated"
    STOPPED_MAY_UPDATE = "stopped_may_update"


OPEN = (State.PENDING, State.STOPPED_MAY_UPDATE)  # a result may still arrive


Name = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
DeviceId = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class CampaignIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: Name
    firmware_version: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    description: Annotated[str, msgspec.Meta(max_length=2000)] = ""
    device_ids: list[DeviceId] | None = None
    device_labels: dict[Annotated[str, msgspec.Meta(min_length=1, max_length=128)], str] | None = None


class DevicesIn(msgspec.Struct, forbid_unknown_fields=True):
    device_ids: Annotated[list[DeviceId], msgspec.Meta(min_length=1, max_length=MAX_DEVICE_IDS)]


class Campaign(msgspec.Struct, kw_only=True):
    id: str
    tenant: str
    name: str
    firmware_version: str
    description: str = ""
    device_ids: list[str] | None = None
    device_labels: dict[str, str] | None = None
    phase: Phase = Phase.DRAFT
    created_at: int = 0
    updated_at: int = 0
    started_at: int | None = None
    finished_at: int | None = None


class Record(msgspec.Struct, kw_only=True):
    """One device's outcome in one campaign."""

    device_id: str
    state: State
    code: str  # the event log code of the campaign's latest event about this device
    event_id: str = ""
    cause: str | None = None  # the device's own result code (UPD...), for results
    updated_at: int = 0


STATE_CODE = {
    State.PENDING: "SYS_108",
    State.SKIPPED: "SYS_110",
    State.SUCCEEDED: "SYS_112",
    State.FAILED: "SYS_111",
    State.REMOVED: "SYS_109",
    State.STOPPED_NOT_UPDATED: "SYS_103",
    State.STOPPED_MAY_UPDATE: "SYS_104",
}


def firmware_of(device: Device) -> str | None:
    """The firmware a device runs: its `firmware_version` attribute (set by fleetlog when a
    campaign updated it), else its `firmware_version` label (set by people and tools)."""
    version = device.attrs.get(FIRMWARE_ATTR) or device.labels.get(FIRMWARE_ATTR)
    return str(version) if version is not None else None


def _device_doc_id(campaign_id: str, device_id: str) -> str:
    return f"{campaign_id}/{device_id}"


class Campaigns:
    """The campaign service: REST handlers and the background watcher both call it."""

    def __init__(self, services: Services) -> None:
        self._s = services
        self._docs = services.documents
        self._locks: dict[str, asyncio.Lock] = {}
        self._load_lock = asyncio.Lock()
        self._loaded = False
        # (tenant, device) -> campaigns in which the device may still report a result
        self._open: dict[tuple[str, str], set[str]] = {}
        # campaign id -> its devices still pending (not counting STOPPED_MAY_UPDATE)
        self._pending: dict[str, set[str]] = {}
        self._started: dict[str, int] = {}  # campaign id -> started_at, for open campaigns
        self._wake = asyncio.Event()  # something to reconcile
        self._to_reconcile: set[str] = set()  # campaigns whose results to read from the store
        self.reconciled = 0  # how many reconciliation passes ran (for tests and metrics)
        self.refills = 0  # how many of them because the bus dropped results

    # -- reading ---------------------------------------------------------------------------

    async def get(self, tenant: str, campaign_id: str) -> Campaign:
        doc = await self._docs.get(tenant, CAMPAIGN_KIND, campaign_id)
        if doc is None:
            raise NotFound("campaign", campaign_id)
        return msgspec.convert(doc, Campaign)

    async def all(self, tenant: str) -> list[Campaign]:
        out: list[Campaign] = []
        after: str | None = None
        while True:
            rows = await self._docs.list(tenant, CAMPAIGN_KIND, after=after, limit=1000)
            out += [msgspec.convert(doc, Campaign) for _, _, doc in rows]
            if len(rows) < 1000:
                return out
            after = rows[-1][1]

    async def records(
        self, tenant: str, campaign_id: str, after: str | None = None, limit: int | None = None
    ) -> list[Record]:
        """The campaign's device records in device id order (after device `after`)."""
        prefix = campaign_id + "/"
        cursor = prefix + after if after is not None else prefix
        out: list[Record] = []
        while limit is None or len(out) < limit:
            want = BATCH if limit is None else min(BATCH, limit - len(out))
            rows = await self._docs.list(tenant, DEVICE_KIND, after=cursor, limit=want)
            mine = [doc for _, doc_id, doc in rows if doc_id.startswith(prefix)]
            out += [msgspec.convert(doc, Record) for doc in mine]
            if len(mine) < len(rows) or len(rows) < want:
                break
            cursor = rows[-1][1]
        return out

    async def counts(self, tenant: str, campaign_id: str) -> dict[str, int]:
        counts = {state.value: 0 for state in State}
        for record in await self.records(tenant, campaign_id):
            counts[record.state.value] += 1
        counts["total"] = sum(counts.values())
        return counts

    # -- commands --------------------------------------------------------------------------

    async def create(self, tenant: str, body: CampaignIn) -> Campaign:
        await self._s.directory.tenant(tenant)
        if (body.device_ids is None) == (body.device_labels is None):
            raise InvalidInput("give either device_ids or device_labels", "device_ids")
        if body.device_ids is not None:
            ids = list(dict.fromkeys(body.device_ids))
            if not ids:
                raise InvalidInput("must name at least one device", "device_ids")
            if len(ids) > MAX_DEVICE_IDS:
                raise InvalidInput(f"may name at most {MAX_DEVICE_IDS} devices", "device_ids")
            await self._check_devices(tenant, ids, "device_ids")
            body.device_ids = ids
        elif not body.device_labels:
            raise InvalidInput("must hold at least one label", "device_labels")
        now = self._s.clock.now_us()
        campaign = Campaign(
            id=secrets.token_hex(16),
            tenant=tenant,
            name=body.name,
            firmware_version=body.firmware_version,
            description=body.description,
            device_ids=body.device_ids,
            device_labels=body.device_labels,
            created_at=now,
            updated_at=now,
        )
        await self._save(campaign)
        return campaign

    async def delete(self, tenant: str, campaign_id: str) -> None:
        async with self._lock(campaign_id):
            campaign = await self.get(tenant, campaign_id)
            if campaign.phase is not Phase.DRAFT:
                raise Conflict(f"campaign is {campaign.phase.value}: only a draft can be deleted")
            await self._docs.delete(tenant, CAMPAIGN_KIND, campaign_id)

    async def start(self, tenant: str, campaign_id: str) -> Campaign:
        await self._ensure_loaded()
        async with self._lock(campaign_id):
            campaign = await self.get(tenant, campaign_id)
            if campaign.phase is not Phase.DRAFT:
                raise Conflict(f"campaign is {campaign.phase.value}: only a draft can be started")
            campaign.phase = Phase.STARTING
            campaign.started_at = self._s.clock.now_us()
            await self._save(campaign)
            return await self._deploy(campaign)

    async def stop(self, tenant: str, campaign_id: str) -> Campaign:
        await self._ensure_loaded()
        async with self._lock(campaign_id):
            campaign = await self.get(tenant, campaign_id)
            if campaign.phase is not Phase.ACTIVE:
                raise Conflict(f"campaign is {campaign.phase.value}: only an active campaign can be stopped")
            campaign.phase = Phase.STOPPING
            await self._save(campaign)
            return await self._halt(campaign)

    async def add_devices(self, tenant: str, campaign_id: str, device_ids: list[str]) -> Campaign:
        await self._ensure_loaded()
        ids = list(dict.fromkeys(device_ids))
        await self._check_devices(tenant, ids, "device_ids")
        async with self._lock(campaign_id):
            campaign = await self.get(tenant, campaign_id)
            if campaign.phase is Phase.DRAFT:
                if campaign.device_ids is None:
                    raise Conflict("this campaign selects its devices by labels; add labels to the devices instead")
                campaign.device_ids = list(dict.fromkeys([*campaign.device_ids, *ids]))
                if len(campaign.device_ids) > MAX_DEVICE_IDS:
                    raise InvalidInput(f"a campaign may name at most {MAX_DEVICE_IDS} devices", "device_ids")
                await self._save(campaign)
                return campaign
            if campaign.phase is not Phase.ACTIVE:
                raise Conflict(f"campaign is {campaign.phase.value}: devices can be added to a draft or active one")
            existing = await self._existing(tenant, campaign_id, ids)
            if existing:
                raise Conflict(f"device {existing[0]!r} is already in this campaign")
            devices = [await self._s.directory.device(tenant, d) for d in ids]
            await self._add(campaign, devices)
            await self._maybe_complete(campaign)
            return campaign

    async def remove_device(self, tenant: str, campaign_id: str, device_id: str) -> Campaign:
        await self._ensure_loaded()
        async with self._lock(campaign_id):
            campaign = await self.get(tenant, campaign_id)
            if campaign.phase is Phase.DRAFT:
                if campaign.device_ids is None or device_id not in campaign.device_ids:
                    raise NotFound("campaign device", device_id)
                campaign.device_ids = [d for d in campaign.device_ids if d != device_id]
                await self._save(campaign)
                return campaign
            record = await self._record(tenant, campaign_id, device_id)
            if record is None:
                raise NotFound("campaign device", device_id)
            if campaign.phase is not Phase.ACTIVE or record.state is not State.PENDING:
                raise Conflict(
                    f"device is {record.state.value} in a campaign that is {campaign.phase.value}: "
                    "only a pending device of an active campaign can be removed"
                )
            await self._remove(campaign, [device_id])
            await self._maybe_complete(campaign)
            return campaign

    # -- the steps (each called with the campaign's lock held) -------------------------------

    async def _deploy(self, campaign: Campaign) -> Campaign:
        """STARTING -> ACTIVE (or COMPLETED): add every selected device not yet added."""
        devices = await self._selected(campaign)
        known = set(await self._existing(campaign.tenant, campaign.id, [d.id for d in devices]))
        await self._add(campaign, [d for d in devices if d.id not in known])
        campaign.phase = Phase.ACTIVE
        await self._save(campaign)
        await self._maybe_complete(campaign)
        self._request_reconcile(campaign.id)  # results that came in while the campaign was starting
        return campaign

    async def _add(self, campaign: Campaign, devices: list[Device]) -> None:
        for start in range(0, len(devices), BATCH):
            chunk = devices[start : start + BATCH]
            events: list[Event] = []
            for device in chunk:
                events.append(self._event(campaign, device.id, "SYS_108", "added"))
                if firmware_of(device) == campaign.firmware_version:
                    events.append(self._event(campaign, device.id, "SYS_110", "skipped"))
            results = await self._submit(events)
            records: list[Record] = []
            for device in chunk:
                skipped = results.get((device.id, "SYS_110"))
                added = results.get((device.id, "SYS_108"))
                if added is None:  # the device was removed meanwhile
                    continue
                state = State.SKIPPED if skipped is not None else State.PENDING
                last = skipped or added
                records.append(self._record_for(device.id, state, last))
            await self._put_records(campaign, records)

    async def _remove(self, campaign: Campaign, device_ids: list[str]) -> None:
        events = [self._event(campaign, d, "SYS_109", "removed") for d in device_ids]
        results = await self._submit(events)
        records = [
            self._record_for(d, State.REMOVED, results[(d, "SYS_109")]) for d in device_ids if (d, "SYS_109") in results
        ]
        await self._put_records(campaign, records)

    async def _halt(self, campaign: Campaign) -> Campaign:
        """STOPPING -> STOPPED: every pending device gets SYS_103 or SYS_104."""
        pending = [r.device_id for r in await self.records(campaign.tenant, campaign.id) if r.state is State.PENDING]
        started = campaign.started_at or 0
        for start in range(0, len(pending), BATCH):
            chunk = pending[start : start + BATCH]
            seen = await asyncio.gather(*(self._heard_from(campaign.tenant, d, started) for d in chunk))
            codes = {d: "SYS_104" if heard else "SYS_103" for d, heard in zip(chunk, seen, strict=True)}
            results = await self._submit([self._event(campaign, d, code, "stopped") for d, code in codes.items()])
            records = []
            for device_id, code in codes.items():
                result = results.get((device_id, code))
                if result is not None:  # (after a crash, the code stored the first time wins)
                    state = State.STOPPED_MAY_UPDATE if result.type == "SYS_104" else State.STOPPED_NOT_UPDATED
                    records.append(self._record_for(device_id, state, result))
            await self._put_records(campaign, records)
        campaign.phase = Phase.STOPPED
        campaign.finished_at = self._s.clock.now_us()
        await self._save(campaign)
        self._pending.pop(campaign.id, None)
        return campaign

    async def _maybe_complete(self, campaign: Campaign) -> None:
        if campaign.phase is Phase.ACTIVE and not self._pending.get(campaign.id):
            campaign.phase = Phase.COMPLETED
            campaign.finished_at = self._s.clock.now_us()
            await self._save(campaign)
            self._pending.pop(campaign.id, None)

    async def _apply_result(self, campaign: Campaign, device_id: str, result: Event) -> None:
        """A device's update result (UPD...) for an open device of `campaign`."""
        record = await self._record(campaign.tenant, campaign.id, device_id)
        if record is None or record.state not in OPEN:
            return
        ok = RESULT.fullmatch(result.type) is not None and "_OK_" in result.type
        code = "SYS_112" if ok else "SYS_111"
        event = self._event(campaign, device_id, code, "result", cause=result.type)
        stored = (await self._submit([event])).get((device_id, code))
        if stored is None:
            return
        if ok:
            await self._set_firmware(campaign.tenant, device_id, campaign.firmware_version)
        await self._put_records(
            campaign, [self._record_for(device_id, State.SUCCEEDED if ok else State.FAILED, stored, result.type)]
        )
        await self._maybe_complete(campaign)

    # -- events and records ----------------------------------------------------------------

    def _event(self, campaign: Campaign, device_id: str, code: str, step: str, cause: str | None = None) -> Event:
        now = self._s.clock.now_us()
        data: dict[str, Any] = {"campaign_id": campaign.id}
        if cause is not None:
            data["cause"] = cause
        return Event(
            tenant=campaign.tenant,
            project="",
            device=device_id,
            type=code,
            time=now,
            source=SourceKind.SYSTEM,
            data=data,
            idempotency_key=f"pelion-campaign/{campaign.id}/{device_id}/{step}",
        )

    async def _submit(self, events: list[Event]) -> dict[tuple[str, str], Event]:
        """Stored (or already stored) events by (device, code). Refused ones are left out."""
        if not events:
            return {}
        results = await self._s.ingest.submit_many(None, list(events), face="pelion")
        out: dict[tuple[str, str], Event] = {}
        for event, result in zip(events, results, strict=True):
            if isinstance(result, AppendResult):
                out[(event.device or "", event.type)] = result.event
            else:
                log.info("campaign event %s for %s refused: %s", event.type, event.device, result)
        return out

    def _record_for(self, device_id: str, state: State, event: Event, cause: str | None = None) -> Record:
        return Record(
            device_id=device_id,
            state=state,
            code=event.type,
            event_id=event.id,
            cause=cause,
            updated_at=self._s.clock.now_us(),
        )

    async def _put_records(self, campaign: Campaign, records: list[Record]) -> None:
        await asyncio.gather(
            *(
                self._docs.put(
                    campaign.tenant, DEVICE_KIND, _device_doc_id(campaign.id, r.device_id), msgspec.to_builtins(r)
                )
                for r in records
            )
        )
        for record in records:
            self._track(campaign, record)

    async def _record(self, tenant: str, campaign_id: str, device_id: str) -> Record | None:
        doc = await self._docs.get(tenant, DEVICE_KIND, _device_doc_id(campaign_id, device_id))
        return msgspec.convert(doc, Record) if doc is not None else None

    async def _existing(self, tenant: str, campaign_id: str, device_ids: list[str]) -> list[str]:
        found = await asyncio.gather(*(self._record(tenant, campaign_id, d) for d in device_ids))
        return [d for d, r in zip(device_ids, found, strict=True) if r is not None]

    async def _save(self, campaign: Campaign) -> None:
        campaign.updated_at = self._s.clock.now_us()
        await self._docs.put(campaign.tenant, CAMPAIGN_KIND, campaign.id, msgspec.to_builtins(campaign))

    async def _selected(self, campaign: Campaign) -> list[Device]:
        registry = self._s.directory.registry
        if campaign.device_ids is not None:
            found = await asyncio.gather(*(registry.get_device(campaign.tenant, d) for d in campaign.device_ids))
            return [d for d in found if d is not None]  # a device deleted since the campaign was made
        labels = tuple((k, v) for k, v in (campaign.device_labels or {}).items())
        out: list[Device] = []
        after: str | None = None
        while True:
            page = await registry.list_devices(campaign.tenant, labels=labels, after=after, limit=1000)
            out += page
            if len(page) < 1000:
                return out
            after = page[-1].id

    async def _check_devices(self, tenant: str, ids: list[str], field: str) -> None:
        registry = self._s.directory.registry
        found = await asyncio.gather(*(registry.get_device(tenant, d) for d in ids))
        for index, (device_id, device) in enumerate(zip(ids, found, strict=True)):
            if device is None:
                raise InvalidInput(f"no device {device_id!r} in this tenant", f"{field}[{index}]")

    async def _heard_from(self, tenant: str, device_id: str, since: int) -> bool:
        """Whether the device itself reported anything received at or after `since`."""
        try:
            latest = await self._s.store.latest_by_type(tenant, device_id)
        except FleetlogError:
            return False
        return any(e.source is SourceKind.DEVICE and e.received >= since for e in latest.values())

    async def _set_firmware(self, tenant: str, device_id: str, version: str) -> None:
        """Record the version the device now runs (a later campaign to it is then skipped)."""
        directory = self._s.directory
        try:
            device = await directory.device(tenant, device_id)
            if device.attrs.get(FIRMWARE_ATTR) != version:
                updated = msgspec.structs.replace(device, attrs={**device.attrs, FIRMWARE_ATTR: version})
                await directory.update_device(updated)
        except FleetlogError as exc:  # deleted meanwhile: its outcome is still recorded
            log.info("firmware version of %s not recorded: %s", device_id, exc)

    def _lock(self, campaign_id: str) -> asyncio.Lock:
        lock = self._locks.get(campaign_id)
        if lock is None:
            lock = self._locks[campaign_id] = asyncio.Lock()
        return lock

    # -- the in-memory index of open devices ---------------------------------------------------

    def _track(self, campaign: Campaign, record: Record) -> None:
        key = (campaign.tenant, record.device_id)
        pending = self._pending.setdefault(campaign.id, set())
        if record.state in OPEN:
            self._open.setdefault(key, set()).add(campaign.id)
            self._started[campaign.id] = campaign.started_at or 0
        else:
            campaigns = self._open.get(key)
            if campaigns is not None:
                campaigns.discard(campaign.id)
                if not campaigns:
                    del self._open[key]
        if record.state is State.PENDING:
            pending.add(record.device_id)
        else:
            pending.discard(record.device_id)

    def is_open(self, event: Event) -> bool:
        """The bus match: a device's update result while it is in an open campaign. Cheap."""
        return (
            event.device is not None
            and event.type.startswith("UPD")
            and (event.tenant, event.device) in self._open
            and RESULT.fullmatch(event.type) is not None
        )

    async def _ensure_loaded(self) -> None:
        """Build the index from the documents; finish steps a crash cut short."""
        async with self._load_lock:
            if self._loaded:
                return
            unfinished: list[Campaign] = []
            after: str | None = None
            while True:
                rows = await self._docs.list(None, CAMPAIGN_KIND, after=after, limit=1000)
                for _, _, doc in rows:
                    campaign = msgspec.convert(doc, Campaign)
                    if campaign.phase in (Phase.STARTING, Phase.STOPPING):
                        unfinished.append(campaign)
                    if campaign.phase in (Phase.DRAFT, Phase.COMPLETED):
                        continue
                    self._pending.setdefault(campaign.id, set())
                    for record in await self.records(campaign.tenant, campaign.id):
                        self._track(campaign, record)
                if len(rows) < 1000:
                    break
                after = rows[-1][1]
            self._loaded = True
        for campaign in unfinished:
            async with self._lock(campaign.id):
                current = await self.get(campaign.tenant, campaign.id)
                if current.phase is Phase.STARTING:
                    await self._deploy(current)
                elif current.phase is Phase.STOPPING:
                    await self._halt(current)

    # -- following results -------------------------------------------------------------------

    async def on_result(self, event: Event) -> None:
        """A device's update result: apply it to the campaign it belongs to."""
        assert event.device is not None
        candidates = self._open.get((event.tenant, event.device), set())
        named = event.data.get("campaign_id")
        if isinstance(named, str) and named in candidates:
            chosen = named
        else:
            live = [c for c in candidates if self._started.get(c, 0) <= event.received]
            if not live:
                return
            chosen = max(live, key=lambda c: self._started.get(c, 0))
        async with self._lock(chosen):
            campaign = await self.get(event.tenant, chosen)
            if event.received < (campaign.started_at or 0):
                return  # reported before the campaign started: not its result
            await self._apply_result(campaign, event.device, event)

    async def reconcile(self, only: set[str] | None = None) -> None:
        """Apply results the bus did not deliver: read each open device's recent UPD events
        (of every open campaign, or of the campaigns in `only`)."""
        self.reconciled += 1
        for (tenant, device_id), campaigns in list(self._open.items()):
            chosen = campaigns if only is None else campaigns & only
            for campaign_id in sorted(chosen, key=lambda c: self._started.get(c, 0)):
                started = self._started.get(campaign_id, 0)
                for event in await self._results_since(tenant, device_id, started):
                    if event.data.get("campaign_id") not in (None, campaign_id):
                        continue
                    async with self._lock(campaign_id):
                        campaign = await self.get(tenant, campaign_id)
                        await self._apply_result(campaign, device_id, event)
                    break

    async def _results_since(self, tenant: str, device_id: str, started: int) -> list[Event]:
        types = tuple(t.name for t in self._s.catalog.family("pelion") if RESULT.fullmatch(t.name))
        query = EventQuery(
            tenant=tenant,
            devices=(device_id,),
            types=types,
            since=started - CLOCK_SLACK_US,
            order=Order.OLDEST,
            limit=100,
        )
        page = await self._s.store.query(query)
        return sorted((e for e in page.events if e.received >= started), key=lambda e: (e.received, e.id))

    def _request_reconcile(self, campaign_id: str) -> None:
        self._to_reconcile.add(campaign_id)
        self._wake.set()

    async def on_device_change(self, change: DeviceChange) -> None:
        """A device deregistered during a campaign is removed from it (SYS_109)."""
        if change.after is not None or change.before is None:
            return
        device = change.before
        await self._ensure_loaded()
        for campaign_id in list(self._open.get((device.tenant, device.id), set())):
            async with self._lock(campaign_id):
                campaign = await self.get(device.tenant, campaign_id)
                record = await self._record(device.tenant, campaign_id, device.id)
                if record is None or record.state not in OPEN:
                    continue
                await self._remove(campaign, [device.id])
                await self._maybe_complete(campaign)

    async def run(self) -> None:
        """Background work: follow results on the bus; reconcile when it dropped some."""
        await self._ensure_loaded()
        sub = self._s.bus.subscribe(self.is_open, capacity=QUEUE)
        try:
            await self.reconcile()  # results that arrived while fleetlog was down
            dropped = 0
            while True:
                getter = asyncio.ensure_future(sub.get())
                waker = asyncio.ensure_future(self._wake.wait())
                done, _ = await asyncio.wait({getter, waker}, return_when=asyncio.FIRST_COMPLETED)
                if getter not in done:
                    getter.cancel()
                    await asyncio.gather(getter, return_exceptions=True)
                else:
                    waker.cancel()
                    await asyncio.gather(waker, return_exceptions=True)
                if self._wake.is_set():
                    self._wake.clear()
                if getter in done and not getter.cancelled():
                    event = getter.result()
                    try:
                        await self.on_result(event)
                    except FleetlogError as exc:
                        log.warning("update result %s of %s not applied: %s", event.type, event.device, exc)
                if sub.dropped != dropped:
                    dropped = sub.dropped
                    self.refills += 1
                    self._to_reconcile.clear()
                    while sub.get_nowait() is not None:
                        pass  # the store has them all: reconcile reads them from there
                    await self.reconcile()
                elif self._to_reconcile:
                    only, self._to_reconcile = self._to_reconcile, set()
                    await self.reconcile(only)
        finally:
            sub.close()


def campaign_out(campaign: Campaign, counts: dict[str, int] | None = None) -> dict[str, Any]:
    def when(us: int | None) -> str | None:
        return rfc3339(us) if us is not None else None

    out: dict[str, Any] = {
        "id": campaign.id,
        "name": campaign.name,
        "description": campaign.description,
        "firmware_version": campaign.firmware_version,
        "device_ids": campaign.device_ids,
        "device_labels": campaign.device_labels,
        "phase": campaign.phase.value,
        "created_at": when(campaign.created_at),
        "updated_at": when(campaign.updated_at),
        "started_at": when(campaign.started_at),
        "finished_at": when(campaign.finished_at),
    }
    if counts is not None:
        out["devices"] = counts
    return out


def record_out(record: Record, titles: dict[str, tuple[str, str]]) -> dict[str, Any]:
    message, message_type = titles.get(record.code, ("", "INFO"))
    return {
        "device_id": record.device_id,
        "state": record.state.value,
        "event_type": record.code,
        "message_type": message_type,
        "message": message,
        "cause": record.cause,
        "event_id": record.event_id,
        "updated_at": rfc3339(record.updated_at),
    }


def titles(types: Iterable[Any]) -> dict[str, tuple[str, str]]:
    """code -> (portal text, message type), for rendering device records."""
    return {t.name: (t.title, t.outcome.value) for t in types}
