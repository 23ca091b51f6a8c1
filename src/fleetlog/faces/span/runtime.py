"""The Span face's shared state and its one upstream path.

Every transport (UDP, MQTT, HTTP, gateways) hands device messages to `SpanRuntime.uplink`,
which turns them into canonical events (clientConnected for a new session, then
upstreamMessage or gatewayUpstreamMessage), submits them through the ingest pipeline (stored
before anything is acknowledged), and returns the downstream messages that were waiting for
those devices. Activity events are canonical events like any other, so they are stored and
queryable; the activity WebSocket shows them from the bus.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fleetlog.core.errors import FleetlogError
from fleetlog.core.event import Event, SourceKind
from fleetlog.core.registry import Device, DeviceChange
from fleetlog.faces.span.ciot import Ciot
from fleetlog.faces.span.model import b64, enabled, unb64
from fleetlog.faces.span.outbox import Outbox
from fleetlog.faces.span.sessions import Sessions
from fleetlog.pipeline.services import Services
from fleetlog.ports.store import AppendResult, Dedupe

if TYPE_CHECKING:
    from fleetlog.faces.span.gateway_link import GatewayHub

log = logging.getLogger(__name__)
FACE = "span"


@dataclass
class Uplink:
    """One message from a device."""

    tenant: str
    device: Device
    payload: bytes
    transport: str  # udp, mqtt, unspecified (HTTP), gateway
    ident: str  # how the device was identified (clientConnected `id`)
    extra: dict[str, str] = field(default_factory=dict)
    gateway: str | None = None
    key: str | None = None  # idempotency key (MQTT redeliveries)


@dataclass
class Downlink:
    """A downstream message to hand to the transport that carried `uplink`."""

    index: int  # position of the uplink in the batch
    message: dict[str, Any]
    payload: bytes


@dataclass
class TransportStatus:
    name: str
    state: str = "off"
    detail: str = ""
    received: int = 0
    stored: int = 0
    refused: int = 0

    def json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "state": self.state,
            "detail": self.detail,
            "received": self.received,
            "stored": self.stored,
            "refused": self.refused,
        }


def span_event(
    tenant: str,
    type_: str,
    data: dict[str, str],
    now: int,
    *,
    device: str | None = None,
    project: str = "",
    gateway: str | None = None,
    source: SourceKind = SourceKind.DEVICE,
    key: str | None = None,
) -> Event:
    """A canonical event of one of the Span activity types. With a device, the project is left
    empty so the pipeline fills in the device's current collection."""
    return Event(
        tenant=tenant,
        project=project,
        type=type_,
        time=now,
        data=data,
        device=device,
        gateway=gateway,
        source=source,
        idempotency_key=key,
    )


class SpanRuntime:
    def __init__(self, services: Services) -> None:
        self.services = services
        config = services.config
        self.sessions = Sessions(int(config.span_idle_timeout_seconds * 1_000_000))
        self.outbox = Outbox(services.documents, services.clock)
        self.ciot = Ciot(services.directory, services.documents)
        self.gateways: GatewayHub | None = None
        self.transports: dict[str, TransportStatus] = {}
        services.directory.on_device_change(self._on_device_change)

    def status(self, name: str) -> TransportStatus:
        found = self.transports.get(name)
        if found is None:
            found = self.transports[name] = TransportStatus(name)
        return found

    async def emit(self, events: Sequence[Event], dedupe: Dedupe = Dedupe.KEY) -> list[AppendResult | FleetlogError]:
        """Submit events (trusted: the face has already checked the caller)."""
        if not events:
            return []
        return await self.services.ingest.submit_many(None, list(events), dedupe, face=FACE)

    async def uplink(self, items: Sequence[Uplink]) -> tuple[list[bool], list[Downlink]]:
        """Store a batch of device messages. Returns, per item, whether it was stored (or was
        already: a redelivery), and the downstream messages now due to those devices."""
        now = self.services.clock.now_us()
        events: list[Event] = []
        slots: list[int] = []  # index into `items` of each upstream event
        for i, item in enumerate(items):
            if item.device.attrs and not enabled(item.device):
                continue
            if item.transport != "gateway" and self.sessions.touch(item.tenant, item.device.id, now):
                events.append(
                    span_event(item.tenant, "clientConnected", {"id": item.ident}, now, device=item.device.id)
                )
                slots.append(-1)
            data = {
                "bytes": str(len(item.payload)),
                "transport": item.transport,
                **item.extra,
                "payload": b64(item.payload),
            }
            if item.gateway:
                data["gatewayId"] = item.gateway
            events.append(
                span_event(
                    item.tenant,
                    "gatewayUpstreamMessage" if item.transport == "gateway" else "upstreamMessage",
                    data,
                    now,
                    device=item.device.id,
                    gateway=item.gateway,
                    source=SourceKind.GATEWAY if item.gateway else SourceKind.DEVICE,
                    key=item.key,
                )
            )
            slots.append(i)
        stored = [False] * len(items)
        for slot, result in zip(slots, await self.emit(events), strict=True):
            if slot >= 0 and not isinstance(result, FleetlogError):
                stored[slot] = True
        return stored, await self._downlinks(items, stored)

    async def _downlinks(self, items: Sequence[Uplink], stored: list[bool]) -> list[Downlink]:
        out: list[Downlink] = []
        events: list[Event] = []
        now = self.services.clock.now_us()
        pending = await self.outbox.pending_devices()
        for i, item in enumerate(items):
            if not pending:
                break
            if not stored[i] or item.transport == "gateway" or (item.tenant, item.device.id) not in pending:
                continue
            for message in await self.outbox.take(item.tenant, item.device.id, item.transport):
                payload = unb64(message["payload"])
                out.append(Downlink(i, message, payload))
                events.append(
                    span_event(
                        item.tenant,
                        "downstreamMessage",
                        {"bytes": str(len(payload)), "transport": item.transport, "messageId": message["messageId"]},
                        now,
                        device=item.device.id,
                    )
                )
        await self.emit(events)
        return out

    async def sweep(self) -> None:
        """End idle sessions (clientDisconnected)."""
        now = self.services.clock.now_us()
        gone = self.sessions.expired(now)
        events = [span_event(tenant, "clientDisconnected", {}, now, device=device) for tenant, device in gone]
        await self.emit(events)  # a device removed meanwhile is refused by the pipeline: fine

    async def sweeper(self) -> None:
        interval = max(0.05, min(5.0, self.services.config.span_idle_timeout_seconds / 4))
        while True:
            await asyncio.sleep(interval)
            try:
                await self.sweep()
            except Exception:  # keep sweeping; the next round retries
                log.exception("span session sweep failed")

    async def _on_device_change(self, change: DeviceChange) -> None:
        await self.ciot.on_change(change)
        if change.after is None and change.before is not None:
            self.sessions.forget(change.before.tenant, change.before.id)
        if self.gateways is not None:
            await self.gateways.on_device_change(change)
