"""What the device transports (adapters/transports) hand to the Span face, and what they get back.

UDP: a datagram belongs to the device that the network allocated its source IP to (see
ciot.py); datagrams from other addresses are dropped and counted, as the vendor drops them.
Downstream messages waiting for the device go back to the sender's address and port.

MQTT topics (prefix `span` by default):
    {prefix}/{tenantId}/{collectionId}/{deviceId}/up     a device publishes upstream data (QoS 1)
    {prefix}/{tenantId}/{collectionId}/{deviceId}/down   fleetlog publishes downstream messages
The broker authenticates devices; its ACL must let each device publish only on its own topic.
A message on a topic that names no such device is acknowledged and dropped (counted): the
broker would otherwise redeliver it forever.
"""

from __future__ import annotations

import logging

from fleetlog.core.errors import NotFound
from fleetlog.core.registry import Device
from fleetlog.faces.span.runtime import SpanRuntime, Uplink

log = logging.getLogger(__name__)
Address = tuple[str, int]


class SpanDeviceSink:
    def __init__(self, runtime: SpanRuntime) -> None:
        self.runtime = runtime
        self.prefix = runtime.services.config.span_mqtt_topic_prefix.strip("/")

    def transport_status(self, name: str, state: str, detail: str) -> None:
        status = self.runtime.status(name)
        status.state, status.detail = state, detail

    async def _device(self, tenant: str, device_id: str) -> Device | None:
        try:
            return await self.runtime.services.directory.device(tenant, device_id)
        except NotFound:
            return None

    async def udp_datagrams(
        self, datagrams: list[tuple[bytes, Address]], local_port: int
    ) -> list[tuple[bytes, Address]]:
        status = self.runtime.status("udp")
        status.received += len(datagrams)
        items: list[Uplink] = []
        addrs: list[Address] = []
        ciot = self.runtime.ciot
        owners: dict[str, tuple[str, Device] | None] = {}  # per batch: a device sends many
        local = str(local_port)
        for payload, (ip, port) in datagrams:
            if ip in owners:
                owner = owners[ip]
            else:
                found = await ciot.resolve(ip)
                device = await self._device(*found) if found else None
                owner = owners[ip] = (found[0], device) if found and device else None
            if owner is None:
                status.refused += 1
                continue
            extra = {"remoteAddress": f"{ip}:{port}", "localPort": local}
            items.append(Uplink(owner[0], owner[1], payload, "udp", "imsi", extra))
            addrs.append((ip, port))
        stored, downlinks = await self.runtime.uplink(items)
        status.stored += sum(stored)
        status.refused += len(stored) - sum(stored)
        return [(d.payload, addrs[d.index]) for d in downlinks]

    def mqtt_subscriptions(self) -> list[str]:
        return [f"{self.prefix}/+/+/+/up"]

    def _parse(self, topic: str) -> tuple[str, str, str] | None:
        parts = topic.split("/")
        prefix = self.prefix.split("/")
        if len(parts) != len(prefix) + 4 or parts[: len(prefix)] != prefix or parts[-1] != "up":
            return None
        tenant, collection, device = parts[len(prefix) : len(prefix) + 3]
        return tenant, collection, device

    async def mqtt_messages(self, messages: list[tuple[str, bytes, str]]) -> list[tuple[str, bytes]]:
        status = self.runtime.status("mqtt")
        status.received += len(messages)
        items: list[Uplink] = []
        topics: list[str] = []
        devices: dict[str, Device | None] = {}  # per batch: a device sends many
        for topic, payload, key in messages:
            if topic not in devices:
                where = self._parse(topic)
                device = await self._device(where[0], where[2]) if where else None
                devices[topic] = device if where and device and device.project == where[1] else None
            device = devices[topic]
            if device is None:
                status.refused += 1
                continue
            items.append(Uplink(device.tenant, device, payload, "mqtt", "topic", {"topic": topic}, key=key or None))
            topics.append(topic[: -len("up")] + "down")
        stored, downlinks = await self.runtime.uplink(items)
        status.stored += sum(stored)
        status.refused += len(stored) - sum(stored)
        return [(topics[d.index], d.payload) for d in downlinks]
