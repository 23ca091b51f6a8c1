"""Sensors go OFFLINE after max(15 min, 1.5 x heartbeat) without an event of their own, precisely,
and are back (SDS) with their next event. The clock is a fake one, so this runs in milliseconds."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from fleetlog.adapters.bus.memory import MemoryBus
from fleetlog.adapters.storage.sqlite import SqliteStorage
from fleetlog.core.catalog import builtin_catalog
from fleetlog.core.event import Event, SourceKind
from fleetlog.core.registry import Device, Project, Tenant
from fleetlog.core.timefmt import rfc3339
from fleetlog.faces.dt import CONNECTIVITY
from fleetlog.pipeline.connectivity import ConnectivityMonitor
from fleetlog.pipeline.directory import Directory
from fleetlog.pipeline.ingest import Ingest
from fleetlog.ports.clock import SystemClock
from tests.conftest import FakeClock
from tests.dt.conftest import DT, Account, make, ok

MINUTE = 60
START = FakeClock().us


@pytest.fixture
def world(tmp_path: Path) -> Iterator[DT]:
    yield from make(tmp_path, clock=FakeClock(), dt_token_seconds=30 * 24 * 3600)


def monitor(dt: DT) -> ConnectivityMonitor:
    return dt.client.app.state.services.extras[CONNECTIVITY]  # type: ignore[attr-defined, no-any-return]


def wait_for(condition: Any) -> None:
    """The monitor runs on the app's loop, behind the bus: wait (not time) for it to catch up."""
    deadline = time.monotonic() + 5
    while not condition():
        assert time.monotonic() < deadline, "the connectivity monitor never caught up"
        time.sleep(0.002)


def at(dt: DT, seconds: float) -> None:
    """Move the fake clock to `seconds` after the start and let the monitor check deadlines."""
    assert dt.clock is not None
    dt.clock.us = START + int(seconds * 1_000_000)
    dt.client.portal.call(monitor(dt).expire_due)  # type: ignore[attr-defined]


def publish(dt: DT, account: Account, device: str, seconds: float, body: dict[str, Any] | None = None) -> None:
    assert dt.clock is not None
    dt.clock.us = START + int(seconds * 1_000_000)
    ok(dt.publish(account, "plant", device, body or {"touch": {}}))
    wait_for(lambda: monitor(dt).heard_at("acme", device) == dt.clock.us)  # type: ignore[union-attr]


def connections(dt: DT, account: Account, device: str) -> list[tuple[str, str]]:
    events = dt.history(account, "plant", device, eventTypes="connectionStatus", startTime=rfc3339(0))
    return [(e["data"]["connectionStatus"]["connection"], e["timestamp"]) for e in reversed(events)]


def test_offline_exactly_at_the_threshold_and_back_with_the_next_event(world: DT) -> None:
    account = world.account("plant")
    sensor = world.emulated(account, "plant", "touch")
    publish(world, account, sensor, 0)  # heartbeat 15 min: OFFLINE after 22.5 min
    at(world, 22.5 * MINUTE - 0.000001)
    assert connections(world, account, sensor) == []
    at(world, 22.5 * MINUTE)
    assert connections(world, account, sensor) == [("OFFLINE", rfc3339(START + int(22.5 * MINUTE * 1_000_000)))]
    at(world, 60 * MINUTE)  # once OFFLINE, it stays so without repeating itself
    assert len(connections(world, account, sensor)) == 1
    publish(world, account, sensor, 61 * MINUTE)
    wait_for(lambda: len(connections(world, account, sensor)) == 2)
    assert connections(world, account, sensor)[1] == ("SDS", rfc3339(START + 61 * MINUTE * 1_000_000))
    reported = ok(world.client.get(f"/v2/projects/plant/devices/{sensor}", headers=account.headers))["reported"]
    assert reported["connectionStatus"]["connection"] == "SDS" and reported["connectionStatus"]["available"] == ["SDS"]
    at(world, 83.5 * MINUTE)  # and the clock runs again from its new event
    assert [c for c, _ in connections(world, account, sensor)] == ["OFFLINE", "SDS", "OFFLINE"]


def test_every_event_of_its_own_moves_the_deadline(world: DT) -> None:
    account = world.account("plant")
    sensor = world.emulated(account, "plant", "temperature")
    publish(world, account, sensor, 0, {"temperature": {"value": 3}})
    publish(world, account, sensor, 10 * MINUTE, {"batteryStatus": {"percentage": 90}})
    at(world, 32.5 * MINUTE - 0.000001)
    assert connections(world, account, sensor) == []
    at(world, 32.5 * MINUTE)
    assert [c for c, _ in connections(world, account, sensor)] == ["OFFLINE"]


def test_registry_changes_do_not_count_as_hearing_from_the_sensor(world: DT) -> None:
    account = world.account("plant")
    sensor = world.emulated(account, "plant", "touch")
    publish(world, account, sensor, 0)
    assert world.clock is not None
    world.clock.us = START + 20 * MINUTE * 1_000_000
    body = {"devices": [f"projects/plant/devices/{sensor}"], "addLabels": {"room": "9"}}
    ok(world.client.post("/v2/projects/plant/devices:batchUpdate", json=body, headers=account.headers))
    at(world, 22.5 * MINUTE)
    assert [c for c, _ in connections(world, account, sensor)] == ["OFFLINE"]


def test_the_threshold_is_one_and_a_half_heartbeats_when_that_is_longer(world: DT) -> None:
    account = world.account("plant")
    sensor = world.emulated(account, "plant", "temperature")
    directory = world.client.app.state.services.directory  # type: ignore[attr-defined]
    portal = world.client.portal  # type: ignore[attr-defined]
    device = portal.call(directory.device, "acme", sensor)
    portal.call(
        directory.update_device, msgspec.structs.replace(device, attrs={**device.attrs, "heartbeat_seconds": 3600})
    )
    publish(world, account, sensor, 0, {"temperature": {"value": 3}})
    at(world, 90 * MINUTE - 1)
    assert connections(world, account, sensor) == []
    at(world, 90 * MINUTE)
    assert [c for c, _ in connections(world, account, sensor)] == ["OFFLINE"]


def test_cloud_connectors_have_no_heartbeat_to_miss(world: DT) -> None:
    account = world.account("plant")
    ccon = world.emulated(account, "plant", "ccon")
    ok(world.publish(account, "plant", ccon, {"connectionStatus": {"available": ["ETHERNET"]}}))
    at(world, 24 * 60 * MINUTE)
    assert [c for c, _ in connections(world, account, ccon)] == ["ETHERNET"]


def test_a_restart_remembers_deadlines_and_never_repeats_an_offline(tmp_path: Path) -> None:
    clock = FakeClock()
    first = make(tmp_path, clock=clock)
    world = next(first)
    account = world.account("plant")
    sensor = world.emulated(account, "plant", "touch")
    publish(world, account, sensor, 0)
    first.close()
    clock.us = START + 30 * MINUTE * 1_000_000  # the deadline passed while fleetlog was down
    for _ in range(2):  # two restarts: one OFFLINE, at the deadline
        with _restarted(tmp_path, clock) as again:
            wait_for(lambda again=again: monitor(again).is_offline("acme", sensor) is not None)
            again.client.portal.call(monitor(again).expire_due)  # type: ignore[attr-defined]
            expected = [("OFFLINE", rfc3339(START + int(22.5 * MINUTE * 1_000_000)))]
            assert connections(again, account, sensor) == expected


class _restarted:
    def __init__(self, data_dir: Path, clock: FakeClock) -> None:
        from starlette.testclient import TestClient

        from fleetlog.bootstrap import build_app
        from fleetlog.config import Config
        from tests.conftest import OPERATOR_TOKEN

        self._client = TestClient(build_app(Config(data_dir=data_dir, admin_token=OPERATOR_TOKEN), clock=clock))
        self._clock = clock

    def __enter__(self) -> DT:
        return DT(self._client.__enter__(), self._clock)

    def __exit__(self, *exc: object) -> None:
        self._client.__exit__(None, None, None)


async def test_detection_is_precise_with_the_real_clock(tmp_path: Path) -> None:
    """No polling: the OFFLINE event comes by itself, stamped with the exact deadline."""
    bus = MemoryBus()
    storage = SqliteStorage(tmp_path / "c.db", bus=bus)
    clock = SystemClock()
    directory = Directory(storage.registry, clock, builtin_catalog())
    ingest = Ingest(storage.events, directory, builtin_catalog(), clock, storage.inbox)
    watcher = ConnectivityMonitor(ingest, directory, storage.events, bus, clock, min_offline_seconds=0.3)
    await directory.create_tenant(Tenant(id="acme"))
    await directory.create_project(Project(id="plant", tenant="acme"))
    await directory.create_device(
        Device(id="s", tenant="acme", project="plant", type="touch", attrs={"heartbeat_seconds": 0.1})
    )
    offline = bus.subscribe(lambda e: e.type == "connectionStatus")
    running = asyncio.create_task(watcher.run())
    await asyncio.sleep(0)  # it has subscribed to the bus
    try:
        now = clock.now_us()
        touch = Event(tenant="acme", project="plant", device="s", type="touch", time=now, received=now)
        await storage.events.append([touch])
        event = await asyncio.wait_for(offline.get(), 5)
        assert event.data == {"connection": "OFFLINE", "available": []} and event.source is SourceKind.SYSTEM
        assert event.time == now + 300_000  # max(0.3 s, 1.5 x 0.1 s) after it was heard, to the microsecond
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        storage.close()
