"""Retention: each tenant keeps events for its own number of days; others are untouched."""

from __future__ import annotations

import time

from fleetlog.pipeline.workers import DAY_US, retention_pass
from tests.conftest import Fleet

NOW_MS = int(time.time() * 1000)
DAY_MS = DAY_US // 1000


def test_retention_removes_only_events_older_than_the_tenants_period(fleet: Fleet) -> None:
    c = fleet.client
    assert c.patch("/v1/tenants/acme", json={"retention_days": 2}, headers=fleet.operator).status_code == 200
    ages = [0, 1, 3, 10]  # days
    fleet.ingest([{"type": "touch", "device": "sensor-1", "time": NOW_MS - a * DAY_MS, "data": {}} for a in ages])
    fleet.ingest(
        [{"type": "touch", "device": "probe-9", "time": NOW_MS - 10 * DAY_MS}], headers=fleet.other, tenant="globex"
    )
    services = c.app.state.services  # type: ignore[attr-defined]

    async def run() -> int:
        return await retention_pass(services.store, services.directory, services.clock.now_us())

    removed = c.portal.call(run)  # type: ignore[union-attr]  # on the app's own event loop
    left = c.get("/v1/tenants/acme/events?type=touch&limit=100", headers=fleet.reader).json()["events"]
    assert removed == 2
    assert len(left) == 2  # 0 and 1 day old
    globex = c.get("/v1/tenants/globex/events?type=touch", headers=fleet.other).json()["events"]
    assert len(globex) == 1  # 31 days there
