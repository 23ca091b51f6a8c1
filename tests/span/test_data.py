"""Stored upstream data with Span's paging, the /from WebSockets, and the UDP and HTTP transports."""

from __future__ import annotations

import json
from typing import Any

import pytest
from starlette.websockets import WebSocketDisconnect

from tests.span.conftest import Span, b64, poll, wait_udp


def send_http(span: Span, payloads: list[bytes], device: str = "sensor-1") -> None:
    for payload in payloads:
        body = span.ok(
            span.client.post(
                f"/span/collections/plant/devices/{device}/upstream", content=payload, headers=span.project_writer
            )
        )
        assert body["stored"] is True


def data(span: Span, path: str = "/span/collections/plant/data", **params: Any) -> list[dict[str, Any]]:
    return list(span.ok(span.client.get(path, params=params, headers=span.reader))["data"])


def test_data_pages_newest_first_with_offset(span: Span) -> None:
    send_http(span, [f"m{i}".encode() for i in range(7)])
    send_http(span, [b"other"], device="sensor-2")
    everything = data(span)
    assert [m["payload"] for m in everything] == [b64(b"other"), *[b64(f"m{i}".encode()) for i in reversed(range(7))]]
    first = everything[0]
    assert first["type"] == "data" and first["transport"] == "unspecified" and first["device"]["deviceId"] == "sensor-2"
    assert first["device"]["lastPayload"] == b64(b"other") and first["received"].isdigit()
    # Paging by message id, one device.
    path = "/span/collections/plant/devices/sensor-1/data"
    seen: list[str] = []
    page = data(span, path, limit=3)
    while page:
        seen += [m["payload"] for m in page]
        page = data(span, path, limit=3, offset=page[-1]["messageId"])
    assert seen == [b64(f"m{i}".encode()) for i in reversed(range(7))]
    # The inbox is the same data as MessageUpstream.
    inbox = span.ok(
        span.client.get("/span/collections/plant/devices/sensor-1/inbox", params={"limit": 2}, headers=span.reader)
    )["messages"]
    assert [m["payload"] for m in inbox] == [b64(b"m6"), b64(b"m5")]
    assert set(inbox[0]) >= {"messageId", "collectionId", "deviceId", "transport", "received", "payload"}


def test_data_time_window(span: Span) -> None:
    send_http(span, [b"a", b"b"])
    received = int(data(span)[0]["received"])
    assert len(data(span, start=str(received), end=str(received))) >= 1
    assert data(span, start=str(received + 1)) == []
    assert data(span, end=str(received - 60_000)) == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "many"}, "limit"),
        ({"start": "yesterday"}, "start"),
        ({"offset": "00", "start": "1"}, "offset"),
        ({"offset": "not-a-message"}, "offset"),
        ({"start": "2000", "end": "1000"}, "start"),
        ({"page": "2"}, "page"),
    ],
)
def test_bad_paging_is_named(span: Span, params: dict[str, str], field: str) -> None:
    r = span.client.get("/span/collections/plant/data", params=params, headers=span.reader)
    assert r.status_code == 400 and r.json()["message"].startswith(field), r.text


def test_an_offset_of_another_collection_is_refused(span: Span) -> None:
    send_http(span, [b"x"])
    foreign = data(span)[0]["messageId"]
    r = span.client.get("/span/collections/office/data", params={"offset": foreign}, headers=span.reader)
    assert r.status_code == 400


def test_http_upstream_returns_waiting_downstream_messages(span: Span) -> None:
    c = span.client
    added = span.ok(
        c.post("/span/collections/plant/devices/sensor-1/outbox", json={"payload": b64(b"go")}, headers=span.writer)
    )
    assert added["state"] == "pending"
    body = span.ok(c.post("/span/collections/plant/devices/sensor-1/upstream", content=b"hi", headers=span.writer))
    assert [m["payload"] for m in body["downstream"]] == [b64(b"go")]
    assert body["downstream"][0]["state"] == "sent"
    again = span.ok(c.post("/span/collections/plant/devices/sensor-1/upstream", content=b"hi", headers=span.writer))
    assert again["downstream"] == []
    # Removing a message from the outbox.
    queued = span.ok(
        c.post("/span/collections/plant/devices/sensor-1/outbox", json={"payload": b64(b"no")}, headers=span.writer)
    )
    span.ok(c.delete(f"/span/collections/plant/devices/sensor-1/outbox/{queued['messageId']}", headers=span.writer))
    assert (
        span.ok(c.post("/span/collections/plant/devices/sensor-1/upstream", content=b"hi", headers=span.writer))[
            "downstream"
        ]
        == []
    )
    assert (
        c.post("/span/collections/plant/devices/sensor-1/outbox", json={"payload": "!!"}, headers=span.writer)
        .json()["message"]
        .startswith("payload")
    )


def test_udp_from_an_unallocated_address_is_refused(span: Span) -> None:
    wait_udp(span)
    span.send_udp("127.0.0.50", b"who am i")

    def udp() -> dict[str, Any]:
        transports = span.ok(span.client.get("/span/transports", headers=span.reader))["transports"]
        return dict(next(t for t in transports if t["name"] == "udp"))

    status = poll(lambda: udp()["received"] and udp(), "the datagram to arrive")
    assert status["refused"] == 1 and status["stored"] == 0
    assert span.events(type="upstreamMessage") == []


def test_a_reallocated_address_belongs_to_the_new_device(span: Span) -> None:
    c = span.client
    for device, imsi in (("sensor-1", "242010000000001"), ("sensor-2", "242010000000002")):
        span.ok(
            c.patch(
                f"/span/collections/plant/devices/{device}",
                json={"config": {"ciot": {"imsi": imsi}}},
                headers=span.admin,
            )
        )
    wait_udp(span)
    span.attach("242010000000001", "", "127.0.0.30")
    span.send_udp("127.0.0.30", b"one")
    span.attach("242010000000002", "", "127.0.0.30")
    span.send_udp("127.0.0.30", b"two")
    got = poll(
        lambda: len(span.events(type="upstreamMessage")) == 2 and span.events(type="upstreamMessage"),
        "both datagrams to be stored",
    )
    assert {e["device"]: e["data"]["payload"] for e in got} == {"sensor-1": b64(b"one"), "sensor-2": b64(b"two")}
    listed = data(span)[0]
    assert listed["udpMetaData"] == {
        "localPort": span.udp_port,
        "remotePort": span.udp_socket("127.0.0.30").getsockname()[1],
    }


def test_attach_reports_need_the_operator(span: Span) -> None:
    r = span.client.post("/span/ciot/attach", json={"imsi": "242010000000001", "ip": "127.0.0.30"}, headers=span.admin)
    assert r.status_code == 403
    r = span.client.post(
        "/span/ciot/attach", json={"imsi": "242010000000009", "ip": "127.0.0.30"}, headers=span.operator
    )
    assert r.status_code == 404
    r = span.client.post("/span/ciot/attach", json={"imsi": "x", "ip": "127.0.0.30"}, headers=span.operator)
    assert r.status_code == 400 and r.json()["message"].startswith("imsi")


def test_from_streams_data_and_keepalives(span: Span) -> None:
    with span.client.websocket_connect("/span/collections/plant/from", headers=span.reader) as ws:
        send_http(span, [b"live"])
        frames = []
        while not any(f["type"] == "data" for f in frames) or not any(f["type"] == "keepalive" for f in frames):
            frames.append(json.loads(ws.receive_text()))
    message = next(f for f in frames if f["type"] == "data")
    assert message["payload"] == b64(b"live") and message["device"]["deviceId"] == "sensor-1"
    assert message["transport"] == "unspecified" and len(message["messageId"]) == 32


def test_device_from_filters_and_resumes(span: Span) -> None:
    send_http(span, [b"before"])
    seen = data(span)[0]["messageId"]
    send_http(span, [b"missed"], device="sensor-1")
    send_http(span, [b"not mine"], device="sensor-2")
    path = f"/span/collections/plant/devices/sensor-1/from?after={seen}"
    with span.client.websocket_connect(path, headers=span.reader) as ws:
        send_http(span, [b"now"])
        got: list[str] = []
        while len(got) < 2:
            frame = json.loads(ws.receive_text())
            if frame["type"] == "data":
                got.append(frame["payload"])
    assert got == [b64(b"missed"), b64(b"now")]


def test_from_of_another_tenant_is_refused(span: Span) -> None:
    with (
        pytest.raises(WebSocketDisconnect),
        span.client.websocket_connect("/span/collections/plant/from", headers=span.other),
    ):
        pass
