"""The whole service on the engines for scale: PostgreSQL storage and the NATS JetStream bus,
with several fleetlog processes sharing them."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from fleetlog.bootstrap import build_app
from fleetlog.config import Config
from fleetlog.core.event import Event
from fleetlog.core.registry import Device, Project, Tenant
from fleetlog.pipeline.live import LiveFeed
from tests.conftest import OPERATOR_TOKEN, setup_fleet
from tests.e2e.process import ServerProcess
from tests.e2e.test_crash import hammer
from tests.services import require

POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
NATS = "nats://127.0.0.1:4222"
WAIT = 20.0  # seconds: a bound against hanging, not a speed requirement


def engines() -> None:
    require("PostgreSQL", 5432)
    require("NATS", 4222)
    for module in ("asyncpg", "nats"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed")


async def _schema(name: str, create: bool) -> None:
    import asyncpg

    conn = await asyncpg.connect(POSTGRES)
    try:
        await conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
        if create:
            await conn.execute(f"CREATE SCHEMA {name}")
    finally:
        await conn.close()


async def _drop_stream(name: str) -> None:
    import nats

    nc = await nats.connect(NATS)
    try:
        await nc.jetstream().delete_stream(name.upper())
    except Exception:
        pass
    finally:
        await nc.close()


class Installation:
    """One PostgreSQL schema and one NATS stream, removed afterwards."""

    def __init__(self) -> None:
        self.name = "e2e_" + uuid.uuid4().hex[:12]
        self.storage_url = f"{POSTGRES}?search_path={self.name}"
        self.bus_url = f"{NATS}/{self.name}"

    def env(self) -> dict[str, str]:
        return {"FLEETLOG_STORAGE_URL": self.storage_url, "FLEETLOG_BUS_URL": self.bus_url}


@pytest.fixture
def installation() -> Iterator[Installation]:
    engines()
    inst = Installation()
    asyncio.run(_schema(inst.name, create=True))
    yield inst
    asyncio.run(_schema(inst.name, create=False))
    asyncio.run(_drop_stream(inst.name))


# -- the app on PostgreSQL + NATS, in this process -----------------------------------------


def test_ingest_query_state_and_duplicates_on_postgres_and_nats(installation: Installation, tmp_path: Path) -> None:
    config = Config(
        data_dir=tmp_path,
        admin_token=OPERATOR_TOKEN,
        storage_url=installation.storage_url,
        bus_url=installation.bus_url,
    )
    with TestClient(build_app(config)) as client:
        fleet = setup_fleet(client, tmp_path)
        batch = [
            {"device": "sensor-1", "type": "temperature", "time": "2026-11-22T10:00:00Z", "data": {"value": 21.5}},
            {"device": "sensor-1", "type": "temperature", "time": "2026-11-22T10:05:00Z", "data": {"value": 2**70}},
            {"device": "sensor-2", "type": "touch", "time": "2026-11-22T10:01:00Z"},
        ]
        fleet.ingest(batch)
        page = client.get("/v1/tenants/acme/events?device=sensor-1&type=temperature", headers=fleet.reader).json()
        assert [e["data"]["value"] for e in page["events"]] == [2**70, 21.5]  # newest first, big ints kept
        state = client.get("/v1/tenants/acme/devices/sensor-1/state", headers=fleet.reader)
        assert state.status_code == 200 and str(2**70) in state.text
        # another tenant's credential sees nothing of it
        assert client.get("/v1/tenants/acme/events", headers=fleet.other).status_code in (401, 403, 404)

        body = {"typeId": "door", "description": "", "appId": "a", "severity": 2, "data": {"open": True}}
        body["timestamp"] = 1_795_000_000_000
        key = {"X-API-Key": fleet.writer["Authorization"][7:]}
        url = "/rest/v1/api/tenants/acme/devices/sensor-1/events"
        first = client.post(url, json=body, headers=key)
        again = client.post(url, json=body, headers=key)
        assert (first.status_code, again.status_code) == (201, 409)
        assert client.get(f"/v1/tenants/acme/events/{first.json()['id']}", headers=fleet.reader).status_code == 200


def test_a_second_process_reads_what_the_first_wrote(installation: Installation, tmp_path: Path) -> None:
    def config(sub: str) -> Config:
        (tmp_path / sub).mkdir()
        return Config(
            data_dir=tmp_path / sub,
            admin_token=OPERATOR_TOKEN,
            storage_url=installation.storage_url,
            bus_url=installation.bus_url,
        )

    with TestClient(build_app(config("a"))) as a, TestClient(build_app(config("b"))) as b:
        fleet = setup_fleet(a, tmp_path)
        fleet.ingest([{"device": "sensor-1", "type": "touch", "time": "2026-11-22T10:00:00Z"}])
        fleet.ingest([{"device": "sensor-1", "type": "touch", "time": "2026-11-22T10:00:01Z"}])
        from_b = b.get("/v1/tenants/acme/events?type=touch", headers=fleet.reader).json()["events"]
        from_a = a.get("/v1/tenants/acme/events?type=touch", headers=fleet.reader).json()["events"]
        assert [e["id"] for e in from_b] == [e["id"] for e in from_a] and len(from_b) == 2


# -- two "processes" (stores and buses of their own) following each other live -------------


async def _process(installation: Installation, **bus_kw: Any) -> tuple[Any, Any]:
    from fleetlog.adapters.bus.nats import NatsBus
    from fleetlog.adapters.storage.postgres import PostgresStorage

    bus = NatsBus(installation.bus_url, **bus_kw)
    store = PostgresStorage(installation.storage_url, bus=bus)
    await bus.open()
    await store.open()
    return store, bus


@pytest.fixture
async def two_processes(installation: Installation) -> AsyncIterator[tuple[Any, Any, Any, Any]]:
    one = await _process(installation)
    two = await _process(installation, max_outbox=10)
    reg = one[0].registry
    await reg.create_tenant(Tenant(id="acme"))
    await reg.create_project(Project(id="plant", tenant="acme"))
    await reg.create_device(Device(id="d1", tenant="acme", project="plant"))
    yield (*one, *two)
    for store, bus in (one, two):
        await store.aclose()
        await bus.aclose()


def event(i: int) -> Event:
    return Event(tenant="acme", project="plant", device="d1", type="t", time=i, received=i, data={"i": i})


async def test_a_live_feed_sees_commits_of_every_process_without_gaps(two_processes: Any) -> None:
    store_one, _, store_two, bus_two = two_processes
    feed = LiveFeed(store_two.events, bus_two, "acme", lambda e: e.tenant == "acme")
    received: list[str] = []

    async def follow(n: int) -> None:
        async for ev in feed:
            received.append(ev.id)
            if len(received) == n:
                return

    follower = asyncio.ensure_future(follow(62))  # the feed subscribed when it was made
    written: list[str] = []
    for i in range(20):  # alternate between the processes: seqs interleave across them
        for store in (store_one, store_two):
            (r,) = await store.events.append([event(i)])
            written.append(r.event.id)
    # process two's outbox holds 10 events: a 20-event commit is dropped, never published;
    # the next commit's link shows the gap and the feed refills from the store
    written += [r.event.id for r in await store_two.events.append([event(100 + i) for i in range(20)])]
    for i in range(2):
        (r,) = await store_one.events.append([event(200 + i)])
        written.append(r.event.id)
    await asyncio.wait_for(follower, WAIT)
    assert received == written  # everything, once, in commit order
    assert len(set(written)) == 62 and written == sorted(written)
    assert bus_two.dropped == 20 and feed.refills >= 1


# -- crash: kill -9 of servers sharing PostgreSQL ------------------------------------------


def _start(installation: Installation, data_dir: Path) -> ServerProcess:
    data_dir.mkdir(exist_ok=True)
    return ServerProcess(data_dir, env=installation.env()).start(timeout=60)  # a loaded machine starts slowly


def _stored_ids(srv: ServerProcess) -> list[str]:
    response = httpx.get(f"{srv.url}/v1/tenants/acme/events/export", headers=srv.operator, timeout=60)
    assert response.status_code == 200
    return [json.loads(line)["id"] for line in response.text.splitlines()]


@pytest.mark.slow
def test_sigkill_of_one_server_loses_no_acknowledged_event(installation: Installation, tmp_path: Path) -> None:
    one = _start(installation, tmp_path / "one")
    two = _start(installation, tmp_path / "two")
    try:
        op = one.operator
        for path, body in [("/v1/tenants", {"id": "acme"}), ("/v1/tenants/acme/projects", {"id": "plant"})]:
            assert httpx.post(one.url + path, json=body, headers=op).status_code == 201
        for i in range(20):
            body = {"id": f"dev-{i}", "project": "plant"}
            assert httpx.post(one.url + "/v1/tenants/acme/devices", json=body, headers=op).status_code == 201

        acked_one: list[str] = []
        acked_two: list[str] = []

        async def both() -> None:
            # both servers take writes; each is killed right after an acknowledgement (the
            # first after 800, the second after 1,600), with other writes in flight
            await asyncio.gather(hammer(one, acked_one, stop_after=800), hammer(two, acked_two, stop_after=1600))

        asyncio.run(both())
        assert one.proc is not None and one.proc.returncode == -9
        one.start(timeout=60)
        stored = _stored_ids(one)
        assert len(stored) == len(set(stored))  # two writers, one sequence: no id twice
        missing = (set(acked_one) | set(acked_two)) - set(stored)
        assert not missing, f"{len(missing)} acknowledged events lost"
        assert len(acked_one) >= 800 and len(acked_two) >= 1600
    finally:
        one.stop()
        two.stop()


# -- PostgreSQL specifics -------------------------------------------------------------------


async def test_writers_of_two_processes_never_share_a_seq_and_commit_in_seq_order(two_processes: Any) -> None:
    store_one, _, store_two, _ = two_processes

    async def one(store: Any, i: int) -> str:
        (r,) = await store.events.append([event(i)])
        return str(r.event.id)

    ids = await asyncio.gather(*(one(store, i) for i in range(300) for store in (store_one, store_two)))
    assert len(set(ids)) == 600
    # in commit order (what a live resume reads) is in id order
    replay = [e.id for e in await store_two.events.since("acme", 0, limit=1000) if e.type == "t"]
    assert replay == sorted(ids)


async def test_a_job_that_breaks_the_transaction_fails_alone(two_processes: Any) -> None:
    store, _, _, _ = two_processes
    good = [asyncio.ensure_future(store.events.append([event(i)])) for i in range(5)]
    bad = asyncio.ensure_future(store.events.append([event(2**64)]))  # beyond bigint: COPY fails
    await asyncio.gather(*good, bad, return_exceptions=True)
    assert bad.exception() is not None
    assert all(g.result()[0].event.id for g in good)
    assert await store.events.count("acme") == 5


async def test_starting_processes_migrate_once(installation: Installation) -> None:
    import asyncpg

    from fleetlog.adapters.storage.postgres import PostgresStorage
    from fleetlog.adapters.storage.postgres.schema import MIGRATIONS

    stores = [PostgresStorage(installation.storage_url) for _ in range(3)]
    await asyncio.gather(*(s.open() for s in stores))  # at once: one migrates, the others wait
    for s in stores:
        await s.aclose()
    conn = await asyncpg.connect(installation.storage_url)
    try:
        versions = [r[0] for r in await conn.fetch("SELECT version FROM schema_migrations ORDER BY version")]
        assert versions == list(range(1, len(MIGRATIONS) + 1))  # each migration ran exactly once
    finally:
        await conn.close()
    with pytest.raises(ValueError, match="postgresql://"):
        PostgresStorage("mysql://127.0.0.1/x")


async def test_the_inbox_gives_a_payload_to_one_process_and_frees_a_dead_ones(two_processes: Any) -> None:
    store_one, _, store_two, _ = two_processes
    await store_one.inbox.put([b"a", b"b", b"c"])
    assert [p for _, p in await store_one.inbox.take(2)] == [b"a", b"b"]
    assert [p for _, p in await store_two.inbox.take(10)] == [b"c"]  # not what the first holds
    store_one.inbox.close()  # the first process dies: its locks go with its connection
    # PostgreSQL ends the dead session a moment after its socket closes; until then its rows
    # stay locked and are skipped
    for _ in range(500):  # up to 10 s
        taken = await store_two.inbox.take(10)
        if len(taken) == 3:
            break
        await asyncio.sleep(0.02)
    assert [p for _, p in taken] == [b"a", b"b", b"c"]
    await store_two.inbox.done([pk for pk, _ in taken])
    assert await store_two.inbox.take(10) == []


async def test_processes_creating_the_same_operator_key_agree(two_processes: Any) -> None:
    """Servers started together on an empty database each create the operator key from the
    configured token: the second must not fail; a different secret under that id must."""
    from fleetlog.core.errors import Conflict
    from fleetlog.core.registry import ApiKey, Role, hash_secret

    store_one, _, store_two, _ = two_processes

    def key(token: str, created: int) -> ApiKey:
        return ApiKey(
            id="operator", tenant=None, project=None, role=Role.ADMIN, secret_hash=hash_secret(token), created=created
        )

    await store_one.registry.create_key(key(OPERATOR_TOKEN, 1))
    again = await store_two.registry.create_key(key(OPERATOR_TOKEN, 2))
    assert again.secret_hash == hash_secret(OPERATOR_TOKEN)
    with pytest.raises(Conflict):
        await store_two.registry.create_key(key("fl_operator_another-secret", 3))
    assert [k.id for k in await store_two.registry.list_keys(None)] == ["operator"]


def test_a_key_revoked_on_one_server_stops_working_on_the_others(installation: Installation, tmp_path: Path) -> None:
    def config(sub: str) -> Config:
        return Config(
            data_dir=tmp_path / sub,
            admin_token=OPERATOR_TOKEN,
            storage_url=installation.storage_url,
            bus_url=installation.bus_url,
        )

    with TestClient(build_app(config("a"))) as a, TestClient(build_app(config("b"))) as b:
        fleet = setup_fleet(a, tmp_path)
        moved = {"project": "office"}
        assert b.get("/v1/tenants/acme/events", headers=fleet.reader).status_code == 200  # b caches the key
        assert b.get("/v1/tenants/acme/devices/sensor-1", headers=fleet.reader).json()["project"] == "plant"
        keys = a.get("/v1/tenants/acme/keys", headers=fleet.operator).json()
        reader_key = next(k["id"] for k in keys["keys"] if k["role"] == "read")
        assert a.delete(f"/v1/tenants/acme/keys/{reader_key}", headers=fleet.operator).status_code == 204
        assert a.patch("/v1/tenants/acme/devices/sensor-1", json=moved, headers=fleet.operator).status_code == 200

        def on_b(check: Any) -> bool:
            deadline = time.monotonic() + WAIT  # the notice arrives within milliseconds
            while time.monotonic() < deadline:
                if check():
                    return True
                time.sleep(0.02)
            return False

        assert on_b(lambda: b.get("/v1/tenants/acme/events", headers=fleet.reader).status_code == 401)
        device = b.get("/v1/tenants/acme/devices/sensor-1", headers=fleet.admin).json()
        assert device["project"] == "office"
        # events now go to the device's new project in b as well
        sent = b.post("/v1/tenants/acme/events", json={"device": "sensor-1", "type": "touch"}, headers=fleet.writer)
        assert sent.status_code == 201, sent.text
        office = b.get("/v1/tenants/acme/events?project=office&type=touch", headers=fleet.admin).json()["events"]
        assert [e["device"] for e in office] == ["sensor-1"]


@pytest.mark.slow
def test_202_events_are_processed_once_after_a_crash(installation: Installation, tmp_path: Path) -> None:
    srv = _start(installation, tmp_path / "one")
    try:
        op = srv.operator
        for path, body in [
            ("/v1/tenants", {"id": "acme"}),
            ("/v1/tenants/acme/projects", {"id": "plant"}),
            ("/v1/tenants/acme/devices", {"id": "dev-1", "project": "plant"}),
        ]:
            assert httpx.post(srv.url + path, json=body, headers=op).status_code == 201
        headers = {"X-API-Key": OPERATOR_TOKEN, "Prefer": "respond-async"}
        url = f"{srv.url}/rest/v1/api/tenants/acme/devices/dev-1/events"
        for i in range(50):
            body = {"typeId": "later", "description": "", "appId": "a", "severity": 1, "data": {"i": i}}
            body["timestamp"] = int(time.time() * 1000)
            assert httpx.post(url, json=body, headers=headers).status_code == 202
        srv.kill()
        srv.start(timeout=60)
        deadline = time.monotonic() + WAIT
        events: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            query = f"{srv.url}/v1/tenants/acme/events?type=later&limit=1000"
            events = httpx.get(query, headers=op).json()["events"]
            if len(events) >= 50:
                break
            time.sleep(0.1)
        assert sorted(e["data"]["i"] for e in events) == list(range(50))  # each exactly once
    finally:
        srv.stop()
