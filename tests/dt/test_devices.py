"""/v2 devices: get (also under project -), list with every filter, order_by and both page
parameter spellings, `reported`, labels through devices:batchUpdate, devices:transfer."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from tests.dt.conftest import DT, Account, ok
from tests.dt.test_auth import dt_error


def names(page: dict[str, Any]) -> list[str]:
    return [d["name"].split("/")[-1] for d in page["devices"]]


def listing(dt: DT, account: Account, project: str = "plant", **params: Any) -> dict[str, Any]:
    return ok(dt.client.get(f"/v2/projects/{project}/devices", params=params, headers=account.headers))  # type: ignore[no-any-return]


@pytest.fixture
def fleet(dt: DT) -> dict[str, str]:
    """Registry devices with product numbers, labels and types, created by the operator."""
    devices = [
        ("t1", "plant", "temperature", {"name": "Freezer", "room": "cold"}, "102067"),
        ("t2", "plant", "temperature", {"name": "Oven", "room": "hot"}, "102058"),
        ("h1", "plant", "humidity", {"name": "Hall"}, "102062"),
        ("c1", "plant", "ccon", {}, "102076"),
        ("o1", "office", "touch", {"name": "Desk"}, "102060"),
    ]
    for device, project, kind, labels, _ in devices:
        made = dt.client.post(
            "/v1/tenants/acme/devices",
            headers=dt.op,
            json={"id": device, "project": project, "type": kind, "labels": labels},
        )
        assert made.status_code == 201, made.text
    # Product numbers are device attributes, which /v1 does not write: set them in the registry.
    directory = dt.client.app.state.services.directory  # type: ignore[attr-defined]
    portal = dt.client.portal  # type: ignore[attr-defined]
    for device, _, _, _, number in devices:
        found = portal.call(directory.device, "acme", device)
        portal.call(directory.update_device, msgspec.structs.replace(found, attrs={"productNumber": number}))
    return {d[0]: d[1] for d in devices}


def test_get_a_device_in_its_project_or_under_dash(dt: DT, dev: Account, fleet: dict[str, str]) -> None:
    device = ok(dt.client.get("/v2/projects/plant/devices/t1", headers=dev.headers))
    assert device == {
        "name": "projects/plant/devices/t1",
        "type": "temperature",
        "productNumber": "102067",
        "labels": {"name": "Freezer", "room": "cold"},
        "reported": {
            "temperature": None,
            "touch": None,
            "probeWireStatus": None,
            "networkStatus": None,
            "batteryStatus": None,
            "connectionStatus": None,
        },
    }
    assert ok(dt.client.get("/v2/projects/-/devices/t1", headers=dev.headers))["name"] == device["name"]
    dt_error(dt.client.get("/v2/projects/plant/devices/o1", headers=dev.headers), 404)  # in office
    dt_error(dt.client.get("/v2/projects/-/devices/o1", headers=dev.headers), 404)  # not visible to dev


def test_list_filters(dt: DT, dev: Account, fleet: dict[str, str]) -> None:
    assert names(listing(dt, dev)) == ["c1", "h1", "t1", "t2"]
    assert names(listing(dt, dev, device_ids=["t2", "h1", "o1"])) == ["h1", "t2"]
    assert names(listing(dt, dev, device_types=["temperature", "ccon"])) == ["c1", "t1", "t2"]
    assert names(listing(dt, dev, label_filters="room=hot")) == ["t2"]
    assert names(listing(dt, dev, label_filters="room=")) == ["t1", "t2"]  # the Python client's "has label"
    assert names(listing(dt, dev, label_filters="room")) == ["t1", "t2"]
    assert names(listing(dt, dev, label_filters=["room", "name=Oven"])) == ["t2"]
    assert names(listing(dt, dev, product_numbers="102067")) == ["t1"]
    assert names(listing(dt, dev, query="FREEZ")) == ["t1"]
    assert names(listing(dt, dev, query="humid")) == ["h1"]
    assert names(listing(dt, dev, deviceTypes="humidity")) == ["h1"]


def test_list_every_project_under_dash(dt: DT, fleet: dict[str, str]) -> None:
    org = dt.account("plant", roles=["roles/organization.user"])
    assert names(listing(dt, org, "-", organization="organizations/acme")) == ["c1", "h1", "o1", "t1", "t2"]
    assert names(listing(dt, org, "-", projects=["projects/office"])) == ["o1"]
    dt_error(
        dt.client.get("/v2/projects/-/devices", params={"organization": "organizations/globex"}, headers=org.headers),
        404,
    )


def test_pages_with_either_spelling(dt: DT, dev: Account, fleet: dict[str, str]) -> None:
    first = listing(dt, dev, pageSize=3)
    assert names(first) == ["c1", "h1", "t1"] and first["nextPageToken"]
    second = listing(dt, dev, page_size=3, page_token=first["nextPageToken"])
    assert names(second) == ["t2"] and second["nextPageToken"] == ""
    assert dt_error(
        dt.client.get("/v2/projects/plant/devices", params={"pageSize": 101}, headers=dev.headers), 400
    ).startswith("pageSize:")
    assert dt_error(
        dt.client.get("/v2/projects/plant/devices", params={"pageToken": "garbage"}, headers=dev.headers), 400
    ).startswith("pageToken:")
    assert dt_error(
        dt.client.get("/v2/projects/plant/devices", params={"pageSize": 1, "page_size": 2}, headers=dev.headers), 400
    ).startswith("pageSize / page_size:")


def publish_native(dt: DT, device: str, event_type: str, data: dict[str, Any], time: str | None = None) -> None:
    body: dict[str, Any] = {"type": event_type, "device": device, "data": data}
    if time is not None:
        body["time"] = time
    response = dt.client.post("/v1/tenants/acme/events", json=body, headers=dt.op)
    assert response.status_code == 201, response.text


def test_order_by_reported_values_labels_and_descending(dt: DT, dev: Account, fleet: dict[str, str]) -> None:
    publish_native(dt, "t1", "temperature", {"value": -18.0})
    publish_native(dt, "t2", "temperature", {"value": 180.0})
    publish_native(dt, "h1", "humidity", {"temperature": 21.0, "relativeHumidity": 40})
    assert names(listing(dt, dev, order_by="reported.temperature.value")) == ["t1", "t2", "c1", "h1"]
    assert names(listing(dt, dev, order_by="-reported.temperature.value")) == ["t2", "t1", "c1", "h1"]
    assert names(listing(dt, dev, order_by="labels.name")) == ["t1", "h1", "t2", "c1"]
    first = listing(dt, dev, order_by="-labels.name", pageSize=2)
    second = listing(dt, dev, order_by="-labels.name", pageSize=2, pageToken=first["nextPageToken"])
    assert names(first) + names(second) == ["t2", "h1", "t1", "c1"] and second["nextPageToken"] == ""
    assert dt_error(
        dt.client.get("/v2/projects/plant/devices", params={"order_by": "colour"}, headers=dev.headers), 400
    ).startswith("order_by:")


def test_unknown_parameters_and_device_types_are_400(dt: DT, dev: Account) -> None:
    assert dt_error(
        dt.client.get("/v2/projects/plant/devices", params={"colour": "red"}, headers=dev.headers), 400
    ).startswith("colour:")
    assert dt_error(
        dt.client.get("/v2/projects/plant/devices", params={"device_types": "toaster"}, headers=dev.headers), 400
    ).startswith("device_types:")


def test_reported_merges_network_status_across_cloud_connectors(dt: DT, dev: Account, fleet: dict[str, str]) -> None:
    for ccon, strength, rssi in (("a", 40, -85), ("b", 90, -55), ("a", 45, -83)):
        publish_native(
            dt,
            "t1",
            "networkStatus",
            {
                "signalStrength": strength,
                "rssi": rssi,
                "transmissionMode": "LOW_POWER_STANDARD_MODE",
                "cloudConnectors": [{"id": ccon, "signalStrength": strength, "rssi": rssi}],
            },
        )
    history = ok(dt.client.get("/v2/projects/plant/devices/t1/events", headers=dev.headers))["events"]
    assert all(len(e["data"]["networkStatus"]["cloudConnectors"]) == 1 for e in history)
    network = ok(dt.client.get("/v2/projects/plant/devices/t1", headers=dev.headers))["reported"]["networkStatus"]
    assert network["cloudConnectors"] == [
        {"id": "b", "signalStrength": 90, "rssi": -55},
        {"id": "a", "signalStrength": 45, "rssi": -83},
    ]
    assert (network["signalStrength"], network["rssi"]) == (90, -55)
    assert network["updateTime"] == history[0]["timestamp"]


def test_batch_update_labels_emits_labels_changed(dt: DT, dev: Account, fleet: dict[str, str]) -> None:
    body = {
        "devices": ["projects/plant/devices/t1", "projects/plant/devices/t2"],
        "addLabels": {"room": "lab", "floor": "2"},
        "removeLabels": ["name"],
    }
    assert ok(dt.client.post("/v2/projects/plant/devices:batchUpdate", json=body, headers=dev.headers)) == {
        "batchErrors": []
    }
    assert ok(dt.client.get("/v2/projects/plant/devices/t1", headers=dev.headers))["labels"] == {
        "room": "lab",
        "floor": "2",
    }
    (event,) = dt.history(dev, "plant", "t1", eventTypes="labelsChanged")
    assert event["data"] == {"added": {"floor": "2"}, "modified": {"room": "lab"}, "removed": ["name"]}


def test_batch_update_reports_each_device_that_failed(dt: DT, dev: Account, fleet: dict[str, str]) -> None:
    body = {
        "devices": [
            "projects/plant/devices/t1",
            "projects/plant/devices/nope",
            "projects/office/devices/o1",
            "garbage",
        ],
        "addLabels": {"k": "v"},
    }
    errors = ok(dt.client.post("/v2/projects/plant/devices:batchUpdate", json=body, headers=dev.headers))["batchErrors"]
    assert [(e["device"], e["status"]["code"]) for e in errors] == [
        ("projects/plant/devices/nope", "NOT_FOUND"),
        ("projects/office/devices/o1", "INVALID_ARGUMENT"),
        ("garbage", "INVALID_ARGUMENT"),
    ]
    assert ok(dt.client.get("/v2/projects/plant/devices/t1", headers=dev.headers))["labels"]["k"] == "v"
    assert dt_error(
        dt.client.post("/v2/projects/plant/devices:batchUpdate", json={"devices": []}, headers=dev.headers), 400
    ).startswith("addLabels:")
    assert dt_error(
        dt.client.post(
            "/v2/projects/plant/devices:batchUpdate",
            json={"devices": ["projects/plant/devices/t1"], "addLabels": {"k": 1}},
            headers=dev.headers,
        ),
        400,
    ).startswith("addLabels[...]: must be str")


def test_transfer_moves_devices_between_projects(dt: DT, fleet: dict[str, str]) -> None:
    admin = dt.account("plant", roles=["roles/organization.admin"])
    body = {"devices": ["projects/plant/devices/t1", "projects/plant/devices/nope"]}
    answer = ok(dt.client.post("/v2/projects/office/devices:transfer", json=body, headers=admin.headers))
    assert answer["transferredDevices"] == ["projects/office/devices/t1"]
    assert [(e["device"], e["status"]["code"]) for e in answer["transferErrors"]] == [
        ("projects/plant/devices/nope", "NOT_FOUND")
    ]
    assert ok(dt.client.get("/v2/projects/-/devices/t1", headers=admin.headers))["name"] == "projects/office/devices/t1"
    project_admin = dt.account("plant", roles=["roles/project.admin"])
    dt_error(
        dt.client.post(
            "/v2/projects/office/devices:transfer",
            json={"devices": ["projects/plant/devices/t2"]},
            headers=project_admin.headers,
        ),
        403,
    )
