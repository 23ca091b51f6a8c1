"""Span test fixtures: an app with the UDP transport on a free port and a short idle timeout,
the shared fleet (tenants acme and globex), and helpers that speak Span."""

from __future__ import annotations

import base64
import json
import re
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient, WebSocketTestSession

from fleetlog.bootstrap import build_app
from fleetlog.config import Config
from tests.conftest import OPERATOR_TOKEN, Fleet, setup_fleet

ACTIVITY_KEYS = ["collectionId", "data", "deviceId", "event", "gatewayId", "time"]
ACTIVITY_TIME = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def token(headers: dict[str, str]) -> dict[str, str]:
    """A fleet key (Authorization: Bearer ...) as a Span X-API-Token header."""
    return {"X-API-Token": headers["Authorization"][len("Bearer ") :]}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@dataclass
class Span:
    client: TestClient
    fleet: Fleet
    udp_port: int
    admin: dict[str, str]  # acme tenant admin, as X-API-Token
    writer: dict[str, str]
    reader: dict[str, str]
    project_writer: dict[str, str]  # acme, collection "plant" only
    other: dict[str, str]  # globex admin
    operator: dict[str, str]
    _udp: dict[str, socket.socket] = field(default_factory=dict)

    def ok(self, response: Any) -> Any:
        assert response.status_code == 200, response.text
        return response.json()

    def collection(self, name: str = "test") -> str:
        return str(
            self.ok(self.client.post("/span/collections", json={"tags": {"name": name}}, headers=self.admin))[
                "collectionId"
            ]
        )

    def device(self, cid: str, **body: Any) -> dict[str, Any]:
        return dict(self.ok(self.client.post(f"/span/collections/{cid}/devices", json=body, headers=self.admin)))

    def attach(self, imsi: str, imei: str, ip: str) -> dict[str, Any]:
        body = {"imsi": imsi, "imei": imei, "ip": ip}
        return dict(self.ok(self.client.post("/span/ciot/attach", json=body, headers=self.operator)))

    def udp_socket(self, ip: str) -> socket.socket:
        """A UDP socket bound to a loopback address of its own (the device's allocated IP)."""
        if ip not in self._udp:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind((ip, 0))
            s.settimeout(10)
            self._udp[ip] = s
        return self._udp[ip]

    def send_udp(self, ip: str, payload: bytes) -> None:
        self.udp_socket(ip).sendto(payload, ("127.0.0.1", self.udp_port))

    def events(self, **params: Any) -> list[dict[str, Any]]:
        """Stored events of acme through the native API (activity is also in the event log)."""
        r = self.client.get("/v1/tenants/acme/events", params={"limit": 1000, **params}, headers=self.fleet.operator)
        assert r.status_code == 200, r.text
        return list(r.json()["events"])

    def close(self) -> None:
        for s in self._udp.values():
            s.close()


def poll(check: Any, what: str, seconds: float = 10.0) -> Any:
    """The first true result of `check()`, tried until `seconds` pass (then the test fails)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.01)
    raise AssertionError(f"waited {seconds}s for {what}")


def wait_udp(span: Span) -> None:
    """Until the UDP transport (a background task of the app) listens."""
    for _ in range(500):
        transports = span.ok(span.client.get("/span/transports", headers=span.admin))["transports"]
        if any(t["name"] == "udp" and t["state"] == "listening" for t in transports):
            return
        time.sleep(0.01)
    raise AssertionError("the UDP transport did not start")


def frames_until(ws: WebSocketTestSession, done: Any, limit: int = 500) -> list[dict[str, Any]]:
    """Read activity frames until `done(frames)` is true."""
    frames: list[dict[str, Any]] = []
    while not done(frames):
        assert len(frames) < limit, f"expected frames never came; got {frames}"
        frames.append(json.loads(ws.receive_text()))
    return frames


def until_event(ws: WebSocketTestSession, name: str, limit: int = 500) -> list[dict[str, Any]]:
    return frames_until(ws, lambda fs: bool(fs) and fs[-1].get("event") == name, limit)


def assert_seed_format(frame: dict[str, Any]) -> None:
    """The shape of the seed's activity lines: these keys, in this order, strings only."""
    keys = list(frame)
    assert keys == [k for k in ACTIVITY_KEYS if k in frame], keys
    assert {"collectionId", "event", "time"} <= set(keys)
    assert ACTIVITY_TIME.fullmatch(frame["time"]), frame["time"]
    if "data" in frame:
        assert frame["data"] and all(isinstance(k, str) and isinstance(v, str) for k, v in frame["data"].items())
    for key in ("collectionId", "deviceId", "gatewayId", "event"):
        if key in frame:
            assert isinstance(frame[key], str) and frame[key]


def make_config(tmp_path: Path, **overrides: Any) -> Config:
    base: dict[str, Any] = {
        "data_dir": tmp_path,
        "admin_token": OPERATOR_TOKEN,
        "span_udp_port": free_udp_port(),
        "span_idle_timeout_seconds": 0.4,
        "span_keepalive_seconds": 0.3,
    }
    return Config(**{**base, **overrides})


@pytest.fixture
def span_config(tmp_path: Path) -> Config:
    return make_config(tmp_path)


@pytest.fixture
def span(span_config: Config) -> Iterator[Span]:
    with TestClient(build_app(span_config)) as client:
        fleet = setup_fleet(client, span_config.data_dir)
        s = Span(
            client=client,
            fleet=fleet,
            udp_port=span_config.span_udp_port,
            admin=token(fleet.admin),
            writer=token(fleet.writer),
            reader=token(fleet.reader),
            project_writer=token(fleet.project_writer),
            other=token(fleet.other),
            operator=token(fleet.operator),
        )
        try:
            yield s
        finally:
            s.close()
