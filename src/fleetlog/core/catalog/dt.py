"""Disruptive Technologies: the 19 sensor event types and the device types that emit them.

Source: seeds/dt-sensor-events.txt and CONTRACTS.md section 1.

The canonical `data` of a DT event is the INNER object of the DT payload, without the
type-name wrapper and without `updateTime` (the DT face adds both when it renders an event):
DT's `{"temperature": {"value": 24.9, "updateTime": "..."}}` is stored as `{"value": 24.9}`.
`labelsChanged` is flat in DT already (`{"added": {}, "modified": {}, "removed": []}`).

Every schema closes its objects (`additionalProperties: false`) so a misspelt field is named in
the error, and allows an optional `updateTime` date-time (except labelsChanged): clients may echo
it; fleetlog ignores it.
"""

from __future__ import annotations

from typing import Any, Final

from fleetlog.core.catalog.model import DeviceType, EventType

__all__ = ["DEVICE_TYPES", "EXAMPLES", "SENSOR_EVENT_TYPES", "device_type"]

MAX_SAMPLES: Final = 30
"""Samples per heartbeat: DT sensors can be configured for 1 to 30."""

SENSOR_HEARTBEAT_SECONDS: Final = 900

# ---------------------------------------------------------------------------------------------
# Device types (CONTRACTS.md section 1, "Device types, triggers and heartbeats").
#
# Product numbers: only "102067" (temperature) appears in the contract. The others are
# PLACEHOLDERS in DT's six-digit style, not verified against DT's catalogue; nothing in fleetlog
# depends on their accuracy (they are labels shown in device listings and usable as filters).

_SENSOR_COMMON: Final = ("networkStatus", "batteryStatus", "connectionStatus", "labelsChanged")

DEVICE_TYPES: Final[tuple[DeviceType, ...]] = (
    DeviceType(
        name="temperature",
        product_numbers=("102058", "102067", "102081", "102150"),
        events=("temperature", "touch", "probeWireStatus", *_SENSOR_COMMON),
        heartbeat_seconds=SENSOR_HEARTBEAT_SECONDS,
        description=(
            "Temperature sensor: a temperature event every heartbeat and when touched. "
            "Heartbeat 15 min by default, configurable to 5/15/30/45/60 min with 1-30 samples "
            "per heartbeat. A temperature probe reports as this type and adds probeWireStatus."
        ),
    ),
    DeviceType(
        name="proximity",
        product_numbers=("102059", "102068"),
        events=("objectPresent", "touch", *_SENSOR_COMMON),
        heartbeat_seconds=SENSOR_HEARTBEAT_SECONDS,
        description="Proximity sensor: objectPresent on change.",
    ),
    DeviceType(
        name="touch",
        product_numbers=("102060", "102069"),
        events=("touch", *_SENSOR_COMMON),
        heartbeat_seconds=SENSOR_HEARTBEAT_SECONDS,
        description="Touch sensor: a touch event when touched.",
    ),
    DeviceType(
        name="humidity",
        product_numbers=("102062", "102071"),
        events=("humidity", "touch", *_SENSOR_COMMON),
        heartbeat_seconds=SENSOR_HEARTBEAT_SECONDS,
        description="Humidity sensor: a humidity event every heartbeat and when touched.",
    ),
    DeviceType(
        name="proximityCounter",
        product_numbers=("102063", "102072"),
        events=("objectPresentCount", *_SENSOR_COMMON),
        heartbeat_seconds=SENSOR_HEARTBEAT_SECONDS,
        description="Counting proximity sensor: the lifetime objectPresentCount every heartbeat.",
    ),
    DeviceType(
        name="touchCounter",
        product_numbers=("102064", "102073"),
        events=("touchCount", "touch", *_SENSOR_COMMON),
        heartbeat_seconds=SENSOR_HEARTBEAT_SECONDS,
        description=(
            "Counting touch sensor: the lifetime touchCount every heartbeat; holding a finger "
            "on it for 3 seconds forces a single touch event."
        ),
    ),
    DeviceType(
        name="waterDetector",
        product_numbers=("102065", "102074"),
        events=("waterPresent", *_SENSOR_COMMON),
        heartbeat_seconds=SENSOR_HEARTBEAT_SECONDS,
        description="Water detector: waterPresent on change.",
    ),
    DeviceType(
        name="ccon",
        product_numbers=("102076", "102077"),
        events=("connectionStatus", "ethernetStatus", "cellularStatus", "labelsChanged"),
        heartbeat_seconds=None,
        description=(
            "Cloud Connector: connectionStatus, ethernetStatus and cellularStatus on change; no periodic heartbeat."
        ),
    ),
    DeviceType(
        name="co2",
        product_numbers=("102140",),
        events=("co2", "pressure", "humidity", *_SENSOR_COMMON),
        heartbeat_seconds=SENSOR_HEARTBEAT_SECONDS,
        description=(
            "CO2 sensor: co2, pressure and humidity every heartbeat. Heartbeat 15 min by "
            "default, configurable down to 2.5 min."
        ),
    ),
    DeviceType(
        name="motion",
        product_numbers=("102141",),
        events=("motion", *_SENSOR_COMMON),
        heartbeat_seconds=SENSOR_HEARTBEAT_SECONDS,
        description="Motion sensor: motion on change.",
    ),
    DeviceType(
        name="deskOccupancy",
        product_numbers=("102142",),
        events=("deskOccupancy", *_SENSOR_COMMON),
        heartbeat_seconds=SENSOR_HEARTBEAT_SECONDS,
        description="Desk occupancy sensor: deskOccupancy on change.",
    ),
    DeviceType(
        name="contact",
        product_numbers=("102143",),
        events=("contact", *_SENSOR_COMMON),
        heartbeat_seconds=SENSOR_HEARTBEAT_SECONDS,
        description="Contact sensor: contact on change.",
    ),
)

_DEVICE_TYPES_BY_NAME: Final = {d.name: d for d in DEVICE_TYPES}


def device_type(name: str) -> DeviceType | None:
    """The DT device type called `name` ("temperature", "ccon", ...), or None."""
    return _DEVICE_TYPES_BY_NAME.get(name)


def _emitted_by(event: str) -> tuple[str, ...]:
    return tuple(d.name for d in DEVICE_TYPES if event in d.events)


# ---------------------------------------------------------------------------------------------
# Schema building blocks (each call returns fresh dicts: no schema shares a mutable part)


def _number() -> dict[str, Any]:
    return {"type": "number"}


def _integer() -> dict[str, Any]:
    return {"type": "integer"}


def _string() -> dict[str, Any]:
    return {"type": "string"}


def _time() -> dict[str, Any]:
    return {"type": "string", "format": "date-time"}


def _percent(kind: str = "integer") -> dict[str, Any]:
    return {"type": kind, "minimum": 0, "maximum": 100}


def _enum(*values: str) -> dict[str, Any]:
    return {"type": "string", "enum": list(values)}


def _array(items: dict[str, Any], max_items: int | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "array", "items": items}
    if max_items is not None:
        schema["maxItems"] = max_items
    return schema


def _object(
    properties: dict[str, dict[str, Any]],
    required: tuple[str, ...] = (),
    *,
    update_time: bool = False,
) -> dict[str, Any]:
    props = dict(properties)
    if update_time:
        props["updateTime"] = _time()
    schema: dict[str, Any] = {"type": "object", "properties": props}
    if required:
        schema["required"] = list(required)
    schema["additionalProperties"] = False
    return schema


def _data(properties: dict[str, dict[str, Any]], *required: str) -> dict[str, Any]:
    """The schema of a DT type's canonical data (optional `updateTime` allowed)."""
    return _object(properties, required, update_time=True)


def _errors() -> dict[str, Any]:
    return _array(_object({"code": _integer(), "message": _string()}))


def _state(*values: str) -> dict[str, Any]:
    return _data({"state": _enum(*values)}, "state")


_CONNECTIONS: Final = ("SDS", "ETHERNET", "CELLULAR", "OFFLINE")


# ---------------------------------------------------------------------------------------------
# The 19 event types. Description = the seed's trigger text.


def _dt(name: str, title: str, description: str, schema: dict[str, Any], *, state_change: bool = False) -> EventType:
    return EventType(
        name=name,
        family="dt",
        title=title,
        description=description,
        schema=schema,
        state_change=state_change,
        device_types=_emitted_by(name),
    )


SENSOR_EVENT_TYPES: Final[tuple[EventType, ...]] = (
    _dt("touch", "Touch", "When touched.", _data({})),
    _dt(
        "temperature",
        "Temperature",
        "Every periodic heartbeat and when touched.",
        _data(
            {
                "value": _number(),
                "samples": _array(
                    _object({"value": _number(), "sampleTime": _time()}, ("value", "sampleTime")),
                    MAX_SAMPLES,
                ),
                "isBackfilled": {"type": "boolean"},
            },
            "value",
        ),
    ),
    _dt(
        "objectPresent",
        "Object present",
        "When an object in close proximity appears or disappears (PRESENT/NOT_PRESENT state change).",
        _state("PRESENT", "NOT_PRESENT"),
        state_change=True,
    ),
    _dt(
        "humidity",
        "Humidity",
        "Every periodic heartbeat and when touched.",
        _data(
            {
                "temperature": _number(),
                "relativeHumidity": _percent("number"),
                "samples": _array(
                    _object(
                        {
                            "temperature": _number(),
                            "relativeHumidity": _percent("number"),
                            "sampleTime": _time(),
                        },
                        ("temperature", "relativeHumidity", "sampleTime"),
                    ),
                    MAX_SAMPLES,
                ),
                "isBackfilled": {"type": "boolean"},
            },
            "temperature",
            "relativeHumidity",
        ),
    ),
    _dt(
        "objectPresentCount",
        "Object present count",
        "Every periodic heartbeat: the total number of times the sensor has detected the "
        "appearance or disappearance of an object over its lifetime.",
        _data({"total": {"type": "integer", "minimum": 0}}, "total"),
    ),
    _dt(
        "touchCount",
        "Touch count",
        "Every periodic heartbeat: the total number of times the sensor has been touched over its lifetime.",
        _data({"total": {"type": "integer", "minimum": 0}}, "total"),
    ),
    _dt(
        "waterPresent",
        "Water present",
        "When the sensor detects the appearance or disappearance of water (PRESENT/NOT_PRESENT state change).",
        _state("PRESENT", "NOT_PRESENT"),
        state_change=True,
    ),
    _dt(
        "co2",
        "CO2",
        "Every periodic heartbeat: CO2 in parts per million.",
        _data({"ppm": _integer()}, "ppm"),
    ),
    _dt(
        "pressure",
        "Pressure",
        "Every periodic heartbeat: barometric pressure in Pascal.",
        _data({"pascal": _integer()}, "pascal"),
    ),
    _dt(
        "motion",
        "Motion",
        "MOTION_DETECTED / NO_MOTION_DETECTED state change.",
        _state("MOTION_DETECTED", "NO_MOTION_DETECTED"),
        state_change=True,
    ),
    _dt(
        "deskOccupancy",
        "Desk occupancy",
        "When the state changes between OCCUPIED and NOT_OCCUPIED.",
        _data(
            {
                "state": _enum("OCCUPIED", "NOT_OCCUPIED"),
                "remarks": _array(_enum("INCOMPLETE_DATA")),
            },
            "state",
        ),
        state_change=True,
    ),
    _dt(
        "contact",
        "Contact",
        "When the state of a contact sensor changes between OPEN and CLOSED.",
        _state("OPEN", "CLOSED"),
        state_change=True,
    ),
    _dt(
        "probeWireStatus",
        "Probe wire status",
        "When wires are plugged in or unplugged from a temperature probe sensor.",
        _state(
            "TWO_WIRE",
            "THREE_WIRE",
            "FOUR_WIRE",
            "INVALID_WIRE_CONFIGURATION",
            "INVALID_COEFFICIENT_CONFIGURATION",
        ),
        state_change=True,
    ),
    _dt(
        "networkStatus",
        "Network status",
        "Every periodic heartbeat and together with trigger-based events.",
        _data(
            {
                "signalStrength": _percent(),
                "rssi": _integer(),
                "cloudConnectors": _array(
                    _object(
                        {"id": _string(), "signalStrength": _percent(), "rssi": _integer()},
                        ("id",),
                    )
                ),
                "transmissionMode": _enum("LOW_POWER_STANDARD_MODE", "HIGH_POWER_BOOST_MODE"),
            },
            "signalStrength",
            "rssi",
        ),
    ),
    _dt(
        "batteryStatus",
        "Battery status",
        "Approximately once per day.",
        _data({"percentage": _percent()}, "percentage"),
    ),
    _dt(
        "labelsChanged",
        "Labels changed",
        "When a device label is added, modified, or removed.",
        _object(
            {
                "added": {"type": "object", "additionalProperties": _string()},
                "modified": {"type": "object", "additionalProperties": _string()},
                "removed": _array(_string()),
            }
        ),
    ),
    _dt(
        "connectionStatus",
        "Connection status",
        "Changes in connection for a Sensor or Cloud Connector.",
        _data(
            {"connection": _enum(*_CONNECTIONS), "available": _array(_enum(*_CONNECTIONS))},
            "connection",
        ),
        state_change=True,
    ),
    _dt(
        "ethernetStatus",
        "Ethernet status",
        "Changes in Cloud Connector ethernet connection.",
        _data({"macAddress": _string(), "ipAddress": _string(), "errors": _errors()}),
    ),
    _dt(
        "cellularStatus",
        "Cellular status",
        "Changes in Cloud Connector cellular connection.",
        _data({"signalStrength": _percent(), "errors": _errors()}),
    ),
)

# The seed's example of each type, as canonical data (wrapper and updateTime removed).
EXAMPLES: Final[dict[str, dict[str, Any]]] = {
    "touch": {},
    "temperature": {
        "value": 24.9,
        "samples": [
            {"value": 24.9, "sampleTime": "2021-05-16T08:15:48.223962Z"},
            {"value": 24.3, "sampleTime": "2021-05-16T08:15:18.318751Z"},
            {"value": 24.4, "sampleTime": "2021-05-16T08:14:48.872918Z"},
        ],
        "isBackfilled": False,
    },
    "objectPresent": {"state": "NOT_PRESENT"},
    "humidity": {"temperature": 22.45, "relativeHumidity": 17},
    "objectPresentCount": {"total": 4176},
    "touchCount": {"total": 469},
    "waterPresent": {"state": "PRESENT"},
    "co2": {"ppm": 499},
    "pressure": {"pascal": 98644},
    "motion": {"state": "MOTION_DETECTED"},
    "deskOccupancy": {"state": "NOT_OCCUPIED", "remarks": []},
    "contact": {"state": "OPEN"},
    "probeWireStatus": {"state": "THREE_WIRE"},
    "networkStatus": {
        "signalStrength": 45,
        "rssi": -83,
        "cloudConnectors": [{"id": "bdkjbo2v0000uk377c4g", "signalStrength": 45, "rssi": -83}],
        "transmissionMode": "LOW_POWER_STANDARD_MODE",
    },
    "batteryStatus": {"percentage": 100},
    "labelsChanged": {
        "added": {"label-key": "label-value"},
        "modified": {"label-key": "new-label-value"},
        "removed": ["remove-key1", "remove-key2"],
    },
    "connectionStatus": {"connection": "ETHERNET", "available": ["CELLULAR", "ETHERNET"]},
    "ethernetStatus": {
        "macAddress": "f0:b5:b7:00:0a:08",
        "ipAddress": "10.0.0.1",
        "errors": [{"code": 404, "message": "Not found"}],
    },
    "cellularStatus": {"signalStrength": 80, "errors": [{"code": 404, "message": "Not found"}]},
}
