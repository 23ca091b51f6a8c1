"""The DT data connector API: as the official `disruptive` client uses it, and its errors."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import disruptive as dt
import disruptive.errors as dterrors
import httpx
import pytest

from tests.conftest import Fleet
from tests.delivery.conftest import dt_connector, event
from tests.delivery.receiver import Receiver
from tests.e2e.process import ServerProcess


class KeyAuth:
    """A fleetlog key as the `disruptive` client's auth object (the DT face adds service accounts)."""

    def __init__(self, token: str) -> None:
        self._token = token

    def get_token(self) -> str:
        return f"Bearer {self._token}"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    srv = ServerProcess(tmp_path, env={"FLEETLOG_DELIVERY_RETRY_BASE_SECONDS": "0.01"}).start()
    op = srv.operator
    for path, body in [
        ("/v1/tenants", {"id": "acme"}),
        ("/v1/tenants/acme/projects", {"id": "plant"}),
        ("/v1/tenants/acme/devices", {"id": "freezer", "project": "plant", "labels": {"name": "Freezer"}}),
        ("/v1/tenants/acme/devices", {"id": "door", "project": "plant", "type": "contact"}),
    ]:
        assert httpx.post(srv.url + path, json=body, headers=op).status_code == 201
    yield srv
    srv.stop()


@pytest.mark.slow
def test_the_disruptive_client_manages_data_connectors(
    server: ServerProcess, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dt, "base_url", server.url + "/v2")
    auth = KeyAuth(server.operator["Authorization"][len("Bearer ") :])
    ingest = [{"type": "touch", "device": "freezer"}, {"type": "contact", "device": "door", "data": {"state": "OPEN"}}]
    assert httpx.post(f"{server.url}/v1/tenants/acme/events", json=ingest, headers=server.operator).status_code == 200

    created = dt.DataConnector.create_data_connector(
        project_id="plant",
        config=dt.DataConnector.HttpPushConfig(url=receiver.url, signature_secret="sig", headers={"X-Api": "1"}),
        display_name="my-dcon",
        event_types=["touch", "contact"],
        labels=["name"],
        auth=auth,
    )
    assert (created.project_id, created.display_name, created.status) == ("plant", "my-dcon", "ACTIVE")
    assert created.event_types == ["touch", "contact"] and created.labels == ["name"]
    assert created.config is not None and created.config.url == receiver.url
    assert created.config.headers == {"X-Api": "1"} and created.config.signature_secret == "sig"

    listed = dt.DataConnector.list_data_connectors("plant", auth=auth)
    assert [c.data_connector_id for c in listed] == [created.data_connector_id]
    got = dt.DataConnector.get_data_connector(created.data_connector_id, "plant", auth=auth)
    assert got.raw == created.raw

    # :sync pushes the latest event of each type of every device (events from before the connector).
    dt.DataConnector.sync_data_connector(created.data_connector_id, "plant", auth=auth)
    pushes = receiver.wait_for(lambda r: len(r) == 2)
    assert sorted(p.json["event"]["eventType"] for p in pushes) == ["contact", "touch"]
    freezer = next(p.json for p in pushes if p.json["metadata"]["deviceId"] == "freezer")
    assert freezer["labels"] == {"name": "Freezer"}

    metrics = dt.DataConnector.get_metrics(created.data_connector_id, "plant", auth=auth)
    deadline = time.monotonic() + 10
    while metrics.success_count < 2 and time.monotonic() < deadline:
        metrics = dt.DataConnector.get_metrics(created.data_connector_id, "plant", auth=auth)
    assert (metrics.success_count, metrics.error_count) == (2, 0)
    assert metrics.latency.endswith("s")

    updated = dt.DataConnector.update_data_connector(
        created.data_connector_id, "plant", display_name="renamed", status="USER_DISABLED", auth=auth
    )
    assert (updated.display_name, updated.status, updated.event_types) == (
        "renamed",
        "USER_DISABLED",
        ["touch", "contact"],
    )

    dt.DataConnector.delete_data_connector(created.data_connector_id, "plant", auth=auth)
    with pytest.raises(dterrors.NotFound):
        dt.DataConnector.get_data_connector(created.data_connector_id, "plant", auth=auth, request_attempts=1)


def post(fleet: Fleet, body: Any, headers: dict[str, str] | None = None, project: str = "plant") -> httpx.Response:
    return fleet.client.post(f"/v2/projects/{project}/dataconnectors", json=body, headers=headers or fleet.admin)


def good(url: str = "http://127.0.0.1:9/hook", **fields: Any) -> dict[str, Any]:
    return {"httpConfig": {"url": url}, **fields}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "httpConfig.url"),
        (good(colour="red"), "colour"),
        ({"httpConfig": {"url": "ftp://example.com/x"}}, "httpConfig.url"),
        ({"httpConfig": {"url": "not a url"}}, "httpConfig.url"),
        (
            {"httpConfig": {"url": "http://127.0.0.1:9/x", "headers": {"Content-Type": "text/plain"}}},
            "httpConfig.headers.Content-Type",
        ),
        ({"httpConfig": {"url": "http://127.0.0.1:9/x", "headers": {"X-A": "line\nbreak"}}}, "httpConfig.headers.X-A"),
        ({"httpConfig": {"url": "http://127.0.0.1:9/x", "headers": {"bad name": "x"}}}, "httpConfig.headers.bad name"),
        ({"httpConfig": {"url": "http://127.0.0.1:9/x", "signatureSecret": 7}}, "httpConfig.signatureSecret"),
        (good(type="GOOGLE_PUBSUB"), "type"),
        (good(status="SYSTEM_DISABLED"), "status"),
        (good(status="ON"), "status"),
        (good(events=["touch", "tuch"]), "events[1]"),
        (good(labels=[""]), "labels[0]"),
    ],
)
def test_bad_input_is_refused_naming_the_field(fleet: Fleet, body: dict[str, Any], field: str) -> None:
    response = post(fleet, body)
    assert response.status_code == 400, response.text
    answer = response.json()
    assert set(answer) == {"error", "code", "help"} and answer["code"] == 400
    assert answer["error"].startswith(field), answer
    assert fleet.client.get("/v2/projects/plant/dataconnectors", headers=fleet.admin).json()["dataConnectors"] == []


def test_bad_json_and_unknown_parameters(fleet: Fleet) -> None:
    response = fleet.client.post("/v2/projects/plant/dataconnectors", content=b"{", headers=fleet.admin)
    assert response.status_code == 400 and "not valid JSON" in response.json()["error"]
    response = fleet.client.get("/v2/projects/plant/dataconnectors?colour=red", headers=fleet.admin)
    assert response.status_code == 400 and response.json()["error"].startswith("colour")
    response = fleet.client.get("/v2/projects/plant/dataconnectors?pageSize=500", headers=fleet.admin)
    assert response.status_code == 400 and response.json()["error"].startswith("pageSize")


def test_credentials_and_isolation(fleet: Fleet, receiver: Receiver) -> None:
    created = dt_connector(fleet, receiver.url)
    name = created["name"]
    assert fleet.client.get(f"/v2/{name}").status_code == 401
    assert fleet.client.get(f"/v2/{name}", headers={"Authorization": "Bearer fl_nope_nope"}).status_code == 401
    # Another tenant's key learns nothing about acme's connectors.
    assert fleet.client.get(f"/v2/{name}", headers=fleet.other).status_code in (403, 404)
    assert post(fleet, good(), headers=fleet.other).status_code in (403, 404)
    assert fleet.client.get("/v2/projects/lab/dataconnectors", headers=fleet.other).json()["dataConnectors"] == []
    # A reader may look (without the secret); a gateway's write key may not send data elsewhere.
    seen = fleet.client.get(f"/v2/{name}", headers=fleet.reader).json()
    assert seen["httpConfig"]["signatureSecret"] == "" and seen["httpConfig"]["url"] == receiver.url
    assert post(fleet, good(), headers=fleet.reader).status_code == 403
    assert post(fleet, good(), headers=fleet.writer).status_code == 403
    assert fleet.client.delete(f"/v2/{name}", headers=fleet.writer).status_code == 403
    # The connector is in project plant: it is not found under office.
    other_project = name.replace("projects/plant", "projects/office")
    assert fleet.client.get(f"/v2/{other_project}", headers=fleet.admin).status_code == 404


def test_patch_changes_only_what_is_sent(fleet: Fleet, receiver: Receiver) -> None:
    created = dt_connector(fleet, receiver.url, events=["touch"], labels=["name"])
    name = created["name"]
    patched = fleet.client.patch(
        f"/v2/{name}", json={"displayName": "new", "httpConfig": {"headers": {"X-A": "b"}}}, headers=fleet.admin
    ).json()
    assert patched["displayName"] == "new" and patched["events"] == ["touch"] and patched["labels"] == ["name"]
    assert patched["httpConfig"] == {"url": receiver.url, "signatureSecret": "s3cret", "headers": {"X-A": "b"}}
    # update_mask limits the change to the fields it names.
    masked = fleet.client.patch(
        f"/v2/{name}?update_mask=display_name", json={"displayName": "x", "events": []}, headers=fleet.admin
    ).json()
    assert masked["displayName"] == "x" and masked["events"] == ["touch"]
    # A refused change changes nothing.
    response = fleet.client.patch(
        f"/v2/{name}", json={"displayName": "y", "httpConfig": {"url": "gopher://x"}}, headers=fleet.admin
    )
    assert response.status_code == 400
    assert fleet.client.get(f"/v2/{name}", headers=fleet.admin).json() == masked


def test_list_pages_and_delete(fleet: Fleet, receiver: Receiver) -> None:
    names = sorted(dt_connector(fleet, receiver.url)["name"] for _ in range(3))
    seen: list[str] = []
    token = ""
    while True:
        page = fleet.client.get(
            f"/v2/projects/plant/dataconnectors?pageSize=2&pageToken={token}", headers=fleet.admin
        ).json()
        seen += [c["name"] for c in page["dataConnectors"]]
        token = page["nextPageToken"]
        if not token:
            break
    assert seen == names
    response = fleet.client.delete(f"/v2/{names[0]}", headers=fleet.admin)
    assert response.status_code == 200 and response.json() == {}
    assert fleet.client.get(f"/v2/{names[0]}", headers=fleet.admin).status_code == 404
    assert fleet.client.delete(f"/v2/{names[0]}", headers=fleet.admin).status_code == 404


def test_methods_and_verbs(fleet: Fleet, receiver: Receiver) -> None:
    name = dt_connector(fleet, receiver.url)["name"]
    response = fleet.client.post(f"/v2/{name}:metrics", headers=fleet.admin)
    assert response.status_code == 405 and response.json()["code"] == 405
    response = fleet.client.get(f"/v2/{name}:explode", headers=fleet.admin)
    assert response.status_code == 404 and response.json()["code"] == 404
    response = fleet.client.post(f"/v2/{name}:replay", json={"startTime": "yesterday"}, headers=fleet.admin)
    assert response.status_code == 400 and response.json()["error"].startswith("startTime")


def test_a_disabled_connector_cannot_sync(fleet: Fleet, receiver: Receiver) -> None:
    name = dt_connector(fleet, receiver.url, status="USER_DISABLED")["name"]
    fleet.ingest([event()])
    response = fleet.client.post(f"/v2/{name}:sync", headers=fleet.admin)
    assert response.status_code == 400 and "USER_DISABLED" in response.json()["error"]
