"""At-least-once delivery against a real local receiver: order, retries, Retry-After, maximum
age, SYSTEM_DISABLED, no backfill, replay, and isolation between connectors."""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FakeClock, Fleet
from tests.delivery.conftest import dt_connector, engine_of, event, make_fleet
from tests.delivery.receiver import Answer, Received, Receiver, free_port, receiving


def wait(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition never held"
        time.sleep(0.01)


def ids_of(result: Any) -> list[str]:
    return [item["id"] for item in result["results"]]


def dt_metrics(fleet: Fleet, connector: dict[str, Any]) -> dict[str, Any]:
    response = fleet.client.get(f"/v2/{connector['name']}:metrics", headers=fleet.admin)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def dt_get(fleet: Fleet, connector: dict[str, Any]) -> dict[str, Any]:
    response = fleet.client.get(f"/v2/{connector['name']}", headers=fleet.admin)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def dt_patch(fleet: Fleet, connector: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    response = fleet.client.patch(f"/v2/{connector['name']}", json=body, headers=fleet.admin)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def test_order_is_kept_per_device_through_retries_and_delays(fleet: Fleet, receiver: Receiver) -> None:
    rng = random.Random(7)

    def flaky(_: Received) -> Answer:  # slow answers and failures, so lanes interleave and retry
        return Answer(status=500 if rng.random() < 0.2 else 200, delay=rng.random() * 0.005)

    receiver.answer_with = flaky
    dt_connector(fleet, receiver.url, project="plant")
    devices = ["sensor-1", "sensor-2"]
    sent: list[str] = []
    for _ in range(6):
        result = fleet.ingest([event(devices[i % 2], data={}) for i in range(50)])
        sent += ids_of(result)
    receiver.wait_for(lambda r: len({x.json["event"]["eventId"] for x in r if x.answered == 200}) == len(sent))
    by_device: dict[str, list[str]] = defaultdict(list)
    for body in (r.json for r in receiver.accepted):
        by_device[body["metadata"]["deviceId"]].append(body["event"]["eventId"])
    sent_order = sorted(sent)  # ids sort by arrival: this is commit order
    for device, got in by_device.items():
        assert got == [i for i in sent_order if i in set(got)], f"{device}: out of order"
    assert sum(len(v) for v in by_device.values()) == len(sent)  # each delivered once (no restart here)


def test_retried_after_500_until_200(fleet: Fleet, receiver: Receiver) -> None:
    receiver.plan = [Answer(500, body="database down"), Answer(502)]
    connector = dt_connector(fleet, receiver.url)
    (stored_id,) = ids_of(fleet.ingest([event()]))
    receiver.wait_for(lambda r: any(x.answered == 200 for x in r))
    assert [r.json["event"]["eventId"] for r in receiver.received] == [stored_id] * 3
    assert [r.answered for r in receiver.received] == [500, 502, 200]
    # The receiver has answered; the answer reaches the server's counts a moment later.
    wait(lambda: dt_metrics(fleet, connector)["metrics"]["successCount"] == 1)
    metrics = dt_metrics(fleet, connector)
    assert metrics["metrics"]["successCount"] == 1
    assert metrics["metrics"]["errorCount"] == 2
    assert metrics["metrics"]["latency99p"].endswith("s")
    newest, older = metrics["failures"]
    assert (newest["status"], older["status"]) == (502, 500)
    assert older["body"] == "database down" and older["eventId"] == stored_id and older["attempt"] == 1


def test_metrics_and_failures_survive_a_restart(tmp_path: Path, receiver: Receiver) -> None:
    receiver.plan = [Answer(500, body="database down"), Answer(502)]
    with make_fleet(tmp_path) as fleet:
        connector = dt_connector(fleet, receiver.url)
        fleet.ingest([event()])
        wait(lambda: dt_metrics(fleet, connector)["metrics"]["successCount"] == 1)
        before = dt_metrics(fleet, connector)
    with make_fleet(tmp_path, existing=True) as fleet:
        after = dt_metrics(fleet, connector)
    assert after["metrics"] == before["metrics"]
    assert (after["metrics"]["successCount"], after["metrics"]["errorCount"]) == (1, 2)
    assert [f["status"] for f in after["failures"]] == [502, 500]
    assert after["failures"] == before["failures"]


def test_a_timeout_is_a_failure_and_is_retried(tmp_path: Path) -> None:
    with make_fleet(tmp_path, delivery_timeout_seconds=0.2) as fleet, receiving() as receiver:
        receiver.plan = [Answer(delay=2.0)]
        connector = dt_connector(fleet, receiver.url)
        (stored_id,) = ids_of(fleet.ingest([event()]))
        receiver.wait_for(lambda r: any(x.answered == 200 and x.json["event"]["eventId"] == stored_id for x in r))
        wait(lambda: dt_metrics(fleet, connector)["metrics"]["successCount"] == 1)
        (failure,) = dt_metrics(fleet, connector)["failures"]
        assert failure["status"] == 0 and "timed out" in failure["error"]


def test_connection_refused_is_retried_until_the_receiver_comes_up(fleet: Fleet) -> None:
    port = free_port()
    connector = dt_connector(fleet, f"http://127.0.0.1:{port}/hook")
    (stored_id,) = ids_of(fleet.ingest([event()]))
    wait(lambda: len(dt_metrics(fleet, connector)["failures"]) >= 2)
    failure = dt_metrics(fleet, connector)["failures"][0]
    assert failure["status"] == 0 and "cannot connect" in failure["error"]
    with receiving(port) as receiver:
        receiver.wait_for(lambda r: [x.json["event"]["eventId"] for x in r if x.answered == 200] == [stored_id])


def test_retry_after_is_honoured_on_429_and_503(fleet: Fleet, receiver: Receiver) -> None:
    waits: list[float] = []

    async def record(seconds: float) -> None:
        waits.append(seconds)
        await asyncio.sleep(0)

    engine_of(fleet).sleep = record
    receiver.plan = [Answer(429, {"Retry-After": "7"}), Answer(503, {"Retry-After": "120"}), Answer(500)]
    dt_connector(fleet, receiver.url)
    fleet.ingest([event()])
    receiver.wait_for(lambda r: any(x.answered == 200 for x in r))
    assert waits[:2] == [7.0, 120.0]
    assert 0 <= waits[2] <= 0.05  # a 500 backs off by the policy (base 0.01 s here, jittered)


def test_events_older_than_the_maximum_age_are_dropped_and_counted(
    timed_fleet: Fleet, clock: FakeClock, receiver: Receiver
) -> None:
    fleet = timed_fleet
    receiver.default = Answer(500)
    connector = dt_connector(fleet, receiver.url)
    (old_id,) = ids_of(fleet.ingest([event()]))
    receiver.wait_for(lambda r: len(r) >= 2)
    clock.advance(12 * 3600 + 1)
    wait(lambda: dt_metrics(fleet, connector)["droppedCount"] == 1)
    receiver.default = Answer(200)
    (new_id,) = ids_of(fleet.ingest([event()]))
    receiver.wait_for(lambda r: any(x.answered == 200 for x in r))
    assert receiver.accepted_ids() == [new_id]
    assert old_id != new_id


def test_failing_for_five_days_disables_the_connector(timed_fleet: Fleet, clock: FakeClock, receiver: Receiver) -> None:
    fleet = timed_fleet
    receiver.default = Answer(503)
    connector = dt_connector(fleet, receiver.url)
    fleet.ingest([event()])
    receiver.wait_for(lambda r: len(r) >= 2)
    assert dt_get(fleet, connector)["status"] == "ACTIVE"
    clock.advance(5 * 24 * 3600)  # the first event is now too old: dropped, not tried again
    fleet.ingest([event("sensor-2")])  # a new one fails too: five days without a success
    wait(lambda: dt_get(fleet, connector)["status"] == "SYSTEM_DISABLED")
    seen = len(receiver.received)
    fleet.ingest([event()])
    # Re-enabling does not backfill: only events from then on are pushed.
    receiver.default = Answer(200)
    dt_patch(fleet, connector, {"status": "ACTIVE"})
    (after_id,) = ids_of(fleet.ingest([event()]))
    receiver.wait_for(lambda r: any(x.answered == 200 for x in r))
    assert receiver.accepted_ids() == [after_id]
    assert all(r.json["event"]["eventId"] == after_id for r in receiver.received[seen:])


def test_re_enabling_does_not_backfill(fleet: Fleet, receiver: Receiver) -> None:
    connector = dt_connector(fleet, receiver.url)
    (first,) = ids_of(fleet.ingest([event()]))
    receiver.wait_for(lambda r: len(r) == 1)
    dt_patch(fleet, connector, {"status": "USER_DISABLED"})
    missed = ids_of(fleet.ingest([event(), event("sensor-2")]))
    dt_patch(fleet, connector, {"status": "ACTIVE"})
    after = ids_of(fleet.ingest([event(), event("sensor-2")]))
    receiver.wait_for(lambda r: len(r) >= 3)
    assert sorted(receiver.accepted_ids()) == sorted([first, *after])
    assert not set(missed) & set(receiver.accepted_ids())


def test_events_before_a_connector_exists_are_not_pushed(fleet: Fleet, receiver: Receiver) -> None:
    before = ids_of(fleet.ingest([event()]))
    dt_connector(fleet, receiver.url)
    after = ids_of(fleet.ingest([event()]))
    receiver.wait_for(lambda r: len(r) >= 1)
    assert receiver.accepted_ids() == after != before


def test_events_before_a_connector_exists_are_not_pushed_even_in_the_same_millisecond(
    timed_fleet: Fleet, receiver: Receiver
) -> None:
    fleet = timed_fleet  # its clock stands still: every event so far has the same arrival time
    before = ids_of(fleet.ingest([event(), event("sensor-2")]))
    dt_connector(fleet, receiver.url)
    after = ids_of(fleet.ingest([event()]))
    receiver.wait_for(lambda r: len(r) >= 1)
    assert receiver.accepted_ids() == after
    assert not set(before) & set(receiver.accepted_ids())


def test_replay_pushes_again_from_a_point_in_time(fleet: Fleet, receiver: Receiver) -> None:
    connector = dt_connector(fleet, receiver.url)
    sent = ids_of(fleet.ingest([event(), event("sensor-2"), event()]))
    receiver.wait_for(lambda r: len(r) == 3)
    start = fleet.client.get(f"/v1/tenants/acme/events/{sent[0]}", headers=fleet.admin).json()["received"]
    response = fleet.client.post(f"/v2/{connector['name']}:replay", json={"startTime": start}, headers=fleet.admin)
    assert response.status_code == 200, response.text
    receiver.wait_for(lambda r: len(r) == 6)
    assert sorted(receiver.accepted_ids()[3:]) == sorted(sent)  # the same eventIds again


@pytest.fixture
def hanging() -> Iterator[Receiver]:
    with receiving() as r:
        r.default = Answer(delay=30.0)  # never answers within the test
        yield r


def test_a_dead_endpoint_does_not_slow_a_healthy_one(tmp_path: Path, hanging: Receiver) -> None:
    with make_fleet(tmp_path, delivery_timeout_seconds=60.0, delivery_window=100) as fleet, receiving() as healthy:
        dt_connector(fleet, hanging.url)
        dt_connector(fleet, healthy.url)
        sent: list[str] = []
        for _ in range(5):
            sent += ids_of(fleet.ingest([event(f"sensor-{1 + i % 2}") for i in range(100)]))
        healthy.wait_for(lambda r: len(r) == len(sent))
        assert sorted(healthy.accepted_ids()) == sorted(sent)
        assert len(hanging.received) <= 16  # one stuck push per lane, no more
        engine = engine_of(fleet)
        assert max(w.in_flight for w in engine._workers.values()) <= 100  # the window bounds memory
