"""Every acknowledged event survives a SIGKILL of the server right after the acknowledgement."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.process import ServerProcess

pytestmark = pytest.mark.slow


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    srv = ServerProcess(tmp_path).start()
    op = srv.operator
    for path, body in [("/v1/tenants", {"id": "acme"}), ("/v1/tenants/acme/projects", {"id": "plant"})]:
        assert httpx.post(srv.url + path, json=body, headers=op).status_code == 201
    for i in range(20):
        response = httpx.post(
            srv.url + "/v1/tenants/acme/devices", json={"id": f"dev-{i}", "project": "plant"}, headers=op
        )
        assert response.status_code == 201
    yield srv
    srv.stop()


def stored_ids(srv: ServerProcess) -> set[str]:
    response = httpx.get(f"{srv.url}/v1/tenants/acme/events/export", headers=srv.operator, timeout=30)
    assert response.status_code == 200
    return {json.loads(line)["id"] for line in response.text.splitlines()}


async def hammer(srv: ServerProcess, acked: list[str], stop_after: int, clients: int = 16) -> None:
    """Many clients post single events to the tenant face until the server dies."""

    async def client(n: int) -> None:
        async with httpx.AsyncClient(base_url=srv.url, headers={"X-API-Key": srv.operator["Authorization"][7:]}) as c:
            i = 0
            start_ms = int(time.time() * 1000)  # recent: older events would fall to retention at restart
            while True:
                body = {
                    "typeId": "reading",
                    "description": "",
                    "appId": "crash-test",
                    "severity": 2,
                    "data": {"client": n, "i": i},
                    "timestamp": start_ms + i,
                }
                try:
                    r = await c.post(f"/rest/v1/api/tenants/acme/devices/dev-{n % 20}/events", json=body, timeout=5)
                except httpx.HTTPError:
                    return  # the server is gone
                if r.status_code == 201:
                    acked.append(r.json()["id"])
                    if len(acked) == stop_after:
                        srv.kill()  # right after an acknowledgement, with others in flight
                i += 1

    await asyncio.gather(*(client(n) for n in range(clients)))


def test_sigkill_loses_no_acknowledged_event(server: ServerProcess) -> None:
    acked: list[str] = []
    asyncio.run(hammer(server, acked, stop_after=1500))
    assert len(acked) >= 1500
    assert server.proc is not None and server.proc.returncode == -9
    server.start()
    stored = stored_ids(server)
    missing = set(acked) - stored
    assert not missing, f"{len(missing)} acknowledged events lost"


def test_202_events_are_processed_after_a_crash(server: ServerProcess) -> None:
    headers = {"X-API-Key": server.operator["Authorization"][7:], "Prefer": "respond-async"}
    accepted = 0
    for i in range(50):
        body = {
            "typeId": "later",
            "description": "",
            "appId": "a",
            "severity": 1,
            "data": {"i": i},
            "timestamp": int(time.time() * 1000),
        }
        r = httpx.post(f"{server.url}/rest/v1/api/tenants/acme/devices/dev-1/events", json=body, headers=headers)
        assert r.status_code == 202
        accepted += 1
    server.kill()
    server.start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        response = httpx.get(f"{server.url}/v1/tenants/acme/events?type=later&limit=1000", headers=server.operator)
        if len(response.json()["events"]) == accepted:
            break
        time.sleep(0.1)
    events = response.json()["events"]
    assert len(events) == accepted
    assert sorted(e["data"]["i"] for e in events) == list(range(50))  # each exactly once
