"""SIGKILL fleetlog while it delivers: after a restart every acknowledged event reaches the
receiver at least once; a duplicate carries the same eventId; none is lost."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.delivery.receiver import Answer, Receiver, receiving
from tests.e2e.process import ServerProcess

pytestmark = pytest.mark.slow

FAST = {
    "FLEETLOG_DELIVERY_RETRY_BASE_SECONDS": "0.01",
    "FLEETLOG_DELIVERY_RETRY_MAX_SECONDS": "0.1",
    "FLEETLOG_DELIVERY_CHECKPOINT_SECONDS": "0.1",
}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    srv = ServerProcess(tmp_path, env=FAST).start()
    op = srv.operator
    for path, body in [("/v1/tenants", {"id": "acme"}), ("/v1/tenants/acme/projects", {"id": "plant"})]:
        assert httpx.post(srv.url + path, json=body, headers=op).status_code == 201
    for i in range(8):
        body = {"id": f"dev-{i}", "project": "plant"}
        assert httpx.post(srv.url + "/v1/tenants/acme/devices", json=body, headers=op).status_code == 201
    yield srv
    srv.stop()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving() as r:
        r.default = Answer(delay=0.002)  # slower than ingest: a backlog builds up
        yield r


def test_sigkill_while_delivering_loses_no_acknowledged_event(server: ServerProcess, receiver: Receiver) -> None:
    connector = {"displayName": "crash", "httpConfig": {"url": receiver.url, "signatureSecret": "k" * 32}}
    response = httpx.post(f"{server.url}/v2/projects/plant/dataconnectors", json=connector, headers=server.operator)
    assert response.status_code == 200, response.text
    acked: list[str] = []
    with httpx.Client(base_url=server.url, headers=server.operator, timeout=30) as client:
        for _ in range(20):
            body = [{"type": "touch", "device": f"dev-{i % 8}", "data": {}} for i in range(100)]
            response = client.post("/v1/tenants/acme/events", json=body)
            assert response.status_code == 200, response.text
            acked += [item["id"] for item in response.json()["results"]]
    receiver.wait_for(lambda r: len(r) >= 300)
    server.kill()  # mid-delivery: most of the backlog is not delivered yet
    assert len({r.json["event"]["eventId"] for r in receiver.accepted}) < len(acked)
    server.start()
    receiver.wait_for(lambda r: set(acked) <= {x.json["event"]["eventId"] for x in r if x.answered == 200}, 60)
    delivered = Counter(receiver.accepted_ids())
    assert set(delivered) == set(acked)  # every acknowledged event, and nothing else
    first_body = {}
    for r in receiver.accepted:  # a duplicate is the same event: same eventId, same body
        first_body.setdefault(r.json["event"]["eventId"], r.json)
        assert r.json == first_body[r.json["event"]["eventId"]]
