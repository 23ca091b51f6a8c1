"""The native registry API: tenants, projects, devices, keys, event types; who may do what."""

from __future__ import annotations

from tests.conftest import OPERATOR_TOKEN, Fleet, bearer


def test_operator_bootstrap_from_empty(client: object) -> None:
    from starlette.testclient import TestClient

    assert isinstance(client, TestClient)
    op = bearer(OPERATOR_TOKEN)
    assert client.post("/v1/tenants", json={"id": "t1", "retention_days": 7}, headers=op).status_code == 201
    assert client.post("/v1/tenants/t1/projects", json={"id": "p1"}, headers=op).status_code == 201
    device = client.post(
        "/v1/tenants/t1/devices", json={"id": "d1", "project": "p1", "labels": {"name": "x"}}, headers=op
    )
    assert device.status_code == 201 and device.json()["labels"] == {"name": "x"}
    key = client.post("/v1/tenants/t1/keys", json={"role": "write", "name": "gateway"}, headers=op)
    assert key.status_code == 201 and key.json()["token"].startswith("fl_")
    token = key.json()["token"]
    ingest = client.post("/v1/tenants/t1/events", json={"type": "touch", "device": "d1"}, headers=bearer(token))
    assert ingest.status_code == 201
    listed = client.get("/v1/tenants/t1/keys", headers=op).json()["keys"]
    assert [k["name"] for k in listed] == ["gateway"] and "token" not in listed[0]
    assert "secret" not in str(listed) and token not in str(listed)


def test_only_operators_create_tenants(fleet: Fleet) -> None:
    assert fleet.client.post("/v1/tenants", json={"id": "new"}, headers=fleet.admin).status_code == 403
    assert fleet.client.get("/v1/tenants", headers=fleet.admin).json()["tenants"][0]["id"] == "acme"
    assert len(fleet.client.get("/v1/tenants", headers=fleet.operator).json()["tenants"]) == 2


def test_bad_registry_input(fleet: Fleet) -> None:
    c, op = fleet.client, fleet.operator
    dup = c.post("/v1/tenants", json={"id": "acme"}, headers=op)
    assert dup.status_code == 409 and dup.json()["error"]["code"] == "already_exists"
    bad = c.post("/v1/tenants", json={"id": "has space"}, headers=op)
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "id"
    assert (
        c.post("/v1/tenants", json={"id": "x", "retention_days": 0}, headers=op).json()["error"]["field"]
        == "retention_days"
    )
    assert c.post("/v1/tenants/acme/devices", json={"id": "d", "project": "nope"}, headers=op).status_code == 404
    assert (
        c.post("/v1/tenants/acme/devices", json={"id": "sensor-1", "project": "plant"}, headers=op).status_code == 409
    )
    assert c.post("/v1/tenants/acme/keys", json={"role": "god"}, headers=op).json()["error"]["field"] == "role"
    assert c.post("/v1/tenants/nope/projects", json={"id": "p"}, headers=op).status_code == 404
    busy = c.delete("/v1/tenants/acme/projects/plant", headers=op)
    assert busy.status_code == 409


def test_tenant_admin_manages_its_own_tenant_only(fleet: Fleet) -> None:
    c = fleet.client
    assert c.post("/v1/tenants/acme/projects", json={"id": "yard"}, headers=fleet.admin).status_code == 201
    assert (
        c.post("/v1/tenants/acme/devices", json={"id": "gate", "project": "yard"}, headers=fleet.admin).status_code
        == 201
    )
    assert c.post("/v1/tenants/globex/projects", json={"id": "yard"}, headers=fleet.admin).status_code == 403
    assert c.get("/v1/tenants/globex/devices", headers=fleet.admin).status_code == 403
    assert c.post("/v1/tenants/acme/keys", json={"role": "read"}, headers=fleet.writer).status_code == 403
    # keys cannot be escalated or used across tenants
    made = c.post("/v1/tenants/acme/keys", json={"role": "admin", "project": "plant"}, headers=fleet.admin)
    assert made.status_code == 201
    scoped = bearer(made.json()["token"])
    assert (
        c.post("/v1/tenants/acme/keys", json={"role": "read", "project": "office"}, headers=scoped).status_code == 403
    )
    assert c.get("/v1/tenants/acme/devices", headers=scoped).json()["devices"][0]["project"] == "plant"
    other_key = c.get("/v1/tenants/globex/keys", headers=fleet.other).json()["keys"][0]["id"]
    assert c.delete(f"/v1/tenants/acme/keys/{other_key}", headers=fleet.admin).status_code == 404


def test_revoked_keys_stop_working(fleet: Fleet) -> None:
    c = fleet.client
    made = c.post("/v1/tenants/acme/keys", json={"role": "read"}, headers=fleet.admin).json()
    assert c.get("/v1/tenants/acme/events", headers=bearer(made["token"])).status_code == 200
    assert c.delete(f"/v1/tenants/acme/keys/{made['id']}", headers=fleet.admin).status_code == 204
    assert c.get("/v1/tenants/acme/events", headers=bearer(made["token"])).status_code == 401


def test_devices_update_move_label_filter_and_delete(fleet: Fleet) -> None:
    c, op = fleet.client, fleet.operator
    with_attrs = c.patch("/v1/tenants/acme/devices/sensor-2", json={"attrs": {"productNumber": "102058"}}, headers=op)
    assert with_attrs.status_code == 200 and with_attrs.json()["attrs"] == {"productNumber": "102058"}
    moved = c.patch("/v1/tenants/acme/devices/sensor-2", json={"project": "office", "labels": {"k": "v"}}, headers=op)
    assert moved.status_code == 200 and moved.json()["project"] == "office" and moved.json()["labels"] == {"k": "v"}
    event = c.post("/v1/tenants/acme/events", json={"type": "touch", "device": "sensor-2"}, headers=fleet.writer).json()
    assert event["project"] == "office"
    assert [d["id"] for d in c.get("/v1/tenants/acme/devices?label=k=v", headers=op).json()["devices"]] == ["sensor-2"]
    assert [d["id"] for d in c.get("/v1/tenants/acme/devices?project=plant", headers=op).json()["devices"]] == [
        "sensor-1"
    ]
    page = c.get("/v1/tenants/acme/devices?limit=2", headers=op).json()
    assert len(page["devices"]) == 2 and page["next_after"] == page["devices"][1]["id"]
    rest = c.get(f"/v1/tenants/acme/devices?limit=2&after={page['next_after']}", headers=op).json()
    assert len(rest["devices"]) == 1 and rest["next_after"] is None
    assert c.delete("/v1/tenants/acme/devices/sensor-2", headers=op).status_code == 204
    assert c.get("/v1/tenants/acme/devices/sensor-2", headers=op).status_code == 404
    gone = c.post("/v1/tenants/acme/events", json={"type": "touch", "device": "sensor-2"}, headers=fleet.writer)
    assert gone.status_code == 404


def test_tenant_defined_event_types_are_validated(fleet: Fleet) -> None:
    c = fleet.client
    schema = {"type": "object", "properties": {"level": {"type": "integer", "minimum": 0}}, "required": ["level"]}
    made = c.put(
        "/v1/tenants/acme/event-types/tank.level", json={"title": "Tank level", "schema": schema}, headers=fleet.admin
    )
    assert made.status_code == 200 and made.json()["family"] == "custom"
    ok = c.post(
        "/v1/tenants/acme/events",
        json={"type": "tank.level", "device": "sensor-1", "data": {"level": 3}},
        headers=fleet.writer,
    )
    assert ok.status_code == 201 and ok.json()["description"] == "Tank level"
    bad = c.post(
        "/v1/tenants/acme/events",
        json={"type": "tank.level", "device": "sensor-1", "data": {"level": -1}},
        headers=fleet.writer,
    )
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "data.level"
    # globex has no such type: any data goes
    other = c.post(
        "/v1/tenants/globex/events",
        json={"type": "tank.level", "device": "probe-9", "data": {"level": "x"}},
        headers=fleet.other,
    )
    assert other.status_code == 201
    assert c.put("/v1/tenants/acme/event-types/temperature", json={}, headers=fleet.admin).status_code == 400
    junk = c.put("/v1/tenants/acme/event-types/junk", json={"schema": {"type": "wat"}}, headers=fleet.admin)
    assert junk.status_code == 400 and junk.json()["error"]["field"] == "schema"
    assert c.delete("/v1/tenants/acme/event-types/tank.level", headers=fleet.admin).status_code == 204
    now_free = c.post(
        "/v1/tenants/acme/events",
        json={"type": "tank.level", "device": "sensor-1", "data": {"level": -1}},
        headers=fleet.writer,
    )
    assert now_free.status_code == 201


def test_catalog_lookup(fleet: Fleet) -> None:
    code = fleet.client.get("/v1/event-types/UPD4_FAIL_24", headers=fleet.reader).json()
    assert code["title"] == "Connection lost during download." and code["outcome"] == "FAIL"
    found = fleet.client.get("/v1/event-types?q=firmware&family=span", headers=fleet.reader).json()["event_types"]
    assert "firmwareCheck" in {t["name"] for t in found}
    assert fleet.client.get("/v1/event-types/nope", headers=fleet.reader).status_code == 404


def test_registry_changes_are_logged_as_events(fleet: Fleet) -> None:
    c, op = fleet.client, fleet.operator
    assert (
        c.post(
            "/v1/tenants/acme/devices",
            json={"id": "new-1", "project": "plant", "labels": {"a": "1", "b": "2"}},
            headers=op,
        ).status_code
        == 201
    )
    c.patch("/v1/tenants/acme/devices/new-1", json={"labels": {"a": "1", "b": "3", "c": "4"}}, headers=op)
    c.patch("/v1/tenants/acme/devices/new-1", json={"project": "office", "labels": {"c": "4"}}, headers=op)
    log = c.get("/v1/tenants/acme/events?device=new-1&order=oldest", headers=op).json()["events"]
    c.delete("/v1/tenants/acme/devices/new-1", headers=op)
    assert [(e["type"], e["source"]) for e in log] == [
        ("SYS_106", "system"),
        ("labelsChanged", "system"),
        ("deviceMoved", "system"),
        ("labelsChanged", "system"),
    ]
    assert log[0]["description"] == "Device registered." and log[0]["state_change"] is True
    assert log[1]["data"] == {"added": {"c": "4"}, "modified": {"b": "3"}, "removed": []}
    assert log[2]["data"] == {"from": "plant", "to": "office"} and log[2]["project"] == "office"
    assert log[3]["data"] == {"added": {}, "modified": {}, "removed": ["a", "b"]}
    removed = c.get("/v1/tenants/acme/events?type=SYS_105", headers=op).json()["events"]
    assert [(e["device"], e["project"]) for e in removed] == [("new-1", "office")]
