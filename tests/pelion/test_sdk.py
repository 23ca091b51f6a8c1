"""The official Pelion client, mbed-cloud-sdk, pointed at a real fleetlog process: it pages
through thousands of events with filters and gets exactly what a direct query returns."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.process import ServerProcess

BASE_MS = 1_714_564_800_000  # 2024-05-01T12:00:00Z
DEVICES = [f"dev-{i}" for i in range(8)]
TYPES = ["UPD2_OK_18", "UPD4_FAIL_24", "SYS_100", "temperature.reading", "door.opened"]
EVENTS = 3000


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, str]]:
    proc = ServerProcess(Path(tmp_path_factory.mktemp("pelion-sdk"))).start()
    try:
        with httpx.Client(base_url=proc.url, headers=proc.operator, timeout=30) as http:

            def ok(response: httpx.Response) -> Any:
                assert response.status_code in (200, 201), response.text
                return response.json()

            ok(http.post("/v1/tenants", json={"id": "acme"}))
            ok(http.post("/v1/tenants/acme/projects", json={"id": "plant"}))
            for device in DEVICES:
                ok(http.post("/v1/tenants/acme/devices", json={"id": device, "project": "plant"}))
            key = ok(http.post("/v1/tenants/acme/keys", json={"role": "read"}))["token"]
            batch = [
                {
                    "type": TYPES[i % len(TYPES)],
                    "device": DEVICES[(i * 7) % len(DEVICES)],
                    "time": BASE_MS + (i // 3) * 1000,  # three events a second: ties to break
                    "data": {"n": i},
                }
                for i in range(EVENTS)
            ]
            ok(http.post("/v1/tenants/acme/events", json=batch))
        yield proc, "ak_" + key.removeprefix("fl_")
    finally:
        proc.stop()


@pytest.fixture
def sdk_env(server: tuple[ServerProcess, str], monkeypatch: pytest.MonkeyPatch) -> ServerProcess:
    """The SDK's global configuration: the host and the API key, from the environment."""
    import mbed_cloud.sdk.sdk as sdk_module

    proc, key = server
    monkeypatch.setenv("MBED_CLOUD_SDK_API_KEY", key)
    monkeypatch.setenv("MBED_CLOUD_SDK_HOST", proc.url)
    monkeypatch.setattr(sdk_module, "global_sdk", None)
    return proc


def direct(proc: ServerProcess, params: dict[str, Any]) -> list[str]:
    """The same question asked of the native API, every page."""
    ids: list[str] = []
    query = {**params, "limit": 1000}
    with httpx.Client(base_url=proc.url, headers=proc.operator, timeout=30) as http:
        while True:
            page = http.get("/v1/tenants/acme/events", params=query).json()
            ids += [e["id"] for e in page["events"]]
            if not page["next_cursor"]:
                return ids
            query["cursor"] = page["next_cursor"]


def at(second: int) -> datetime:
    return datetime.fromtimestamp(BASE_MS / 1000 + second, UTC)


@pytest.mark.parametrize("order", ["ASC", "DESC"])
def test_sdk_pages_with_filters_and_matches_a_direct_query(sdk_env: ServerProcess, order: str) -> None:
    from mbed_cloud import ApiFilter
    from mbed_cloud.foundation import DeviceEvents

    api_filter = ApiFilter()
    api_filter.add_filter("device_id", "in", DEVICES[:5])
    api_filter.add_filter("event_type", "in", TYPES[:3])
    api_filter.add_filter("date_time", "gte", at(100))
    api_filter.add_filter("date_time", "lte", at(800))
    got = list(DeviceEvents().list(filter=api_filter, order=order, page_size=37))
    native_order = "oldest" if order == "ASC" else "newest"
    expected = direct(
        sdk_env,
        {
            "device": ",".join(DEVICES[:5]),
            "type": ",".join(TYPES[:3]),
            "since": "2024-05-01T12:01:40Z",
            "until": "2024-05-01T12:13:20.000001Z",  # date_time__lte is inclusive
            "order": native_order,
        },
    )
    assert len(expected) > 500
    assert [e.id for e in got] == expected
    first = got[0]
    assert isinstance(first.date_time, datetime) and at(100) <= first.date_time <= at(800)
    assert first.event_type in TYPES[:3] and first.device_id in DEVICES[:5]
    assert first.event_type_description in {"SUCCESS", "FAIL", "INFO"}
    assert first.data == {"n": first.data["n"]} and isinstance(first.data["n"], str)


@pytest.mark.parametrize("order", ["ASC", "DESC"])
def test_sdk_pages_through_everything_of_one_device(sdk_env: ServerProcess, order: str) -> None:
    from mbed_cloud.foundation import DeviceEvents

    got = [e.id for e in DeviceEvents().list(filter={"device_id": {"eq": "dev-3"}}, order=order, page_size=100)]
    expected = direct(sdk_env, {"device": "dev-3", "order": "oldest" if order == "ASC" else "newest"})
    assert len(expected) > 300 and got == expected


def test_sdk_counts_and_reads_one(sdk_env: ServerProcess) -> None:
    from mbed_cloud.foundation import DeviceEvents

    # The SDK's count() overwrites its own include=total_count with the list's include (None):
    # ask for it in the list call, as the SDK's users must.
    listing = DeviceEvents().list(filter={"event_type": "UPD4_FAIL_24"}, max_results=5, include="total_count")
    assert listing.count() == EVENTS // len(TYPES)
    items = list(listing)
    assert len(items) == 5
    one = DeviceEvents(id=items[2].id).read()
    assert one.id == items[2].id and one.event_type == "UPD4_FAIL_24"
    assert one.description == "Connection lost during download."
    assert (one.event_type_description, one.event_type_category) == ("FAIL", "FAIL_NETWORK")
