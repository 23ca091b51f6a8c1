"""The bus for several fleetlog processes: NATS JetStream.

Every process publishes its committed events to one JetStream stream per installation
(subjects `<name>.events.<tenant>.<project>`) and follows the whole stream with an ordered
consumer, from which its own subscribers are fed (bounded queues, as in the in-process bus).
So a live reader on one process sees what any process committed, in the stream's order.

- `publish` never blocks: events wait in a bounded outbox for a background publisher. When
  the outbox is full (NATS away for long), events are dropped and counted.
- Gaps are detected, whatever their cause (an outbox overflow, a process killed between its
  COMMIT and its publish, two processes' messages arriving out of commit order): the store
  sends with each commit the highest seq committed before it (`publish_after`). A message
  whose predecessor is not the last one seen means something is missing; every subscriber's
  `dropped` counter then grows, which makes a `LiveFeed` refill the gap from the store. A
  message older than one already seen is skipped (the refill has covered it).

URL: `nats://host:4222/<name>`; the path names the installation (default `fleetlog`): the
stream is `<name>` in upper case and the subjects start with `<name>.events`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import weakref
from collections import deque
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import nats
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext, api
from nats.js.errors import NotFoundError

from fleetlog.adapters.bus.memory import MemoryBus, MemorySubscription
from fleetlog.core.event import Event, pack, unpack
from fleetlog.ports.bus import Match

log = logging.getLogger(__name__)
PREV_HEADER = "Fleetlog-Prev"
_NAME = re.compile(r"[A-Za-z0-9_-]{1,32}")


def subject_token(name: str) -> str:
    """A tenant or project id as one subject token ('.' separates tokens)."""
    return name.replace("%", "%25").replace(".", "%2E").replace("*", "%2A").replace(">", "%3E") or "%00"


def _seq(event: Event) -> int:
    return int(event.id[:16], 16)


class NatsBus:
    def __init__(
        self,
        url: str,
        *,
        max_outbox: int = 100_000,
        max_age_seconds: float = 3600.0,
        max_bytes: int = 1 << 30,
        ack_timeout: float = 10.0,
    ) -> None:
        parts = urlsplit(url)
        name = parts.path.strip("/") or "fleetlog"
        if not _NAME.fullmatch(name):
            raise ValueError(f"bus URL {url!r}: the installation name must be 1-32 letters, digits, '_' or '-'")
        self.server = urlunsplit((parts.scheme, parts.netloc, "", "", ""))
        self.stream = name.upper()
        self.prefix = f"{name}.events"
        self._max_outbox = max_outbox
        self._max_age = max_age_seconds
        self._max_bytes = max_bytes
        self._ack_timeout = ack_timeout
        self._local = MemoryBus()
        self._subs: weakref.WeakSet[MemorySubscription] = weakref.WeakSet()
        self._outbox: deque[tuple[int | None, list[Event]]] = deque()
        self._outbox_events = 0
        self._wake = asyncio.Event()
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._consumer: Any = None
        self._publisher: asyncio.Task[None] | None = None
        self._expect: int | None = None  # last seq of the last chained message seen
        self.published = 0  # events handed to NATS
        self.dropped = 0  # events the outbox or NATS refused
        self.gaps = 0  # missed commits detected
        self.stale = 0  # messages skipped as older than one already seen

    # -- lifecycle -----------------------------------------------------------------------

    async def open(self) -> None:
        """Connect, make sure the stream exists, follow it from now on."""
        nc = await nats.connect(
            servers=[self.server],
            name=f"fleetlog {self.stream}",
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.5,
        )
        js = nc.jetstream()
        try:
            await js.stream_info(self.stream)
        except NotFoundError:
            # Limits retention (age and size, oldest out first): the stream is a live feed, the
            # store keeps the history.
            await js.add_stream(
                name=self.stream,
                subjects=[f"{self.prefix}.>"],
                storage=api.StorageType.FILE,
                max_age=self._max_age,
                max_bytes=self._max_bytes,
                discard=api.DiscardPolicy.OLD,
            )
        self._consumer = await js.subscribe(
            f"{self.prefix}.>",
            stream=self.stream,
            cb=self._received,
            ordered_consumer=True,
            deliver_policy=api.DeliverPolicy.NEW,
            pending_msgs_limit=10_000,
            pending_bytes_limit=64 * 1024 * 1024,
        )
        self._nc, self._js = nc, js
        self._publisher = asyncio.get_running_loop().create_task(self._publish_loop(), name="fleetlog-nats-publisher")
        self._wake.set()  # events published before open() wait in the outbox

    async def aclose(self) -> None:
        """Send what the outbox holds (within the ack timeout), then disconnect."""
        if self._publisher is not None:
            self._publisher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._publisher
            self._publisher = None
        if self._nc is not None:
            nc, self._nc = self._nc, None
            if self._outbox and self._js is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._send(self._js), self._ack_timeout)
            with contextlib.suppress(Exception):
                await nc.close()

    async def delete_stream(self) -> None:
        """Remove the installation's stream (tests, uninstall)."""
        if self._js is not None:
            with contextlib.suppress(NotFoundError):
                await self._js.delete_stream(self.stream)

    # -- the Bus port --------------------------------------------------------------------

    def publish(self, events: Sequence[Event]) -> None:
        """Never blocks. Events without a chain link (see `publish_after`) are delivered
        without gap detection."""
        self._enqueue(None, list(events))

    def publish_after(self, prev_seq: int, events: list[Event]) -> None:
        """Publish one commit's events; `prev_seq` is the highest seq committed before them."""
        self._enqueue(prev_seq, events)

    def subscribe(self, match: Match, capacity: int = 10_000) -> MemorySubscription:
        sub = self._local.subscribe(match, capacity)
        self._subs.add(sub)
        return sub

    @property
    def subscribers(self) -> int:
        return self._local.subscribers

    # -- publishing ----------------------------------------------------------------------

    def _enqueue(self, prev_seq: int | None, events: list[Event]) -> None:
        if not events:
            return
        if self._outbox_events + len(events) > self._max_outbox:
            # Subscribers everywhere will see the gap (the next message's link does not
            # match) and refill from the store.
            self.dropped += len(events)
            log.warning("NATS outbox full: %d events not published", len(events))
            return
        self._outbox.append((prev_seq, events))
        self._outbox_events += len(events)
        self._wake.set()

    async def _publish_loop(self) -> None:
        assert self._js is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self._send(self._js)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("publishing to NATS failed")

    async def _send(self, js: JetStreamContext) -> None:
        acks: list[asyncio.Future[Any]] = []
        while self._outbox:
            prev_seq, events = self._outbox.popleft()
            self._outbox_events -= len(events)
            for subject, headers, payload, count in self._messages(prev_seq, events):
                try:
                    acks.append(await js.publish_async(subject, payload, headers=headers, wait_stall=self._ack_timeout))
                    self.published += count
                except Exception as exc:
                    self.dropped += count
                    log.warning("NATS refused %d events: %s", count, exc)
        if acks:
            done, pending = await asyncio.wait(acks, timeout=self._ack_timeout)
            for future in pending:
                future.cancel()
            failed = len(pending) + sum(1 for f in done if f.exception() is not None)
            if failed:
                log.warning("NATS did not acknowledge %d of %d messages", failed, len(acks))

    def _messages(
        self, prev_seq: int | None, events: list[Event]
    ) -> list[tuple[str, dict[str, str] | None, bytes, int]]:
        """One message per run of events of one tenant and project, split to fit NATS's
        payload limit; each linked to the one before it."""
        limit = max(1024, (self._nc.max_payload if self._nc else 1024 * 1024) - 4096)
        messages: list[tuple[str, dict[str, str] | None, bytes, int]] = []
        link, first, run, size = prev_seq, 0, list[bytes](), 0
        for i, event in enumerate(events):
            blob = pack(event)
            head = events[first]
            if run and ((event.tenant, event.project) != (head.tenant, head.project) or size + len(blob) > limit):
                messages.append(self._message(head, link, run))
                link = _seq(events[i - 1]) if link is not None else None
                first, run, size = i, [], 0
            run.append(blob)
            size += len(blob) + 1
        if run:
            messages.append(self._message(events[first], link, run))
        return messages

    def _message(
        self, head: Event, link: int | None, run: list[bytes]
    ) -> tuple[str, dict[str, str] | None, bytes, int]:
        subject = f"{self.prefix}.{subject_token(head.tenant)}.{subject_token(head.project)}"
        return subject, ({PREV_HEADER: str(link)} if link is not None else None), b"\n".join(run), len(run)

    # -- receiving -----------------------------------------------------------------------

    async def _received(self, msg: Msg) -> None:
        try:
            events = [unpack(line) for line in msg.data.split(b"\n")]
        except Exception:
            log.warning("ignoring a message on %s that is not fleetlog events", msg.subject)
            return
        link = (msg.headers or {}).get(PREV_HEADER)
        if link is not None and events:
            prev, last = int(link), _seq(events[-1])
            if self._expect is not None:
                if last <= self._expect:
                    self.stale += 1
                    return
                if prev != self._expect:
                    self.gaps += 1
                    for sub in list(self._subs):
                        sub.dropped += 1  # makes a LiveFeed refill from the store
            self._expect = last
        self._local.publish(events)
