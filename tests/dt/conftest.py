"""DT face fixtures: an app with two tenants, service accounts of each kind, tokens from the
real JWT-bearer exchange, and helpers to publish through the emulator."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
import pytest
from starlette.testclient import TestClient

from fleetlog.bootstrap import build_app
from fleetlog.config import Config
from tests.conftest import OPERATOR_TOKEN, FakeClock, bearer

GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
AUDIENCE = "http://testserver/oauth2/token"


@dataclass
class Account:
    id: str
    email: str
    key_id: str
    secret: str
    token: str = ""

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.token)


def assertion(account: Account, now: int | None = None, **claims: Any) -> str:
    now = int(time.time()) if now is None else now
    body = {"iat": now, "exp": now + 3600, "aud": AUDIENCE, "iss": account.email, **claims}
    return jwt.encode(body, account.secret, algorithm="HS256", headers={"kid": account.key_id})


def ok(response: Any) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


@dataclass
class DT:
    client: TestClient
    clock: FakeClock | None
    op: dict[str, str] = field(default_factory=lambda: bearer(OPERATOR_TOKEN))
    state: dict[str, Any] = field(default_factory=dict)  # for tests that reuse things across examples

    def account(
        self, project: str, roles: list[str] | None = None, tenant: str = "acme", basic: bool = False
    ) -> Account:
        headers = {**self.op, "X-Fleetlog-Tenant": tenant}
        body: dict[str, Any] = {"displayName": "test", "enableBasicAuth": basic}
        if roles is not None:
            body["roles"] = roles
        made = ok(self.client.post(f"/v2/projects/{project}/serviceaccounts", json=body, headers=headers))
        account_id = made["name"].split("/")[-1]
        key = ok(self.client.post(f"/v2/projects/{project}/serviceaccounts/{account_id}/keys", headers=headers))
        account = Account(account_id, made["email"], key["key"]["id"], key["secret"])
        now = None if self.clock is None else self.clock.us // 1_000_000
        token = ok(self.client.post("/oauth2/token", data={"assertion": assertion(account, now), "grant_type": GRANT}))
        account.token = token["access_token"]
        return account

    def emulated(self, account: Account, project: str, kind: str, **labels: str) -> str:
        made = ok(
            self.client.post(
                f"/emulator/v2/projects/{project}/devices",
                json={"type": kind, "labels": labels},
                headers=account.headers,
            )
        )
        return str(made["name"].split("/")[-1])

    def publish(self, account: Account, project: str, device: str, body: dict[str, Any]) -> Any:
        return self.client.post(
            f"/emulator/v2/projects/{project}/devices/{device}:publish", json=body, headers=account.headers
        )

    def history(self, account: Account, project: str, device: str, **params: Any) -> list[dict[str, Any]]:
        page = ok(
            self.client.get(f"/v2/projects/{project}/devices/{device}/events", params=params, headers=account.headers)
        )
        return list(page["events"])


def _setup(client: TestClient) -> None:
    op = bearer(OPERATOR_TOKEN)
    for tenant in ("acme", "globex"):
        assert client.post("/v1/tenants", json={"id": tenant}, headers=op).status_code == 201
    for tenant, project in (("acme", "plant"), ("acme", "office"), ("globex", "lab")):
        assert client.post(f"/v1/tenants/{tenant}/projects", json={"id": project}, headers=op).status_code == 201


def make(tmp_path: Path, clock: FakeClock | None = None, **settings: Any) -> Iterator[DT]:
    config = Config(data_dir=tmp_path, admin_token=OPERATOR_TOKEN, **settings)
    with TestClient(build_app(config, clock=clock)) as client:
        _setup(client)
        yield DT(client, clock)


@pytest.fixture
def dt(tmp_path: Path) -> Iterator[DT]:
    yield from make(tmp_path)


@pytest.fixture
def dev(dt: DT) -> Account:
    """A developer service account of project plant (tenant acme)."""
    return dt.account("plant")
