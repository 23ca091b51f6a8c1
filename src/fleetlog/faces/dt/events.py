"""Canonical events rendered as DT renders them (the rules live in `fleetlog.delivery.dt_body`,
shared with the data connectors' pushes).

    {"eventId": ..., "targetName": "projects/P/devices/D", "eventType": "touch",
     "data": {"touch": {"updateTime": "2022-02-10T12:42:13.313949Z"}},
     "timestamp": "2022-02-10T12:42:13.313949Z"}

The canonical data of a DT type is the inner object without `updateTime` (core/catalog/dt.py).
Rendering wraps it in the type name again, sets `updateTime` = `timestamp` (the event's time),
and fills in the fields the vendor always renders (DT's API emits unset protobuf fields), which
DT's own clients read unconditionally: temperature and humidity `samples` (one sample, the
event's own value and time) and `isBackfilled` (false), deskOccupancy `remarks` ([]),
networkStatus `cloudConnectors` ([]; a connector's missing signalStrength/rssi are the event's)
and `transmissionMode` (LOW_POWER_STANDARD_MODE), connectionStatus `available` ([]),
ethernetStatus `macAddress`/`ipAddress` ("") and `errors` ([]), cellularStatus
`signalStrength` (0) and `errors` ([]). `labelsChanged` is flat: `{added, modified, removed}`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from fleetlog.core.catalog.dt import SENSOR_EVENT_TYPES
from fleetlog.core.event import Event
from fleetlog.core.timefmt import rfc3339
from fleetlog.delivery.dt_body import DEFAULT_TRANSMISSION_MODE, FLAT_TYPES, cloud_connector, dt_event, inner_data

DT_TYPES: Final = frozenset(t.name for t in SENSOR_EVENT_TYPES)
__all__ = ["DEFAULT_TRANSMISSION_MODE", "DT_TYPES", "FLAT_TYPES", "event_json", "inner_data", "merge_network_status"]


def event_json(event: Event) -> dict[str, Any]:
    """The event as DT's API shows it; the same rules as a data connector's push."""
    return dt_event(event)


def ping_json(project: str, now_us: int) -> dict[str, Any]:
    return {
        "eventId": "",
        "targetName": f"projects/{project}",
        "eventType": "ping",
        "data": None,
        "timestamp": rfc3339(now_us),
    }


def merge_network_status(events: Sequence[Event]) -> dict[str, Any]:
    """The canonical data of a device's `reported.networkStatus`: its networkStatus events
    (newest first, one per Cloud Connector that heard the sensor) merged into one, with every
    connector listed strongest first and the top-level values of the strongest."""
    latest = events[0].data
    connectors: dict[str, dict[str, Any]] = {}
    for event in events:
        for entry in event.data.get("cloudConnectors") or []:
            filled = cloud_connector(entry, event.data)
            connectors.setdefault(filled["id"], filled)
    merged = dict(latest)
    if connectors:
        ordered = sorted(connectors.values(), key=lambda c: -int(c["signalStrength"]))
        merged["cloudConnectors"] = ordered
        merged["signalStrength"] = ordered[0]["signalStrength"]
        merged["rssi"] = ordered[0]["rssi"]
    return merged
