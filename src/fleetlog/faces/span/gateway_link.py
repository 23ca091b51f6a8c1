"""The gateway endpoint: WebSocket /span/collections/{cid}/gateways/{gid}/connect.

A gateway (a LoRa, Thread or cellular concentrator in front of devices) connects here with a
key that may write to the collection. The protocol is JSON text frames:

server -> gateway
    {"type": "config", "gatewayId", "config": {...}}          on connect and on every change
    {"type": "devices", "gatewayId", "devices": [{"deviceId", "params"}]}
                                                               its devices: on connect and on change
    {"type": "downstream", "deviceId", "messageId", "payload"} a message for one of its devices
    {"type": "error", "message"}                               a frame it sent was refused
gateway -> server
    {"type": "upstream", "deviceId", "payload"}                a message from one of its devices

Activity: gatewayConnected and gatewayDisconnected (a clean close), gatewayConfigUpdate and
gatewayDeviceUpdate when it is sent configuration or its device list, gatewayUpstreamMessage and
gatewayDownstreamMessage for relayed messages, gatewayCommError for a frame it cannot have meant
(not JSON, unknown type, a device that is not its own), for a gateway that stops reading, and for
a connection that ends abruptly (no close frame), followed then by gatewayDisconnected.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any

import msgspec
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket

from fleetlog.core.errors import FleetlogError, InvalidInput, NotFound
from fleetlog.core.event import SourceKind
from fleetlog.core.registry import Device, DeviceChange, Role
from fleetlog.faces.span import access
from fleetlog.faces.span.model import GATEWAY, gateway_config, unb64
from fleetlog.faces.span.runtime import SpanRuntime, Uplink, span_event
from fleetlog.faces.span.sockets import accept, open_session, refuse

log = logging.getLogger(__name__)
_json = msgspec.json.Encoder()
SEND_QUEUE = 1000
CLEAN_CLOSE = (1000, 1001, 4000)  # 4000: replaced by a new connection of the same gateway


class UpstreamFrame(msgspec.Struct, forbid_unknown_fields=True):
    type: str
    deviceId: str
    payload: str


@dataclass
class GatewayLink:
    tenant: str
    collection: str
    gateway: str
    ws: WebSocket
    queue: asyncio.Queue[str] = field(default_factory=lambda: asyncio.Queue(SEND_QUEUE))
    stalled: bool = False

    def send(self, frame: dict[str, Any]) -> bool:
        """Queue a frame; False if the gateway has stopped reading (its queue is full)."""
        try:
            self.queue.put_nowait(_json.encode(frame).decode())
            return True
        except asyncio.QueueFull:
            self.stalled = True
            return False

    async def writer(self) -> None:
        while True:
            await self.ws.send_text(await self.queue.get())


class GatewayHub:
    def __init__(self, rt: SpanRuntime) -> None:
        self.rt = rt
        self.links: dict[tuple[str, str], GatewayLink] = {}
        self._closing: set[asyncio.Future[None]] = set()

    def online(self, tenant: str, gateway: str) -> bool:
        return (tenant, gateway) in self.links

    async def event(
        self, link: GatewayLink, type_: str, data: dict[str, str] | None = None, device: str | None = None
    ) -> None:
        now = self.rt.services.clock.now_us()
        await self.rt.emit(
            [
                span_event(
                    link.tenant,
                    type_,
                    {"gatewayId": link.gateway, **(data or {})},
                    now,
                    device=device,
                    project="" if device else link.collection,
                    gateway=link.gateway,
                    source=SourceKind.GATEWAY,
                )
            ]
        )

    async def _checked_send(self, link: GatewayLink, frame: dict[str, Any]) -> bool:
        if link.send(frame):
            return True
        await self.event(link, "gatewayCommError", {"error": "the gateway is not reading; closing"})
        with contextlib.suppress(Exception):
            await link.ws.close(1011, reason="not reading")
        return False

    async def send_config(self, link: GatewayLink, doc: dict[str, Any]) -> None:
        if await self._checked_send(
            link, {"type": "config", "gatewayId": link.gateway, "config": doc.get("config", {})}
        ):
            await self.event(link, "gatewayConfigUpdate")

    async def send_devices(self, link: GatewayLink) -> None:
        devices: list[dict[str, Any]] = []
        after: str | None = None
        while True:
            page = await self.rt.services.directory.registry.list_devices(link.tenant, link.collection, after=after)
            for device in page:
                entry = gateway_config(device).get(link.gateway)
                if entry is not None:
                    devices.append({"deviceId": device.id, "params": entry.get("params", {})})
            if len(page) < 1000:
                break
            after = page[-1].id
        if await self._checked_send(link, {"type": "devices", "gatewayId": link.gateway, "devices": devices}):
            await self.event(link, "gatewayDeviceUpdate", {"devices": str(len(devices))})

    async def config_changed(self, tenant: str, gateway: str, doc: dict[str, Any]) -> None:
        link = self.links.get((tenant, gateway))
        if link is not None:
            await self.send_config(link, doc)

    async def on_device_change(self, change: DeviceChange) -> None:
        gids = set()
        for device in (change.before, change.after):
            if device is not None:
                gids |= {(device.tenant, gid) for gid in gateway_config(device)}
        before = change.before and gateway_config(change.before)
        after = change.after and gateway_config(change.after)
        if before == after and change.before and change.after and change.before.project == change.after.project:
            return
        for key in gids:
            link = self.links.get(key)
            if link is not None:
                await self.send_devices(link)

    async def deliver_pending(self, device: Device) -> list[dict[str, Any]]:
        """Send the device's waiting messages through a connected gateway of its own."""
        for gid in gateway_config(device):
            link = self.links.get((device.tenant, gid))
            if link is None or link.collection != device.project:
                continue
            sent = await self.rt.outbox.take(device.tenant, device.id, "gateway", gid)
            for message in sent:
                frame = {
                    "type": "downstream",
                    "deviceId": device.id,
                    "messageId": message["messageId"],
                    "payload": message["payload"],
                }
                if not await self._checked_send(link, frame):
                    break
                size = len(unb64(message["payload"]))
                await self.event(
                    link,
                    "gatewayDownstreamMessage",
                    {"bytes": str(size), "messageId": message["messageId"]},
                    device=device.id,
                )
            return sent
        return []

    async def relay_up(self, link: GatewayLink, raw: str) -> None:
        try:
            frame = msgspec.json.decode(raw, type=UpstreamFrame)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            raise InvalidInput(f"not an upstream frame: {exc}") from None
        if frame.type != "upstream":
            raise InvalidInput(f"unknown frame type {frame.type!r}", "type")
        try:
            device = await self.rt.services.directory.device(link.tenant, frame.deviceId)
        except NotFound:
            raise InvalidInput(f"no device {frame.deviceId!r}", "deviceId") from None
        if device.project != link.collection or link.gateway not in gateway_config(device):
            raise InvalidInput(f"device {frame.deviceId!r} is not configured for this gateway", "deviceId")
        payload = unb64(frame.payload)
        await self.rt.uplink([Uplink(link.tenant, device, payload, "gateway", "gateway", gateway=link.gateway)])

    async def serve(self, link: GatewayLink, doc: dict[str, Any]) -> None:
        key = (link.tenant, link.gateway)
        old = self.links.get(key)
        if old is not None:
            with contextlib.suppress(Exception):
                await old.ws.close(4000, reason="replaced by a new connection")
        self.links[key] = link
        writer = asyncio.ensure_future(link.writer())
        code = 1006
        try:
            await self.event(link, "gatewayConnected")
            await self.send_config(link, doc)
            await self.send_devices(link)
            await self._deliver_all(link)
            while True:
                message = await link.ws.receive()
                if message["type"] == "websocket.disconnect":
                    code = int(message.get("code") or 1006)
                    break
                text = message.get("text")
                try:
                    if text is None:
                        raise InvalidInput("binary frames are not part of the protocol; send JSON text")
                    await self.relay_up(link, text)
                except FleetlogError as exc:
                    await self.event(link, "gatewayCommError", {"error": str(exc)})
                    await self._checked_send(link, {"type": "error", "message": str(exc)})
        except Exception as exc:  # the connection broke under us
            log.info("gateway %s connection failed: %r", link.gateway, exc)
        finally:
            writer.cancel()
            if self.links.get(key) is link:
                del self.links[key]
            # A task of its own: logged even when this handler is being cancelled.
            goodbye = asyncio.ensure_future(self._goodbye(link, code))
            self._closing.add(goodbye)
            goodbye.add_done_callback(self._closing.discard)

    async def _goodbye(self, link: GatewayLink, code: int) -> None:
        try:
            if code not in CLEAN_CLOSE:
                await self.event(link, "gatewayCommError", {"error": f"connection lost (close code {code})"})
            await self.event(link, "gatewayDisconnected")
        except Exception:
            log.exception("could not log the end of gateway %s's connection", link.gateway)

    async def _deliver_all(self, link: GatewayLink) -> None:
        after: str | None = None
        while True:
            page = await self.rt.services.directory.registry.list_devices(link.tenant, link.collection, after=after)
            for device in page:
                if link.gateway in gateway_config(device):
                    await self.deliver_pending(device)
            if len(page) < 1000:
                return
            after = page[-1].id


def routes(rt: SpanRuntime, hub: GatewayHub) -> list[WebSocketRoute]:
    services = rt.services

    async def connect(ws: WebSocket) -> None:
        session = await open_session(ws, services.directory)
        if session is None:
            return
        cid, gid = ws.path_params["cid"], ws.path_params["gid"]
        try:
            await access.collection(services.directory, session.caller, cid, Role.WRITE)
            doc = await services.documents.get(session.caller.tenant, GATEWAY, gid)
            if not isinstance(doc, dict) or doc.get("collectionId") != cid:
                raise NotFound("gateway", gid)
            if doc.get("enabled") is False:
                raise InvalidInput("the gateway is disabled", "enabled")
        except FleetlogError as exc:
            await refuse(ws, exc)
            return
        await accept(ws)
        await hub.serve(GatewayLink(session.caller.tenant, cid, gid, ws), doc)

    return [WebSocketRoute("/span/collections/{cid}/gateways/{gid}/connect", connect)]
