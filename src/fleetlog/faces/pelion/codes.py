"""The event log codes, as Pelion's documentation lists them, for /v3/event-log-codes."""

from __future__ import annotations

from typing import Any

from fleetlog.core.catalog import Catalog, EventType


def code_item(event_type: EventType) -> dict[str, Any]:
    return {
        "object": "event-log-code",
        "code": event_type.name,
        "portal_text": event_type.title,
        "explanation": event_type.description,
        "corrective_action": event_type.corrective_action,
        "message_type": event_type.outcome.value,
        "category": event_type.category or "",
        "state_change": event_type.state_change,
        # SYS_ codes are produced by the service, the others reported by the device's update client.
        "generated_by": "service" if event_type.name.startswith("SYS_") else "client",
    }


def codes(catalog: Catalog) -> list[EventType]:
    return catalog.family("pelion")


def find(catalog: Catalog, code: str) -> EventType | None:
    found = catalog.get(code) or catalog.get(code.upper())
    return found if found is not None and found.family == "pelion" else None
