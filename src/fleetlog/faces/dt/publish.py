"""What the emulator makes of a published event body, before the pipeline validates it.

- Field names in protobuf's snake_case are accepted as well as camelCase (DT's API is a gRPC
  gateway, which accepts both; the Python client sends `cloud_connectors`).
- `updateTime` is ignored: the event's time is when fleetlog receives it.
- The Python client's humidity samples carry `celsius`; it is read as `temperature`.
- Samples are kept newest first.
- A networkStatus Cloud Connector entry without signalStrength/rssi gets the event's own.
- connectionStatus: a sensor connects through SDS; a Cloud Connector through ETHERNET or CELLULAR,
  ETHERNET preferred when both are available. A missing `connection` or `available` is derived
  from the other.
"""

from __future__ import annotations

import re
from typing import Any, Final

from fleetlog.core.errors import InvalidInput
from fleetlog.core.timefmt import parse_rfc3339

_SNAKE: Final = re.compile(r"_([a-z0-9])")
CCON_LINKS: Final = ("ETHERNET", "CELLULAR")


def _camel(value: Any, path: str) -> Any:
    if isinstance(value, list):
        return [_camel(v, f"{path}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for key, item in value.items():
        name = _SNAKE.sub(lambda m: m.group(1).upper(), key) if "_" in key else key
        if name in out:
            raise InvalidInput("given twice (in camelCase and snake_case)", f"{path}.{name}")
        out[name] = _camel(item, f"{path}.{name}")
    return out


def _newest_first(samples: list[Any]) -> list[Any]:
    try:
        return sorted(samples, key=lambda s: parse_rfc3339(s["sampleTime"]), reverse=True)
    except (TypeError, KeyError, ValueError):
        return samples  # the schema check names what is wrong


def normalize(event_type: str, raw: Any, is_sensor: bool) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise InvalidInput("must be a JSON object", event_type)
    data: dict[str, Any] = _camel(raw, event_type)
    data.pop("updateTime", None)
    samples = data.get("samples")
    if event_type == "humidity" and isinstance(samples, list):
        for sample in samples:
            if isinstance(sample, dict) and "celsius" in sample and "temperature" not in sample:
                sample["temperature"] = sample.pop("celsius")
    if event_type in {"temperature", "humidity"} and isinstance(samples, list):
        data["samples"] = _newest_first(data["samples"])
    if event_type == "networkStatus" and isinstance(data.get("cloudConnectors"), list):
        for entry in data["cloudConnectors"]:
            if isinstance(entry, dict):
                for field in ("signalStrength", "rssi"):
                    if field not in entry and field in data:
                        entry[field] = data[field]
    if event_type == "connectionStatus":
        _connection(data, is_sensor)
    return data


def _connection(data: dict[str, Any], is_sensor: bool) -> None:
    connection, available = data.get("connection"), data.get("available")
    if available is not None and not isinstance(available, list):
        return  # the schema check names it
    if is_sensor:
        if connection not in (None, "SDS", "OFFLINE"):
            raise InvalidInput("a sensor is either SDS (online) or OFFLINE", "connectionStatus.connection")
        if connection is None:
            connection = "SDS" if available else "OFFLINE"
        data["connection"] = connection
        data.setdefault("available", ["SDS"] if connection == "SDS" else [])
        return
    links = [link for link in CCON_LINKS if available is not None and link in available]
    if available is not None and any(a not in CCON_LINKS for a in available):
        raise InvalidInput("a Cloud Connector's links are ETHERNET and CELLULAR", "connectionStatus.available")
    if connection is None:
        data["connection"] = links[0] if links else "OFFLINE"
    elif connection not in (*CCON_LINKS, "OFFLINE"):
        raise InvalidInput("a Cloud Connector is ETHERNET, CELLULAR or OFFLINE", "connectionStatus.connection")
    elif available is None:
        data["available"] = [] if connection == "OFFLINE" else [connection]
    elif connection == "OFFLINE" and links:
        raise InvalidInput("must be empty when the connection is OFFLINE", "connectionStatus.available")
    elif connection != "OFFLINE" and (not links or connection != links[0]):
        raise InvalidInput(
            f"must be {links[0] if links else 'OFFLINE'}: ETHERNET is preferred when available",
            "connectionStatus.connection",
        )
