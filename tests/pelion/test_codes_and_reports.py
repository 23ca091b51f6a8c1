"""The event log codes as data (API and CLI), events reported through the Pelion face, and the
events the registry produces (registered, deregistered, bootstrapped)."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from fleetlog.cli.main import app as cli
from tests.conftest import Fleet
from tests.pelion.helpers import error_of, events, pelion, walk

SERVICE = [f"SYS_{n}" for n in range(100, 113)]
CLIENT = ["UPD2_OK_18", *(f"UPD4_FAIL_{n}" for n in range(21, 50))]


def test_every_code_of_the_seed_with_its_texts_and_message_type(fleet: Fleet) -> None:
    response = fleet.client.get("/v3/event-log-codes/", headers=pelion(fleet.reader))
    assert response.status_code == 200
    codes = {c["code"]: c for c in response.json()["data"]}
    assert list(codes) == SERVICE + CLIENT
    assert codes["SYS_110"]["message_type"] == "SKIPPED"
    assert {codes[c]["message_type"] for c in ("SYS_112", "UPD2_OK_18")} == {"SUCCESS"}
    assert {codes[c]["message_type"] for c in ("SYS_101", "SYS_103", "SYS_104", "SYS_111", *CLIENT[1:])} == {"FAIL"}
    assert {codes[c]["message_type"] for c in ("SYS_100", "SYS_102", "SYS_105", "SYS_108", "SYS_109")} == {"INFO"}
    fail_32 = codes["UPD4_FAIL_32"]
    assert fail_32["portal_text"] == "Installed FW digest differs from the one specified in the manifest (precursor)."
    assert fail_32["explanation"].startswith("Relevant for delta update only.")
    assert fail_32["corrective_action"].startswith("Recreate the delta patch.")
    assert fail_32["category"] == "FAIL_MANIFEST_REJECTED" and fail_32["generated_by"] == "client"
    assert codes["SYS_103"]["portal_text"] == "Campaign was manually stopped. Device not updated."
    one = fleet.client.get("/v3/event-log-codes/upd4_fail_24", headers=pelion(fleet.reader))
    assert one.status_code == 200 and one.json()["category"] == "FAIL_NETWORK"
    error_of(fleet.client.get("/v3/event-log-codes/temperature", headers=pelion(fleet.reader)), 404)
    error_of(fleet.client.get("/v3/event-log-codes/SYS_999/", headers=pelion(fleet.reader)), 404)


def test_codes_on_the_command_line() -> None:
    result = CliRunner().invoke(cli, ["codes", "UPD4_FAIL_24", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["corrective_action"] == "Check the device's connectivity."


def report(fleet: Fleet, body: object, headers: dict[str, str] | None = None) -> object:
    return fleet.client.post("/v3/device-events/", json=body, headers=headers or pelion(fleet.writer))


def test_a_code_reported_alone_gets_its_description_category_and_message_type(fleet: Fleet) -> None:
    response = report(fleet, {"device_id": "sensor-1", "event_type": "UPD4_FAIL_33"})
    assert response.status_code == 201, response.text  # type: ignore[attr-defined]
    item = response.json()  # type: ignore[attr-defined]
    assert item["description"] == "Insufficient storage on a device for saving update candidate."
    assert (item["event_type_description"], item["event_type_category"]) == ("FAIL", "FAIL_DEVICE")
    assert item["state_change"] is True
    read = fleet.client.get(f"/v3/device-events/{item['id']}/", headers=pelion(fleet.reader)).json()
    assert read == item


def test_undetermined_is_accepted_and_shown_as_info(fleet: Fleet) -> None:
    body = {
        "device_id": "sensor-2",
        "event_type": "vendor.selftest",
        "event_type_description": "UNDETERMINED",
        "date_time": "20240501T120000Z",
        "data": {"campaign_id": "c1", "step": 3},
    }
    item = report(fleet, body).json()  # type: ignore[attr-defined]
    assert item["event_type_description"] == "INFO"
    assert item["date_time"] == "2024-05-01T12:00:00.000000Z"
    assert item["data"] == {"campaign_id": "c1", "step": "3"}
    item = report(fleet, {**body, "event_type_description": "fail"}).json()  # type: ignore[attr-defined]
    assert item["event_type_description"] == "FAIL"


def test_bad_reports_are_refused_by_field_and_change_nothing(fleet: Fleet) -> None:
    before = events(fleet, "include=total_count")["total_count"]
    cases = [
        ({"device_id": "sensor-1", "event_type": "x", "event_type_description": "MAYBE"}, "event_type_description"),
        ({"device_id": "sensor-1", "event_type": "x", "date_time": "noon"}, "date_time"),
        ({"device_id": "sensor-1"}, "event_type"),
        ({"device_id": "sensor-1", "event_type": "has space"}, "event_type"),
        ({"device_id": "sensor-1", "event_type": "x", "colour": "red"}, "colour"),
        ({"device_id": "sensor-1", "event_type": "x", "state_change": "yes"}, "state_change"),
    ]
    for body, field in cases:
        error = error_of(report(fleet, body), 400)
        assert error["fields"][0]["name"] == field, (body, error)
    error_of(fleet.client.post("/v3/device-events", content=b"{not json", headers=pelion(fleet.writer)), 400)
    error_of(report(fleet, {"device_id": "ghost", "event_type": "x"}), 404)
    error_of(report(fleet, {"device_id": "sensor-1", "event_type": "x"}, pelion(fleet.reader)), 403)
    error_of(report(fleet, {"device_id": "probe-9", "event_type": "x"}), 404)  # another account's device
    assert events(fleet, "include=total_count")["total_count"] == before


def test_registered_deregistered_and_bootstrapped(fleet: Fleet) -> None:
    created = fleet.client.post(
        "/v1/tenants/acme/devices", json={"id": "meter-7", "project": "plant"}, headers=fleet.operator
    )
    assert created.status_code == 201
    boot = fleet.client.post("/v3/devices/meter-7/bootstrap/", headers=pelion(fleet.writer))
    assert boot.status_code == 201, boot.text
    assert fleet.client.delete("/v1/tenants/acme/devices/meter-7", headers=fleet.operator).status_code == 204
    log = walk(fleet, "device_id=meter-7")
    assert [(i["event_type"], i["description"], i["event_type_description"], i["state_change"]) for i in log] == [
        ("SYS_106", "Device registered.", "INFO", True),
        ("SYS_107", "Device bootstrapped.", "INFO", True),
        ("SYS_105", "Device deregistered.", "INFO", True),
    ]
    error_of(fleet.client.post("/v3/devices/meter-7/bootstrap", headers=pelion(fleet.writer)), 404)
    error_of(fleet.client.post("/v3/devices/sensor-1/bootstrap", headers=pelion(fleet.reader)), 403)
