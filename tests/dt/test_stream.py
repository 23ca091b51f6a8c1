"""GET /v2/projects/{p}/devices:stream over real HTTP: NDJSON and SSE framing, every filter, pings,
resume after a reconnect (Last-Event-ID or last_event_id) without loss or duplicates, the closing
error, and a reader that stops reading loses nothing and holds up no one."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from fleetlog.faces.dt import STREAM_HUBS
from tests.dt.seed import SEED_EXAMPLES, expected
from tests.dt.server import serve, setup

STREAM = "/v2/projects/plant/devices:stream"


class World:
    def __init__(self, url: str, op: dict[str, str]) -> None:
        self.url, self.op = url, op
        self.http = httpx.Client(base_url=url, headers=op, timeout=10)

    def device(self, kind: str, project: str = "plant", **labels: str) -> str:
        made = self.http.post(f"/emulator/v2/projects/{project}/devices", json={"type": kind, "labels": labels})
        assert made.status_code == 200, made.text
        return str(made.json()["name"].split("/")[-1])

    def publish(self, device: str, body: dict[str, Any], project: str = "plant") -> None:
        response = self.http.post(f"/emulator/v2/projects/{project}/devices/{device}:publish", json=body)
        assert response.status_code == 200, response.text

    def touches(self, device: str, count: int) -> list[str]:
        """`count` touch events through the native batch API; their ids."""
        body = [{"type": "touch", "device": device} for _ in range(count)]
        response = self.http.post("/v1/tenants/acme/events", json=body)
        assert response.status_code == 200, response.text
        return [item["id"] for item in response.json()["results"]]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with serve(tmp_path) as (url, _):
        world = World(url, setup(url))
        yield world
        world.http.close()


def events(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    """The events of an NDJSON stream, pings left out."""
    for line in lines:
        event = json.loads(line)["result"]["event"]
        if event["eventType"] != "ping":
            yield event


def sse_frames(lines: Iterator[str]) -> Iterator[tuple[str | None, dict[str, Any]]]:
    event_id: str | None = None
    for line in lines:
        if line.startswith("id: "):
            event_id = line[4:]
        elif line.startswith("data: "):
            yield event_id, json.loads(line[6:])
            event_id = None


def test_ndjson_lines_in_the_vendor_shape(world: World) -> None:
    device = world.device("touch")
    with world.http.stream("GET", STREAM) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/x-ndjson")
        world.publish(device, {"touch": {}})
        line = next(response.iter_lines())
        event = json.loads(line)["result"]["event"]
        assert set(event) == {"eventId", "targetName", "eventType", "data", "timestamp"}
        assert event["targetName"] == f"projects/plant/devices/{device}" and event["eventType"] == "touch"
        assert event["data"] == {"touch": {"updateTime": event["timestamp"]}}


@pytest.mark.parametrize(
    "params",
    [
        {"device_ids": "WANTED"},
        {"deviceIds": "WANTED"},
        {"device_types": "humidity"},
        {"label_filters": "room=2"},
        {"label_filters": "wanted"},
        {"event_types": "humidity"},
    ],
)
def test_each_filter_lets_through_only_what_matches(world: World, params: dict[str, str]) -> None:
    wanted = world.device("humidity", room="2", wanted="yes")
    other = world.device("temperature", room="1")
    elsewhere = world.device("humidity", project="office", room="2", wanted="yes")
    params = {k: wanted if v == "WANTED" else v for k, v in params.items()}
    with world.http.stream("GET", STREAM, params=params) as response:
        assert response.status_code == 200
        world.publish(other, {"temperature": {"value": 1}})
        world.publish(elsewhere, {"humidity": {"temperature": 1, "relativeHumidity": 1}}, project="office")
        world.publish(wanted, {"humidity": {"temperature": 2, "relativeHumidity": 2}})
        first = next(events(response.iter_lines()))
        assert first["targetName"] == f"projects/plant/devices/{wanted}"
        assert first["eventType"] == "humidity"


def test_product_numbers_filter(world: World) -> None:
    made = world.http.post("/v1/tenants/acme/devices", json={"id": "real", "project": "plant", "type": "touch"})
    assert made.status_code == 201
    other = world.device("touch")
    with world.http.stream("GET", STREAM, params={"product_numbers": "102060"}) as response:
        world.touches(other, 1)
        world.touches("real", 1)
        assert next(events(response.iter_lines()))["targetName"] == "projects/plant/devices/real"


def test_sse_frames_carry_the_event_id(world: World) -> None:
    device = world.device("touch")
    with world.http.stream("GET", STREAM, headers={"Accept": "text/event-stream"}) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        (sent,) = world.touches(device, 1)
        event_id, payload = next(sse_frames(response.iter_lines()))
        assert event_id == sent == payload["result"]["event"]["eventId"]


def test_pings_at_the_requested_interval(world: World) -> None:
    with world.http.stream("GET", STREAM, params={"ping_interval": "100ms"}) as response:
        lines = response.iter_lines()
        pings = [json.loads(next(lines))["result"]["event"] for _ in range(2)]
    assert all(p["eventType"] == "ping" and p["targetName"] == "projects/plant" and p["data"] is None for p in pings)


@pytest.mark.parametrize("resume", ["header", "query"])
def test_a_reconnecting_client_gets_what_it_missed_once(world: World, resume: str) -> None:
    device = world.device("touch")
    seen: list[str] = []
    with world.http.stream("GET", STREAM) as response:
        sent = world.touches(device, 3)
        stream = events(response.iter_lines())
        seen += [next(stream)["eventId"] for _ in range(3)]
    assert seen == sent
    missed = world.touches(device, 4)  # published while the client is away
    if resume == "header":
        request: dict[str, Any] = {"headers": {"Accept": "text/event-stream", "Last-Event-ID": seen[-1]}}
    else:
        request = {"params": {"last_event_id": seen[-1]}}
    with world.http.stream("GET", STREAM, **request) as response:
        later = world.touches(device, 2)
        lines = response.iter_lines()
        if resume == "header":
            got = [frame["result"]["event"]["eventId"] for _, frame in (next(sse_frames(lines)) for _ in range(6))]
        else:
            stream = events(lines)
            got = [next(stream)["eventId"] for _ in range(6)]
    assert got == missed + later


def test_the_stream_ends_with_the_vendors_closing_error(tmp_path: Path) -> None:
    with serve(tmp_path, dt_stream_max_seconds=0.3) as (url, _):
        op = setup(url)
        with httpx.Client(base_url=url, headers=op, timeout=10) as http, http.stream("GET", STREAM) as response:
            lines = list(response.iter_lines())
    assert json.loads(lines[-1]) == {
        "error": {
            "code": 408,
            "grpcCode": 1,
            "httpCode": 408,
            "message": "closing stream",
            "httpStatus": "Request Timeout",
            "details": [],
        }
    }


@pytest.mark.parametrize(
    ("params", "headers", "field"),
    [
        ({"ping_interval": "soon"}, {}, "ping_interval"),
        ({"ping_interval": "0s"}, {}, "ping_interval"),
        ({"event_types": "sneeze"}, {}, "event_types"),
        ({"device_types": "toaster"}, {}, "device_types"),
        ({"last_event_id": "42"}, {}, "last_event_id"),
        ({}, {"Last-Event-ID": "nope"}, "last_event_id"),
        ({"colour": "red"}, {}, "colour"),
    ],
)
def test_bad_parameters_are_400_before_streaming(
    world: World, params: dict[str, str], headers: dict[str, str], field: str
) -> None:
    response = world.http.get(STREAM, params=params, headers=headers)
    assert response.status_code == 400
    assert response.json()["error"].startswith(field + ":")


def test_a_reader_that_stops_reading_loses_nothing_and_holds_up_no_one(world: World) -> None:
    device = world.device("touch")
    with world.http.stream("GET", STREAM) as stalled, world.http.stream("GET", STREAM) as reader:
        sent = world.touches(device, 5000) + world.touches(device, 5000)  # ingest does not wait for `stalled`
        lively = events(reader.iter_lines())
        assert [next(lively)["eventId"] for _ in sent] == sent
        late = events(stalled.iter_lines())
        assert [next(late)["eventId"] for _ in sent] == sent


def test_each_seed_example_published_reads_back_identically_through_the_stream(world: World) -> None:
    wanted = sorted(SEED_EXAMPLES)
    devices = {event_type: world.device(SEED_EXAMPLES[event_type][0]) for event_type in wanted}
    with world.http.stream("GET", STREAM, params={"event_types": wanted}) as response:
        stream = events(response.iter_lines())
        for event_type in wanted:
            world.publish(devices[event_type], copy.deepcopy(SEED_EXAMPLES[event_type][1]))
            target = f"projects/plant/devices/{devices[event_type]}"
            event = next(e for e in stream if e["targetName"] == target and e["eventType"] == event_type)
            assert event["data"] == expected(event_type, event["timestamp"]), event_type


def test_a_project_has_one_live_feed_however_many_streams_and_none_once_they_close(tmp_path: Path) -> None:
    with serve(tmp_path) as (url, app), httpx.Client(base_url=url, headers=setup(url), timeout=10) as http:
        hubs = app.state.services.extras[STREAM_HUBS]
        bus = app.state.services.bus
        before = bus.subscribers
        with (
            http.stream("GET", STREAM) as one,
            http.stream("GET", STREAM) as two,
            http.stream("GET", "/v2/projects/office/devices:stream") as three,
        ):
            assert (one.status_code, two.status_code, three.status_code) == (200, 200, 200)
            assert len(hubs) == 2 and bus.subscribers == before + 2
        deadline = time.monotonic() + 5
        while len(hubs) or bus.subscribers != before:  # the server notices the closed connections
            assert time.monotonic() < deadline, "a stream's feed outlived its clients"
            time.sleep(0.01)
