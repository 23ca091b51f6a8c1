"""The tenant ingest face: every status and error code of the seed, and its bad inputs."""

from __future__ import annotations

import sqlite3
import time
from typing import Any

import pytest

from tests.conftest import Fleet, bearer

URL = "/rest/v1/api/tenants/{tenant}/devices/{device}/events"


def url(tenant: str = "acme", device: str = "sensor-1") -> str:
    return URL.format(tenant=tenant, device=device)


def body(**overrides: Any) -> dict[str, Any]:
    event = {
        "typeId": "0045",
        "description": "software registered",
        "appId": "IPSO-SFHWREG-ASDEGFE-SDGACXV-BSDF",
        "severity": 3,
        "data": {"source": "Software", "version": 2.5, "active": True, "build": 7},
        "timestamp": 1440014969567,
    }
    event.update(overrides)
    return event


def key(headers: dict[str, str]) -> dict[str, str]:
    """The tenant face reads the key from X-API-Key."""
    return {"X-API-Key": headers["Authorization"].removeprefix("Bearer ")}


def stored(fleet: Fleet) -> list[dict[str, Any]]:
    page = fleet.client.get("/v1/tenants/acme/events?limit=1000&exclude_type=SYS_106", headers=fleet.operator)
    return page.json()["events"]  # type: ignore[no-any-return]


def test_201_stores_the_event_with_data_types_kept(fleet: Fleet) -> None:
    response = fleet.client.post(url(), json=body(), headers=key(fleet.writer))
    assert response.status_code == 201
    created = response.json()
    assert len(created["id"]) == 32 and created["typeId"] == "0045"
    (event,) = stored(fleet)
    assert event["id"] == created["id"]
    assert event["data"] == {"source": "Software", "version": 2.5, "active": True, "build": 7}
    assert isinstance(event["data"]["build"], int) and event["data"]["active"] is True
    assert event["time"] == "2015-08-19T20:09:29.567000Z"
    assert event["app_id"] == "IPSO-SFHWREG-ASDEGFE-SDGACXV-BSDF" and event["severity"] == 3
    assert event["device"] == "sensor-1" and event["project"] == "plant"


def test_bearer_header_is_accepted_too(fleet: Fleet) -> None:
    assert fleet.client.post(url(), json=body(), headers=fleet.writer).status_code == 201


def test_202_saves_now_and_processes_later(fleet: Fleet) -> None:
    headers = {**key(fleet.writer), "Prefer": "respond-async"}
    response = fleet.client.post(url(), json=body(typeId="SYS_112", description=""), headers=headers)
    assert response.status_code == 202
    deadline = time.monotonic() + 5
    while not stored(fleet) and time.monotonic() < deadline:
        time.sleep(0.02)
    (event,) = stored(fleet)
    assert event["type"] == "SYS_112" and event["outcome"] == "SUCCESS"
    assert event["description"] == "Device reached desired state."  # filled from the catalog


def test_409_same_device_type_timestamp_and_content(fleet: Fleet) -> None:
    first = fleet.client.post(url(), json=body(), headers=key(fleet.writer))
    again = fleet.client.post(url(), json=body(), headers=key(fleet.writer))
    assert first.status_code == 201 and again.status_code == 409
    assert again.json()["error"] == 6 and first.json()["id"] in again.json()["message"]
    changed = fleet.client.post(url(), json=body(data={"other": 1}), headers=key(fleet.writer))
    assert changed.status_code == 201  # same key, different content: a new event
    other_device = fleet.client.post(url(device="sensor-2"), json=body(), headers=key(fleet.writer))
    assert other_device.status_code == 201
    assert len(stored(fleet)) == 3


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE"])
def test_405_for_every_other_method(fleet: Fleet, method: str) -> None:
    response = fleet.client.request(method, url(), headers=key(fleet.writer))
    assert response.status_code == 405
    assert response.json()["error"] == 6 and method in response.json()["message"]
    assert response.headers["allow"] == "POST"


def test_401_error_0_without_a_valid_key(fleet: Fleet) -> None:
    for headers in ({}, {"X-API-Key": "fl_nope_nope"}, {"X-API-Key": "garbage"}, {"Authorization": "Basic eDp5"}):
        response = fleet.client.post(url(), json=body(), headers=headers)
        assert response.status_code == 401
        assert response.json()["error"] == 0 and "license" in response.json()["message"]
    assert stored(fleet) == []


def test_403_error_4_for_a_key_of_another_tenant(fleet: Fleet) -> None:
    response = fleet.client.post(url(), json=body(), headers=key(fleet.other))
    assert response.status_code == 403 and response.json()["error"] == 4
    # ... also for a tenant that does not exist: a key never learns which tenants exist
    response = fleet.client.post(url(tenant="nosuch"), json=body(), headers=key(fleet.other))
    assert response.status_code == 403 and response.json()["error"] == 4


def test_403_error_5_for_a_device_outside_the_keys_project(fleet: Fleet) -> None:
    ok = fleet.client.post(url(device="sensor-1"), json=body(), headers=key(fleet.project_writer))
    refused = fleet.client.post(url(device="desk-1"), json=body(), headers=key(fleet.project_writer))
    assert ok.status_code == 201
    assert refused.status_code == 403 and refused.json()["error"] == 5


def test_403_for_a_read_only_key(fleet: Fleet) -> None:
    response = fleet.client.post(url(), json=body(), headers=key(fleet.reader))
    assert response.status_code == 403 and "write" in response.json()["message"]


def test_403_error_0_when_the_tenant_license_is_not_valid(fleet: Fleet) -> None:
    patch = fleet.client.patch("/v1/tenants/acme", json={"license_valid": False}, headers=fleet.operator)
    assert patch.status_code == 200
    response = fleet.client.post(url(), json=body(), headers=key(fleet.writer))
    assert response.status_code == 403 and response.json()["error"] == 0


def test_404_error_4_unknown_tenant_and_5_unknown_device(fleet: Fleet) -> None:
    tenant = fleet.client.post(url(tenant="nosuch"), json=body(), headers=key(fleet.operator))
    assert tenant.status_code == 404 and tenant.json()["error"] == 4 and "nosuch" in tenant.json()["message"]
    device = fleet.client.post(url(device="ghost"), json=body(), headers=key(fleet.writer))
    assert device.status_code == 404 and device.json()["error"] == 5 and "ghost" in device.json()["message"]
    foreign = fleet.client.post(url(device="probe-9"), json=body(), headers=key(fleet.writer))
    assert foreign.status_code == 404 and foreign.json()["error"] == 5  # globex's device is not in acme


SEED_EXAMPLE = b"""{
    typeId: 0045,
    description: ,
    appId: "IPSO-SFHWREG-ASDEGFE-SDGACXV-BSDF",
    severity: 3,
    data: {
            source:"Software",
            version:2.5,
            active:true
    },
    timestamp: 1440014969567
}"""

BAD_BODIES: list[tuple[bytes | dict[str, Any], str]] = [
    (SEED_EXAMPLE, "not valid JSON"),
    (b"", "empty"),
    (b"[1, 2]", "must be object"),
    (b"{" * 5000 + b"}" * 5000, "JSON"),
    ({k: v for k, v in body().items() if k != "typeId"}, "typeId: is required"),
    ({k: v for k, v in body().items() if k != "timestamp"}, "timestamp: is required"),
    (body(typeId="x" * 25), "typeId"),
    (body(typeId="has space"), "typeId"),
    (body(typeId=45), "typeId: must be str"),
    (body(description="d" * 256), "description"),
    (body(severity=0), "severity"),
    (body(severity=6), "severity"),
    (body(severity="3"), "severity: must be int"),
    (body(severity=True), "severity: must be int"),
    (body(severity=3.5), "severity"),
    (body(data="not an object"), "data: must be object"),
    (body(data=[1, 2]), "data: must be object"),
    (body(timestamp="2015-08-19"), "timestamp: must be int"),
    (body(timestamp=-1), "timestamp"),
    (body(extra=1), "unknown field"),
    (body(typeId="temperature", data={"value": "hot"}), "data.value: must be a number"),
    (body(typeId="temperature", data={}), "data.value: is required"),
    (body(typeId="objectPresent", data={"state": "MAYBE"}), "data.state"),
    (b'{"typeId":"a","description":"","appId":"x","severity":3,"data":{"n":1e400},"timestamp":1}', "range"),
]


def test_integers_of_any_size_are_kept_exactly(fleet: Fleet) -> None:
    raw = (
        b'{"typeId":"big","description":"","appId":"x","severity":3,'
        b'"data":{"n":123456789012345678901234567890,"f":2.0},"timestamp":1}'
    )
    assert fleet.client.post(url(), content=raw, headers=key(fleet.writer)).status_code == 201
    (event,) = stored(fleet)
    assert event["data"]["n"] == 123456789012345678901234567890
    assert isinstance(event["data"]["f"], float)


@pytest.mark.parametrize(("payload", "expected"), BAD_BODIES, ids=[str(i) for i in range(len(BAD_BODIES))])
def test_400_error_6_names_the_problem(fleet: Fleet, payload: bytes | dict[str, Any], expected: str) -> None:
    fleet.client.post(url(), json=body(typeId="keep"), headers=key(fleet.writer))
    before = stored(fleet)
    if isinstance(payload, dict):
        response = fleet.client.post(url(), json=payload, headers=key(fleet.writer))
    else:
        response = fleet.client.post(url(), content=payload, headers=key(fleet.writer))
    assert response.status_code == 400, response.text
    assert response.json()["error"] == 6
    assert expected.lower() in response.json()["message"].lower()
    assert stored(fleet) == before  # nothing stored, nothing changed


def test_413_for_a_body_over_the_limit(fleet: Fleet) -> None:
    huge = body(data={"blob": "x" * (300 * 1024)})
    response = fleet.client.post(url(), json=huge, headers=key(fleet.writer))
    assert response.status_code == 413 and response.json()["error"] == 6
    assert "262144" in response.json()["message"]


def test_500_error_minus_1_when_the_store_fails_and_nothing_is_half_saved(fleet: Fleet) -> None:
    assert fleet.client.post(url(), json=body(), headers=key(fleet.writer)).status_code == 201
    db = sqlite3.connect(fleet.data_dir / "fleetlog.db")
    db.execute("CREATE TRIGGER broken BEFORE INSERT ON events BEGIN SELECT RAISE(ABORT, 'disk trouble'); END")
    db.commit()
    try:
        response = fleet.client.post(url(), json=body(timestamp=1), headers=key(fleet.writer))
        assert response.status_code == 500
        assert response.json()["error"] == -1
    finally:
        db.execute("DROP TRIGGER broken")
        db.commit()
        db.close()
    assert len(stored(fleet)) == 1
    assert fleet.client.post(url(), json=body(timestamp=2), headers=key(fleet.writer)).status_code == 201


def test_unknown_paths_below_the_face_answer_in_its_shape(fleet: Fleet) -> None:
    response = fleet.client.post("/rest/v1/api/tenants/acme/events", json=body(), headers=key(fleet.writer))
    assert response.status_code == 404 and isinstance(response.json()["error"], int)


def test_operator_key_may_report_for_any_tenant(fleet: Fleet) -> None:
    response = fleet.client.post(url(tenant="globex", device="probe-9"), json=body(), headers=bearer_op(fleet))
    assert response.status_code == 201


def bearer_op(fleet: Fleet) -> dict[str, str]:
    return fleet.operator


def test_bearer_helper_shape() -> None:
    assert bearer("x") == {"Authorization": "Bearer x"}
