"""The emulator: emulated devices of every type, publishing every event type, and refusals."""

from __future__ import annotations

import copy

import pytest

from fleetlog.core.catalog.dt import DEVICE_TYPES
from tests.dt.conftest import DT, Account, ok
from tests.dt.seed import SEED_EXAMPLES, expected
from tests.dt.test_auth import dt_error


@pytest.mark.parametrize("kind", [d.name for d in DEVICE_TYPES])
def test_create_get_update_list_and_delete_an_emulated_device_of_every_type(dt: DT, dev: Account, kind: str) -> None:
    made = ok(
        dt.client.post(
            "/emulator/v2/projects/plant/devices", json={"type": kind, "labels": {"name": "E"}}, headers=dev.headers
        )
    )
    device = made["name"].split("/")[-1]
    assert device.startswith("emu") and len(device) == 23
    assert made["type"] == kind and made["labels"] == {"name": "E"} and "productNumber" not in made
    url = f"/emulator/v2/projects/plant/devices/{device}"
    assert ok(dt.client.get(url, headers=dev.headers))["name"] == made["name"]
    updated = ok(dt.client.put(url, json={"labels": {"name": "F", "room": "2"}}, headers=dev.headers))
    assert updated["labels"] == {"name": "F", "room": "2"}
    listed = ok(dt.client.get("/emulator/v2/projects/plant/devices", headers=dev.headers))["devices"]
    assert [d["name"] for d in listed] == [made["name"]]
    assert ok(dt.client.get(f"/v2/projects/plant/devices/{device}", headers=dev.headers))["labels"]["room"] == "2"
    assert ok(dt.client.delete(url, headers=dev.headers)) == {}
    dt_error(dt.client.get(url, headers=dev.headers), 404)
    dt_error(dt.client.get(f"/v2/projects/plant/devices/{device}", headers=dev.headers), 404)


def test_an_unknown_device_type_is_refused(dt: DT, dev: Account) -> None:
    response = dt.client.post("/emulator/v2/projects/plant/devices", json={"type": "toaster"}, headers=dev.headers)
    assert dt_error(response, 400).startswith("type:")
    response = dt.client.post("/emulator/v2/projects/plant/devices", json={"kind": "touch"}, headers=dev.headers)
    assert dt_error(response, 400).startswith("kind:")


@pytest.mark.parametrize("event_type", sorted(SEED_EXAMPLES))
def test_each_seed_example_published_reads_back_identically(dt: DT, dev: Account, event_type: str) -> None:
    kind, body = SEED_EXAMPLES[event_type]
    device = dt.emulated(dev, "plant", kind)
    ok(dt.publish(dev, "plant", device, copy.deepcopy(body)))
    (event,) = dt.history(dev, "plant", device, eventTypes=event_type)
    assert event["eventType"] == event_type
    assert event["targetName"] == f"projects/plant/devices/{device}"
    assert event["data"] == expected(event_type, event["timestamp"])
    reported = ok(dt.client.get(f"/v2/projects/plant/devices/{device}", headers=dev.headers))["reported"]
    assert {event_type: reported[event_type]} == event["data"]


def test_labels_changed_cannot_be_published(dt: DT, dev: Account) -> None:
    device = dt.emulated(dev, "plant", "touch")
    message = dt_error(dt.publish(dev, "plant", device, {"labelsChanged": {"added": {"a": "b"}}}), 400)
    assert message.startswith("labelsChanged:")


@pytest.mark.parametrize(
    ("kind", "body", "field"),
    [
        ("touch", {"temperature": {"value": 1}}, "temperature"),  # a touch sensor has no thermometer
        ("touch", {"sneeze": {}}, "sneeze"),
        ("touch", {"touch": {}, "batteryStatus": {"percentage": 3}}, None),
        ("touch", {"touch": 5}, "touch"),
        ("temperature", {"temperature": {"value": "warm"}}, "temperature.value"),
        ("temperature", {"temperature": {"value": 3, "valeu": 3}}, "temperature.valeu"),
        ("temperature", {"temperature": {"value": 3, "samples": [{"value": 3}]}}, "temperature.samples[0].sampleTime"),
        ("humidity", {"humidity": {"temperature": 20, "relativeHumidity": 140}}, "humidity.relativeHumidity"),
        ("proximity", {"objectPresent": {"state": "MAYBE"}}, "objectPresent.state"),
        ("touch", {"batteryStatus": {"percentage": 101}}, "batteryStatus.percentage"),
        ("touch", {"connectionStatus": {"connection": "ETHERNET"}}, "connectionStatus.connection"),
        (
            "ccon",
            {"connectionStatus": {"connection": "CELLULAR", "available": ["ETHERNET", "CELLULAR"]}},
            "connectionStatus.connection",
        ),
    ],
)
def test_bad_events_are_400_naming_the_field_and_store_nothing(
    dt: DT, dev: Account, kind: str, body: dict[str, object], field: str | None
) -> None:
    device = dt.emulated(dev, "plant", kind)
    message = dt_error(dt.publish(dev, "plant", device, body), 400)
    if field is not None:
        assert message.startswith(field + ":"), message
    assert dt.history(dev, "plant", device) == []


def test_a_body_that_is_not_json_is_400(dt: DT, dev: Account) -> None:
    device = dt.emulated(dev, "plant", "touch")
    response = dt.client.post(
        f"/emulator/v2/projects/plant/devices/{device}:publish", content=b"{touch", headers=dev.headers
    )
    assert "not valid JSON" in dt_error(response, 400)


def test_publishing_to_a_device_that_is_not_emulated_is_404(dt: DT, dev: Account) -> None:
    made = dt.client.post(
        "/v1/tenants/acme/devices", json={"id": "real-1", "project": "plant", "type": "touch"}, headers=dt.op
    )
    assert made.status_code == 201, made.text
    dt_error(dt.publish(dev, "plant", "real-1", {"touch": {}}), 404)


def test_a_sensor_event_is_accompanied_by_a_network_status(dt: DT, dev: Account) -> None:
    device = dt.emulated(dev, "plant", "touch")
    ok(dt.publish(dev, "plant", device, {"networkStatus": SEED_EXAMPLES["networkStatus"][1]["networkStatus"]}))
    ok(dt.publish(dev, "plant", device, {"touch": {}}))
    events = dt.history(dev, "plant", device)
    assert [e["eventType"] for e in events] == ["networkStatus", "touch", "networkStatus"]
    assert events[0]["timestamp"] == events[1]["timestamp"]
    assert events[0]["data"]["networkStatus"]["cloudConnectors"] == [
        {"id": "bdkjbo2v0000uk377c4g", "signalStrength": 45, "rssi": -83}
    ]


def test_snake_case_fields_and_the_python_clients_spellings_are_understood(dt: DT, dev: Account) -> None:
    sensor = dt.emulated(dev, "plant", "humidity")
    ok(
        dt.publish(
            dev,
            "plant",
            sensor,
            {
                "networkStatus": {
                    "signal_strength": 60,
                    "rssi": -75,
                    "transmission_mode": "HIGH_POWER_BOOST_MODE",
                    "cloud_connectors": [{"id": "c1", "signalStrength": 60}],
                }
            },
        )
    )
    ok(
        dt.publish(
            dev,
            "plant",
            sensor,
            {
                "humidity": {
                    "temperature": 20,
                    "relativeHumidity": 40,
                    "is_backfilled": True,
                    "samples": [
                        {"celsius": 19, "relativeHumidity": 41, "sampleTime": "2024-01-01T00:00:00Z"},
                        {"celsius": 20, "relativeHumidity": 40, "sampleTime": "2024-01-01T00:15:00Z"},
                    ],
                }
            },
        )
    )
    _companion, humidity, network = dt.history(dev, "plant", sensor)
    assert network["eventType"] == "networkStatus"
    assert network["data"]["networkStatus"]["cloudConnectors"] == [{"id": "c1", "signalStrength": 60, "rssi": -75}]
    assert network["data"]["networkStatus"]["transmissionMode"] == "HIGH_POWER_BOOST_MODE"
    data = humidity["data"]["humidity"]
    assert data["isBackfilled"] is True
    assert [s["temperature"] for s in data["samples"]] == [20, 19]  # newest first


def test_a_cloud_connector_prefers_ethernet(dt: DT, dev: Account) -> None:
    ccon = dt.emulated(dev, "plant", "ccon")
    ok(dt.publish(dev, "plant", ccon, {"connectionStatus": {"available": ["CELLULAR", "ETHERNET"]}}))
    ok(dt.publish(dev, "plant", ccon, {"connectionStatus": {"available": ["CELLULAR"]}}))
    ok(dt.publish(dev, "plant", ccon, {"connectionStatus": {"available": []}}))
    connections = [e["data"]["connectionStatus"]["connection"] for e in dt.history(dev, "plant", ccon)]
    assert connections == ["OFFLINE", "CELLULAR", "ETHERNET"]
    reported = ok(dt.client.get(f"/v2/projects/plant/devices/{ccon}", headers=dev.headers))["reported"]
    assert reported["connectionStatus"]["connection"] == "OFFLINE"
