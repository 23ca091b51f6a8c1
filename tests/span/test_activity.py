"""Every one of the 24 activity event types, each through its real trigger, seen on the activity
WebSocket in the seed's format; and the activity stream's delivery rules."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from starlette.websockets import WebSocketDisconnect

from fleetlog.adapters.bus.memory import MemoryBus
from fleetlog.core.catalog.span import DATA_KEYS
from fleetlog.core.event import Event
from fleetlog.faces.span.activity import ActivityPump
from tests.span.conftest import Span, assert_seed_format, b64, until_event, wait_udp

IMSI, IMEI = "242016000001234", "359876543210987"


def test_every_activity_type_through_its_trigger(span: Span) -> None:
    c = span.client
    cid = span.collection("everything")
    other_cid = span.collection("elsewhere")
    seen: list[dict[str, Any]] = []

    def seen_names() -> set[str]:
        return {f["event"] for f in seen if "event" in f}

    with c.websocket_connect(f"/span/collections/{cid}/activity", headers=span.admin) as ws:

        def expect(*names: str) -> None:
            pending = list(names)
            while pending:
                frame = json.loads(ws.receive_text())
                seen.append(frame)
                if frame.get("event") == pending[0]:
                    pending.pop(0)

        # The registry: created, updated (tags and configuration), and later moved and removed.
        dev = span.device(cid, tags={"name": "meter"}, config={"ciot": {"imsi": IMSI, "imei": IMEI}})
        did = dev["deviceId"]
        expect("deviceCreated")
        span.ok(c.patch(f"/span/collections/{cid}/devices/{did}", json={"tags": {"floor": "2"}}, headers=span.admin))
        expect("deviceUpdated")

        # The network: a matching attach, then a SIM in another modem, then another SIM in the modem.
        assert span.attach(IMSI, IMEI, "127.0.0.21")["event"] == "ciotConnect"
        expect("ciotConnect")
        span.ok(
            c.post(
                "/span/ciot/attach",
                json={"imsi": IMSI, "imei": "350000000000001", "ip": "127.0.0.99"},
                headers=span.operator,
            )
        )
        expect("imeiMismatch")
        span.ok(
            c.post(
                "/span/ciot/attach",
                json={"imsi": "242019999999999", "imei": IMEI, "ip": "127.0.0.98"},
                headers=span.operator,
            )
        )
        expect("imsiMismatch")

        # A datagram from the allocated address: a session starts and the message is stored.
        wait_udp(span)
        span.send_udp("127.0.0.21", b"hello")
        expect("clientConnected", "upstreamMessage")
        # A message waiting in the outbox goes back in the reply to the next datagram.
        span.ok(
            c.post(f"/span/collections/{cid}/devices/{did}/outbox", json={"payload": b64(b"cmd")}, headers=span.writer)
        )
        span.send_udp("127.0.0.21", b"again")
        assert span.udp_socket("127.0.0.21").recvfrom(2048)[0] == b"cmd"
        expect("upstreamMessage", "downstreamMessage")
        # Silence for longer than the idle timeout ends the session.
        expect("clientDisconnected")

        # Firmware: an image as the device's target; the device reports an old version,
        # downloads the image, and reports the new version.
        image = span.ok(
            c.post(
                f"/span/collections/{cid}/firmware",
                json={"image": b64(b"\x7fELF..."), "version": "2.0.0", "filename": "fw.bin"},
                headers=span.admin,
            )
        )
        span.ok(
            c.patch(
                f"/span/collections/{cid}/devices/{did}",
                json={"firmware": {"targetFirmwareId": image["imageId"]}},
                headers=span.admin,
            )
        )
        expect("deviceUpdated")
        span.ok(c.post(f"/span/collections/{cid}/devices/{did}/fota", json={"version": "1.0.0"}, headers=span.writer))
        expect("firmwareCheck", "firmwareUpdateRequired", "firmwareStateChange")
        got = c.get(f"/span/collections/{cid}/devices/{did}/fota/image", headers=span.writer)
        assert got.status_code == 200 and got.content == b"\x7fELF..."
        expect("firmwareRequested", "firmwareStateChange")
        span.ok(c.post(f"/span/collections/{cid}/devices/{did}/fota", json={"version": "2.0.0"}, headers=span.writer))
        expect("firmwareCheck", "firmwareCurrent", "firmwareStateChange")

        # A blob upload.
        span.ok(
            c.post(
                f"/span/collections/{cid}/devices/{did}/blobs",
                params={"path": "logs/boot.txt"},
                content=b"boot ok",
                headers=span.writer,
            )
        )
        expect("blobUpload")

        # A gateway connects, gets its configuration and devices, relays both ways, errs, leaves.
        gw = span.ok(
            c.post(f"/span/collections/{cid}/gateways", json={"name": "gw", "type": "lora"}, headers=span.admin)
        )
        gid = gw["gatewayId"]
        span.ok(
            c.patch(
                f"/span/collections/{cid}/devices/{did}",
                json={"config": {"gateway": {gid: {"gatewayId": gid, "params": {"devEui": "01"}}}}},
                headers=span.admin,
            )
        )
        expect("deviceUpdated")
        with c.websocket_connect(f"/span/collections/{cid}/gateways/{gid}/connect", headers=span.writer) as link:
            expect("gatewayConnected", "gatewayConfigUpdate", "gatewayDeviceUpdate")
            assert json.loads(link.receive_text())["type"] == "config"
            assert json.loads(link.receive_text())["devices"] == [{"deviceId": did, "params": {"devEui": "01"}}]
            link.send_text(json.dumps({"type": "upstream", "deviceId": did, "payload": b64(b"via gw")}))
            expect("gatewayUpstreamMessage")
            span.ok(
                c.post(
                    f"/span/collections/{cid}/devices/{did}/outbox", json={"payload": b64(b"down")}, headers=span.writer
                )
            )
            assert json.loads(link.receive_text())["payload"] == b64(b"down")
            expect("gatewayDownstreamMessage")
            link.send_text("not json")
            expect("gatewayCommError")
            assert json.loads(link.receive_text())["type"] == "error"
        expect("gatewayDisconnected")

        # Moved out (seen by this collection's stream too); another device removed.
        span.ok(c.patch(f"/span/collections/{cid}/devices/{did}", json={"collectionId": other_cid}, headers=span.admin))
        expect("deviceMoved")
        spare = span.device(cid)["deviceId"]
        span.ok(c.delete(f"/span/collections/{cid}/devices/{spare}", headers=span.admin))
        expect("deviceCreated", "deviceRemoved")

    assert seen_names() == set(DATA_KEYS)
    for frame in seen:
        assert_seed_format(frame)
    moved = next(f for f in seen if f["event"] == "deviceMoved")
    assert moved["data"] == {"from": cid, "to": other_cid}
    up = next(f for f in seen if f["event"] == "upstreamMessage")
    sender_port = span.udp_socket("127.0.0.21").getsockname()[1]
    assert up["data"] == {
        "bytes": "5",
        "transport": "udp",
        "remoteAddress": f"127.0.0.21:{sender_port}",
        "localPort": str(span.udp_port),
    }
    assert next(f for f in seen if f["event"] == "clientConnected")["data"] == {"id": "imsi"}
    assert "data" not in next(f for f in seen if f["event"] == "clientDisconnected")
    mismatch = next(f for f in seen if f["event"] == "imeiMismatch")
    assert mismatch["data"] == {"expected": IMEI, "actual": "350000000000001"}
    assert all(f["gatewayId"] == gid for f in seen if f["event"].startswith("gateway"))


def test_device_removed_is_seen(span: Span) -> None:
    cid = span.collection()
    did = span.device(cid)["deviceId"]
    with span.client.websocket_connect(f"/span/collections/{cid}/activity", headers=span.admin) as ws:
        span.ok(span.client.delete(f"/span/collections/{cid}/devices/{did}", headers=span.admin))
        frame = until_event(ws, "deviceRemoved")[-1]
    assert_seed_format(frame)
    assert frame["deviceId"] == did and frame["collectionId"] == cid


def test_activity_is_stored_and_queryable(span: Span) -> None:
    cid = span.collection()
    did = span.device(cid)["deviceId"]
    span.ok(span.client.post(f"/span/collections/{cid}/devices/{did}/upstream", content=b"x", headers=span.writer))
    types = [e["type"] for e in span.events(project=cid)]
    assert {"SYS_106", "clientConnected", "upstreamMessage"} <= set(types)
    up = span.events(project=cid, type="upstreamMessage")[0]
    assert up["data"]["payload"] == b64(b"x") and up["device"] == did


def test_activity_shows_only_its_collection(span: Span) -> None:
    mine, theirs = span.collection("mine"), span.collection("theirs")
    with span.client.websocket_connect(f"/span/collections/{mine}/activity", headers=span.admin) as ws:
        span.device(theirs)
        did = span.device(mine)["deviceId"]
        frame = until_event(ws, "deviceCreated")[-1]
    assert frame["deviceId"] == did and frame["collectionId"] == mine


@pytest.mark.parametrize("how", ["query", "first-message"])
def test_activity_token_in_query_or_first_message(span: Span, how: str) -> None:
    cid = span.collection()
    token = span.admin["X-API-Token"]
    if how == "query":
        ctx = span.client.websocket_connect(f"/span/collections/{cid}/activity?api_token={token}")
    else:
        ctx = span.client.websocket_connect(f"/span/collections/{cid}/activity")
    with ctx as ws:
        if how == "first-message":
            ws.send_text(json.dumps({"jwt": token, "collectionId": cid, "deviceId": ""}))
            assert json.loads(ws.receive_text()) == {"type": "keepalive"}
        did = span.device(cid)["deviceId"]
        assert until_event(ws, "deviceCreated")[-1]["deviceId"] == did


def test_activity_refuses_bad_credentials_and_other_tenants(span: Span) -> None:
    cid = span.collection()
    bad_token = {"X-API-Token": "fl_x_y"}
    with (
        pytest.raises(WebSocketDisconnect) as bad,
        span.client.websocket_connect(f"/span/collections/{cid}/activity", headers=bad_token),
    ):
        pass
    assert bad.value.code == 1008
    with (
        pytest.raises(WebSocketDisconnect),
        span.client.websocket_connect(f"/span/collections/{cid}/activity", headers=span.other),
    ):
        pass
    # A first message without a token: told why, then closed.
    with span.client.websocket_connect(f"/span/collections/{cid}/activity") as ws:
        ws.send_text(json.dumps({"collectionId": cid}))
        error = json.loads(ws.receive_text())
        assert error["code"] == 3 and "jwt" in error["message"]
        with pytest.raises(WebSocketDisconnect):
            ws.receive_text()


async def test_a_slow_reader_loses_events_is_told_and_never_slows_the_publisher() -> None:
    bus = MemoryBus()
    release = asyncio.Event()
    sent: list[str] = []

    async def slow_send(text: str) -> None:
        sent.append(text)
        await release.wait()  # the client is not reading

    pump = ActivityPump(bus, "acme", "plant", capacity=4, send=slow_send)
    task = asyncio.create_task(pump.run())

    def event(i: int) -> Event:
        return Event(
            tenant="acme",
            project="plant",
            type="upstreamMessage",
            time=1_700_000_000_000_000 + i,
            id=f"{i:032x}",
            device="d1",
            data={"bytes": "1", "transport": "udp"},
        )

    bus.publish([event(0)])
    await asyncio.sleep(0)
    for i in range(1, 101):  # publish never waits for the stalled reader
        bus.publish([event(i)])
    assert pump.dropped == 100 - 4
    release.set()
    for _ in range(100):  # let the pump drain what it kept (no waiting on time)
        await asyncio.sleep(0)
    task.cancel()
    frames = [json.loads(s) for s in sent]
    assert frames[1] == {"type": "dropped", "count": 96}
    assert [f.get("event") for f in frames if "event" in f] == ["upstreamMessage"] * 5
    assert "collectionId" not in frames[1]  # the vendor's CLI skips it
