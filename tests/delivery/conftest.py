"""Fixtures for delivery tests: an app with fast retries, a fleet in it, a real receiver."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from fleetlog.bootstrap import build_app
from fleetlog.config import Config
from fleetlog.delivery.engine import DeliveryEngine
from fleetlog.faces.connectors import ENGINE
from tests.conftest import OPERATOR_TOKEN, FakeClock, Fleet, restarted_fleet, setup_fleet
from tests.delivery.receiver import Receiver

FAST = {
    "delivery_retry_base_seconds": 0.01,
    "delivery_retry_max_seconds": 0.05,
    "delivery_checkpoint_seconds": 0.05,
    "delivery_timeout_seconds": 2.0,
}


@contextmanager
def make_fleet(
    tmp_path: Path, clock: FakeClock | None = None, *, existing: bool = False, **settings: Any
) -> Iterator[Fleet]:
    """`existing`: start again on the data of an earlier make_fleet(tmp_path) (a restart)."""
    config = Config(data_dir=tmp_path, admin_token=OPERATOR_TOKEN, **{**FAST, **settings})
    with TestClient(build_app(config, clock)) as client:
        yield restarted_fleet(client, tmp_path) if existing else setup_fleet(client, tmp_path)


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    with make_fleet(tmp_path) as f:
        yield f


@pytest.fixture
def clock() -> FakeClock:
    import time

    return FakeClock(time.time_ns() // 1000)


@pytest.fixture
def timed_fleet(tmp_path: Path, clock: FakeClock) -> Iterator[Fleet]:
    """A fleet whose clock the test moves (maximum age, SYSTEM_DISABLED)."""
    with make_fleet(tmp_path, clock) as f:
        yield f


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


def engine_of(fleet: Fleet) -> DeliveryEngine:
    engine = fleet.client.app.state.services.extras[ENGINE]  # type: ignore[attr-defined]
    assert isinstance(engine, DeliveryEngine)
    return engine


def dt_connector(fleet: Fleet, url: str, project: str = "plant", **fields: Any) -> dict[str, Any]:
    body = {"displayName": "test", "httpConfig": {"url": url, "signatureSecret": "s3cret", "headers": {}}, **fields}
    response = fleet.client.post(f"/v2/projects/{project}/dataconnectors", json=body, headers=fleet.admin)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def webhook(fleet: Fleet, url: str, **fields: Any) -> dict[str, Any]:
    response = fleet.client.post("/v1/tenants/acme/webhooks", json={"url": url, **fields}, headers=fleet.admin)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def event(device: str = "sensor-1", type_: str = "touch", **fields: Any) -> dict[str, Any]:
    return {"type": type_, "device": device, **fields}
