"""The native API's JSON shapes (also the source of its OpenAPI components). `EventOut` is
shared with native webhook pushes (fleetlog.delivery.native_body)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from fleetlog.core.event import Outcome, SourceKind
from fleetlog.delivery.native_body import EventOut as EventOut  # re-exported: the face's event shape
from fleetlog.delivery.native_body import event_out as event_out

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
Labels = dict[Annotated[str, msgspec.Meta(min_length=1, max_length=128)], Annotated[str, msgspec.Meta(max_length=1024)]]


class EventIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """An event to ingest. `time` is RFC 3339 or integer epoch milliseconds; default: now."""

    type: Annotated[str, msgspec.Meta(min_length=1, max_length=128, pattern=r"^\S+$")]
    device: Name | None = None
    project: Name | None = None
    gateway: Name | None = None
    source: SourceKind | None = None
    time: str | int | None = None
    data: dict[str, Any] = {}
    description: Annotated[str, msgspec.Meta(max_length=1024)] = ""
    severity: Annotated[int, msgspec.Meta(ge=1, le=5)] = 3
    outcome: Outcome = Outcome.INFO
    category: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    state_change: bool = False
    app_id: Annotated[str, msgspec.Meta(max_length=255)] | None = None
    idempotency_key: Annotated[str, msgspec.Meta(min_length=1, max_length=255)] | None = None


class EventPage(msgspec.Struct):
    events: list[EventOut]
    has_more: bool
    next_cursor: str | None
    prev_cursor: str | None


class ItemResult(msgspec.Struct, omit_defaults=True):
    index: int
    status: Literal["created", "duplicate", "conflict", "error"]
    id: str | None = None
    error: dict[str, Any] | None = None


class BatchResult(msgspec.Struct):
    created: int
    duplicates: int
    failed: int
    results: list[ItemResult]


class DeviceState(msgspec.Struct):
    device: str
    project: str
    last_seen: str | None
    latest: dict[str, EventOut]


class TenantIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    id: Name
    name: str = ""
    retention_days: Annotated[int, msgspec.Meta(ge=1, le=36500)] = 31
    license_valid: bool = True


class TenantPatch(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: str | None = None
    retention_days: Annotated[int, msgspec.Meta(ge=1, le=36500)] | None = None
    license_valid: bool | None = None


class ProjectIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    id: Name
    name: str = ""


class DeviceIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    id: Name
    project: Name
    type: Annotated[str, msgspec.Meta(max_length=64)] = ""
    labels: Labels = {}
    # Face-specific attributes (DT productNumber, heartbeat_seconds; Span imsi/imei; firmware_version).
    attrs: dict[str, Any] = {}


class DevicePatch(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    project: Name | None = None
    type: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    labels: Labels | None = None
    attrs: dict[str, Any] | None = None  # replaces the whole map


class KeyIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    role: Literal["read", "write", "admin"]
    project: Name | None = None
    name: Annotated[str, msgspec.Meta(max_length=128)] = ""


class KeyOut(msgspec.Struct, kw_only=True, omit_defaults=True):
    id: str
    tenant: str | None
    project: str | None
    role: str
    name: str
    created: str
    token: str | None = None  # shown once, when the key is made


class EventTypeIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    title: str = ""
    description: str = ""
    schema: dict[str, Any] | None = None
    outcome: Outcome = Outcome.INFO
    category: str | None = None
    state_change: bool = False
