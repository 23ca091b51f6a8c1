"""The event examples of seeds/dt-sensor-events.txt, as DT shows them (the `data` field), and a
device type that emits each. (The seed's ethernetStatus and cellularStatus snippets have a
trailing comma; here they are valid JSON.)"""

from __future__ import annotations

from typing import Any

SEED_EXAMPLES: dict[str, tuple[str, dict[str, Any]]] = {
    "touch": ("touch", {"touch": {"updateTime": "2021-05-16T08:13:15.361624Z"}}),
    "temperature": (
        "temperature",
        {
            "temperature": {
                "value": 24.9,
                "samples": [
                    {"value": 24.9, "sampleTime": "2021-05-16T08:15:48.223962Z"},
                    {"value": 24.3, "sampleTime": "2021-05-16T08:15:18.318751Z"},
                    {"value": 24.4, "sampleTime": "2021-05-16T08:14:48.872918Z"},
                ],
                "updateTime": "2021-05-16T08:15:18.318751Z",
                "isBackfilled": False,
            }
        },
    ),
    "objectPresent": (
        "proximity",
        {"objectPresent": {"state": "NOT_PRESENT", "updateTime": "2021-05-16T08:37:10.711412Z"}},
    ),
    "humidity": (
        "humidity",
        {"humidity": {"temperature": 22.45, "relativeHumidity": 17, "updateTime": "2021-05-16T06:13:46.369000Z"}},
    ),
    "objectPresentCount": (
        "proximityCounter",
        {"objectPresentCount": {"total": 4176, "updateTime": "2021-05-16T08:23:43.209000Z"}},
    ),
    "touchCount": ("touchCounter", {"touchCount": {"total": 469, "updateTime": "2021-05-16T08:25:21.604000Z"}}),
    "waterPresent": (
        "waterDetector",
        {"waterPresent": {"state": "PRESENT", "updateTime": "2021-05-16T08:43:16.266000Z"}},
    ),
    "co2": ("co2", {"co2": {"ppm": 499, "updateTime": "2022-02-16T09:02:35.979000Z"}}),
    "pressure": ("co2", {"pressure": {"pascal": 98644, "updateTime": "2022-02-16T09:02:35.979000Z"}}),
    "motion": ("motion", {"motion": {"state": "MOTION_DETECTED", "updateTime": "2022-04-22T11:45:57.454551Z"}}),
    "deskOccupancy": (
        "deskOccupancy",
        {"deskOccupancy": {"state": "NOT_OCCUPIED", "remarks": [], "updateTime": "2022-05-30T14:23:50.728000Z"}},
    ),
    "contact": ("contact", {"contact": {"state": "OPEN", "updateTime": "2023-05-30T14:23:50.728000Z"}}),
    "probeWireStatus": (
        "temperature",
        {"probeWireStatus": {"state": "THREE_WIRE", "updateTime": "2023-05-30T14:23:50.728000Z"}},
    ),
    "networkStatus": (
        "temperature",
        {
            "networkStatus": {
                "signalStrength": 45,
                "rssi": -83,
                "updateTime": "2021-05-16T08:21:21.076013Z",
                "cloudConnectors": [{"id": "bdkjbo2v0000uk377c4g", "signalStrength": 45, "rssi": -83}],
                "transmissionMode": "LOW_POWER_STANDARD_MODE",
            }
        },
    ),
    "batteryStatus": ("touch", {"batteryStatus": {"percentage": 100, "updateTime": "2021-05-16T08:21:21.076013Z"}}),
    "connectionStatus": (
        "ccon",
        {
            "connectionStatus": {
                "connection": "ETHERNET",
                "available": ["CELLULAR", "ETHERNET"],
                "updateTime": "2021-05-16T08:21:21.076013Z",
            }
        },
    ),
    "ethernetStatus": (
        "ccon",
        {
            "ethernetStatus": {
                "macAddress": "f0:b5:b7:00:0a:08",
                "ipAddress": "10.0.0.1",
                "errors": [{"code": 404, "message": "Not found"}],
                "updateTime": "2021-05-16T08:21:21.076013Z",
            }
        },
    ),
    "cellularStatus": (
        "ccon",
        {
            "cellularStatus": {
                "signalStrength": 80,
                "errors": [{"code": 404, "message": "Not found"}],
                "updateTime": "2021-05-16T08:21:21.076013Z",
            }
        },
    ),
}

# What DT always renders beyond the seed's humidity snippet (its clients read these fields):
# one sample equal to the event's own values and time, and isBackfilled false.
RENDERED_EXTRA: dict[str, dict[str, Any]] = {"humidity": {"isBackfilled": False}}


def expected(event_type: str, timestamp: str) -> dict[str, Any]:
    """The `data` an event published from the seed example reads back as: the same fields and
    values, `updateTime` = the time fleetlog received it."""
    inner = {**SEED_EXAMPLES[event_type][1][event_type], **RENDERED_EXTRA.get(event_type, {})}
    if event_type == "humidity":
        inner["samples"] = [{"temperature": 22.45, "relativeHumidity": 17, "sampleTime": timestamp}]
    inner["updateTime"] = timestamp
    return {event_type: inner}
