"""Firmware targets and states, and the gateway endpoint's protocol."""

from __future__ import annotations

import json
from typing import Any

import pytest
from starlette.websockets import WebSocketDisconnect

from tests.span.conftest import Span, b64, poll


def report(span: Span, cid: str, did: str, **body: Any) -> dict[str, Any]:
    return dict(
        span.ok(span.client.post(f"/span/collections/{cid}/devices/{did}/fota", json=body, headers=span.writer))
    )


def states(span: Span, did: str) -> list[tuple[str, str]]:
    changes = span.events(type="firmwareStateChange", device=did)
    return [(e["data"]["from"], e["data"]["to"]) for e in reversed(changes)]


@pytest.fixture
def rollout(span: Span) -> tuple[str, str, dict[str, Any]]:
    cid = span.collection()
    did = span.device(cid)["deviceId"]
    image = span.ok(
        span.client.post(
            f"/span/collections/{cid}/firmware", json={"image": b64(b"v2 image"), "version": "2.0"}, headers=span.admin
        )
    )
    return cid, did, image


def test_no_target_means_only_a_check(span: Span, rollout: tuple[str, str, dict[str, Any]]) -> None:
    cid, did, _ = rollout
    assert report(span, cid, did, version="1.0") == {"state": "", "version": "1.0"}
    assert [e["type"] for e in span.events(device=did) if e["type"].startswith("firmware")] == ["firmwareCheck"]
    r = span.client.get(f"/span/collections/{cid}/devices/{did}/fota/image", headers=span.writer)
    assert r.status_code == 404 and r.json()["code"] == 5


def test_collection_target_and_the_state_machine(span: Span, rollout: tuple[str, str, dict[str, Any]]) -> None:
    cid, did, image = rollout
    span.ok(
        span.client.patch(
            f"/span/collections/{cid}",
            json={"firmware": {"targetFirmwareId": image["imageId"], "management": "collection"}},
            headers=span.admin,
        )
    )
    assert report(span, cid, did, version="1.0")["state"] == "UpdatePending"
    span.client.get(f"/span/collections/{cid}/devices/{did}/fota/image", headers=span.writer)
    assert report(span, cid, did, version="1.0")["state"] == "Downloading"  # still on its way
    assert report(span, cid, did, version="1.0", state="Updating")["state"] == "Updating"
    assert report(span, cid, did, version="1.0", state="Failed", message="flash error")["state"] == "Failed"
    device = span.ok(span.client.get(f"/span/collections/{cid}/devices/{did}", headers=span.reader))
    assert device["firmware"]["state"] == "Failed" and device["firmware"]["stateMessage"] == "flash error"
    cleared = span.ok(span.client.delete(f"/span/collections/{cid}/devices/{did}/fwerror", headers=span.writer))
    assert cleared == {"result": "UpdatePending"}
    assert report(span, cid, did, version="2.0")["state"] == "Current"
    assert states(span, did) == [
        ("", "UpdatePending"),
        ("UpdatePending", "Downloading"),
        ("Downloading", "Updating"),
        ("Updating", "Failed"),
        ("Failed", "UpdatePending"),
        ("UpdatePending", "Current"),
    ]
    device = span.ok(span.client.get(f"/span/collections/{cid}/devices/{did}", headers=span.reader))
    assert (
        device["firmware"]["firmwareVersion"] == "2.0" and device["firmware"]["currentFirmwareId"] == image["imageId"]
    )
    usage = span.ok(span.client.get(f"/span/collections/{cid}/firmware/{image['imageId']}/usage", headers=span.reader))
    assert usage["targeted"] == [did] and usage["current"] == [did]


def test_management_modes(span: Span, rollout: tuple[str, str, dict[str, Any]]) -> None:
    cid, did, image = rollout
    span.ok(
        span.client.patch(
            f"/span/collections/{cid}/devices/{did}",
            json={"firmware": {"targetFirmwareId": image["imageId"]}},
            headers=span.admin,
        )
    )
    assert report(span, cid, did, version="1.0")["targetVersion"] == "2.0"  # unspecified: the device's own
    span.ok(
        span.client.patch(f"/span/collections/{cid}", json={"firmware": {"management": "disabled"}}, headers=span.admin)
    )
    assert "targetVersion" not in report(span, cid, did, version="1.0")
    span.ok(
        span.client.patch(
            f"/span/collections/{cid}", json={"firmware": {"management": "collection"}}, headers=span.admin
        )
    )
    assert "targetVersion" not in report(span, cid, did, version="1.0")  # the collection has no target


def test_bad_reports_are_named(span: Span, rollout: tuple[str, str, dict[str, Any]]) -> None:
    cid, did, _ = rollout
    for body, field in [({}, "version"), ({"version": "1", "state": "Exploded"}, "state"), ({"version": 1}, "version")]:
        r = span.client.post(f"/span/collections/{cid}/devices/{did}/fota", json=body, headers=span.writer)
        assert r.status_code == 400 and r.json()["message"].startswith(field), r.text
    assert span.events(device=did, type="firmwareCheck") == []


def gateway(span: Span) -> tuple[str, str, str]:
    cid = span.collection()
    gid = span.ok(span.client.post(f"/span/collections/{cid}/gateways", json={"name": "gw"}, headers=span.admin))[
        "gatewayId"
    ]
    did = span.device(cid, config={"gateway": {gid: {"gatewayId": gid, "params": {"addr": "7"}}}})["deviceId"]
    return cid, gid, did


def test_gateway_relays_both_ways_and_gets_updates(span: Span) -> None:
    cid, gid, did = gateway(span)
    c = span.client
    span.ok(
        c.post(f"/span/collections/{cid}/devices/{did}/outbox", json={"payload": b64(b"queued")}, headers=span.writer)
    )
    with c.websocket_connect(f"/span/collections/{cid}/gateways/{gid}/connect", headers=span.writer) as link:
        frames = [json.loads(link.receive_text()) for _ in range(3)]
        assert [f["type"] for f in frames] == ["config", "devices", "downstream"]
        assert frames[2]["payload"] == b64(b"queued") and frames[2]["deviceId"] == did
        assert span.ok(c.get(f"/span/collections/{cid}/gateways/{gid}", headers=span.reader))["status"] == "online"
        link.send_text(json.dumps({"type": "upstream", "deviceId": did, "payload": b64(b"up")}))
        span.ok(
            c.patch(
                f"/span/collections/{cid}/gateways/{gid}",
                json={"config": {"user": {"params": {"k": "v"}}}},
                headers=span.admin,
            )
        )
        assert json.loads(link.receive_text()) == {
            "type": "config",
            "gatewayId": gid,
            "config": {"user": {"params": {"k": "v"}}},
        }
        other = span.device(cid, config={"gateway": {gid: {"gatewayId": gid}}})["deviceId"]
        devices = json.loads(link.receive_text())
        assert devices["type"] == "devices" and {d["deviceId"] for d in devices["devices"]} == {did, other}
        # Not its device, and not a known frame: refused, told, logged.
        link.send_text(json.dumps({"type": "upstream", "deviceId": "sensor-1", "payload": b64(b"x")}))
        assert json.loads(link.receive_text())["type"] == "error"
        link.send_bytes(b"\x00")
        assert json.loads(link.receive_text())["type"] == "error"
    stored = poll(lambda: span.events(project=cid, type="gatewayUpstreamMessage"), "the relayed message")
    assert stored[0]["data"]["payload"] == b64(b"up") and stored[0]["gateway"] == gid
    assert [m["payload"] for m in span.ok(c.get(f"/span/collections/{cid}/data", headers=span.reader))["data"]] == [
        b64(b"up")
    ]
    errors = poll(
        lambda: (
            len(span.events(project=cid, type="gatewayCommError")) == 2
            and span.events(project=cid, type="gatewayCommError")
        ),
        "two communication errors",
    )
    assert all(e["data"]["gatewayId"] == gid for e in errors)
    poll(lambda: span.events(project=cid, type="gatewayDisconnected"), "the disconnect")
    assert span.ok(c.get(f"/span/collections/{cid}/gateways/{gid}", headers=span.reader))["status"] == "offline"


def test_an_abrupt_end_is_a_communication_error(span: Span) -> None:
    cid, gid, _ = gateway(span)
    with span.client.websocket_connect(f"/span/collections/{cid}/gateways/{gid}/connect", headers=span.writer) as link:
        link.receive_text()
        link.close(1006)
    errors = poll(lambda: span.events(project=cid, type="gatewayCommError"), "the communication error")
    assert "1006" in errors[0]["data"]["error"]
    poll(lambda: span.events(project=cid, type="gatewayDisconnected"), "the disconnect")


def test_gateway_endpoint_needs_write_and_its_own_collection(span: Span) -> None:
    cid, gid, _ = gateway(span)
    for headers, path in [
        (span.reader, f"/span/collections/{cid}/gateways/{gid}/connect"),
        (span.writer, f"/span/collections/plant/gateways/{gid}/connect"),
        (span.other, f"/span/collections/{cid}/gateways/{gid}/connect"),
    ]:
        with pytest.raises(WebSocketDisconnect), span.client.websocket_connect(path, headers=headers):
            pass
    assert span.events(project=cid, type="gatewayConnected") == []
