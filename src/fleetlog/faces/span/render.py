"""Span JSON out of core objects: devices, collections, upstream data, activity frames.

int64 values are JSON strings (the vendor's gRPC gateway renders them so); times in resources
are epoch milliseconds; activity frames carry the seed's `YYYY-MM-DD HH:MM:SS` (UTC).
"""

from __future__ import annotations

from typing import Any

import msgspec

from fleetlog.core.catalog.span import DATA_KEYS
from fleetlog.core.event import Event
from fleetlog.core.registry import Device, Project
from fleetlog.core.timefmt import to_datetime
from fleetlog.faces.span.model import Reported, gateway_config, span_attrs

# Registry changes are logged once, as canonical events (pipeline/lifecycle.py); the activity
# stream shows them under Span's names.
ACTIVITY_NAMES = {
    "SYS_106": "deviceCreated",
    "SYS_105": "deviceRemoved",
    "labelsChanged": "deviceUpdated",
    **{name: name for name in DATA_KEYS},
}
# Stored with the event (for /data and the event log) but not part of an activity frame.
HIDDEN_KEYS = frozenset({"payload"})
_json = msgspec.json.Encoder()


def ms(us: int) -> str:
    return str(us // 1000)


def activity_time(us: int) -> str:
    return to_datetime(us).strftime("%Y-%m-%d %H:%M:%S")


def _text(value: Any) -> str:
    return value if isinstance(value, str) else _json.encode(value).decode()


def activity_frame(event: Event) -> dict[str, Any] | None:
    """The Span activity object for a canonical event, or None if Span has no such activity.
    Keys in the seed's order; `data` left out when empty, as in the seed's clientDisconnected."""
    name = ACTIVITY_NAMES.get(event.type)
    if name is None:
        return None
    if event.type == "labelsChanged":
        data = {"fields": "tags"}
    else:
        data = {k: _text(v) for k, v in event.data.items() if k not in HIDDEN_KEYS}
    frame: dict[str, Any] = {"collectionId": event.project}
    if data:
        frame["data"] = data
    if event.device:
        frame["deviceId"] = event.device
    frame["event"] = name
    gateway = event.gateway or data.get("gatewayId")
    if gateway:
        frame["gatewayId"] = gateway
    frame["time"] = activity_time(event.time)
    return frame


def device_json(device: Device, reported: Reported | None = None) -> dict[str, Any]:
    span = span_attrs(device)
    config = span.get("config", {})
    firmware = span.get("firmware", {})
    rep = reported or Reported()
    ciot_cfg = {k: v for k, v in config.get("ciot", {}).items() if v}
    out: dict[str, Any] = {
        "deviceId": device.id,
        "collectionId": device.project,
        "tags": device.labels,
        "firmware": {
            "currentFirmwareId": str(rep.firmware_check.data.get("imageId", "")) if rep.firmware_check else "",
            "targetFirmwareId": firmware.get("targetFirmwareId", ""),
            "firmwareVersion": rep.firmware_version,
            "serialNumber": firmware.get("serialNumber", ""),
            "modelNumber": firmware.get("modelNumber", ""),
            "manufacturer": firmware.get("manufacturer", ""),
            "state": rep.state,
            "stateMessage": rep.state_message,
        },
        "config": {"ciot": ciot_cfg, "inet": config.get("inet", {}), "gateway": gateway_config(device)},
        "metadata": _metadata(rep),
        "enabled": span.get("enabled", True) is not False,
    }
    up = rep.upstream
    if up is not None:
        out["lastTransport"] = str(up.data.get("transport", "unspecified"))
        out["lastReceived"] = ms(up.time)
        out["lastPayload"] = str(up.data.get("payload", ""))
        gateway = up.gateway or up.data.get("gatewayId")
        if gateway:
            out["lastGatewayId"] = str(gateway)
    return out


def _metadata(rep: Reported) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    if rep.ciot is not None:
        d = rep.ciot.data
        ciot: dict[str, Any] = {
            "allocatedIp": d.get("ip", ""),
            "allocatedAt": ms(rep.ciot.time),
            "lastUpdate": ms(rep.ciot.time),
            "lastImsi": d.get("imsi", ""),
            "lastImei": d.get("imei", ""),
        }
        for key in ("cellId", "network"):
            if d.get(key):
                ciot[key] = d[key]
        for key in ("mcc", "mnc"):
            if str(d.get(key, "")).isdigit():
                ciot[key] = int(d[key])
        meta["ciot"] = ciot
    up = rep.upstream
    if up is not None and up.data.get("remoteAddress"):
        meta["inet"] = {"remoteAddress": up.data["remoteAddress"], "lastUpdate": ms(up.time)}
    if up is not None and up.gateway:
        meta["gateway"] = {"gatewayId": up.gateway, "lastUpdate": ms(up.time), "params": {}}
    return meta


def collection_json(project: Project, doc: dict[str, Any] | None) -> dict[str, Any]:
    doc = doc or {}
    firmware = doc.get("firmware", {})
    tags = doc.get("tags") or ({"name": project.name} if project.name else {})
    return {
        "collectionId": project.id,
        "teamId": project.tenant,
        "firmware": {
            "currentFirmwareId": firmware.get("currentFirmwareId", ""),
            "targetFirmwareId": firmware.get("targetFirmwareId", ""),
            "management": firmware.get("management", "unspecified"),
        },
        "tags": tags,
        "enabled": doc.get("enabled", True),
    }


def data_message(event: Event, device: dict[str, Any] | None) -> dict[str, Any]:
    """An OutputDataMessage (the /data list and the /from WebSocket) from a stored upstream event."""
    d = event.data
    out: dict[str, Any] = {"type": "data"}
    if device is not None:
        out["device"] = device
    out["payload"] = str(d.get("payload", ""))
    out["received"] = ms(event.time)
    out["transport"] = str(d.get("transport", "unspecified"))
    out["messageId"] = event.id
    if d.get("transport") == "udp":
        remote_port = str(d.get("remoteAddress", "")).rpartition(":")[2]
        out["udpMetaData"] = {
            "localPort": int(d.get("localPort", 0)),
            "remotePort": int(remote_port) if remote_port.isdigit() else 0,
        }
    if d.get("topic"):
        out["mqttMetaData"] = {"topic": d["topic"]}
    gateway = event.gateway or d.get("gatewayId")
    if gateway:
        out["gatewayId"] = gateway
        out["gatewayMetaData"] = {"metadata": {}}
    return out


def upstream_message(event: Event) -> dict[str, Any]:
    """A MessageUpstream (the device inbox list)."""
    d = event.data
    out: dict[str, Any] = {
        "messageId": event.id,
        "collectionId": event.project,
        "deviceId": event.device or "",
        "transport": str(d.get("transport", "unspecified")),
        "received": ms(event.time),
        "payload": str(d.get("payload", "")),
    }
    gateway = event.gateway or d.get("gatewayId")
    if gateway:
        out["gatewayId"] = gateway
    return out


def public(doc: dict[str, Any], *hidden: str) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k not in hidden}
