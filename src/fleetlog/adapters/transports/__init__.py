"""Device transports: UDP datagrams and MQTT through a broker, feeding the pipeline.

The transports know sockets and brokers, not devices: they hand batches of raw messages to a
`DeviceSink` (the Span face provides one) and send back what it answers. The bootstrap wires
them with `device_transports(config, sink)`; a transport that is configured off is not started,
and one that fails (a broker that cannot be reached, a port in use) reports its state to the
sink and retries without stopping the others.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from fleetlog.config import Config

Address = tuple[str, int]
Background = Callable[[], Coroutine[Any, Any, None]]


class DeviceSink(Protocol):
    async def udp_datagrams(
        self, datagrams: list[tuple[bytes, Address]], local_port: int
    ) -> list[tuple[bytes, Address]]:
        """Store a batch of datagrams; returns the datagrams to send back (downstream)."""
        ...

    def mqtt_subscriptions(self) -> list[str]:
        """Topic filters to subscribe to (QoS 1)."""
        ...

    async def mqtt_messages(self, messages: list[tuple[str, bytes, str]]) -> list[tuple[str, bytes]]:
        """Store a batch of (topic, payload, idempotency key). Returns (topic, payload) to
        publish. Returning means every message is durably handled (stored or refused for good),
        so the transport may acknowledge them; raising means none may be."""
        ...

    def transport_status(self, name: str, state: str, detail: str) -> None:
        """`state`: starting, listening, connected, unreachable, failed."""
        ...


def device_transports(config: Config, sink: DeviceSink) -> list[Background]:
    from fleetlog.adapters.transports.mqtt import MqttTransport
    from fleetlog.adapters.transports.udp import UdpTransport

    work: list[Background] = []
    if config.span_udp_port:
        work.append(UdpTransport(config.span_udp_host, config.span_udp_port, sink).run)
    if config.span_mqtt_url:
        journal = config.data_dir / f"mqtt-{config.span_mqtt_client_id}.journal"
        work.append(MqttTransport(config.span_mqtt_url, config.span_mqtt_client_id, journal, sink).run)
    return work
