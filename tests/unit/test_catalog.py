"""The event type catalog: counts, seed data, schema validation and its error paths, custom
types, Pelion outcomes and categories, search, and the generated reference page."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from fleetlog.core.catalog import Catalog, DeviceType, EventType, builtin_catalog, dt, pelion, span
from fleetlog.core.catalog.render import render
from fleetlog.core.errors import InvalidInput
from fleetlog.core.event import Outcome

DOCS = Path(__file__).resolve().parents[2] / "docs" / "event-types.md"

DT_NAMES = [
    "touch",
    "temperature",
    "objectPresent",
    "humidity",
    "objectPresentCount",
    "touchCount",
    "waterPresent",
    "co2",
    "pressure",
    "motion",
    "deskOccupancy",
    "contact",
    "probeWireStatus",
    "networkStatus",
    "batteryStatus",
    "labelsChanged",
    "connectionStatus",
    "ethernetStatus",
    "cellularStatus",
]

SPAN_NAMES = [
    "imeiMismatch",
    "imsiMismatch",
    "ciotConnect",
    "clientConnected",
    "clientDisconnected",
    "upstreamMessage",
    "downstreamMessage",
    "firmwareRequested",
    "firmwareCheck",
    "firmwareUpdateRequired",
    "firmwareCurrent",
    "firmwareStateChange",
    "blobUpload",
    "deviceCreated",
    "deviceUpdated",
    "deviceRemoved",
    "deviceMoved",
    "gatewayConnected",
    "gatewayDisconnected",
    "gatewayDeviceUpdate",
    "gatewayUpstreamMessage",
    "gatewayDownstreamMessage",
    "gatewayConfigUpdate",
    "gatewayCommError",
]

# The `data` field of each example in seeds/dt-sensor-events.txt, as DT sends it (wrapped,
# with updateTime). labelsChanged is flat. The seed's "..." and trailing commas are left out.
SEED_DT_DATA: dict[str, dict[str, Any]] = {
    "touch": {"touch": {"updateTime": "2021-05-16T08:13:15.361624Z"}},
    "temperature": {
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
    "objectPresent": {"objectPresent": {"state": "NOT_PRESENT", "updateTime": "2021-05-16T08:37:10.711412Z"}},
    "humidity": {
        "humidity": {
            "temperature": 22.45,
            "relativeHumidity": 17,
            "updateTime": "2021-05-16T06:13:46.369000Z",
        }
    },
    "objectPresentCount": {"objectPresentCount": {"total": 4176, "updateTime": "2021-05-16T08:23:43.209000Z"}},
    "touchCount": {"touchCount": {"total": 469, "updateTime": "2021-05-16T08:25:21.604000Z"}},
    "waterPresent": {"waterPresent": {"state": "PRESENT", "updateTime": "2021-05-16T08:43:16.266000Z"}},
    "co2": {"co2": {"ppm": 499, "updateTime": "2022-02-16T09:02:35.979000Z"}},
    "pressure": {"pressure": {"pascal": 98644, "updateTime": "2022-02-16T09:02:35.979000Z"}},
    "motion": {"motion": {"state": "MOTION_DETECTED", "updateTime": "2022-04-22T11:45:57.454551Z"}},
    "deskOccupancy": {
        "deskOccupancy": {
            "state": "NOT_OCCUPIED",
            "remarks": [],
            "updateTime": "2022-05-30T14:23:50.728000Z",
        }
    },
    "contact": {"contact": {"state": "OPEN", "updateTime": "2023-05-30T14:23:50.728000Z"}},
    "probeWireStatus": {"probeWireStatus": {"state": "THREE_WIRE", "updateTime": "2023-05-30T14:23:50.728000Z"}},
    "networkStatus": {
        "networkStatus": {
            "signalStrength": 45,
            "rssi": -83,
            "updateTime": "2021-05-16T08:21:21.076013Z",
            "cloudConnectors": [{"id": "bdkjbo2v0000uk377c4g", "signalStrength": 45, "rssi": -83}],
            "transmissionMode": "LOW_POWER_STANDARD_MODE",
        }
    },
    "batteryStatus": {"batteryStatus": {"percentage": 100, "updateTime": "2021-05-16T08:21:21.076013Z"}},
    "labelsChanged": {
        "added": {"label-key": "label-value"},
        "modified": {"label-key": "new-label-value"},
        "removed": ["remove-key1", "remove-key2"],
    },
    "connectionStatus": {
        "connectionStatus": {
            "connection": "ETHERNET",
            "available": ["CELLULAR", "ETHERNET"],
            "updateTime": "2021-05-16T08:21:21.076013Z",
        }
    },
    "ethernetStatus": {
        "ethernetStatus": {
            "macAddress": "f0:b5:b7:00:0a:08",
            "ipAddress": "10.0.0.1",
            "errors": [{"code": 404, "message": "Not found"}],
            "updateTime": "2021-05-16T08:21:21.076013Z",
        }
    },
    "cellularStatus": {
        "cellularStatus": {
            "signalStrength": 80,
            "errors": [{"code": 404, "message": "Not found"}],
            "updateTime": "2021-05-16T08:21:21.076013Z",
        }
    },
}


def canonical(name: str) -> dict[str, Any]:
    """The seed's DT data for `name` as fleetlog stores it: unwrapped, without updateTime."""
    body = copy.deepcopy(SEED_DT_DATA[name])
    if name == "labelsChanged":
        return body
    inner: dict[str, Any] = body[name]
    inner.pop("updateTime", None)
    return inner


def invalid(name: str, data: Any, custom: dict[str, EventType] | None = None) -> InvalidInput:
    with pytest.raises(InvalidInput) as info:
        builtin_catalog().validate(name, data, custom)
    return info.value


T1 = "2021-05-16T08:15:48.223962Z"


# --- counts and data ------------------------------------------------------------------------


def test_family_counts_and_names() -> None:
    cat = builtin_catalog()
    assert [t.name for t in cat.family("dt")] == DT_NAMES
    assert [t.name for t in cat.family("span")] == SPAN_NAMES
    codes = [t.name for t in cat.family("pelion")]
    assert codes[:13] == [f"SYS_{n}" for n in range(100, 113)]
    assert [c for c in codes if "_OK_" in c] == ["UPD2_OK_18"]
    assert [c for c in codes if "_FAIL_" in c] == [f"UPD4_FAIL_{n}" for n in range(21, 50)]
    assert len(codes) == 13 + 1 + 29
    assert len(cat.all()) == len(cat) == 19 + 24 + 43
    assert cat.family("custom") == []


def test_module_tuples_match_catalog() -> None:
    assert len(dt.SENSOR_EVENT_TYPES) == 19
    assert len(span.ACTIVITY_EVENT_TYPES) == 24
    assert len(pelion.EVENT_LOG_CODES) == 43
    assert builtin_catalog() is builtin_catalog()
    for et in builtin_catalog().all():
        assert builtin_catalog().get(et.name) is et


def test_every_type_has_title_and_family() -> None:
    for et in builtin_catalog().all():
        assert et.title, et.name
        assert et.family in {"dt", "span", "pelion"}
        if et.family in {"dt", "span"}:
            assert et.outcome is Outcome.INFO
            assert et.category is None
            assert et.description


def test_duplicate_names_refused() -> None:
    t = EventType(name="x", family="custom", title="X")
    with pytest.raises(ValueError, match="twice"):
        Catalog([t, t])


# --- DT ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", DT_NAMES)
def test_seed_examples_validate(name: str) -> None:
    et = builtin_catalog().validate(name, canonical(name))
    assert et is not None and et.name == name and et.family == "dt"


@pytest.mark.parametrize("name", DT_NAMES)
def test_module_examples_equal_seed(name: str) -> None:
    assert dt.EXAMPLES[name] == canonical(name)


@pytest.mark.parametrize("name", [n for n in DT_NAMES if n != "labelsChanged"])
def test_update_time_echo_allowed_but_checked(name: str) -> None:
    data = canonical(name)
    data["updateTime"] = T1
    assert builtin_catalog().validate(name, data) is not None
    data["updateTime"] = "yesterday"
    err = invalid(name, data)
    assert err.field == "data.updateTime"
    assert err.message == "must be a valid date-time"


def test_wrapped_dt_body_is_refused() -> None:
    err = invalid("temperature", SEED_DT_DATA["temperature"])
    assert (err.field, err.message) == ("data.value", "is required")
    err = invalid("touch", SEED_DT_DATA["touch"])
    assert (err.field, err.message) == ("data.touch", "unknown field")


def test_labels_changed_has_no_update_time() -> None:
    err = invalid("labelsChanged", {"added": {}, "updateTime": T1})
    assert (err.field, err.message) == ("data.updateTime", "unknown field")
    err = invalid("labelsChanged", {"added": {"k": 1}})
    assert (err.field, err.message) == ("data.added.k", "must be a string")


def test_wrong_type_names_exact_path() -> None:
    data = canonical("temperature")
    data["samples"][1]["value"] = "24.3"
    err = invalid("temperature", data)
    assert err.field == "data.samples[1].value"
    assert err.message == "must be a number"

    err = invalid("temperature", {"value": True})
    assert (err.field, err.message) == ("data.value", "must be a number")

    err = invalid("co2", {"ppm": 499.5})
    assert (err.field, err.message) == ("data.ppm", "must be an integer")

    err = invalid("temperature", {"value": 1, "isBackfilled": "no"})
    assert (err.field, err.message) == ("data.isBackfilled", "must be a boolean")

    err = invalid("ethernetStatus", {"errors": [{"code": "404"}]})
    assert (err.field, err.message) == ("data.errors[0].code", "must be an integer")


def test_missing_required_names_the_field() -> None:
    err = invalid("temperature", {"samples": []})
    assert (err.field, err.message) == ("data.value", "is required")
    err = invalid("humidity", {"temperature": 22.0})
    assert (err.field, err.message) == ("data.relativeHumidity", "is required")
    err = invalid("temperature", {"value": 1, "samples": [{"value": 1}]})
    assert (err.field, err.message) == ("data.samples[0].sampleTime", "is required")
    err = invalid("networkStatus", {"signalStrength": 45})
    assert (err.field, err.message) == ("data.rssi", "is required")
    for name, field in [
        ("objectPresent", "state"),
        ("objectPresentCount", "total"),
        ("touchCount", "total"),
        ("co2", "ppm"),
        ("pressure", "pascal"),
        ("batteryStatus", "percentage"),
        ("connectionStatus", "connection"),
        ("probeWireStatus", "state"),
    ]:
        err = invalid(name, {})
        assert (err.field, err.message) == (f"data.{field}", "is required"), name


def test_touch_has_no_fields() -> None:
    assert builtin_catalog().validate("touch", {}) is not None
    err = invalid("touch", {"value": 1})
    assert (err.field, err.message) == ("data.value", "unknown field")


def test_unknown_field_is_named() -> None:
    err = invalid("temperature", {"value": 1, "valeu": 2})
    assert (err.field, err.message) == ("data.valeu", "unknown field")
    err = invalid("networkStatus", {"signalStrength": 1, "rssi": -1, "cloud_connectors": []})
    assert (err.field, err.message) == ("data.cloud_connectors", "unknown field")
    err = invalid("temperature", {"value": 1, "samples": [{"value": 1, "sampleTime": T1, "x": 0}]})
    assert (err.field, err.message) == ("data.samples[0].x", "unknown field")


@pytest.mark.parametrize(
    ("name", "data", "field", "message"),
    [
        (
            "objectPresent",
            {"state": "present"},
            "data.state",
            "must be one of PRESENT, NOT_PRESENT",
        ),
        ("waterPresent", {"state": "WET"}, "data.state", "must be one of PRESENT, NOT_PRESENT"),
        (
            "motion",
            {"state": "MOTION"},
            "data.state",
            "must be one of MOTION_DETECTED, NO_MOTION_DETECTED",
        ),
        ("deskOccupancy", {"state": "FREE"}, "data.state", "must be one of OCCUPIED, NOT_OCCUPIED"),
        (
            "deskOccupancy",
            {"state": "OCCUPIED", "remarks": ["LOW_BATTERY"]},
            "data.remarks[0]",
            "must be one of INCOMPLETE_DATA",
        ),
        ("contact", {"state": "AJAR"}, "data.state", "must be one of OPEN, CLOSED"),
        (
            "probeWireStatus",
            {"state": "ONE_WIRE"},
            "data.state",
            "must be one of TWO_WIRE, THREE_WIRE, FOUR_WIRE, INVALID_WIRE_CONFIGURATION, "
            "INVALID_COEFFICIENT_CONFIGURATION",
        ),
        (
            "connectionStatus",
            {"connection": "WIFI"},
            "data.connection",
            "must be one of SDS, ETHERNET, CELLULAR, OFFLINE",
        ),
        (
            "connectionStatus",
            {"connection": "OFFLINE", "available": ["SDS", "LTE"]},
            "data.available[1]",
            "must be one of SDS, ETHERNET, CELLULAR, OFFLINE",
        ),
        (
            "networkStatus",
            {"signalStrength": 1, "rssi": -1, "transmissionMode": "TURBO"},
            "data.transmissionMode",
            "must be one of LOW_POWER_STANDARD_MODE, HIGH_POWER_BOOST_MODE",
        ),
    ],
)
def test_enum_violations(name: str, data: dict[str, Any], field: str, message: str) -> None:
    err = invalid(name, data)
    assert (err.field, err.message) == (field, message)


def test_percentages_are_bounded() -> None:
    err = invalid("batteryStatus", {"percentage": 101})
    assert (err.field, err.message) == ("data.percentage", "must be at most 100")
    err = invalid("networkStatus", {"signalStrength": -1, "rssi": -90})
    assert (err.field, err.message) == ("data.signalStrength", "must be at least 0")
    err = invalid("humidity", {"temperature": 20, "relativeHumidity": 100.5})
    assert (err.field, err.message) == ("data.relativeHumidity", "must be at most 100")
    err = invalid("cellularStatus", {"signalStrength": 120})
    assert err.field == "data.signalStrength"
    err = invalid(
        "networkStatus",
        {"signalStrength": 1, "rssi": -1, "cloudConnectors": [{"id": "c", "signalStrength": 200}]},
    )
    assert err.field == "data.cloudConnectors[0].signalStrength"
    assert builtin_catalog().validate("humidity", {"temperature": 20, "relativeHumidity": 55.5})


def test_samples_at_most_thirty() -> None:
    sample = {"value": 1.0, "sampleTime": T1}
    assert builtin_catalog().validate("temperature", {"value": 1.0, "samples": [sample] * 30})
    err = invalid("temperature", {"value": 1.0, "samples": [sample] * 31})
    assert (err.field, err.message) == ("data.samples", "must have at most 30 items")


def test_humidity_samples_and_backfill() -> None:
    data = {
        "temperature": 22.5,
        "relativeHumidity": 40,
        "samples": [{"temperature": 22.5, "relativeHumidity": 40, "sampleTime": T1}],
        "isBackfilled": True,
    }
    assert builtin_catalog().validate("humidity", data) is not None
    data["samples"] = [{"temperature": 22.5, "sampleTime": T1}]
    err = invalid("humidity", data)
    assert (err.field, err.message) == ("data.samples[0].relativeHumidity", "is required")


def test_device_types() -> None:
    names = [d.name for d in dt.DEVICE_TYPES]
    assert names == [
        "temperature",
        "proximity",
        "touch",
        "humidity",
        "proximityCounter",
        "touchCounter",
        "waterDetector",
        "ccon",
        "co2",
        "motion",
        "deskOccupancy",
        "contact",
    ]
    ccon = dt.device_type("ccon")
    assert isinstance(ccon, DeviceType)
    assert ccon.heartbeat_seconds is None
    assert {"connectionStatus", "ethernetStatus", "cellularStatus"} <= set(ccon.events)
    assert "networkStatus" not in ccon.events and "batteryStatus" not in ccon.events
    assert dt.device_type("nope") is None
    temperature = dt.device_type("temperature")
    assert temperature is not None and temperature.heartbeat_seconds == 900
    assert "102067" in temperature.product_numbers
    assert {"temperature", "touch", "probeWireStatus"} <= set(temperature.events)
    for device in dt.DEVICE_TYPES:
        assert device.product_numbers and device.description
        assert set(device.events) <= set(DT_NAMES), device.name
        assert "connectionStatus" in device.events and "labelsChanged" in device.events
        if device.name != "ccon":
            assert device.heartbeat_seconds == 900
            assert {"networkStatus", "batteryStatus"} <= set(device.events)


def test_event_device_types_consistent_with_device_table() -> None:
    cat = builtin_catalog()
    sensors = {d.name for d in dt.DEVICE_TYPES} - {"ccon"}
    for et in cat.family("dt"):
        emitters = {d.name for d in dt.DEVICE_TYPES if et.name in d.events}
        assert set(et.device_types) == emitters, et.name
    assert set(cat.get("networkStatus").device_types) == sensors  # type: ignore[union-attr]
    assert set(cat.get("connectionStatus").device_types) == sensors | {"ccon"}  # type: ignore[union-attr]
    assert cat.get("probeWireStatus").device_types == ("temperature",)  # type: ignore[union-attr]
    assert cat.get("ethernetStatus").device_types == ("ccon",)  # type: ignore[union-attr]
    assert cat.get("co2").device_types == ("co2",)  # type: ignore[union-attr]


# --- generic validation -------------------------------------------------------------------


@pytest.mark.parametrize("data", [None, [], "x", 1, 1.5, True, [{"value": 1}]])
def test_data_must_be_an_object(data: Any) -> None:
    for name in ["temperature", "SYS_112", "upstreamMessage", "no-such-type"]:
        err = invalid(name, data)
        assert (err.field, err.message) == ("data", "must be a JSON object")


def test_unknown_type_accepts_any_object() -> None:
    cat = builtin_catalog()
    assert cat.validate("no-such-type", {"anything": [1, {"x": None}]}) is None
    assert cat.validate("no-such-type", {}, {}) is None
    assert cat.get("no-such-type") is None


def test_validate_does_not_change_data() -> None:
    data = canonical("networkStatus")
    before = copy.deepcopy(data)
    builtin_catalog().validate("networkStatus", data)
    assert data == before


def test_invalid_input_str_has_field_and_reason() -> None:
    err = invalid("co2", {"ppm": "high"})
    assert str(err) == "data.ppm: must be an integer"


# --- Span ----------------------------------------------------------------------------------


def test_span_data_is_a_string_map() -> None:
    cat = builtin_catalog()
    assert cat.validate("upstreamMessage", {"bytes": "9", "transport": "unspecified"})
    assert cat.validate("clientConnected", {"id": "certificate"})
    assert cat.validate("clientDisconnected", {})
    err = invalid("upstreamMessage", {"bytes": 9})
    assert (err.field, err.message) == ("data.bytes", "must be a string")


def test_span_data_keys_documented() -> None:
    assert set(span.DATA_KEYS) == set(SPAN_NAMES)
    assert span.DATA_KEYS["clientConnected"] == ("id",)
    assert span.DATA_KEYS["upstreamMessage"] == ("bytes", "transport")
    assert span.DATA_KEYS["deviceMoved"] == ("from", "to")
    assert span.DATA_KEYS["gatewayCommError"] == ("gatewayId", "error")
    for et in builtin_catalog().family("span"):
        for key in span.DATA_KEYS[et.name]:
            assert f"{key} (" in et.description, (et.name, key)
        if not span.DATA_KEYS[et.name]:
            assert et.description.endswith("Data: none.")
    for name, keys in span.DATA_KEYS.items():
        if name.startswith("gateway"):
            assert keys[0] == "gatewayId", name


def test_span_descriptions_are_seed_text() -> None:
    cat = builtin_catalog()
    up = cat.get("upstreamMessage")
    assert up is not None
    assert up.description.startswith(
        "A device has sent a message to Span, either via the Internet or the mobile network."
    )
    moved = cat.get("deviceMoved")
    assert moved is not None
    assert moved.description.startswith("A device is moved from one collection to another.")
    assert moved.state_change is True


# --- Pelion --------------------------------------------------------------------------------


def test_pelion_outcomes() -> None:
    cat = builtin_catalog()
    expected = {
        "SUCCESS": {"SYS_112", "UPD2_OK_18"},
        "FAIL": {"SYS_101", "SYS_103", "SYS_104", "SYS_111"} | {f"UPD4_FAIL_{n}" for n in range(21, 50)},
        "SKIPPED": {"SYS_110"},
        "INFO": {"SYS_100", "SYS_102", "SYS_105", "SYS_106", "SYS_107", "SYS_108", "SYS_109"},
    }
    for outcome, codes in expected.items():
        assert {t.name for t in cat.family("pelion") if t.outcome == outcome} == codes


def test_pelion_specific_codes() -> None:
    cat = builtin_catalog()
    sys110 = cat.get("SYS_110")
    sys112 = cat.get("SYS_112")
    fail24 = cat.get("UPD4_FAIL_24")
    fail22 = cat.get("UPD4_FAIL_22")
    fail33 = cat.get("UPD4_FAIL_33")
    ok18 = cat.get("UPD2_OK_18")
    assert sys110 is not None and sys112 is not None and fail24 is not None
    assert fail22 is not None and fail33 is not None and ok18 is not None
    assert (sys110.outcome, sys110.category, sys110.state_change) == (
        Outcome.SKIPPED,
        "SKIPPED",
        False,
    )
    assert sys110.title == "Device already at desired state."
    assert (sys112.outcome, sys112.category, sys112.state_change) == (
        Outcome.SUCCESS,
        "SUCCESS",
        True,
    )
    assert sys112.title == "Device reached desired state."
    assert (fail24.outcome, fail24.category, fail24.state_change) == (
        Outcome.FAIL,
        "FAIL_NETWORK",
        True,
    )
    assert fail24.title == "Connection lost during download."
    assert fail24.description == ("Network connection was lost during the download of the updated image.")
    assert fail24.corrective_action == "Check the device's connectivity."
    assert fail22.category == "FAIL_MANIFEST_REJECTED"
    assert fail22.corrective_action == (
        "Check manifest generation. Check that the correct manifest was used in the campaign."
    )
    assert fail33.category == "FAIL_DEVICE"
    assert ok18.corrective_action == "" and ok18.outcome is Outcome.SUCCESS
    assert ok18.description == "The firmware image has been updated successfully."
    sys100 = cat.get("SYS_100")
    assert sys100 is not None and sys100.category == "FAIL_SERVICE"
    assert sys100.outcome is Outcome.INFO
    assert sys100.title == "Service error: Device could not be reached."


def test_pelion_categories_and_state_change() -> None:
    cat = builtin_catalog()
    manifest = {21, 22, 23, 25, 27, 28, 29, 30, 31, 32, 39, 46, 47, 48, 49}
    network = {24, 26, 45}
    for n in range(21, 50):
        et = cat.get(f"UPD4_FAIL_{n}")
        assert et is not None
        assert et.title and et.description and et.corrective_action, n
        assert et.schema is None
        if n in manifest:
            assert et.category == "FAIL_MANIFEST_REJECTED", n
        elif n in network:
            assert et.category == "FAIL_NETWORK", n
        else:
            assert et.category == "FAIL_DEVICE", n
    changing = {"SYS_105", "SYS_106", "SYS_107", "SYS_111", "SYS_112", "UPD2_OK_18"}
    for et in cat.family("pelion"):
        assert et.category in pelion.CATEGORIES
        assert et.state_change == (et.name in changing or "_FAIL_" in et.name), et.name
    # Pelion data is any object.
    assert cat.validate("SYS_112", {"campaign_id": "0" * 32, "n": 1}) is not None


def test_message_type() -> None:
    assert pelion.message_type("SUCCESS") is Outcome.SUCCESS
    assert pelion.message_type("FAIL") is Outcome.FAIL
    assert pelion.message_type("SKIPPED") is Outcome.SKIPPED
    assert pelion.message_type("INFO") is Outcome.INFO
    assert pelion.message_type(pelion.UNDETERMINED_ALIAS) is Outcome.INFO
    assert pelion.UNDETERMINED_ALIAS == "UNDETERMINED"
    assert pelion.message_type("fail") is Outcome.FAIL
    with pytest.raises(InvalidInput) as info:
        pelion.message_type("BROKEN")
    assert info.value.field == "event_type_description"


# --- custom types ----------------------------------------------------------------------------

METER = EventType(
    name="meterReading",
    family="custom",
    title="Meter reading",
    schema={
        "type": "object",
        "properties": {
            "kwh": {"type": "number", "minimum": 0},
            "phase": {"type": "string", "enum": ["L1", "L2", "L3"]},
        },
        "required": ["kwh"],
        "additionalProperties": False,
    },
)


def test_custom_types_validate() -> None:
    cat = builtin_catalog()
    custom = {METER.name: METER}
    assert cat.get("meterReading") is None
    assert cat.get("meterReading", custom) is METER
    assert cat.validate("meterReading", {"kwh": 1.5, "phase": "L2"}, custom) is METER
    err = invalid("meterReading", {"phase": "L1"}, custom)
    assert (err.field, err.message) == ("data.kwh", "is required")
    err = invalid("meterReading", {"kwh": -1}, custom)
    assert (err.field, err.message) == ("data.kwh", "must be at least 0")
    err = invalid("meterReading", {"kwh": 1, "phase": "L4"}, custom)
    assert (err.field, err.message) == ("data.phase", "must be one of L1, L2, L3")
    err = invalid("meterReading", {"kwh": 1, "volts": 230}, custom)
    assert (err.field, err.message) == ("data.volts", "unknown field")
    err = invalid("meterReading", [], custom)
    assert err.field == "data"


def test_custom_type_without_schema_accepts_any_object() -> None:
    free = EventType(name="free", family="custom", title="Free")
    assert builtin_catalog().validate("free", {"x": [1, 2]}, {"free": free}) is free


def test_custom_cannot_override_builtin() -> None:
    fake = EventType(
        name="temperature",
        family="custom",
        title="Fake",
        schema={"type": "object", "properties": {"value": {"type": "string"}}},
    )
    cat = builtin_catalog()
    got = cat.get("temperature", {"temperature": fake})
    assert got is not None and got.family == "dt"
    assert cat.validate("temperature", {"value": 1.0}, {"temperature": fake}) is not fake
    err = invalid("temperature", {"value": "warm"}, {"temperature": fake})
    assert err.field == "data.value"


def test_changed_custom_schema_recompiles() -> None:
    cat = Catalog(dt.SENSOR_EVENT_TYPES)
    v1 = EventType(
        name="t",
        family="custom",
        title="T",
        schema={"type": "object", "properties": {"a": {"type": "integer"}}},
    )
    v2 = EventType(
        name="t",
        family="custom",
        title="T",
        schema={"type": "object", "properties": {"a": {"type": "string"}}},
    )
    assert cat.validate("t", {"a": 1}, {"t": v1}) is v1
    with pytest.raises(InvalidInput):
        cat.validate("t", {"a": 1}, {"t": v2})
    assert cat.validate("t", {"a": "x"}, {"t": v2}) is v2
    # An equal schema in a new object (a type reloaded from storage) behaves the same.
    v1_again = EventType(
        name="t",
        family="custom",
        title="T",
        schema={"type": "object", "properties": {"a": {"type": "integer"}}},
    )
    with pytest.raises(InvalidInput):
        cat.validate("t", {"a": "x"}, {"t": v1_again})


def test_custom_type_with_broken_schema_is_reported() -> None:
    broken = EventType(name="b", family="custom", title="B", schema={"type": "objct"})
    with pytest.raises(InvalidInput) as info:
        builtin_catalog().validate("b", {}, {"b": broken})
    assert info.value.field == "schema"


def test_custom_schema_error_messages() -> None:
    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string", "minLength": 2, "maxLength": 4, "pattern": "^[a-z]+$"},
            "tags": {"type": "array", "minItems": 1, "uniqueItems": True},
            "n": {"type": ["integer", "null"], "exclusiveMaximum": 10, "multipleOf": 2},
            "k": {"const": "K"},
        },
    }
    custom = {"c": EventType(name="c", family="custom", title="C", schema=schema)}
    cases = [
        ({"name": "a"}, "data.name", "must be at least 2 characters long"),
        ({"name": "abcde"}, "data.name", "must be at most 4 characters long"),
        ({"name": "AB"}, "data.name", "must match the pattern ^[a-z]+$"),
        ({"tags": []}, "data.tags", "must have at least 1 items"),
        ({"tags": [1, 1]}, "data.tags", "must not contain duplicate items"),
        ({"n": "x"}, "data.n", "must be an integer or null"),
        ({"n": 10}, "data.n", "must be less than 10"),
        ({"n": 3}, "data.n", "must be a multiple of 2"),
        ({"k": "J"}, "data.k", "must be K"),
    ]
    for data, field, message in cases:
        err = invalid("c", data, custom)
        assert (err.field, err.message) == (field, message), data
    assert builtin_catalog().validate("c", {"name": "ab", "n": None, "k": "K"}, custom)


# --- check_custom_schema -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "schema",
    [
        None,
        {},
        {"type": "object"},
        {"type": "object", "properties": {"x": {"type": "string", "format": "date-time"}}},
        {
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "definitions": {"v": {"type": "number"}},
            "properties": {"v": {"$ref": "#/definitions/v"}},
        },
        METER.schema,
    ],
)
def test_check_custom_schema_accepts(schema: Any) -> None:
    Catalog.check_custom_schema(schema)


@pytest.mark.parametrize(
    "schema",
    [
        [],
        "object",
        1,
        {"type": "string"},
        {"type": "array"},
        {"type": ["object", "null"]},
        {"type": "object", "properties": {"a": {"type": "strin"}}},
        {"type": "object", "properties": {"a": 5}},
        {"type": "object", "properties": [1]},
        {"type": "object", "required": "a"},
        {"type": "object", "additionalProperties": 5},
        {"type": "object", "properties": {"a": {"pattern": "("}}},
        {"type": "object", "properties": {"a": {"maximum": "x"}}},
        {"type": "object", "properties": {"a": {"multipleOf": 0}}},
        {"$ref": "#/nowhere"},
        {"type": "object", "properties": {"a": {"$ref": "http://example.com/s.json"}}},
        {"$id": "http://example.com/root.json", "type": "object"},
        {"$schema": "http://json-schema.org/draft-04/schema#", "type": "object"},
        {"type": "object", "properties": {"a": {"enum": [object()]}}},
        {"type": "object", "description": "x" * 70_000},
    ],
)
def test_check_custom_schema_rejects(schema: Any) -> None:
    with pytest.raises(InvalidInput) as info:
        Catalog.check_custom_schema(schema)
    assert info.value.field == "schema"
    assert info.value.message


def test_check_custom_schema_rejects_deep_nesting() -> None:
    schema: dict[str, Any] = {"type": "object"}
    node = schema
    for _ in range(40):
        child: dict[str, Any] = {"type": "object"}
        node["properties"] = {"a": child}
        node = child
    with pytest.raises(InvalidInput) as info:
        Catalog.check_custom_schema(schema)
    assert "deeper" in info.value.message


# --- search --------------------------------------------------------------------------------


def test_search() -> None:
    cat = builtin_catalog()
    names = [t.name for t in cat.search("temperature")]
    assert names[0] == "temperature"
    assert "probeWireStatus" in names  # description mentions a temperature probe
    assert [t.name for t in cat.search("TOUCH")][:2] == ["touch", "touchCount"]
    assert [t.name for t in cat.search("sys_110")] == ["SYS_110"]
    assert [t.name for t in cat.search("already at desired")] == ["SYS_110"]
    assert {t.name for t in cat.search("gateway")} >= {n for n in SPAN_NAMES if n.startswith("gateway")}
    assert cat.search("zzz-no-match") == []
    # Name matches rank before description matches; catalog order within a rank.
    ranked = [t.name for t in cat.search("firmware")]
    assert ranked == [
        "firmwareRequested",
        "firmwareCheck",
        "firmwareUpdateRequired",
        "firmwareCurrent",
        "firmwareStateChange",
        "UPD2_OK_18",
        "UPD4_FAIL_27",
        "UPD4_FAIL_32",
    ]
    assert "UPD2_OK_18" in ranked  # "The firmware image has been updated successfully."


# --- docs --------------------------------------------------------------------------------------


def test_docs_page_matches_render() -> None:
    assert DOCS.read_text(encoding="utf-8") == render(), (
        "docs/event-types.md is stale: run `.venv/bin/python -m fleetlog.core.catalog.render > docs/event-types.md`"
    )


def test_render_mentions_every_type() -> None:
    page = render()
    for et in builtin_catalog().all():
        assert f"`{et.name}`" in page, et.name
    assert "| `UPD4_FAIL_24` | FAIL | FAIL_NETWORK | yes | Connection lost during download." in page
    assert "| `samples[].sampleTime` | string | yes | RFC 3339 date-time |" in page
