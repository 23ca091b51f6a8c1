"""Canonical events in Pelion's terms.

    {"id", "object": "device-event", "date_time", "created_at", "etag", "device_id",
     "device_log_id", "event_type", "event_type_category", "event_type_description",
     "description", "state_change", "changes": {}, "data": {...}}

- `id` (and the older `device_log_id`) is the fleetlog event id, 32 lowercase hex characters.
- `date_time` is when the event happened; `created_at` when fleetlog received it; `etag` is
  the received time as well (events never change, so that is their only version).
- `event_type_description` is the message type (SUCCESS, FAIL, SKIPPED, INFO);
  `event_type_category` the category ("" when the event has none).
- `data` values are strings, as Pelion's spec says: strings as they are, anything else as
  compact JSON (12, true, {"a":1}).
"""

from __future__ import annotations

from typing import Any

import msgspec

from fleetlog.core.event import Event
from fleetlog.core.timefmt import rfc3339

_json = msgspec.json.Encoder()


def data_strings(data: dict[str, Any]) -> dict[str, str]:
    return {k: v if isinstance(v, str) else _json.encode(v).decode() for k, v in data.items()}


def item(event: Event) -> dict[str, Any]:
    received = rfc3339(event.received)
    return {
        "id": event.id,
        "object": "device-event",
        "date_time": rfc3339(event.time),
        "created_at": received,
        "etag": received,
        "device_id": event.device,
        "device_log_id": event.id,
        "event_type": event.type,
        "event_type_category": event.category or "",
        "event_type_description": event.outcome.value,
        "description": event.description,
        "state_change": event.state_change,
        "changes": {},
        "data": data_strings(event.data),
    }


def page(
    events: list[Event], *, has_more: bool, limit: int, after: str | None, ascending: bool, total: int | None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "object": "list",
        "data": [item(e) for e in events],
        "has_more": has_more,
        "limit": limit,
        "after": after,
        "order": "ASC" if ascending else "DESC",
    }
    if total is not None:
        body["total_count"] = total
    return body
