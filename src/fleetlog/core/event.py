"""The canonical event: the one shape every dialect translates to and from."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import msgspec


class Outcome(StrEnum):
    """What the event means for the device's desired state (Pelion's message type)."""

    SUCCESS = "SUCCESS"
    FAIL = "FAIL"
    SKIPPED = "SKIPPED"
    INFO = "INFO"


class SourceKind(StrEnum):
    DEVICE = "device"
    GATEWAY = "gateway"
    SYSTEM = "system"


class Event(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One event. Times are microseconds since the epoch, UTC.

    `id` is assigned by the store when the event is committed (see `fleetlog.core.ids`);
    `received` by the pipeline when the event arrives. `data` keeps JSON types as sent.
    """

    tenant: str
    project: str
    type: str
    time: int
    data: dict[str, Any] = {}
    id: str = ""
    received: int = 0
    source: SourceKind = SourceKind.DEVICE
    device: str | None = None
    gateway: str | None = None
    description: str = ""
    severity: int = 3
    outcome: Outcome = Outcome.INFO
    category: str | None = None
    state_change: bool = False
    app_id: str | None = None
    idempotency_key: str | None = None


SEVERITY_MIN = 1
SEVERITY_MAX = 5

# JSON, not msgpack: JSON keeps integers of any size exactly as sent (msgpack stops at 64 bits).
_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Event)


def pack(event: Event) -> bytes:
    """The storage encoding of an event (lossless, fast)."""
    return _encoder.encode(event)


def unpack(blob: bytes) -> Event:
    return _decoder.decode(blob)


def same_content(a: Event, b: Event) -> bool:
    """True when two events for the same device, type and time also carry the same content
    (the tenant-ingest 409 rule)."""
    return a.data == b.data and a.description == b.description and a.severity == b.severity and a.app_id == b.app_id
