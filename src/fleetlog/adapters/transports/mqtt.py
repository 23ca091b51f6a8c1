"""MQTT device transport: a persistent QoS 1 subscription, acknowledged only after commit.

- A fixed client id with a persistent session (MQTT 3.1.1, clean session off), so the broker
  keeps messages for fleetlog while it is down. MQTT 3.1.1 rather than 5: paho decodes MQTT 5
  properties on every message, which halves the rate. The broker's `max_inflight_messages`
  bounds how many unacknowledged messages fleetlog holds, and so its memory and its rate (each
  commit acknowledges at most that many): 1000 is a good value; Mosquitto's default is 20.
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

from fleetlog.adapters.transports import DeviceSink
from fleetlog.adapters.transports.mqtt_journal import AckJournal

log = logging.getLogger(__name__)
NAME = "mqtt"


def parse_url(url: str) -> tuple[str, int, str | None, str | None]:
    parts = urlsplit(url if "://" in url else f"mqtt://{url}")
    if parts.scheme not in ("mqtt", "tcp"):
        raise ValueError(f"unsupported MQTT URL scheme {parts.scheme!r} (use mqtt://host:port)")
    if not parts.hostname:
        raise ValueError(f"MQTT URL without a host: {url!r}")
    user = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else None
    return parts.hostname, parts.port or 1883, user, password


class BufferedSocket:
    """The broker connection as paho sees it, read 256 KiB at a time.

    paho reads each packet with three or four small recv() calls, and aiomqtt reads one packet
    per wake-up of the event loop. With this buffer, one recv() serves hundreds of messages, and
    `pending()` (which aiomqtt honours for TLS sockets) makes it read all of them in one wake-up:
    about three times the rate. Everything but recv() is the socket's own."""

    def __init__(self, sock: Any) -> None:
        self._sock = sock
        self._data = b""
        self._pos = 0

    def recv(self, size: int) -> bytes:
        if self._pos >= len(self._data):
            data = self._sock.recv(256 * 1024)  # BlockingIOError when there is nothing: paho expects it
            if not data:
                return b""
            self._data, self._pos = data, 0
        out = self._data[self._pos : self._pos + size]
        self._pos += len(out)
        return out

    def pending(self) -> int:
        return len(self._data) - self._pos

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


def buffer_reads(client: aiomqtt.Client) -> None:
    inner: paho.Client = client._client
    if inner._sock is not None and not isinstance(inner._sock, BufferedSocket):
        inner._sock = BufferedSocket(inner._sock)


class MqttTransport:
    def __init__(
        self,
        url: str,
        client_id: str,
        journal: Path,
        sink: DeviceSink,
        batch: int = 2000,
        max_backoff: float = 30.0,
    ) -> None:
        self.url = url
        self.client_id = client_id
        self.journal = AckJournal(journal)
        self.sink = sink
        self.batch = batch
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
                    buffer_reads(client)
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
        client = aiomqtt.Client(
            host,
            port,
            username=user,
            password=password,
            identifier=self.client_id,
            protocol=aiomqtt.ProtocolVersion.V311,
            clean_session=False,
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
        """Read batches and store them, two in flight (the next is prepared while the previous
        commits); acknowledge each batch, in order, once the sink has stored it."""
        stored: asyncio.Queue[tuple[asyncio.Task[list[tuple[str, bytes]]], list[aiomqtt.Message]]]
        stored = asyncio.Queue(maxsize=1)
        inner: paho.Client = client._client

        async def acknowledge() -> None:
            while True:
                task, batch = await stored.get()
                replies = await task  # raises: nothing more is acknowledged; reconnect, get it again
                for m in batch:
                    if m.qos > 0:
                        inner.ack(m.mid, m.qos)
                        self.acked += 1
                for topic, payload in replies:
                    await client.publish(topic, payload, qos=1)

        async def read() -> None:
            while True:
                batch = await self._next_batch(client)
                items = [
                    (str(m.topic), bytes(m.payload), self.journal.key_for(m.mid, str(m.topic), bytes(m.payload)))
                    if m.qos > 0
                    else (str(m.topic), bytes(m.payload), "")
                    for m in batch
                    if isinstance(m.payload, bytes | bytearray)
                ]
                self.journal.flush()  # the keys are on disk before their events are submitted
                await stored.put((asyncio.create_task(self.sink.mqtt_messages(items)), batch))

        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(read())
                group.create_task(acknowledge())
        except ExceptionGroup as failed:
            raise failed.exceptions[0] from None

    async def _next_batch(self, client: aiomqtt.Client) -> list[aiomqtt.Message]:
        """The messages waiting in the client's queue (at least one), up to `batch`.

        One wait per batch rather than aiomqtt's iterator, which starts a task per message."""
        queue: asyncio.Queue[aiomqtt.Message] = client._queue
        if queue.empty():
            getter = asyncio.ensure_future(queue.get())
            waiting: list[asyncio.Future[Any]] = [getter, client._disconnected]
            try:
                await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            finally:
                if not getter.done():
                    getter.cancel()
            if not getter.done() or getter.cancelled():
                raise aiomqtt.MqttError("disconnected while waiting for messages")
            batch = [getter.result()]
        else:
            batch = [queue.get_nowait()]
        while len(batch) < self.batch and not queue.empty():
            batch.append(queue.get_nowait())
        return batch
