"""Span collections, devices, gateways and firmware images: the resources, their rules, bad input
and who may see what."""

from __future__ import annotations

import pytest

from tests.span.conftest import Span, b64


def error(response: object, status: int, code: int) -> dict[str, object]:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    body: dict[str, object] = response.json()  # type: ignore[attr-defined]
    assert body["code"] == code and isinstance(body["message"], str) and body["details"] is not None
    return body


def test_collections_are_projects(span: Span) -> None:
    c = span.client
    listed = span.ok(c.get("/span/collections", headers=span.reader))["collections"]
    assert {x["collectionId"] for x in listed} == {"plant", "office"}
    made = span.ok(c.post("/span/collections", json={"tags": {"name": "Lab"}, "teamId": "acme"}, headers=span.admin))
    cid = made["collectionId"]
    assert made["teamId"] == "acme" and made["tags"] == {"name": "Lab"} and made["enabled"] is True
    assert len(cid) == 14
    # It is a project of the tenant, visible through /v1 too.
    assert c.get(f"/v1/tenants/acme/projects/{cid}", headers=span.fleet.operator).status_code == 200
    changed = span.ok(
        c.patch(
            f"/span/collections/{cid}",
            json={"tags": {"floor": "3", "name": ""}, "firmware": {"management": "collection"}},
            headers=span.admin,
        )
    )
    assert changed["tags"] == {"floor": "3"} and changed["firmware"]["management"] == "collection"
    assert span.ok(c.get(f"/span/collections/{cid}", headers=span.reader)) == changed
    assert span.ok(c.delete(f"/span/collections/{cid}", headers=span.admin))["collectionId"] == cid
    error(c.get(f"/span/collections/{cid}", headers=span.reader), 404, 5)


def test_a_collection_with_devices_cannot_be_removed(span: Span) -> None:
    body = error(span.client.delete("/span/collections/plant", headers=span.admin), 409, 6)
    assert "devices" in str(body["message"])
    assert span.client.get("/span/collections/plant", headers=span.reader).status_code == 200


def test_devices_with_ciot_config_tags_and_moves(span: Span) -> None:
    c = span.client
    cid = span.collection()
    dev = span.device(
        cid,
        tags={"name": "meter"},
        config={"ciot": {"imsi": 242016000001234, "imei": "359876543210987"}},
        firmware={"manufacturer": "Acme", "firmwareVersion": "ignored"},
    )
    did = dev["deviceId"]
    assert dev["config"]["ciot"] == {"imsi": "242016000001234", "imei": "359876543210987"}
    assert dev["firmware"]["manufacturer"] == "Acme" and dev["firmware"]["firmwareVersion"] == ""
    assert dev["tags"] == {"name": "meter"} and dev["collectionId"] == cid
    # Tags merge; "" removes one; IMSI 0 clears it.
    dev = span.ok(
        c.patch(
            f"/span/collections/{cid}/devices/{did}",
            json={"tags": {"floor": "2", "name": ""}, "config": {"ciot": {"imsi": "0"}}},
            headers=span.admin,
        )
    )
    assert dev["tags"] == {"floor": "2"} and dev["config"]["ciot"] == {"imei": "359876543210987"}
    listed = span.ok(c.get(f"/span/collections/{cid}/devices", headers=span.reader))["devices"]
    assert [d["deviceId"] for d in listed] == [did]
    # Move: gone from the old collection, in the new one, logged as deviceMoved.
    moved = span.ok(
        c.patch(f"/span/collections/{cid}/devices/{did}", json={"collectionId": "office"}, headers=span.admin)
    )
    assert moved["collectionId"] == "office"
    error(c.get(f"/span/collections/{cid}/devices/{did}", headers=span.reader), 404, 5)
    assert span.ok(c.get(f"/span/collections/office/devices/{did}", headers=span.reader))["deviceId"] == did
    assert span.events(type="deviceMoved", device=did)[0]["data"] == {"from": cid, "to": "office"}
    removed = span.ok(c.delete(f"/span/collections/office/devices/{did}", headers=span.admin))
    assert removed["deviceId"] == did
    assert [e["device"] for e in span.events(type="SYS_105")] == [did]


def test_imsi_and_imei_are_unique_in_a_tenant(span: Span) -> None:
    cid = span.collection()
    span.device(cid, config={"ciot": {"imsi": "242016000001234"}})
    body = error(
        span.client.post(
            f"/span/collections/{cid}/devices",
            json={"config": {"ciot": {"imsi": "242016000001234"}}},
            headers=span.admin,
        ),
        409,
        6,
    )
    assert "config.ciot.imsi" in str(body["message"])


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"config": {"ciot": {"imsi": "12ab"}}}, "config.ciot.imsi"),
        ({"config": {"ciot": {"imei": 12}}}, "config.ciot.imei"),
        ({"tags": {"name": 5}}, "tags"),
        ({"colour": "red"}, "colour"),
        ({"firmware": {"targetFirmwareId": "nope"}}, "firmware.targetFirmwareId"),
        ({"config": {"gateway": {"nogw": {"gatewayId": "nogw"}}}}, "config.gateway.nogw"),
        ({"enabled": "yes"}, "enabled"),
    ],
)
def test_bad_device_input_names_the_field_and_stores_nothing(span: Span, body: dict[str, object], field: str) -> None:
    cid = span.collection()
    before = span.events(project=cid)
    response = span.client.post(f"/span/collections/{cid}/devices", json=body, headers=span.admin)
    message = str(error(response, 400, 3)["message"])
    assert message.startswith(field), message
    assert span.ok(span.client.get(f"/span/collections/{cid}/devices", headers=span.reader))["devices"] == []
    assert span.events(project=cid) == before


def test_malformed_bodies_are_400_never_500(span: Span) -> None:
    cid = span.collection()
    for raw in [b"", b"{", b"[]", b"null", b'{"tags": []}', b"\xff\xfe"]:
        r = span.client.post(f"/span/collections/{cid}/devices", content=raw, headers=span.admin)
        error(r, 400, 3)


def test_credentials_and_scopes(span: Span) -> None:
    c = span.client
    error(c.get("/span/collections"), 401, 16)
    error(c.get("/span/collections", headers={"X-API-Token": "fl_nope_nope"}), 401, 16)
    assert "operator" in str(error(c.get("/span/collections", headers=span.operator), 403, 7)["message"])
    # Another tenant's key: acme's collections do not exist for it.
    assert [x["collectionId"] for x in span.ok(c.get("/span/collections", headers=span.other))["collections"]] == [
        "lab"
    ]
    error(c.get("/span/collections/plant", headers=span.other), 404, 5)
    error(c.get("/span/collections/plant/devices/sensor-1", headers=span.other), 404, 5)
    error(c.get("/span/collections/plant/data", headers=span.other), 404, 5)
    # A collection-scoped key sees its collection only.
    listed = span.ok(c.get("/span/collections", headers=span.project_writer))["collections"]
    assert [x["collectionId"] for x in listed] == ["plant"]
    error(c.get("/span/collections/office/devices", headers=span.project_writer), 403, 7)
    # Reading is not writing; writing is not administering.
    error(
        c.post("/span/collections/plant/devices/sensor-1/outbox", json={"payload": b64(b"x")}, headers=span.reader),
        403,
        7,
    )
    error(c.post("/span/collections/plant/devices", json={}, headers=span.writer), 403, 7)


def test_unknown_paths_and_parameters_in_span_shape(span: Span) -> None:
    error(span.client.get("/span/nothing", headers=span.reader), 404, 5)
    error(span.client.put("/span/collections", headers=span.reader), 405, 12)
    body = error(span.client.get("/span/collections?limit=3", headers=span.reader), 400, 3)
    assert str(body["message"]).startswith("limit")


def test_gateways(span: Span) -> None:
    c = span.client
    cid = span.collection()
    gw = span.ok(
        c.post(
            f"/span/collections/{cid}/gateways",
            json={"name": "roof", "type": "lora", "config": {"user": {"params": {"band": "eu868"}}}},
            headers=span.admin,
        )
    )
    gid = gw["gatewayId"]
    assert gw["status"] == "offline" and gw["config"] == {"user": {"params": {"band": "eu868"}}}
    assert [
        g["gatewayId"] for g in span.ok(c.get(f"/span/collections/{cid}/gateways", headers=span.reader))["gateways"]
    ] == [gid]
    changed = span.ok(c.patch(f"/span/collections/{cid}/gateways/{gid}", json={"name": "attic"}, headers=span.admin))
    assert changed["name"] == "attic"
    error(c.post(f"/span/collections/{cid}/gateways", json={"type": "carrier-pigeon"}, headers=span.admin), 400, 3)
    error(c.get(f"/span/collections/plant/gateways/{gid}", headers=span.reader), 404, 5)
    span.ok(c.delete(f"/span/collections/{cid}/gateways/{gid}", headers=span.admin))
    error(c.get(f"/span/collections/{cid}/gateways/{gid}", headers=span.reader), 404, 5)


def test_firmware_images(span: Span) -> None:
    c = span.client
    cid = span.collection()
    image = span.ok(
        c.post(
            f"/span/collections/{cid}/firmware",
            json={"image": b64(b"firmware bytes"), "version": "1.0.0", "filename": "a.bin"},
            headers=span.admin,
        )
    )
    assert image["length"] == 14 and len(image["sha256"]) == 64 and image["collectionId"] == cid
    error(
        c.post(f"/span/collections/{cid}/firmware", json={"image": b64(b"x"), "version": "1.0.0"}, headers=span.admin),
        409,
        6,
    )
    assert str(
        error(
            c.post(f"/span/collections/{cid}/firmware", json={"image": "%%%", "version": "2"}, headers=span.admin),
            400,
            3,
        )["message"]
    ).startswith("image")
    span.ok(
        c.patch(
            f"/span/collections/{cid}", json={"firmware": {"targetFirmwareId": image["imageId"]}}, headers=span.admin
        )
    )
    error(c.delete(f"/span/collections/{cid}/firmware/{image['imageId']}", headers=span.admin), 409, 6)
    usage = span.ok(c.get(f"/span/collections/{cid}/firmware/{image['imageId']}/usage", headers=span.reader))
    assert usage == {"imageId": image["imageId"], "targeted": [], "current": []}
