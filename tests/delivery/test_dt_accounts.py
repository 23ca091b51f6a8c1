"""Data connectors with DT service accounts (the DT face's credentials): roles as at the vendor,
projects and tenants kept apart, and a push of an event published through the emulator."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.delivery.receiver import Receiver
from tests.dt.conftest import DT, make


@pytest.fixture
def dt(tmp_path: Path) -> Iterator[DT]:
    yield from make(tmp_path)


def test_service_accounts_by_role(dt: DT, receiver: Receiver) -> None:
    developer = dt.account("plant")
    user = dt.account("plant", roles=["roles/project.user"])
    stranger = dt.account("lab", tenant="globex", roles=["roles/project.admin"])
    office = dt.account("office", roles=["roles/project.admin"])
    body = {"displayName": "dc", "httpConfig": {"url": receiver.url, "signatureSecret": "x"}}
    path = "/v2/projects/plant/dataconnectors"
    created = dt.client.post(path, json=body, headers=developer.headers)
    assert created.status_code == 200, created.text  # Project Developer may create, as at the vendor
    name = created.json()["name"]
    assert dt.client.post(path, json=body, headers=user.headers).status_code == 403
    seen = dt.client.get(f"/v2/{name}", headers=user.headers)
    assert seen.status_code == 200 and seen.json()["httpConfig"]["signatureSecret"] == ""
    assert dt.client.get(f"/v2/{name}", headers=office.headers).status_code == 403  # another project
    assert dt.client.get(f"/v2/{name}", headers=stranger.headers).status_code in (403, 404)  # another tenant
    assert dt.client.get(path, headers=stranger.headers).status_code in (403, 404)


def test_an_emulated_event_is_pushed(dt: DT, receiver: Receiver) -> None:
    developer = dt.account("plant")
    body = {"httpConfig": {"url": receiver.url}, "labels": ["name"], "events": ["temperature"]}
    assert dt.client.post("/v2/projects/plant/dataconnectors", json=body, headers=developer.headers).status_code == 200
    device = dt.emulated(developer, "plant", "temperature", name="Fridge")
    assert dt.publish(developer, "plant", device, {"temperature": {"value": 4.5}}).status_code == 200
    (push,) = receiver.wait_for(lambda r: len(r) >= 1)
    body = push.json
    assert body["event"]["targetName"] == f"projects/plant/devices/{device}"
    assert body["event"]["data"]["temperature"]["value"] == 4.5
    assert body["labels"] == {"name": "Fridge"}
    assert body["metadata"]["deviceId"] == device and body["metadata"]["deviceType"] == "temperature"
    (shown,) = [e for e in dt.history(developer, "plant", device) if e["eventId"] == body["event"]["eventId"]]
    assert body["event"] == shown  # the push carries the event exactly as the DT API shows it
