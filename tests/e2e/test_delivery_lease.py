"""One process delivers when several share a PostgreSQL store: the delivery lease."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from fleetlog.adapters.storage.postgres.database import Database
from fleetlog.adapters.storage.postgres.leases import PostgresLeases
from tests.delivery.receiver import Received, Receiver
from tests.e2e.process import ServerProcess
from tests.e2e.test_engines import POSTGRES, Installation, installation  # noqa: F401  (a fixture)

WAIT = 30.0  # seconds: a bound against hanging, not a speed requirement


async def test_one_holder_at_a_time_and_another_takes_over_when_its_session_ends(
    installation: Installation,  # noqa: F811
) -> None:
    one, two, outside = (Database(installation.storage_url) for _ in range(3))
    first = PostgresLeases(one, retry_seconds=0.05, check_seconds=0.1)
    second = PostgresLeases(two, retry_seconds=0.05, check_seconds=0.1)
    try:
        held = await first.acquire("delivery")
        waiting = asyncio.create_task(second.acquire("delivery"))
        await asyncio.sleep(0.5)
        assert not waiting.done()  # one holder at a time
        other = await asyncio.wait_for(second.acquire("something else"), WAIT)  # names are apart
        await other.release()
        # The holder's session ends from outside, as a crash or a cut connection would end it.
        conn = await outside.connect()
        try:
            holders = await conn.fetch(
                "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid <> pg_backend_pid()"
            )
            assert len(holders) == 1
            await conn.execute("SELECT pg_terminate_backend($1)", holders[0]["pid"])
        finally:
            await conn.close()
        await asyncio.wait_for(held.lost.wait(), WAIT)
        taken = await asyncio.wait_for(waiting, WAIT)
        assert not taken.lost.is_set()
        await taken.release()
        again = await asyncio.wait_for(first.acquire("delivery"), WAIT)  # released: free at once
        await again.release()
    finally:
        for db in (one, two, outside):
            await db.aclose()


def _leader(servers: list[ServerProcess]) -> ServerProcess:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        leaders = [s for s in servers if "fleetlog_delivery_leader 1" in httpx.get(f"{s.url}/metrics").text]
        assert len(leaders) <= 1
        if leaders:
            return leaders[0]
        time.sleep(0.1)
    raise AssertionError("no process took the delivery lease")


def _post(srv: ServerProcess, count: int, start: int) -> None:
    batch = [{"type": "reading", "device": f"dev-{i % 5}", "data": {"n": start + i}} for i in range(count)]
    response = httpx.post(f"{srv.url}/v1/tenants/acme/events", json=batch, headers=srv.operator, timeout=30)
    assert response.status_code == 200, response.text


def _numbers(got: list[Received]) -> list[int]:
    """The readings this test posted (a replay from 0 also brings the devices' SYS_106 events)."""
    return sorted(r.json["data"]["n"] for r in got if r.answered == 200 and r.json["type"] == "reading")


@pytest.mark.slow
def test_two_processes_push_each_event_once_and_the_survivor_takes_over(
    installation: Installation,  # noqa: F811
    tmp_path: Path,
) -> None:
    env = {**installation.env(), "FLEETLOG_DELIVERY_CHECKPOINT_SECONDS": "0.1"}
    servers = [ServerProcess(tmp_path / name, env=env) for name in ("one", "two")]
    receiver = Receiver().start()
    try:
        for s in servers:
            s.data_dir.mkdir()
            s.start(timeout=60)
        op = servers[0].operator
        for path, body in [("/v1/tenants", {"id": "acme"}), ("/v1/tenants/acme/projects", {"id": "plant"})]:
            assert httpx.post(servers[0].url + path, json=body, headers=op).status_code == 201
        for i in range(5):
            device = {"id": f"dev-{i}", "project": "plant"}
            assert httpx.post(servers[0].url + "/v1/tenants/acme/devices", json=device, headers=op).status_code == 201
        leader = _leader(servers)
        other = next(s for s in servers if s is not leader)

        # A webhook made through the process that does not deliver is picked up by the one that does.
        made = httpx.post(f"{other.url}/v1/tenants/acme/webhooks", json={"url": receiver.url}, headers=op)
        assert made.status_code == 201, made.text
        hook = made.json()["id"]
        deadline = time.monotonic() + WAIT
        while "fleetlog_delivery_workers 1" not in httpx.get(f"{leader.url}/metrics").text:
            assert time.monotonic() < deadline, "the delivering process never started the webhook"
            time.sleep(0.1)
        _post(leader, 30, 0)
        _post(other, 30, 30)
        receiver.wait_for(lambda got: len(set(_numbers(got))) == 60, WAIT)
        time.sleep(1.0)  # a second pusher would have pushed its copies by now
        assert _numbers(receiver.received) == list(range(60))  # each event once: one process pushes

        # A replay asked of the other process is run by the delivering one.
        replay = httpx.post(f"{other.url}/v1/tenants/acme/webhooks/{hook}/replay", json={"since": 0}, headers=op)
        assert replay.status_code == 202, replay.text
        receiver.wait_for(lambda got: len(_numbers(got)) >= 120, WAIT)
        assert _numbers(receiver.received) == sorted(list(range(60)) * 2)

        # The delivering process dies; the other takes the lease and goes on from the cursor.
        leader.kill()
        assert _leader([other]) is other
        _post(other, 20, 60)
        receiver.wait_for(lambda got: set(range(60, 80)) <= set(_numbers(got)), WAIT)
        metrics = httpx.get(f"{other.url}/v1/tenants/acme/webhooks/{hook}/metrics", headers=op)
        assert metrics.status_code == 200
    finally:
        receiver.stop()
        for s in servers:
            s.stop()
