"""GET /v3/device-events/ and /v3/device-events/{id}/: envelope, items, paging, every filter,
errors in Pelion's shape, and who may see what."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import pytest

from tests.conftest import Fleet
from tests.pelion.helpers import error_of, events, pelion, walk

BASE_MS = 1_714_564_800_000  # 2024-05-01T12:00:00Z
DEVICES = ["sensor-1", "sensor-2", "desk-1"]
TYPES = ["UPD4_FAIL_24", "UPD2_OK_18", "door.opened", "SYS_100"]
ITEM_KEYS = {
    "id",
    "object",
    "date_time",
    "created_at",
    "etag",
    "device_id",
    "device_log_id",
    "event_type",
    "event_type_category",
    "event_type_description",
    "description",
    "state_change",
    "changes",
    "data",
}


def seed(fleet: Fleet, n: int = 60) -> None:
    batch = []
    for i in range(n):
        batch.append(
            {
                "type": TYPES[i % 4],
                "device": DEVICES[i % 3],
                # Pairs of events share a time, so ordering must break ties.
                "time": BASE_MS + (i // 2) * 1000,
                "description": f"note {i % 5}" if TYPES[i % 4] == "door.opened" else "",
                "state_change": i % 7 == 0,
                "data": {"seconds": i, "who": "x", "ok": True},
            }
        )
    fleet.ingest(batch)


@pytest.fixture
def seeded(fleet: Fleet) -> Fleet:
    seed(fleet)
    return fleet


def everything(fleet: Fleet) -> list[dict[str, Any]]:
    return walk(fleet, "limit=1000")


def test_list_envelope_and_item_fields(seeded: Fleet) -> None:
    page = events(seeded, "limit=5")
    assert set(page) == {"object", "data", "has_more", "limit", "after", "order"}
    assert (page["object"], page["has_more"], page["limit"], page["after"], page["order"]) == (
        "list",
        True,
        5,
        None,
        "ASC",
    )
    door = next(i for i in everything(seeded) if i["event_type"] == "door.opened")
    assert set(door) == ITEM_KEYS
    assert door["object"] == "device-event" and len(door["id"]) == 32 and door["device_log_id"] == door["id"]
    assert door["data"] == {"seconds": "2", "who": "x", "ok": "true"}  # values are strings
    assert door["changes"] == {} and door["etag"] == door["created_at"]
    assert door["date_time"] == "2024-05-01T12:00:01.000000Z"


def test_a_code_reported_alone_reads_in_the_portal_terms(seeded: Fleet) -> None:
    fail = next(i for i in everything(seeded) if i["event_type"] == "UPD4_FAIL_24")
    assert fail["event_type_description"] == "FAIL"
    assert fail["event_type_category"] == "FAIL_NETWORK"
    assert fail["description"] == "Connection lost during download."
    assert fail["state_change"] is True
    ok = next(i for i in everything(seeded) if i["event_type"] == "UPD2_OK_18")
    assert (ok["event_type_description"], ok["description"]) == ("SUCCESS", "Asset update successfully completed.")


def test_one_event_with_and_without_the_trailing_slash(seeded: Fleet) -> None:
    first = events(seeded, "limit=2")["data"][0]
    for path in (f"/v3/device-events/{first['id']}", f"/v3/device-events/{first['id']}/"):
        response = seeded.client.get(path, headers=pelion(seeded.reader))
        assert response.status_code == 200 and response.json() == first
    assert seeded.client.get("/v3/device-events/", headers=pelion(seeded.reader)).json()["data"][0] == first


def test_limit_is_clamped_to_2_and_1000(seeded: Fleet) -> None:
    assert len(events(seeded, "limit=1")["data"]) == 2 and events(seeded, "limit=1")["limit"] == 2
    assert events(seeded, "limit=5000")["limit"] == 1000
    assert events(seeded, "limit=-3")["limit"] == 2
    assert events(seeded)["limit"] == 50


@pytest.mark.parametrize("order", ["ASC", "DESC"])
def test_paging_with_after_returns_every_event_once_in_order(seeded: Fleet, order: str) -> None:
    full = walk(seeded, f"limit=1000&order={order}")
    assert len(full) == 60 + 3  # and the three SYS_106 of the fleet's devices
    keys = [(i["date_time"], i["id"]) for i in full]
    assert keys == sorted(keys, reverse=order == "DESC")
    paged = walk(seeded, f"limit=7&order={order}")
    assert [i["id"] for i in paged] == [i["id"] for i in full]
    assert events(seeded, f"order={order}&limit=2&after={full[4]['id']}")["after"] == full[4]["id"]


def test_include_total_count(seeded: Fleet) -> None:
    page = events(seeded, "limit=2&include=total_count")
    assert page["total_count"] == 63
    assert events(seeded, "limit=2&include=total_count&event_type=UPD2_OK_18")["total_count"] == 15
    assert events(seeded, "limit=2&include=total_count&description__in=note 1,note 2")["total_count"] == 6
    assert "total_count" not in events(seeded, "limit=2")


# Each case: the filter (as query parameters) and the same condition in Python.
Check = Callable[[dict[str, Any]], bool]
T1 = "2024-05-01T12:00:05Z"
T2 = "2024-05-01T12:00:10.000Z"
CASES: list[tuple[str, Check]] = [
    ("device_id=sensor-1", lambda i: i["device_id"] == "sensor-1"),
    ("device_id__eq=sensor-1", lambda i: i["device_id"] == "sensor-1"),
    ("device_id__neq=sensor-1", lambda i: i["device_id"] != "sensor-1"),
    ("device_id__in=sensor-1,desk-1", lambda i: i["device_id"] in {"sensor-1", "desk-1"}),
    ("device_id__nin=sensor-1,desk-1", lambda i: i["device_id"] not in {"sensor-1", "desk-1"}),
    ("event_type=UPD2_OK_18", lambda i: i["event_type"] == "UPD2_OK_18"),
    ("event_type__neq=UPD2_OK_18", lambda i: i["event_type"] != "UPD2_OK_18"),
    ("event_type__in=UPD2_OK_18,SYS_100", lambda i: i["event_type"] in {"UPD2_OK_18", "SYS_100"}),
    ("event_type__nin=UPD2_OK_18,SYS_106", lambda i: i["event_type"] not in {"UPD2_OK_18", "SYS_106"}),
    ("description=note 1", lambda i: i["description"] == "note 1"),
    ("description__eq=note 1", lambda i: i["description"] == "note 1"),
    ("description__neq=note 1", lambda i: i["description"] != "note 1"),
    ("description__in=note 1,note 3", lambda i: i["description"] in {"note 1", "note 3"}),
    ("description__nin=note 1,", lambda i: i["description"] not in {"note 1"}),
    ("state_change=True", lambda i: i["state_change"]),
    ("state_change__eq=false", lambda i: not i["state_change"]),
    ("state_change__neq=true", lambda i: not i["state_change"]),
    (f"date_time__gte={T1}", lambda i: i["date_time"] >= "2024-05-01T12:00:05"),
    (f"date_time__lte={T2}", lambda i: i["date_time"] <= "2024-05-01T12:00:10.000000Z"),
    (
        f"date_time__gte={T1}&date_time__lte=20240501T120010Z",
        lambda i: "2024-05-01T12:00:05" <= i["date_time"] <= "2024-05-01T12:00:10.000000Z",
    ),
    (f"date_time={T1}", lambda i: i["date_time"] == "2024-05-01T12:00:05.000000Z"),
    (f"date_time__eq={T1}", lambda i: i["date_time"] == "2024-05-01T12:00:05.000000Z"),
    (f"date_time__neq={T1}", lambda i: i["date_time"] != "2024-05-01T12:00:05.000000Z"),
    (
        f"date_time__in={T1},{T2},20240501T120020Z",
        lambda i: (
            i["date_time"]
            in {"2024-05-01T12:00:05.000000Z", "2024-05-01T12:00:10.000000Z", "2024-05-01T12:00:20.000000Z"}
        ),
    ),
    (
        f"date_time__nin={T1},{T2}",
        lambda i: i["date_time"] not in {"2024-05-01T12:00:05.000000Z", "2024-05-01T12:00:10.000000Z"},
    ),
    (
        "device_id=sensor-2&event_type__nin=door.opened&state_change=false",
        lambda i: i["device_id"] == "sensor-2" and i["event_type"] != "door.opened" and not i["state_change"],
    ),
]


@pytest.mark.parametrize(("params", "check"), CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("order", ["ASC", "DESC"])
def test_every_filter_as_parameter_and_inside_filter(seeded: Fleet, params: str, check: Check, order: str) -> None:
    full = walk(seeded, f"limit=1000&order={order}")
    expected = [i["id"] for i in full if check(i)]
    assert 0 < len(expected) < len(full), "a case must select some events, not all"
    assert [i["id"] for i in walk(seeded, f"limit=4&order={order}&{params}")] == expected
    assert [i["id"] for i in walk(seeded, f"limit=4&order={order}&filter={quote(params, safe='')}")] == expected


def test_id_filters(seeded: Fleet) -> None:
    full = everything(seeded)
    some = [full[3]["id"], full[10]["id"], full[40]["id"]]
    assert [i["id"] for i in walk(seeded, f"limit=2&id__in={','.join(some)}")] == some
    assert [i["id"] for i in walk(seeded, f"id={some[1]}")] == [some[1]]
    assert [i["id"] for i in walk(seeded, f"limit=2&order=DESC&id__in={','.join(some)}")] == some[::-1]
    rest = walk(seeded, f"limit=1000&id__nin={','.join(some)}")
    assert [i["id"] for i in rest] == [i["id"] for i in full if i["id"] not in some]
    assert walk(seeded, "id=00000000000000000000000000000000") == []
    both = walk(seeded, f"id__in={','.join(some)}&device_id={full[10]['device_id']}")
    assert {i["id"] for i in both} <= set(some) and full[10]["id"] in {i["id"] for i in both}


def test_query_parameters_and_filter_combine(seeded: Fleet) -> None:
    got = walk(seeded, f"limit=1000&device_id__in=sensor-1,sensor-2&filter={quote('device_id__in=sensor-2,desk-1')}")
    assert got and {i["device_id"] for i in got} == {"sensor-2"}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ("limit=ten", "limit"),
        ("order=sideways", "order"),
        ("include=everything", "include"),
        ("after=0123456789abcdef0123456789abcdef", "after"),
        ("colour=red", "colour"),
        ("date_time__gte=last+week", "date_time__gte"),
        ("state_change=maybe", "state_change"),
        ("event_type__lte=x", "event_type__lte"),
        (f"filter={quote('date_time__lte=soon')}", "date_time__lte"),
        ("filter=%26%26", "filter"),
        ("limit=2&limit=3", "limit"),
    ],
)
def test_bad_parameters_get_a_validation_error_naming_them(seeded: Fleet, params: str, field: str) -> None:
    body = error_of(seeded.client.get(f"/v3/device-events/?{params}", headers=pelion(seeded.reader)), 400)
    assert body["type"] == "validation_error"
    assert body["fields"][0]["name"] == field and body["fields"][0]["message"]


def test_credentials(seeded: Fleet) -> None:
    assert error_of(seeded.client.get("/v3/device-events"), 401)["type"] == "unauthorized"
    bad = {"Authorization": "Bearer ak_nope_nope"}
    assert error_of(seeded.client.get("/v3/device-events", headers=bad), 401)["type"] == "invalid_auth"
    # An operator key belongs to no account.
    assert error_of(seeded.client.get("/v3/device-events", headers=seeded.operator), 403)["type"] == "forbidden"
    # The fleetlog spelling of the same key works too.
    assert seeded.client.get("/v3/device-events", headers=seeded.reader).status_code == 200


def test_an_account_sees_only_its_own_events(seeded: Fleet) -> None:
    globex = pelion(seeded.other)
    seeded.ingest([{"type": "UPD2_OK_18", "device": "probe-9"}], headers=seeded.other, tenant="globex")
    theirs = events(seeded, "limit=1000", globex)["data"]
    assert {i["device_id"] for i in theirs} == {"probe-9"}
    ours = everything(seeded)
    assert "probe-9" not in {i["device_id"] for i in ours}
    # Their ids are not found here, not as an item and not as a place to continue from.
    error_of(seeded.client.get(f"/v3/device-events/{theirs[0]['id']}", headers=pelion(seeded.reader)), 404)
    error_of(seeded.client.get(f"/v3/device-events/{ours[0]['id']}/", headers=globex), 404)
    body = error_of(seeded.client.get(f"/v3/device-events?after={ours[0]['id']}", headers=globex), 400)
    assert body["fields"][0]["name"] == "after"
    assert walk(seeded, f"id={ours[0]['id']}", globex) == []


def test_a_project_key_sees_its_project_only(seeded: Fleet) -> None:
    response = seeded.client.post(
        "/v1/tenants/acme/keys", json={"role": "read", "project": "office"}, headers=seeded.operator
    )
    office = pelion({"Authorization": f"Bearer {response.json()['token']}"})
    seen = walk(seeded, "limit=1000&include=total_count", office)
    assert seen and {i["device_id"] for i in seen} == {"desk-1"}
    assert events(seeded, "include=total_count", office)["total_count"] == len(seen)
    plant_event = next(i for i in everything(seeded) if i["device_id"] == "sensor-1")
    error_of(seeded.client.get(f"/v3/device-events/{plant_event['id']}", headers=office), 404)


def test_unknown_paths_and_methods_answer_in_pelion_shape(seeded: Fleet) -> None:
    headers = pelion(seeded.reader)
    assert error_of(seeded.client.get("/v3/devices-events", headers=headers), 404)["type"] == "not_found"
    error_of(seeded.client.delete("/v3/device-events/", headers=headers), 405)
    error_of(seeded.client.get("/v3/device-events/not-an-id", headers=headers), 404)


def test_a_scan_that_finds_nothing_stops_with_a_named_error(seeded: Fleet) -> None:
    # "note 1" is on the 7th, 27th and 47th event (of 63): 20 apart.
    seeded.client.app.state.services.config.pelion_max_scan_events = 25  # type: ignore[attr-defined]
    body = error_of(
        seeded.client.get("/v3/device-events?description=nothing like it", headers=pelion(seeded.reader)), 400
    )
    assert body["fields"][0]["name"] == "description"
    # Matches among the events read come back as a partial page; the next page continues after it.
    first = events(seeded, "limit=50&description=note 1")
    assert len(first["data"]) == 1 and first["has_more"] is True
    found = walk(seeded, "limit=50&description=note 1")
    assert [i["description"] for i in found] == ["note 1"] * 3
