"""The native /v1 events API: ingest, query, get, export, device state."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest

from tests.conftest import Fleet

EVENTS = "/v1/tenants/acme/events"


def post(fleet: Fleet, payload: Any, headers: dict[str, str] | None = None, **kw: Any) -> Any:
    return fleet.client.post(EVENTS, json=payload, headers=headers or fleet.writer, **kw)


def query(fleet: Fleet, params: str = "", headers: dict[str, str] | None = None) -> Any:
    # Registering the fixture's devices logged SYS_106 events; these tests are about the others.
    return fleet.client.get(f"{EVENTS}?exclude_type=SYS_106&{params}", headers=headers or fleet.reader)


def seed(fleet: Fleet, n: int = 30) -> list[dict[str, Any]]:
    devices = ["sensor-1", "sensor-2", "desk-1"]
    types = ["touch", "temperature", "co2"]
    batch = []
    for i in range(n):
        t = types[i % 3]
        data = {"value": float(i)} if t == "temperature" else {"ppm": i} if t == "co2" else {}
        batch.append(
            {
                "type": t,
                "device": devices[i % 3],
                "time": 1_700_000_000_000 + i * 1000,
                "data": data,
                "severity": i % 5 + 1,
                "outcome": "FAIL" if i % 4 == 0 else "INFO",
            }
        )
    result = post(fleet, batch)
    assert result.status_code == 200, result.text
    return batch


def test_ingest_one_event_returns_it_with_id_and_times(fleet: Fleet) -> None:
    response = post(
        fleet,
        {
            "type": "temperature",
            "device": "sensor-1",
            "time": "2024-05-01T12:00:00.123456Z",
            "data": {"value": 21.5, "samples": [{"value": 21.5, "sampleTime": "2024-05-01T12:00:00Z"}]},
        },
    )
    assert response.status_code == 201
    event = response.json()
    assert len(event["id"]) == 32 and event["time"] == "2024-05-01T12:00:00.123456Z"
    assert event["project"] == "plant" and event["source"] == "device"
    fetched = fleet.client.get(f"{EVENTS}/{event['id']}", headers=fleet.reader)
    assert fetched.status_code == 200 and fetched.json() == event


def test_idempotency_key_returns_the_first_event(fleet: Fleet) -> None:
    first = post(fleet, {"type": "door", "device": "sensor-1", "idempotency_key": "abc"})
    again = post(fleet, {"type": "door", "device": "sensor-1", "idempotency_key": "abc", "data": {"x": 1}})
    assert first.status_code == 201 and again.status_code == 200
    assert again.json()["id"] == first.json()["id"] and again.json()["data"] == {}
    assert len(query(fleet).json()["events"]) == 1


def test_batch_reports_each_item_and_stores_the_good_ones(fleet: Fleet) -> None:
    response = post(
        fleet,
        [
            {"type": "touch", "device": "sensor-1"},
            {"type": "temperature", "device": "sensor-1", "data": {"value": "hot"}},
            {"type": "touch", "device": "ghost"},
            {"type": "touch", "device": "sensor-2", "severity": 9},
            {"type": "touch", "device": "desk-1", "idempotency_key": "k"},
            {"type": "touch", "device": "desk-1", "idempotency_key": "k"},
        ],
    )
    assert response.status_code == 207
    out = response.json()
    assert (out["created"], out["duplicates"], out["failed"]) == (2, 1, 3)
    statuses = [r["status"] for r in out["results"]]
    assert statuses == ["created", "error", "error", "error", "created", "duplicate"]
    assert out["results"][1]["error"]["field"] == "[1].data.value"
    assert out["results"][2]["error"]["code"] == "not_found"
    assert out["results"][3]["error"]["field"] == "[3].severity"
    assert len(query(fleet).json()["events"]) == 2


def test_batch_of_only_bad_items_is_400(fleet: Fleet) -> None:
    response = post(fleet, [{"type": ""}, {"nope": 1}])
    assert response.status_code == 400
    assert [r["error"]["field"] for r in response.json()["results"]] == ["[0].type", "[1].nope"]


def test_ndjson_batch(fleet: Fleet) -> None:
    lines = [json.dumps({"type": "touch", "device": "sensor-1", "time": 1_700_000_000_000 + i}) for i in range(5)]
    lines.insert(2, "{not json")
    response = fleet.client.post(
        EVENTS, content="\n".join(lines) + "\n", headers={**fleet.writer, "Content-Type": "application/x-ndjson"}
    )
    assert response.status_code == 207
    assert response.json()["created"] == 5 and response.json()["results"][2]["status"] == "error"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"type": "touch", "device": "sensor-1", "time": "yesterday"}, "time"),
        ({"type": "touch", "device": "sensor-1", "time": "2024-05-01T12:00:00"}, "time"),
        ({"type": "touch", "device": "sensor-1", "time": -5}, "time"),
        ({"type": "touch", "device": "sensor-1", "outcome": "MAYBE"}, "outcome"),
        ({"type": "touch", "device": "sensor-1", "surprise": 1}, "surprise"),
        ({"type": "touch", "device": "sensor-1", "project": "office"}, "project"),
        ({"type": "touch"}, "project"),
        ({"type": "touch", "device": "sensor-1", "data": [1]}, "data"),
        ({"type": "co2", "device": "sensor-1", "data": {"ppm": 1.5}}, "data.ppm"),
    ],
)
def test_bad_events_name_the_field(fleet: Fleet, payload: dict[str, Any], field: str) -> None:
    response = post(fleet, payload)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["field"] == field
    assert query(fleet).json()["events"] == []


@pytest.mark.parametrize("raw", [b"", b"{", b"[{]", b"null", b'"text"', b"{" * 3000])
def test_malformed_bodies_are_400(fleet: Fleet, raw: bytes) -> None:
    response = fleet.client.post(EVENTS, content=raw, headers=fleet.writer)
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_argument"


def test_oversize_bodies_are_413(fleet: Fleet) -> None:
    response = post(fleet, {"type": "x", "device": "sensor-1", "data": {"b": "x" * 300_000}})
    assert response.status_code == 400 or response.status_code == 413
    big_batch = (
        b"[" + b",".join([b'{"type":"touch","device":"sensor-1","data":{"b":"' + b"x" * 1000 + b'"}}'] * 17000) + b"]"
    )
    response = fleet.client.post(EVENTS, content=big_batch, headers=fleet.writer)
    assert response.status_code == 413 and "16777216" in response.json()["error"]["message"]


def test_query_filters(fleet: Fleet) -> None:
    batch = seed(fleet)

    def ids(params: str) -> int:
        response = query(fleet, params + "&limit=1000")
        assert response.status_code == 200, response.text
        return len(response.json()["events"])

    assert ids("") == 30
    assert ids("device=sensor-1") == 10
    assert ids("device=sensor-1,desk-1") == 20 == ids("device=sensor-1&device=desk-1")
    assert ids("type=co2") == 10
    assert ids("project=office") == 10
    assert ids("outcome=FAIL") == sum(1 for b in batch if b["outcome"] == "FAIL")
    assert ids("min_severity=4") == sum(1 for b in batch if b["severity"] >= 4)
    assert ids("since=2023-11-14T22:13:25Z&until=1700000010000") == 5
    assert ids("label=room=cold") == 10
    assert ids("label=room") == 20
    assert ids("exclude_type=touch") == 20


def test_query_pages_with_cursors_newest_and_oldest(fleet: Fleet) -> None:
    seed(fleet)
    for order in ("newest", "oldest"):
        seen: list[str] = []
        params = f"order={order}&limit=7"
        page = query(fleet, params).json()
        seen += [e["id"] for e in page["events"]]
        while page["has_more"]:
            page = query(fleet, f"{params}&cursor={page['next_cursor']}").json()
            seen += [e["id"] for e in page["events"]]
        assert len(seen) == len(set(seen)) == 30
        times = [e["time"] for e in query(fleet, f"order={order}&limit=1000").json()["events"]]
        assert times == sorted(times, reverse=order == "newest")
        back = query(fleet, f"{params}&cursor={page['prev_cursor']}").json()
        last = len(page["events"])
        assert [e["id"] for e in back["events"]] == seen[-(last + 7) : -last]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ("cursor=garbage", "cursor"),
        ("since=notatime", "since"),
        ("until=2024-13-45T00:00:00Z", "until"),
        ("limit=0", "limit"),
        ("limit=5000", "limit"),
        ("limit=ten", "limit"),
        ("order=sideways", "order"),
        ("outcome=MEH", "outcome"),
        ("min_severity=9", "min_severity"),
        ("colour=red", "colour"),
        ("since=2024-02-01T00:00:00Z&until=2024-01-01T00:00:00Z", "since"),
        ("state_change=maybe", "state_change"),
    ],
)
def test_bad_query_parameters_are_named(fleet: Fleet, params: str, field: str) -> None:
    response = query(fleet, params)
    assert response.status_code == 400 and response.json()["error"]["field"] == field


def test_get_one_event_only_within_its_tenant_and_project(fleet: Fleet) -> None:
    created = post(fleet, {"type": "touch", "device": "desk-1"}).json()
    assert fleet.client.get(f"{EVENTS}/{created['id']}", headers=fleet.reader).status_code == 200
    assert fleet.client.get(f"{EVENTS}/{created['id']}", headers=fleet.project_writer).status_code == 404
    assert fleet.client.get(f"/v1/tenants/globex/events/{created['id']}", headers=fleet.other).status_code == 404
    assert fleet.client.get(f"{EVENTS}/{created['id']}", headers=fleet.other).status_code == 403
    assert fleet.client.get(f"{EVENTS}/{'f' * 32}", headers=fleet.reader).status_code == 404
    assert fleet.client.get(f"{EVENTS}/not-an-id", headers=fleet.reader).status_code == 404


def test_export_streams_everything_as_ndjson_and_csv(fleet: Fleet) -> None:
    batch = [
        {"type": "touch", "device": "sensor-1", "time": 1_700_000_000_000 + i, "description": 'a "quoted", text'}
        for i in range(2500)
    ]
    assert post(fleet, batch).status_code == 200
    nd = fleet.client.get(f"{EVENTS}/export?device=sensor-1&exclude_type=SYS_106", headers=fleet.reader)
    assert nd.status_code == 200 and nd.headers["content-type"].startswith("application/x-ndjson")
    lines = nd.text.splitlines()
    assert len(lines) == 2500 and len({json.loads(line)["id"] for line in lines}) == 2500
    c = fleet.client.get(f"{EVENTS}/export?format=csv&order=oldest&exclude_type=SYS_106", headers=fleet.reader)
    rows = list(csv.DictReader(io.StringIO(c.text)))
    assert len(rows) == 2500 and rows[0]["description"] == 'a "quoted", text'
    assert rows[0]["time"] < rows[-1]["time"]
    assert fleet.client.get(f"{EVENTS}/export?format=xml", headers=fleet.reader).status_code == 400


def test_device_state_is_the_latest_of_each_type(fleet: Fleet) -> None:
    post(
        fleet,
        [
            {"type": "temperature", "device": "sensor-1", "time": 1000, "data": {"value": 1.0}},
            {"type": "temperature", "device": "sensor-1", "time": 3000, "data": {"value": 3.0}},
            {"type": "temperature", "device": "sensor-1", "time": 2000, "data": {"value": 2.0}},
            {"type": "touch", "device": "sensor-1", "time": 1500},
        ],
    )
    state = fleet.client.get("/v1/tenants/acme/devices/sensor-1/state", headers=fleet.reader).json()
    assert set(state["latest"]) == {"temperature", "touch", "SYS_106"}
    assert state["latest"]["temperature"]["data"] == {"value": 3.0}
    assert state["last_seen"] is not None
    assert fleet.client.get("/v1/tenants/acme/devices/ghost/state", headers=fleet.reader).status_code == 404


def test_credentials_and_scopes(fleet: Fleet) -> None:
    assert fleet.client.get(EVENTS).status_code == 401
    assert fleet.client.get(EVENTS, headers={"Authorization": "Bearer fl_x_y"}).status_code == 401
    assert fleet.client.get(EVENTS, headers=fleet.other).status_code == 403
    assert post(fleet, {"type": "touch", "device": "sensor-1"}, headers=fleet.reader).status_code == 403
    assert post(fleet, {"type": "touch", "device": "desk-1"}, headers=fleet.project_writer).status_code == 403
    seed(fleet)
    scoped = query(fleet, "limit=1000", headers=fleet.project_writer).json()["events"]
    assert len(scoped) == 20 and {e["project"] for e in scoped} == {"plant"}
    assert query(fleet, "project=office", headers=fleet.project_writer).status_code == 403
    assert fleet.client.get("/v1/tenants/acme/events/export", headers=fleet.other).status_code == 403


def test_a_project_key_writes_a_batch_only_into_its_project(fleet: Fleet) -> None:
    # Rights are checked once per project in a batch: every item of another project is refused.
    batch = [
        {"type": "touch", "device": "sensor-1"},
        {"type": "touch", "device": "desk-1"},
        {"type": "touch", "device": "sensor-2"},
        {"type": "touch", "device": "desk-1", "project": "office"},
        {"type": "touch", "project": "office", "source": "system"},
    ]
    response = post(fleet, batch, headers=fleet.project_writer)
    assert response.status_code == 207, response.text
    out = response.json()
    assert [r["status"] for r in out["results"]] == ["created", "error", "created", "error", "error"]
    assert {out["results"][i]["error"]["code"] for i in (1, 3, 4)} == {"permission_denied"}
    stored = query(fleet, "limit=1000").json()["events"]
    assert sorted(e["device"] for e in stored) == ["sensor-1", "sensor-2"]


def test_wrong_method_and_unknown_path_answer_in_the_native_shape(fleet: Fleet) -> None:
    response = fleet.client.delete(EVENTS, headers=fleet.writer)
    assert response.status_code == 405 and response.json()["error"]["code"] == "method_not_allowed"
    response = fleet.client.get("/v1/nothing/here", headers=fleet.writer)
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


def test_operations_endpoints(fleet: Fleet) -> None:
    seed(fleet, 3)
    assert fleet.client.get("/healthz").json() == {"status": "ok"}
    assert fleet.client.get("/readyz").json() == {"status": "ready"}
    metrics = fleet.client.get("/metrics").text
    assert 'fleetlog_events_total{result="created"} 7.0' in metrics  # 3 + 4 device registrations
    assert "fleetlog_store_commits_total" in metrics
    spec = fleet.client.get("/openapi.json").json()
    assert "/v1/tenants/{tenant}/events" in spec["paths"] and "EventIn" in spec["components"]["schemas"]
    docs = fleet.client.get("/docs")
    assert docs.status_code == 200 and "swagger-ui-bundle.js" in docs.text
    assert fleet.client.get("/docs/static/swagger-ui-bundle.js").status_code == 200
