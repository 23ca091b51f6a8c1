"""GET /v2/projects/{p}/devices/{d}/events: newest first, last 24 hours by default, event types,
start and end times, pages with either spelling, only DT event types."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fleetlog.core.timefmt import rfc3339
from tests.conftest import FakeClock
from tests.dt.conftest import DT, Account, make, ok
from tests.dt.test_auth import dt_error

HOUR = 3600 * 1_000_000


@pytest.fixture
def timed(tmp_path: Path) -> Iterator[DT]:
    yield from make(tmp_path, clock=FakeClock())


def at(clock: FakeClock, hours_ago: float) -> str:
    return rfc3339(clock.us - int(hours_ago * HOUR))


@pytest.fixture
def device(timed: DT) -> str:
    """A touch sensor with a touch at 0.5, 1, ..., 48 hours ago (96 events), and a SYS_106."""
    assert timed.clock is not None
    made = timed.client.post(
        "/v1/tenants/acme/devices", json={"id": "s1", "project": "plant", "type": "touch"}, headers=timed.op
    )
    assert made.status_code == 201
    events = [{"type": "touch", "device": "s1", "time": at(timed.clock, h / 2)} for h in range(1, 97)]
    assert timed.client.post("/v1/tenants/acme/events", json=events, headers=timed.op).status_code == 200
    return "s1"


def test_newest_first_over_the_last_24_hours_by_default(timed: DT, device: str) -> None:
    account = timed.account("plant")
    events = timed.history(account, "plant", device)
    assert timed.clock is not None
    assert [e["timestamp"] for e in events] == [at(timed.clock, h / 2) for h in range(1, 49)]
    assert {e["eventType"] for e in events} == {"touch"}  # SYS_106 (registered) is not a DT event


def test_start_and_end_time_and_event_types(timed: DT, device: str) -> None:
    account = timed.account("plant")
    assert timed.clock is not None
    events = timed.history(account, "plant", device, startTime=at(timed.clock, 30), endTime=at(timed.clock, 29))
    assert [e["timestamp"] for e in events] == [at(timed.clock, 29), at(timed.clock, 29.5), at(timed.clock, 30)]
    assert timed.history(account, "plant", device, event_types=["batteryStatus"]) == []
    assert len(timed.history(account, "plant", device, eventTypes=["touch", "batteryStatus"])) == 48


def test_pages_with_either_spelling_cover_everything_once(timed: DT, device: str) -> None:
    account = timed.account("plant")
    assert timed.clock is not None
    seen: list[str] = []
    params: dict[str, object] = {"startTime": at(timed.clock, 100), "pageSize": 25}
    while True:
        page = ok(
            timed.client.get(f"/v2/projects/plant/devices/{device}/events", params=params, headers=account.headers)
        )
        seen += [e["eventId"] for e in page["events"]]
        if not page["nextPageToken"]:
            break
        params = {"start_time": at(timed.clock, 100), "page_size": 25, "page_token": page["nextPageToken"]}
    assert len(seen) == len(set(seen)) == 96


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"startTime": "yesterday"}, "startTime"),
        ({"endTime": "2024-13-01T00:00:00Z"}, "endTime"),
        ({"startTime": "2024-02-01T00:00:00Z", "endTime": "2024-01-01T00:00:00Z"}, "startTime"),
        ({"eventTypes": "sneeze"}, "eventTypes"),
        ({"pageSize": 1001}, "pageSize"),
        ({"pageSize": "ten"}, "pageSize"),
        ({"pageToken": "%%%"}, "pageToken"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_parameters_are_400_naming_them(timed: DT, device: str, params: dict[str, object], field: str) -> None:
    account = timed.account("plant")
    response = timed.client.get(f"/v2/projects/plant/devices/{device}/events", params=params, headers=account.headers)
    assert dt_error(response, 400).startswith(field + ":")


def test_a_device_of_another_project_or_none_is_404(timed: DT, device: str) -> None:
    account = timed.account("plant", roles=["roles/organization.user"])
    dt_error(timed.client.get(f"/v2/projects/office/devices/{device}/events", headers=account.headers), 404)
    dt_error(timed.client.get("/v2/projects/plant/devices/nope/events", headers=account.headers), 404)


def test_history_of_the_other_project_stays_there_after_a_transfer(dt: DT, dev: Account) -> None:
    device = dt.emulated(dev, "plant", "touch")
    ok(dt.publish(dev, "plant", device, {"touch": {}}))
    admin = dt.account("plant", roles=["roles/organization.admin"])
    body = {"devices": [f"projects/plant/devices/{device}"]}
    assert (
        ok(dt.client.post("/v2/projects/office/devices:transfer", json=body, headers=admin.headers))["transferErrors"]
        == []
    )
    assert dt.history(admin, "office", device) == []
    dt_error(dt.client.get(f"/v2/projects/plant/devices/{device}/events", headers=dev.headers), 404)
