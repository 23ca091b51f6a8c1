"""An event the emulator acknowledged survives kill -9, and so do service-account keys."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.e2e.process import ServerProcess


@pytest.mark.slow
def test_acknowledged_events_and_keys_survive_kill_9(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path).start()
    try:
        op = {**server.operator, "X-Fleetlog-Tenant": "acme"}
        http = httpx.Client(base_url=server.url, headers=op, timeout=10)
        assert http.post("/v1/tenants", json={"id": "acme"}).status_code == 201
        assert http.post("/v1/tenants/acme/projects", json={"id": "plant"}).status_code == 201
        made = http.post("/v2/projects/plant/serviceaccounts", json={"enableBasicAuth": True}).json()
        account = made["name"].split("/")[-1]
        key = http.post(f"/v2/projects/plant/serviceaccounts/{account}/keys").json()
        basic = httpx.BasicAuth(key["key"]["id"], key["secret"])
        device = http.post("/emulator/v2/projects/plant/devices", json={"type": "touch"}).json()["name"].split("/")[-1]
        acknowledged = 0
        for _ in range(50):
            response = http.post(
                f"/emulator/v2/projects/plant/devices/{device}:publish",
                json={"batteryStatus": {"percentage": 50}},
                auth=basic,
            )
            assert response.status_code == 200
            acknowledged += 1
        server.kill()
        http.close()
        server = ServerProcess(tmp_path, port=server.port).start()
        with httpx.Client(base_url=server.url, timeout=10, auth=basic) as again:
            events = again.get(
                f"/v2/projects/plant/devices/{device}/events", params={"eventTypes": "batteryStatus"}
            ).json()["events"]
        assert len(events) == acknowledged
    finally:
        server.kill()
