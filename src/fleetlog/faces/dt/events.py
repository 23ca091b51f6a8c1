"""Canonical events rendered as DT renders them.

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
from fleetlog.faces.dt.names import device_name

DT_TYPES: Final = frozenset(t.name for t in SENSOR_EVENT_TYPES)
FLAT_TYPES: Final = frozenset({"labelsChanged"})
DEFAULT_TRANSMISSION_MODE: Final = "LOW_POWER_STANDARD_MODE"


def inner_data(event_type: str, data: dict[str, Any], timestamp: str) -> dict[str, Any]:
    """The object under the type name: the canonical data, defaults filled in, `updateTime` last."""
    inner = {k: v for k, v in data.items() if k != "updateTime"}
    if event_type == "temperature":
        if "samples" not in inner and "value" in inner:
            inner["samples"] = [{"value": inner["value"], "sampleTime": timestamp}]
        inner.setdefault("isBackfilled", False)
    elif event_type == "humidity":
        if "samples" not in inner and "temperature" in inner and "relativeHumidity" in inner:
            inner["samples"] = [
                {
                    "temperature": inner["temperature"],
                    "relativeHumidity": inner["relativeHumidity"],
                    "sampleTime": timestamp,
                }
            ]
        inner.setdefault("isBackfilled", False)
    elif event_type == "deskOccupancy":
        inner.setdefault("remarks", [])
    elif event_type == "networkStatus":
        inner["cloudConnectors"] = [_connector(c, inner) for c in inner.get("cloudConnectors") or []]
        inner.setdefault("transmissionMode", DEFAULT_TRANSMISSION_MODE)
    elif event_type == "connectionStatus":
        inner.setdefault("available", [])
    elif event_type == "ethernetStatus":
        inner.setdefault("macAddress", "")
        inner.setdefault("ipAddress", "")
        inner.setdefault("errors", [])
    elif event_type == "cellularStatus":
        inner.setdefault("signalStrength", 0)
        inner.setdefault("errors", [])
    inner["updateTime"] = timestamp
    return inner


def _connector(entry: dict[str, Any], event: dict[str, Any]) -> dict[str, Any]:
    # One event is one Cloud Connector's reception: its values are the event's own.
    return {
        "id": entry.get("id", ""),
        "signalStrength": entry.get("signalStrength", event.get("signalStrength", 0)),
        "rssi": entry.get("rssi", event.get("rssi", 0)),
    }


def event_data(event_type: str, data: dict[str, Any], timestamp: str) -> dict[str, Any]:
    """DT's `data` field of an event."""
    if event_type in FLAT_TYPES:
        return {
            "added": data.get("added", {}),
            "modified": data.get("modified", {}),
            "removed": data.get("removed", []),
        }
    return {event_type: inner_data(event_type, data, timestamp)}


def event_json(event: Event) -> dict[str, Any]:
    timestamp = rfc3339(event.time)
    return {
        "eventId": event.id,
        "targetName": device_name(event.project, event.device or ""),
        "eventType": event.type,
        "data": event_data(event.type, event.data, timestamp),
        "timestamp": timestamp,
    }


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
            filled = _connector(entry, event.data)
            connectors.setdefault(filled["id"], filled)
    merged = dict(latest)
    if connectors:
        ordered = sorted(connectors.values(), key=lambda c: -int(c["signalStrength"]))
        merged["cloudConnectors"] = ordered
        merged["signalStrength"] = ordered[0]["signalStrength"]
        merged["rssi"] = ordered[0]["rssi"]
    return merged
