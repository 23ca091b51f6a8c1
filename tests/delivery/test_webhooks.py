"""Native webhooks: the API, filters, the signed body, and the documented verification snippet."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import msgspec
import pytest

from fleetlog.core.event import Event
from fleetlog.faces.native.schemas import event_out
from tests.conftest import Fleet
from tests.delivery.conftest import event, webhook
from tests.delivery.receiver import Answer, Receiver

DOCS = Path(__file__).resolve().parents[2] / "docs" / "api" / "connectors.md"


def documented_verify() -> Any:
    """The receiver's `verify` from docs/api/connectors.md, run as written."""
    (code,) = re.findall(r"```python\n(.*?)```", DOCS.read_text(), re.DOTALL)
    namespace: dict[str, Any] = {}
    exec(compile(code, str(DOCS), "exec"), namespace)
    return namespace["verify"]


def ids(result: Any) -> list[str]:
    return [item["id"] for item in result["results"]]


def test_the_push_is_the_event_as_v1_shows_it_and_signed(fleet: Fleet, receiver: Receiver) -> None:
    hook = webhook(fleet, receiver.url, headers={"Authorization": "Bearer receiver-token"})
    secret = hook["secret"]
    assert len(secret) >= 32
    (stored,) = ids(fleet.ingest([event(data={}, description="pressed", severity=4)]))
    (got,) = receiver.wait_for(lambda r: len(r) == 1)
    shown = fleet.client.get(f"/v1/tenants/acme/events/{stored}", headers=fleet.admin)
    assert got.body == shown.content  # byte for byte
    assert got.headers["X-Fleetlog-Event-Id"] == stored
    assert got.headers["X-Fleetlog-Webhook"] == hook["id"]
    assert got.headers["Authorization"] == "Bearer receiver-token"
    verify = documented_verify()
    assert verify(got.body, got.headers["X-Fleetlog-Signature"], secret)
    assert not verify(got.body + b" ", got.headers["X-Fleetlog-Signature"], secret)
    assert not verify(got.body, got.headers["X-Fleetlog-Signature"], "another-secret-of-32-characters!")


def test_the_documented_snippet_verifies_a_dt_push(fleet: Fleet, receiver: Receiver) -> None:
    secret = "a-long-enough-secret-for-hs256-keys"
    response = fleet.client.post(
        "/v2/projects/plant/dataconnectors",
        json={"httpConfig": {"url": receiver.url, "signatureSecret": secret}},
        headers=fleet.admin,
    )
    assert response.status_code == 200
    fleet.ingest([event()])
    (got,) = receiver.wait_for(lambda r: len(r) == 1)
    assert documented_verify()(got.body, got.headers["X-Dt-Signature"], secret)


def test_filters_select_events(fleet: Fleet, receiver: Receiver) -> None:
    webhook(
        fleet,
        receiver.url,
        project="plant",
        types=["touch", "SYS_112"],
        labels=["room=cold"],
        outcomes=["INFO", "SUCCESS"],
        min_severity=2,
        max_severity=4,
    )
    wanted = ids(fleet.ingest([event("sensor-1"), event("sensor-1", "SYS_112")]))
    unwanted = ids(
        fleet.ingest(
            [
                event("sensor-2"),  # room=hot
                event("desk-1"),  # another project
                event("sensor-1", "SYS_101"),  # a FAIL, and not a wanted type
                event("sensor-1", severity=5),
                event("sensor-1", severity=1),
                event("sensor-1", "temperature", data={"value": 1.0}),
            ]
        )
    )
    marker = ids(fleet.ingest([event("sensor-1", severity=2)]))
    receiver.wait_for(lambda r: marker[0] in {x.json["id"] for x in r})
    got = [r.json["id"] for r in receiver.accepted]
    assert got == [*wanted, *marker]
    assert not set(unwanted) & set(got)


def test_device_filter(fleet: Fleet, receiver: Receiver) -> None:
    webhook(fleet, receiver.url, devices=["desk-1"])
    fleet.ingest([event("sensor-1"), event("sensor-2")])
    wanted = ids(fleet.ingest([event("desk-1")]))
    receiver.wait_for(lambda r: len(r) >= 1)
    assert [r.json["id"] for r in receiver.accepted] == wanted


def test_crud_and_scopes(fleet: Fleet, receiver: Receiver) -> None:
    client = fleet.client
    tenant_wide = webhook(fleet, receiver.url, name="all")
    response = client.post("/v1/tenants/acme/webhooks", json={"url": receiver.url}, headers=fleet.project_writer)
    assert response.status_code == 403  # a write key may not send data elsewhere
    listed = client.get("/v1/tenants/acme/webhooks", headers=fleet.reader).json()["webhooks"]
    assert [w["id"] for w in listed] == [tenant_wide["id"]] and "secret" not in listed[0]
    assert client.get(f"/v1/tenants/acme/webhooks/{tenant_wide['id']}", headers=fleet.other).status_code == 403
    assert client.get(f"/v1/tenants/globex/webhooks/{tenant_wide['id']}", headers=fleet.other).status_code == 404

    patched = client.patch(
        f"/v1/tenants/acme/webhooks/{tenant_wide['id']}",
        json={"types": ["touch"], "status": "USER_DISABLED"},
        headers=fleet.admin,
    ).json()
    assert patched["types"] == ["touch"] and patched["status"] == "USER_DISABLED" and patched["name"] == "all"
    assert patched["secret"] == tenant_wide["secret"]

    response = client.delete(f"/v1/tenants/acme/webhooks/{tenant_wide['id']}", headers=fleet.admin)
    assert response.status_code == 204
    assert client.get(f"/v1/tenants/acme/webhooks/{tenant_wide['id']}", headers=fleet.admin).status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "url"),
        ({"url": "mailto:x@example.com"}, "url"),
        ({"url": "http://127.0.0.1:9/", "types": ["touch", "nope"]}, "types[1]"),
        ({"url": "http://127.0.0.1:9/", "outcomes": ["MAYBE"]}, "outcomes[0]"),
        ({"url": "http://127.0.0.1:9/", "min_severity": 4, "max_severity": 2}, "min_severity"),
        ({"url": "http://127.0.0.1:9/", "max_severity": 6}, "max_severity"),
        ({"url": "http://127.0.0.1:9/", "labels": ["=x"]}, "labels[0]"),
        ({"url": "http://127.0.0.1:9/", "secret": "short"}, "secret"),
        ({"url": "http://127.0.0.1:9/", "headers": {"X-Fleetlog-Signature": "forged"}}, "headers.X-Fleetlog-Signature"),
        ({"url": "http://127.0.0.1:9/", "project": "nowhere"}, None),
        ({"url": "http://127.0.0.1:9/", "status": "SYSTEM_DISABLED"}, "status"),
        ({"url": "http://127.0.0.1:9/", "colour": "red"}, "colour"),
    ],
)
def test_bad_input_is_refused_naming_the_field(fleet: Fleet, body: dict[str, Any], field: str | None) -> None:
    response = fleet.client.post("/v1/tenants/acme/webhooks", json=body, headers=fleet.admin)
    assert response.status_code in (400, 404), response.text
    error = response.json()["error"]
    assert error.get("field") == field, error
    assert fleet.client.get("/v1/tenants/acme/webhooks", headers=fleet.admin).json()["webhooks"] == []


def test_metrics_show_failures_and_replay(fleet: Fleet, receiver: Receiver) -> None:
    receiver.plan = [Answer(500, body="nope")]
    hook = webhook(fleet, receiver.url)
    sent = ids(fleet.ingest([event(), event("sensor-2")]))
    receiver.wait_for(lambda r: len([x for x in r if x.answered == 200]) == 2)

    def report_() -> Any:
        return fleet.client.get(f"/v1/tenants/acme/webhooks/{hook['id']}/metrics", headers=fleet.reader).json()

    deadline = time.monotonic() + 20  # the answers reach the server's counts a moment after the receiver
    while report_()["last_3h"]["success_count"] < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    report = report_()
    assert report["last_3h"]["success_count"] == 2 and report["last_3h"]["error_count"] == 1
    assert report["last_3h"]["latency_p99_seconds"] > 0
    (failure,) = report["failures"]
    assert failure["status"] == 500 and failure["body"] == "nope" and failure["eventId"] in sent
    since = fleet.client.get(f"/v1/tenants/acme/events/{min(sent)}", headers=fleet.admin).json()["received"]
    response = fleet.client.post(
        f"/v1/tenants/acme/webhooks/{hook['id']}/replay", json={"since": since}, headers=fleet.admin
    )
    assert response.status_code == 202, response.text
    receiver.wait_for(lambda r: len([x for x in r if x.answered == 200]) == 4)
    assert sorted(receiver.accepted_ids(lambda b: b["id"])[2:]) == sorted(sent)
    response = fleet.client.post(
        f"/v1/tenants/acme/webhooks/{hook['id']}/replay", json={"since": "soon"}, headers=fleet.admin
    )
    assert response.status_code == 400 and response.json()["error"]["field"] == "since"


def test_native_body_matches_the_native_face() -> None:
    from fleetlog.delivery.native_body import push_body

    full = Event(
        tenant="t",
        project="p",
        type="x",
        time=1,
        data={"a": [1, 2**70]},
        id="0" * 32,
        received=2,
        device="d",
        gateway="g",
        description="why",
        severity=5,
        category="c",
        state_change=True,
        app_id="app",
        idempotency_key="k",
    )
    bare = Event(tenant="t", project="p", type="x", time=1, id="1" * 32, received=2)
    for e in (full, bare):
        assert push_body(e) == msgspec.json.encode(event_out(e))


def test_prometheus_metrics_per_connector(fleet: Fleet, receiver: Receiver) -> None:
    receiver.plan = [Answer(500)]
    hook = webhook(fleet, receiver.url)
    fleet.ingest([event()])
    labels = f'connector="{hook["id"]}",kind="native",tenant="acme"'  # labels print sorted by name
    base = f'connector="{hook["id"]}",kind="native"'
    delivered = f'fleetlog_delivery_pushes_total{{{base},result="success",tenant="acme"}} 1.0'
    deadline = time.monotonic() + 20
    while delivered not in (text := fleet.client.get("/metrics/delivery").text):
        assert time.monotonic() < deadline, text
        time.sleep(0.01)
    assert f'fleetlog_delivery_pushes_total{{{base},result="error",tenant="acme"}} 1.0' in text
    assert f"fleetlog_delivery_dropped_total{{{labels}}} 0.0" in text
    assert f"fleetlog_delivery_in_flight{{{labels}}}" in text
    assert "fleetlog_delivery_pace_slowdowns_total" in text
    assert "fleetlog_delivery_workers 1.0" in fleet.client.get("/metrics").text
