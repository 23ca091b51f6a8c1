"""The MQTT device transport through a real (private) Mosquitto broker."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from starlette.testclient import TestClient

from fleetlog.bootstrap import build_app
from tests.conftest import setup_fleet
from tests.span.conftest import Span, b64, make_config, token, wait_udp
from tests.span.mosquitto import Mosquitto, free_port, publisher, stop


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    mq = Mosquitto(tmp_path / "broker").start()
    yield mq
    mq.stop()


@contextlib.contextmanager
def make_span(tmp_path: Path, mqtt_url: str) -> Iterator[Span]:
    config = make_config(tmp_path / "app", span_mqtt_url=mqtt_url, span_mqtt_client_id="fleetlog-test")
    with TestClient(build_app(config)) as client:
        fleet = setup_fleet(client, config.data_dir)
        yield Span(
            client,
            fleet,
            config.span_udp_port,
            token(fleet.admin),
            token(fleet.writer),
            token(fleet.reader),
            token(fleet.project_writer),
            token(fleet.other),
            token(fleet.operator),
        )


def transport(span: Span, name: str) -> dict[str, Any]:
    found = [
        t for t in span.ok(span.client.get("/span/transports", headers=span.admin))["transports"] if t["name"] == name
    ]
    return found[0] if found else {}


def eventually(check: Any, what: str, seconds: float = 20.0) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError(f"{what} did not happen within {seconds}s")


def test_messages_are_stored_and_downstream_is_published(tmp_path: Path, broker: Mosquitto) -> None:
    with make_span(tmp_path, broker.url) as span:
        eventually(lambda: transport(span, "mqtt").get("state") == "connected", "connecting to the broker")
        received: list[tuple[str, bytes]] = []
        got = threading.Event()
        device = publisher(broker.port, "device-sensor-1")

        def on_message(client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
            received.append((message.topic, message.payload))
            got.set()

        device.on_message = on_message
        device.subscribe("span/acme/plant/sensor-1/down", qos=1)
        span.ok(
            span.client.post(
                "/span/collections/plant/devices/sensor-1/outbox", json={"payload": b64(b"reboot")}, headers=span.writer
            )
        )
        for i in range(20):
            device.publish("span/acme/plant/sensor-1/up", f"reading {i}".encode(), qos=1).wait_for_publish(5)
        stored = eventually(
            lambda: (
                len(span.events(project="plant", type="upstreamMessage")) == 20
                and span.events(project="plant", type="upstreamMessage")
            ),
            "storing 20 messages",
        )
        assert {e["data"]["payload"] for e in stored} == {b64(f"reading {i}".encode()) for i in range(20)}
        assert all(
            e["data"]["transport"] == "mqtt" and e["data"]["topic"] == "span/acme/plant/sensor-1/up" for e in stored
        )
        assert got.wait(10), "the downstream message was not published"
        assert received == [("span/acme/plant/sensor-1/down", b"reboot")]
        data = span.ok(span.client.get("/span/collections/plant/devices/sensor-1/data", headers=span.reader))["data"]
        assert data[0]["transport"] == "mqtt" and data[0]["mqttMetaData"] == {"topic": "span/acme/plant/sensor-1/up"}
        outbox = span.ok(span.client.get("/span/collections/plant/devices/sensor-1/outbox", headers=span.reader))
        assert [m["state"] for m in outbox["messages"]] == ["sent"]
        assert outbox["messages"][0]["transport"] == "mqtt"
        stop(device)


def test_messages_for_no_device_are_acknowledged_and_counted(tmp_path: Path, broker: Mosquitto) -> None:
    with make_span(tmp_path, broker.url) as span:
        eventually(lambda: transport(span, "mqtt").get("state") == "connected", "connecting to the broker")
        device = publisher(broker.port, "stranger")
        for topic in ["span/acme/plant/nobody/up", "span/acme/office/sensor-1/up", "span/globex/plant/sensor-1/up"]:
            device.publish(topic, b"?", qos=1).wait_for_publish(5)
        device.publish("span/acme/plant/sensor-2/up", b"ok", qos=1).wait_for_publish(5)
        eventually(lambda: transport(span, "mqtt")["stored"] == 1, "storing the good message")
        assert transport(span, "mqtt")["refused"] == 3
        assert [e["device"] for e in span.events(type="upstreamMessage")] == ["sensor-2"]
        stop(device)


def test_an_unreachable_broker_is_reported_and_the_rest_keeps_working(tmp_path: Path) -> None:
    closed = f"mqtt://127.0.0.1:{free_port()}"
    with make_span(tmp_path, closed) as span:
        status = eventually(
            lambda: transport(span, "mqtt").get("state") == "unreachable" and transport(span, "mqtt"),
            "reporting the broker unreachable",
        )
        assert closed.removeprefix("mqtt://") in status["detail"] and "retrying" in status["detail"]
        # HTTP and UDP devices are unaffected.
        span.ok(
            span.client.post("/span/collections/plant/devices/sensor-1/upstream", content=b"x", headers=span.writer)
        )
        wait_udp(span)
        assert transport(span, "udp")["state"] == "listening"
        assert len(span.events(type="upstreamMessage")) == 1


def test_a_bad_broker_url_is_reported(tmp_path: Path) -> None:
    with make_span(tmp_path, "amqp://127.0.0.1:5672") as span:
        status = eventually(
            lambda: transport(span, "mqtt").get("state") == "failed" and transport(span, "mqtt"),
            "reporting the bad URL",
        )
        assert "amqp" in status["detail"]
