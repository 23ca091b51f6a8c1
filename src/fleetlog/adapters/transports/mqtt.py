"""MQTT device transport: a persistent QoS 1 subscription, acknowledged only after commit.

- A fixed client id with a persistent session (MQTT 5, clean start off, session kept by the
  broker while fleetlog is away), so the broker keeps messages for fleetlog while it is down.
- Manual acknowledgement: a PUBACK is sent only after the sink has stored the message, so a crash
  loses nothing; `AckJournal` makes the redelivery after such a crash a duplicate, not a second
  event.
- Messages that wait in the client's queue while a batch is being stored form the next batch.
- aiomqtt has no reconnect of its own: a loop reconnects with back-off, reporting the broker as
  unreachable meanwhile; the other transports and the HTTP API keep running.

aiomqtt 2.5 has no public manual-ack API yet (empicano/aiomqtt#345); the paho client it wraps
has one (`manual_ack_set`, `ack`), used here as that issue suggests.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import aiomqtt
import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from fleetlog.adapters.transports import DeviceSink
from fleetlog.adapters.transports.mqtt_journal import AckJournal

log = logging.getLogger(__name__)
NAME = "mqtt"
SESSION_EXPIRY_SECONDS = 7 * 24 * 3600


def parse_url(url: str) -> tuple[str, int, str | None, str | None]:
    parts = urlsplit(url if "://" in url else f"mqtt://{url}")
    if parts.scheme not in ("mqtt", "tcp"):
        raise ValueError(f"unsupported MQTT URL scheme {parts.scheme!r} (use mqtt://host:port)")
    if not parts.hostname:
        raise ValueError(f"MQTT URL without a host: {url!r}")
    user = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else None
    return parts.hostname, parts.port or 1883, user, password


class MqttTransport:
    def __init__(
        self,
        url: str,
        client_id: str,
        journal: Path,
        sink: DeviceSink,
        batch: int = 2000,
        receive_maximum: int = 1000,
        max_backoff: float = 30.0,
    ) -> None:
        self.url = url
        self.client_id = client_id
        self.journal = AckJournal(journal)
        self.sink = sink
        self.batch = batch
        self.receive_maximum = receive_maximum
        self.max_backoff = max_backoff
        self.acked = 0

    async def run(self) -> None:
        try:
            host, port, user, password = parse_url(self.url)
        except ValueError as exc:
            self.sink.transport_status(NAME, "failed", str(exc))
            log.error("span mqtt transport not started: %s", exc)
            return
        self.journal.open()
        backoff = 1.0
        where = f"{host}:{port}"
        while True:
            self.sink.transport_status(NAME, "connecting", where)
            try:
                client = self._client(host, port, user, password)
                async with client:
                    for topic in self.sink.mqtt_subscriptions():
                        await client.subscribe(topic, qos=1)
                    self.sink.transport_status(NAME, "connected", where)
                    log.info("span mqtt transport connected to %s as %s", where, self.client_id)
                    backoff = 0.5
                    await self._consume(client)
            except aiomqtt.MqttError as exc:
                message = f"broker {where} unreachable or lost: {exc}; retrying in {backoff:g}s"
                log.warning("span mqtt transport: %s", message)
                self.sink.transport_status(NAME, "unreachable", message)
            except Exception as exc:  # storing failed: nothing was acknowledged; reconnect, get it again
                message = f"storing messages failed: {exc!r}; reconnecting in {backoff:g}s"
                log.exception("span mqtt transport: %s", message)
                self.sink.transport_status(NAME, "failed", message)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.max_backoff)

    def _client(self, host: str, port: int, user: str | None, password: str | None) -> aiomqtt.Client:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = SESSION_EXPIRY_SECONDS
        props.ReceiveMaximum = self.receive_maximum  # how many unacknowledged messages the broker may send
        client = aiomqtt.Client(
            host,
            port,
            username=user,
            password=password,
            identifier=self.client_id,
            protocol=aiomqtt.ProtocolVersion.V5,
            clean_start=False,
            properties=props,
            keepalive=30,
        )
        inner: paho.Client = client._client
        inner.manual_ack_set(True)
        wrapped: Any = inner.on_connect

        def on_connect(c: paho.Client, userdata: Any, flags: paho.ConnectFlags, *rest: Any) -> None:
            if not flags.session_present:
                self.journal.new_session()  # a fresh session redelivers nothing
            wrapped(c, userdata, flags, *rest)

        inner.on_connect = on_connect
        return client

    async def _consume(self, client: aiomqtt.Client) -> None:
        messages = client.messages
        queue: asyncio.Queue[aiomqtt.Message] = client._queue
        inner: paho.Client = client._client
        while True:
            batch = [await anext(messages)]
            while len(batch) < self.batch and not queue.empty():
                batch.append(queue.get_nowait())
            items = [
                (str(m.topic), bytes(m.payload), self.journal.key_for(m.mid, str(m.topic), bytes(m.payload)))
                if m.qos > 0
                else (str(m.topic), bytes(m.payload), "")
                for m in batch
                if isinstance(m.payload, bytes | bytearray)
            ]
            self.journal.flush()  # the keys are on disk before their events are submitted
            replies = await self.sink.mqtt_messages(items)  # raises: nothing acknowledged, reconnect
            for m in batch:
                if m.qos > 0:
                    inner.ack(m.mid, m.qos)
                    self.acked += 1
            for topic, payload in replies:
                await client.publish(topic, payload, qos=1)
