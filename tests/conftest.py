"""Shared fixtures: a fresh app per test on a temporary SQLite database, and helpers."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from fleetlog.bootstrap import build_app
from fleetlog.config import Config

OPERATOR_TOKEN = "fl_operator_test-operator-token-0123456789"


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, start_us: int = 1_700_000_000_000_000) -> None:
        self.us = start_us

    def now_us(self) -> int:
        return self.us

    def advance(self, seconds: float) -> None:
        self.us += int(seconds * 1_000_000)


@dataclass
class Fleet:
    """A running app with one tenant, two projects, devices and keys of each kind."""

    client: TestClient
    operator: dict[str, str]
    admin: dict[str, str]  # tenant admin key of "acme"
    writer: dict[str, str]  # tenant write key
    reader: dict[str, str]  # tenant read key
    project_writer: dict[str, str]  # write key scoped to project "plant"
    other: dict[str, str]  # admin key of tenant "globex"
    data_dir: Path

    def ingest(self, body: object, headers: dict[str, str] | None = None, tenant: str = "acme") -> object:
        response = self.client.post(f"/v1/tenants/{tenant}/events", json=body, headers=headers or self.writer)
        assert response.status_code in (200, 201), response.text
        return response.json()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(build_app(Config(data_dir=tmp_path, admin_token=OPERATOR_TOKEN))) as c:
        yield c


def setup_fleet(client: TestClient, data_dir: Path) -> Fleet:
    op = bearer(OPERATOR_TOKEN)

    def ok(response: object) -> dict[str, object]:
        assert response.status_code in (200, 201), response.text  # type: ignore[attr-defined]
        return response.json()  # type: ignore[attr-defined, no-any-return]

    for tenant in ("acme", "globex"):
        ok(client.post("/v1/tenants", json={"id": tenant}, headers=op))
    ok(client.post("/v1/tenants/acme/projects", json={"id": "plant"}, headers=op))
    ok(client.post("/v1/tenants/acme/projects", json={"id": "office"}, headers=op))
    ok(client.post("/v1/tenants/globex/projects", json={"id": "lab"}, headers=op))
    for device, project, labels in [
        ("sensor-1", "plant", {"name": "Freezer 3", "room": "cold"}),
        ("sensor-2", "plant", {"name": "Oven", "room": "hot"}),
        ("desk-1", "office", {"name": "Desk"}),
    ]:
        ok(
            client.post(
                "/v1/tenants/acme/devices", json={"id": device, "project": project, "labels": labels}, headers=op
            )
        )
    ok(client.post("/v1/tenants/globex/devices", json={"id": "probe-9", "project": "lab"}, headers=op))
    return restarted_fleet(client, data_dir)


def restarted_fleet(client: TestClient, data_dir: Path) -> Fleet:
    """The fleet of an earlier setup_fleet on the same data, with new keys (a restart)."""
    op = bearer(OPERATOR_TOKEN)

    def ok(response: object) -> dict[str, object]:
        assert response.status_code in (200, 201), response.text  # type: ignore[attr-defined]
        return response.json()  # type: ignore[attr-defined, no-any-return]

    def key(tenant: str, role: str, project: str | None = None) -> dict[str, str]:
        body: dict[str, str] = {"role": role}
        if project:
            body["project"] = project
        return bearer(str(ok(client.post(f"/v1/tenants/{tenant}/keys", json=body, headers=op))["token"]))

    return Fleet(
        client=client,
        operator=op,
        admin=key("acme", "admin"),
        writer=key("acme", "write"),
        reader=key("acme", "read"),
        project_writer=key("acme", "write", "plant"),
        other=key("globex", "admin"),
        data_dir=data_dir,
    )


@pytest.fixture
def fleet(client: TestClient, tmp_path: Path) -> Fleet:
    return setup_fleet(client, tmp_path)
