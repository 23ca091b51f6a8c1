"""Disruptive Technologies JSON for a canonical event, and the body of a data connector push.

Pure functions (no I/O), so the DT face can import them too (faces may import delivery):

    {"eventId": ..., "targetName": "projects/P/devices/D", "eventType": "touch",
     "data": {"touch": {"updateTime": "2022-02-10T12:42:13.313949Z"}},
     "timestamp": "2022-02-10T12:42:13.313949Z"}

The canonical data of a DT type is the inner object without `updateTime` (core/catalog/dt.py):
it is wrapped in the type name again, `updateTime` (= `timestamp`) goes last, and the fields
the vendor always renders (unset protobuf fields, read unconditionally by DT's own clients) are
filled in. `labelsChanged` is flat: `{added, modified, removed}`. The DT face renders its
events by the same rules (a test holds the two equal).
"""

from __future__ import annotations

from typing import Any

import msgspec

from fleetlog.core.catalog.dt import device_type
from fleetlog.core.event import Event
from fleetlog.core.registry import Device
from fleetlog.core.timefmt import rfc3339

FLAT_TYPES = frozenset({"labelsChanged"})
DEFAULT_TRANSMISSION_MODE = "LOW_POWER_STANDARD_MODE"
_encode = msgspec.json.Encoder().encode


def target_name(event: Event) -> str:
    return f"projects/{event.project}/devices/{event.device or event.gateway or ''}"


def inner_data(event_type: str, data: dict[str, Any], timestamp: str) -> dict[str, Any]:
    inner = {k: v for k, v in data.items() if k != "updateTime"}
    if event_type == "temperature":
        if "samples" not in inner and "value" in inner:
            inner["samples"] = [{"value": inner["value"], "sampleTime": timestamp}]
        inner.setdefault("isBackfilled", False)
    elif event_type == "humidity":
        if "samples" not in inner and "temperature" in inner and "relativeHumidity" in inner:
            sample = {"temperature": inner["temperature"], "relativeHumidity": inner["relativeHumidity"]}
            inner["samples"] = [{**sample, "sampleTime": timestamp}]
        inner.setdefault("isBackfilled", False)
    elif event_type == "deskOccupancy":
        inner.setdefault("remarks", [])
    elif event_type == "networkStatus":
        inner["cloudConnectors"] = [cloud_connector(c, inner) for c in inner.get("cloudConnectors") or []]
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


def cloud_connector(entry: dict[str, Any], event: dict[str, Any]) -> dict[str, Any]:
    # One networkStatus event is one Cloud Connector's reception: missing values are the event's.
    return {
        "id": entry.get("id", ""),
        "signalStrength": entry.get("signalStrength", event.get("signalStrength", 0)),
        "rssi": entry.get("rssi", event.get("rssi", 0)),
    }


def dt_data(event: Event, timestamp: str) -> dict[str, Any]:
    if event.type in FLAT_TYPES:
        return {
            "added": event.data.get("added", {}),
            "modified": event.data.get("modified", {}),
            "removed": event.data.get("removed", []),
        }
    return {event.type: inner_data(event.type, event.data, timestamp)}


def dt_event(event: Event) -> dict[str, Any]:
    """The event as DT's API shows it; keys in DT's order."""
    timestamp = rfc3339(event.time)
    return {
        "eventId": event.id,
        "targetName": target_name(event),
        "eventType": event.type,
        "data": dt_data(event, timestamp),
        "timestamp": timestamp,
    }


def product_number(device: Device) -> str:
    """The device's own product number if it has one, else its type's first (or "")."""
    own = device.attrs.get("productNumber")
    if isinstance(own, str):
        return own
    known = device_type(device.type)
    return known.product_numbers[0] if known and known.product_numbers else ""


def push_body(event: Event, device: Device | None, include_labels: list[str]) -> bytes:
    """One data connector push, compact JSON: {"event", "labels", "metadata"} in that order.

    `device` is the registry entry at delivery time (None if it was removed since); `labels`
    holds the device's labels named by the connector, those it has."""
    device_labels = device.labels if device else {}
    labels = {key: device_labels[key] for key in include_labels if key in device_labels}
    metadata = {
        "deviceId": event.device or event.gateway or "",
        "projectId": event.project,
        "deviceType": device.type if device else "",
        "productNumber": product_number(device) if device else "",
    }
    return _encode({"event": dt_event(event), "labels": labels, "metadata": metadata})
