"""MQTT QoS 1 through Mosquitto survives a SIGKILL of fleetlog: every message is stored once."""

from __future__ import annotations

import base64
import json
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.process import ServerProcess
from tests.span.mosquitto import Mosquitto, publisher, stop

pytestmark = pytest.mark.slow
N = 6000
DEVICES = 10


def stored_payloads(srv: ServerProcess) -> list[str]:
    r = httpx.get(
        f"{srv.url}/v1/tenants/acme/events/export", params={"type": "upstreamMessage"}, headers=srv.operator, timeout=60
    )
    assert r.status_code == 200, r.text
    return [json.loads(line)["data"]["payload"] for line in r.text.splitlines()]


def count(srv: ServerProcess) -> int:
    try:
        return len(stored_payloads(srv))
    except httpx.HTTPError:
        return -1


def test_sigkill_midway_loses_nothing_and_stores_nothing_twice(tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path / "broker").start()
    env = {"FLEETLOG_SPAN_MQTT_URL": broker.url, "FLEETLOG_SPAN_MQTT_CLIENT_ID": "fleetlog-crash"}
    (tmp_path / "data").mkdir()
    srv = ServerProcess(tmp_path / "data", env=env).start()
    try:
        op = srv.operator
        for path, body in [("/v1/tenants", {"id": "acme"}), ("/v1/tenants/acme/projects", {"id": "plant"})]:
            assert httpx.post(srv.url + path, json=body, headers=op).status_code == 201
        for d in range(DEVICES):
            r = httpx.post(f"{srv.url}/v1/tenants/acme/devices", json={"id": f"m{d}", "project": "plant"}, headers=op)
            assert r.status_code == 201
        key = httpx.post(f"{srv.url}/v1/tenants/acme/keys", json={"role": "read"}, headers=op).json()["token"]

        def mqtt_state() -> str:
            r = httpx.get(f"{srv.url}/span/transports", headers={"X-API-Token": key})
            return str(next(t["state"] for t in r.json()["transports"] if t["name"] == "mqtt"))

        deadline = time.monotonic() + 20
        while mqtt_state() != "connected":
            assert time.monotonic() < deadline, "fleetlog never connected to the broker"
            time.sleep(0.05)

        device = publisher(broker.port, "crash-publisher")
        published = threading.Event()

        def publish_all() -> None:
            infos = [device.publish(f"span/acme/plant/m{i % DEVICES}/up", f"msg-{i}".encode(), qos=1) for i in range(N)]
            for info in infos:
                info.wait_for_publish(60)
            published.set()

        sender = threading.Thread(target=publish_all)
        sender.start()
        # Kill fleetlog while messages are flowing: after some are stored, well before the end.
        deadline = time.monotonic() + 60
        while count(srv) < N // 5:
            assert time.monotonic() < deadline, "messages were not being stored"
            time.sleep(0.01)
        srv.kill()
        sender.join(120)
        assert published.is_set(), "the broker did not accept every message"
        stop(device)

        srv.start()  # the broker redelivers what was not acknowledged, and the backlog
        deadline = time.monotonic() + 120
        while count(srv) < N:
            assert time.monotonic() < deadline, f"only {count(srv)} of {N} stored after the restart"
            time.sleep(0.1)
        time.sleep(1.0)  # anything still in flight would be a duplicate: let it arrive
        payloads = stored_payloads(srv)
        assert len(payloads) == N, f"{len(payloads) - len(set(payloads))} stored twice"
        assert set(payloads) == {base64.b64encode(f"msg-{i}".encode()).decode() for i in range(N)}
    finally:
        srv.stop()
        broker.stop()
