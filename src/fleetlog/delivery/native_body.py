"""An event exactly as the native /v1 API shows it: the API's `EventOut` and the body of a
native webhook push (one definition, here, because faces may import delivery but not the
other way round)."""

from __future__ import annotations

from typing import Any

import msgspec

from fleetlog.core.event import Event, Outcome, SourceKind
from fleetlog.core.timefmt import rfc3339


class EventOut(msgspec.Struct, kw_only=True, omit_defaults=True):
    id: str
    tenant: str
    project: str
    source: SourceKind
    type: str
    time: str
    received: str
    data: dict[str, Any]
    severity: int
    outcome: Outcome
    state_change: bool
    description: str = ""
    device: str | None = None
    gateway: str | None = None
    category: str | None = None
    app_id: str | None = None
    idempotency_key: str | None = None


_encode = msgspec.json.Encoder().encode


def event_out(event: Event) -> EventOut:
    return EventOut(
        id=event.id,
        tenant=event.tenant,
        project=event.project,
        source=event.source,
        type=event.type,
        time=rfc3339(event.time),
        received=rfc3339(event.received),
        data=event.data,
        severity=event.severity,
        outcome=event.outcome,
        state_change=event.state_change,
        description=event.description,
        device=event.device,
        gateway=event.gateway,
        category=event.category,
        app_id=event.app_id,
        idempotency_key=event.idempotency_key,
    )


def push_body(event: Event) -> bytes:
    return _encode(event_out(event))
