"""Firmware update campaigns: the events fleetlog records about them (SYS_103/104, SYS_108 to
SYS_112), each device's outcome, results reported through any ingest path, and recovery."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from fleetlog.bootstrap import build_app
from fleetlog.config import Config
from tests.conftest import OPERATOR_TOKEN, Fleet, setup_fleet
from tests.pelion.helpers import error_of, events, pelion, walk

CAMPAIGNS = "/v1/tenants/acme/campaigns"


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def create(fleet: Fleet, **body: Any) -> dict[str, Any]:
    return ok(
        fleet.client.post(CAMPAIGNS, json={"name": "fw", "firmware_version": "2.0", **body}, headers=fleet.operator),
        201,
    )


def start(fleet: Fleet, campaign_id: str) -> dict[str, Any]:
    return ok(fleet.client.post(f"{CAMPAIGNS}/{campaign_id}/start", headers=fleet.operator))


def campaign(fleet: Fleet, campaign_id: str) -> dict[str, Any]:
    return ok(fleet.client.get(f"{CAMPAIGNS}/{campaign_id}", headers=fleet.operator))


def records(fleet: Fleet, campaign_id: str) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    after = ""
    while True:
        page = ok(
            fleet.client.get(f"{CAMPAIGNS}/{campaign_id}/devices?limit=1000&after={after}", headers=fleet.operator)
        )
        out |= {r["device_id"]: r for r in page["devices"]}
        if not page["has_more"]:
            return out
        after = page["devices"][-1]["device_id"]


def wait_for(fleet: Fleet, campaign_id: str, check: Any) -> dict[str, Any]:
    """Results are applied by a background task: wait (bounded) until `check` holds."""
    deadline = time.monotonic() + 30
    while True:
        current = campaign(fleet, campaign_id)
        if check(current):
            return current
        assert time.monotonic() < deadline, current
        time.sleep(0.02)


def report(fleet: Fleet, events_: list[dict[str, Any]]) -> None:
    fleet.ingest(events_)


def tenant_ingest(fleet: Fleet, device: str, code: str, at_ms: int = 1_714_564_800_000) -> None:
    token = fleet.writer["Authorization"].removeprefix("Bearer ")
    body = {
        "typeId": code,
        "description": "update result",
        "appId": "updater",
        "severity": 3,
        "data": {},
        "timestamp": at_ms,
    }
    response = fleet.client.post(
        f"/rest/v1/api/tenants/acme/devices/{device}/events", json=body, headers={"X-API-Key": token}
    )
    assert response.status_code == 201, response.text


def log_of(fleet: Fleet, device: str) -> list[tuple[str, str, str]]:
    """The device's event log as the portal shows it: code, message type, message."""
    return [
        (i["event_type"], i["event_type_description"], i["description"])
        for i in walk(fleet, f"device_id={device}&limit=1000")
    ]


def label(fleet: Fleet, device: str, labels: dict[str, str]) -> None:
    ok(fleet.client.patch(f"/v1/tenants/acme/devices/{device}", json={"labels": labels}, headers=fleet.operator))


def test_a_campaign_from_creation_to_completion(fleet: Fleet) -> None:
    label(fleet, "sensor-2", {"name": "Oven", "firmware_version": "2.0"})  # already at 2.0
    made = create(fleet, device_ids=["sensor-1", "sensor-2", "desk-1"], description="spring release")
    assert made["phase"] == "draft" and made["devices"]["total"] == 0
    started = start(fleet, made["id"])
    assert started["phase"] == "active"
    assert (started["devices"]["pending"], started["devices"]["skipped"]) == (2, 1)

    report(fleet, [{"type": "UPD2_OK_18", "device": "sensor-1"}])  # native ingest
    tenant_ingest(fleet, "desk-1", "UPD4_FAIL_23")  # the tenant ingest endpoint
    done = wait_for(fleet, made["id"], lambda c: c["phase"] == "completed")
    assert done["finished_at"] and (done["devices"]["succeeded"], done["devices"]["failed"]) == (1, 1)

    outcome = records(fleet, made["id"])
    assert {d: (r["state"], r["event_type"], r["message_type"], r["cause"]) for d, r in outcome.items()} == {
        "sensor-1": ("succeeded", "SYS_112", "SUCCESS", "UPD2_OK_18"),
        "sensor-2": ("skipped", "SYS_110", "SKIPPED", None),
        "desk-1": ("failed", "SYS_111", "FAIL", "UPD4_FAIL_23"),
    }
    assert outcome["desk-1"]["message"] == "Device failed to reach desired state."

    assert [e for e in log_of(fleet, "sensor-1") if e[0].startswith(("SYS_1", "UPD"))] == [
        ("SYS_106", "INFO", "Device registered."),
        ("SYS_108", "INFO", "Device added to campaign."),
        ("UPD2_OK_18", "SUCCESS", "Asset update successfully completed."),
        ("SYS_112", "SUCCESS", "Device reached desired state."),
    ]
    assert [e for e in log_of(fleet, "sensor-2") if e[0].startswith("SYS_11")] == [
        ("SYS_110", "SKIPPED", "Device already at desired state.")
    ]
    failed = events(fleet, "device_id=desk-1&event_type=SYS_111")["data"][0]
    assert failed["data"] == {"campaign_id": made["id"], "cause": "UPD4_FAIL_23"}
    assert failed["state_change"] is True
    # The device that updated now runs 2.0: a second campaign to 2.0 skips it.
    again = create(fleet, device_ids=["sensor-1"])
    assert start(fleet, again["id"])["phase"] == "completed"
    assert records(fleet, again["id"])["sensor-1"]["state"] == "skipped"


def test_stopping_tells_devices_that_may_still_update_from_those_that_will_not(fleet: Fleet) -> None:
    made = create(fleet, device_ids=["sensor-1", "sensor-2"])
    start(fleet, made["id"])
    report(fleet, [{"type": "door.opened", "device": "sensor-1"}])  # sensor-1 is in contact
    stopped = ok(fleet.client.post(f"{CAMPAIGNS}/{made['id']}/stop", headers=fleet.operator))
    assert stopped["phase"] == "stopped" and stopped["finished_at"]
    outcome = records(fleet, made["id"])
    assert (outcome["sensor-1"]["state"], outcome["sensor-1"]["event_type"]) == ("stopped_may_update", "SYS_104")
    assert (outcome["sensor-2"]["state"], outcome["sensor-2"]["event_type"]) == ("stopped_not_updated", "SYS_103")
    assert ("SYS_104", "FAIL", "Campaign was manually stopped. Device may still update.") in log_of(fleet, "sensor-1")
    assert ("SYS_103", "FAIL", "Campaign was manually stopped. Device not updated.") in log_of(fleet, "sensor-2")
    # A device that may still update is still followed; one that will not is not.
    report(fleet, [{"type": "UPD2_OK_18", "device": "sensor-2"}, {"type": "UPD2_OK_18", "device": "sensor-1"}])
    wait_for(fleet, made["id"], lambda c: c["devices"]["succeeded"] == 1)
    assert records(fleet, made["id"])["sensor-1"]["state"] == "succeeded"
    assert "SYS_112" not in {e[0] for e in log_of(fleet, "sensor-2")}
    assert campaign(fleet, made["id"])["phase"] == "stopped"


def test_devices_by_label_added_removed_and_deregistered(fleet: Fleet) -> None:
    made = create(fleet, device_labels={"room": "cold"})
    assert set(records(fleet, start(fleet, made["id"])["id"])) == {"sensor-1"}
    base = f"{CAMPAIGNS}/{made['id']}/devices"
    ok(fleet.client.post(base, json={"device_ids": ["desk-1", "sensor-2"]}, headers=fleet.operator))
    ok(fleet.client.delete(f"{base}/desk-1", headers=fleet.operator))
    assert fleet.client.delete("/v1/tenants/acme/devices/sensor-2", headers=fleet.operator).status_code == 204
    outcome = records(fleet, made["id"])
    assert {d: r["state"] for d, r in outcome.items()} == {
        "sensor-1": "pending",
        "desk-1": "removed",
        "sensor-2": "removed",
    }
    assert ("SYS_109", "INFO", "Device removed from campaign.") in log_of(fleet, "desk-1")
    assert [e[0] for e in log_of(fleet, "sensor-2")][-2:] == ["SYS_105", "SYS_109"]
    report(fleet, [{"type": "UPD4_FAIL_41", "device": "sensor-1", "data": {"campaign_id": made["id"]}}])
    done = wait_for(fleet, made["id"], lambda c: c["phase"] == "completed")
    assert done["devices"]["failed"] == 1


def test_refusals(fleet: Fleet) -> None:
    op = fleet.operator
    error = fleet.client.post(
        CAMPAIGNS, json={"name": "x", "firmware_version": "1", "device_ids": ["sensor-1", "nope"]}, headers=op
    ).json()["error"]
    assert error["field"] == "device_ids[1]"
    both = {"name": "x", "firmware_version": "1", "device_ids": ["sensor-1"], "device_labels": {"a": "b"}}
    assert fleet.client.post(CAMPAIGNS, json=both, headers=op).status_code == 400
    missing = fleet.client.post(CAMPAIGNS, json={"name": "x", "device_ids": ["sensor-1"]}, headers=op)
    assert missing.status_code == 400 and missing.json()["error"]["field"] == "firmware_version"
    made = create(fleet, device_ids=["sensor-1"])
    assert fleet.client.post(f"{CAMPAIGNS}/{made['id']}/stop", headers=op).status_code == 409
    start(fleet, made["id"])
    assert fleet.client.post(f"{CAMPAIGNS}/{made['id']}/start", headers=op).status_code == 409
    assert fleet.client.delete(f"{CAMPAIGNS}/{made['id']}", headers=op).status_code == 409
    assert fleet.client.get(f"{CAMPAIGNS}/{made['id']}/devices?state=lost", headers=op).status_code == 400
    assert fleet.client.get(f"{CAMPAIGNS}/0000", headers=op).status_code == 404
    assert fleet.client.post(CAMPAIGNS, json={"name": "x"}, headers=fleet.reader).status_code == 403
    assert fleet.client.get(CAMPAIGNS, headers=fleet.project_writer).status_code == 403
    assert fleet.client.get(f"{CAMPAIGNS}/{made['id']}", headers=fleet.other).status_code == 403
    assert fleet.client.get(f"/v1/tenants/globex/campaigns/{made['id']}", headers=fleet.other).status_code == 404
    draft = create(fleet, device_ids=["sensor-1"])
    assert fleet.client.delete(f"{CAMPAIGNS}/{draft['id']}", headers=op).status_code == 204


def test_the_pelion_dialect_of_campaigns(fleet: Fleet) -> None:
    writer = pelion(fleet.writer)
    made = ok(
        fleet.client.post(
            "/v3/update-campaigns/",
            json={"name": "fw", "firmware_version": "9", "device_ids": ["desk-1"]},
            headers=writer,
        ),
        201,
    )
    assert made["object"] == "update-campaign"
    assert ok(fleet.client.post(f"/v3/update-campaigns/{made['id']}/start", headers=writer))["phase"] == "active"
    listing = ok(fleet.client.get("/v3/update-campaigns", headers=pelion(fleet.reader)))
    assert listing["object"] == "list" and [c["id"] for c in listing["data"]] == [made["id"]]
    devices = ok(fleet.client.get(f"/v3/update-campaigns/{made['id']}/devices/", headers=writer))
    assert devices["object"] == "list" and devices["data"][0]["state"] == "pending"
    body = error_of(fleet.client.post("/v3/update-campaigns", json={"name": ""}, headers=writer), 400)
    assert body["fields"][0]["name"] == "name"
    error_of(fleet.client.get("/v3/update-campaigns/nope", headers=writer), 404)
    assert ok(fleet.client.get("/v3/update-campaigns", headers=pelion(fleet.other)))["data"] == []


def test_a_campaign_over_1000_devices_with_a_mix_of_outcomes(fleet: Fleet) -> None:
    n = 1000
    for i in range(n):
        labels = {"batch": "b1"} | ({"firmware_version": "3.0"} if i % 10 == 0 else {})
        ok(
            fleet.client.post(
                "/v1/tenants/acme/devices",
                json={"id": f"m-{i:04d}", "project": "plant", "labels": labels},
                headers=fleet.operator,
            ),
            201,
        )
    made = create(fleet, device_labels={"batch": "b1"}, firmware_version="3.0")
    started = start(fleet, made["id"])
    assert started["devices"] == {**started["devices"], "total": n, "pending": 900, "skipped": 100}
    fails = [f"UPD4_FAIL_{c}" for c in range(21, 50)]
    results: list[dict[str, Any]] = []
    expected: dict[str, tuple[str, str | None]] = {}
    for i in range(n):
        device = f"m-{i:04d}"
        if i % 10 == 0:
            expected[device] = ("skipped", None)
        elif i % 4 == 0:
            expected[device] = ("failed", fails[i % len(fails)])
        else:
            expected[device] = ("succeeded", "UPD2_OK_18")
    pending = [d for d, (state, _) in expected.items() if state != "skipped"]
    for device in pending[:20]:  # some through the tenant ingest endpoint
        tenant_ingest(fleet, device, str(expected[device][1]))
    results = [{"type": expected[d][1], "device": d} for d in pending[20:]]
    report(fleet, results)  # the rest in one native batch
    done = wait_for(fleet, made["id"], lambda c: c["phase"] == "completed")
    succeeded = sum(1 for s, _ in expected.values() if s == "succeeded")
    failed = sum(1 for s, _ in expected.values() if s == "failed")
    assert (done["devices"]["succeeded"], done["devices"]["failed"], done["devices"]["skipped"]) == (
        succeeded,
        failed,
        100,
    )
    outcome = records(fleet, made["id"])
    assert {d: (r["state"], r["cause"]) for d, r in outcome.items()} == expected
    # Read back in the portal's terms: message type and message, counted by code.
    counts = {
        code: events(fleet, f"event_type={code}&include=total_count&limit=2")["total_count"]
        for code in ("SYS_108", "SYS_110", "SYS_111", "SYS_112")
    }
    assert counts == {"SYS_108": n, "SYS_110": 100, "SYS_111": failed, "SYS_112": succeeded}
    for item in walk(fleet, "event_type__in=SYS_111,SYS_112,SYS_110&limit=1000"):
        state = {"SYS_110": "SKIPPED", "SYS_111": "FAIL", "SYS_112": "SUCCESS"}[item["event_type"]]
        assert item["event_type_description"] == state
        assert item["data"]["campaign_id"] == made["id"]
    one_fail = next(d for d, (s, _) in expected.items() if s == "failed")
    log = log_of(fleet, one_fail)
    cause = str(expected[one_fail][1])
    assert log[-1] == ("SYS_111", "FAIL", "Device failed to reach desired state.")
    assert any(code == cause and kind == "FAIL" and text for code, kind, text in log)


def test_results_that_arrived_while_no_one_followed_are_applied_after_a_restart(tmp_path: Path) -> None:
    config = Config(data_dir=tmp_path, admin_token=OPERATOR_TOKEN)
    with TestClient(build_app(config)) as client:
        fleet = setup_fleet(client, tmp_path)
        made = create(fleet, device_ids=["sensor-1", "sensor-2"])
        start(fleet, made["id"])
        writer = fleet.writer
    # The same store without the app's background work (as if fleetlog stopped following):
    # results are committed, but no campaign watcher sees them.
    app = build_app(config)
    try:
        quiet = TestClient(app)
        response = quiet.post(
            "/v1/tenants/acme/events",
            headers=writer,
            json=[{"type": "UPD2_OK_18", "device": "sensor-1"}, {"type": "UPD4_FAIL_35", "device": "sensor-2"}],
        )
        assert response.status_code == 200, response.text
    finally:
        app.state.storage.close()
    with TestClient(build_app(config)) as client:
        fleet.client = client
        done = wait_for(fleet, made["id"], lambda c: c["phase"] == "completed")
        assert (done["devices"]["succeeded"], done["devices"]["failed"]) == (1, 1)
        assert [e[0] for e in log_of(fleet, "sensor-2")][-2:] == ["UPD4_FAIL_35", "SYS_111"]


@pytest.mark.parametrize("phase", ["starting", "stopping"])
def test_a_step_cut_short_is_finished_at_start_up_without_duplicate_events(tmp_path: Path, phase: str) -> None:
    config = Config(data_dir=tmp_path, admin_token=OPERATOR_TOKEN)
    with TestClient(build_app(config)) as client:
        fleet = setup_fleet(client, tmp_path)
        made = create(fleet, device_ids=["sensor-1", "sensor-2", "desk-1"])
        start(fleet, made["id"])
        if phase == "stopping":
            ok(fleet.client.post(f"{CAMPAIGNS}/{made['id']}/stop", headers=fleet.operator))
        services = client.app.state.services  # type: ignore[attr-defined]
        documents = services.documents
        portal = client.portal  # type: ignore[attr-defined]
        # Undo the end of the step, as a crash between its events and its records would leave it.
        doc = portal.call(documents.get, "acme", "pelion.campaign", made["id"])
        portal.call(documents.put, "acme", "pelion.campaign", made["id"], {**doc, "phase": phase})
        record_id = f"{made['id']}/desk-1"
        if phase == "starting":  # desk-1 was added (its event is stored) but not recorded
            portal.call(documents.delete, "acme", "pelion.campaign-device", record_id)
        else:  # desk-1 was told the campaign stopped, but is still recorded as pending
            record = portal.call(documents.get, "acme", "pelion.campaign-device", record_id)
            portal.call(documents.put, "acme", "pelion.campaign-device", record_id, {**record, "state": "pending"})
    with TestClient(build_app(config)) as client:
        fleet.client = client
        expected = "active" if phase == "starting" else "stopped"
        wait_for(fleet, made["id"], lambda c: c["phase"] == expected and c["devices"]["total"] == 3)
        codes = [e[0] for e in log_of(fleet, "desk-1")]
        assert codes.count("SYS_108") == 1
        assert codes.count("SYS_103") == (1 if phase == "stopping" else 0)


def test_results_the_bus_dropped_are_read_from_the_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fleetlog.faces.pelion import campaigns as module

    monkeypatch.setattr(module, "QUEUE", 2)  # the follower's queue overflows at once
    with TestClient(build_app(Config(data_dir=tmp_path, admin_token=OPERATOR_TOKEN))) as client:
        fleet = setup_fleet(client, tmp_path)
        ids = [f"r-{i}" for i in range(40)]
        for device in ids:
            ok(
                fleet.client.post(
                    "/v1/tenants/acme/devices", json={"id": device, "project": "plant"}, headers=fleet.operator
                ),
                201,
            )
        made = create(fleet, device_ids=ids)
        start(fleet, made["id"])
        report(fleet, [{"type": "UPD2_OK_18", "device": d} for d in ids])
        done = wait_for(fleet, made["id"], lambda c: c["phase"] == "completed")
        assert done["devices"]["succeeded"] == 40
        assert client.app.state.services.extras["pelion.campaigns"].refills >= 1  # type: ignore[attr-defined]
