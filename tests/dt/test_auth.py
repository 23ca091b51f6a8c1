"""Service accounts, the OAuth2 JWT-bearer token endpoint, Basic auth, and who may see what."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest

from tests.conftest import FakeClock, bearer
from tests.dt.conftest import DT, GRANT, Account, assertion, make, ok


def dt_error(response: object, status: int) -> str:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    body = response.json()  # type: ignore[attr-defined]
    assert set(body) == {"error", "code", "help"} and body["code"] == status
    return str(body["error"])


def token_request(dt: DT, jwt_text: str, grant: str = GRANT) -> object:
    return dt.client.post("/oauth2/token", data={"assertion": jwt_text, "grant_type": grant})


def test_the_jwt_bearer_exchange_issues_an_expiring_access_token(dt: DT, dev: Account) -> None:
    answer = ok(token_request(dt, assertion(dev)))
    assert answer["token_type"] == "Bearer" and answer["expires_in"] == 3600
    ok(dt.client.get("/v2/projects/plant/devices", headers=bearer(answer["access_token"])))


@pytest.mark.parametrize(
    ("mangle", "field"),
    [
        (
            lambda a: jwt.encode(
                {
                    "iat": int(time.time()),
                    "exp": int(time.time()) + 60,
                    "aud": "http://testserver/oauth2/token",
                    "iss": a.email,
                },
                "x" * 40,
                algorithm="HS256",
                headers={"kid": a.key_id},
            ),
            "assertion",
        ),
        (lambda a: assertion(a, aud="https://identity.disruptive-technologies.com/oauth2/token"), "assertion.aud"),
        (lambda a: assertion(a, iss="someone@else"), "assertion.iss"),
        (lambda a: assertion(a, now=int(time.time()) - 7200), "assertion.exp"),
        (lambda a: assertion(a, exp=int(time.time()) + 86400), "assertion.exp"),
        (lambda a: jwt.encode({"iat": 1}, a.secret, algorithm="HS256", headers={"kid": "nokey"}), "assertion.kid"),
        (lambda a: "not-a-jwt", "assertion"),
    ],
)
def test_a_bad_assertion_is_a_400_naming_what_is_wrong(dt: DT, dev: Account, mangle: object, field: str) -> None:
    message = dt_error(token_request(dt, mangle(dev)), 400)  # type: ignore[operator]
    assert message.startswith(field + ":"), message


def test_the_grant_type_and_the_assertion_are_required(dt: DT, dev: Account) -> None:
    assert dt_error(token_request(dt, assertion(dev), grant="client_credentials"), 400).startswith("grant_type:")
    assert dt_error(dt.client.post("/oauth2/token", data={"grant_type": GRANT}), 400).startswith("assertion:")


def test_wrong_or_missing_credentials_are_401(dt: DT, dev: Account) -> None:
    dt_error(dt.client.get("/v2/projects/plant/devices"), 401)
    dt_error(dt.client.get("/v2/projects/plant/devices", headers=bearer(dev.token[:-4] + "AAAA")), 401)
    dt_error(dt.client.get("/v2/projects/plant/devices", headers=bearer("fl_nope_nope")), 401)
    dt_error(dt.client.get("/v2/projects/plant/devices", headers={"Authorization": "Digest x"}), 401)


@pytest.fixture
def timed(tmp_path: Path) -> Iterator[DT]:
    yield from make(tmp_path, clock=FakeClock(start_us=int(time.time()) * 1_000_000))


def test_an_expired_access_token_is_401(timed: DT) -> None:
    account = timed.account("plant")
    ok(timed.client.get("/v2/projects/plant/devices", headers=account.headers))
    assert timed.clock is not None
    timed.clock.advance(3601)
    assert "expired" in dt_error(timed.client.get("/v2/projects/plant/devices", headers=account.headers), 401)


def test_a_deleted_key_stops_working_at_once(dt: DT, dev: Account) -> None:
    headers = {**dt.op, "X-Fleetlog-Tenant": "acme"}
    ok(dt.client.delete(f"/v2/projects/plant/serviceaccounts/{dev.id}/keys/{dev.key_id}", headers=headers))
    dt_error(dt.client.get("/v2/projects/plant/devices", headers=dev.headers), 401)
    dt_error(token_request(dt, assertion(dev)), 400)


def basic(account: Account, secret: str | None = None) -> dict[str, str]:
    raw = f"{account.key_id}:{secret or account.secret}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


def test_basic_auth_with_key_id_and_secret_when_the_account_enables_it(dt: DT) -> None:
    enabled = dt.account("plant", basic=True)
    ok(dt.client.get("/v2/projects/plant/devices", headers=basic(enabled)))
    dt_error(dt.client.get("/v2/projects/plant/devices", headers=basic(enabled, "wrong-secret")), 401)
    disabled = dt.account("plant")
    assert "not enabled" in dt_error(dt.client.get("/v2/projects/plant/devices", headers=basic(disabled)), 401)


def test_a_project_account_gets_403_on_another_project_of_its_tenant(dt: DT, dev: Account) -> None:
    ok(dt.client.get("/v2/projects/plant/devices", headers=dev.headers))
    dt_error(dt.client.get("/v2/projects/office/devices", headers=dev.headers), 403)
    dt_error(dt.client.get("/v2/projects/office", headers=dev.headers), 403)


def test_an_organization_account_sees_every_project_of_its_tenant_only(dt: DT) -> None:
    org = dt.account("plant", roles=["roles/organization.user"])
    ok(dt.client.get("/v2/projects/office/devices", headers=org.headers))
    names = [p["name"] for p in ok(dt.client.get("/v2/projects", headers=org.headers))["projects"]]
    assert names == ["projects/office", "projects/plant"]
    dt_error(dt.client.get("/v2/projects/lab/devices", headers=org.headers), 404)  # globex's project


def test_another_tenants_credential_never_reaches_this_tenants_devices(dt: DT, dev: Account) -> None:
    device = dt.emulated(dev, "plant", "touch")
    stranger = dt.account("lab", roles=["roles/organization.admin"], tenant="globex")
    dt_error(dt.client.get(f"/v2/projects/plant/devices/{device}", headers=stranger.headers), 404)
    dt_error(dt.client.get(f"/v2/projects/-/devices/{device}", headers=stranger.headers), 404)
    dt_error(dt.client.get(f"/v2/projects/plant/devices/{device}/events", headers=stranger.headers), 404)
    dt_error(dt.publish(stranger, "plant", device, {"touch": {}}), 404)
    assert dt.history(dev, "plant", device) == []


def test_a_user_account_reads_but_cannot_write(dt: DT, dev: Account) -> None:
    device = dt.emulated(dev, "plant", "touch")
    reader = dt.account("plant", roles=["roles/project.user"])
    ok(dt.client.get(f"/v2/projects/plant/devices/{device}", headers=reader.headers))
    dt_error(dt.publish(reader, "plant", device, {"touch": {}}), 403)
    body = {"devices": [f"projects/plant/devices/{device}"], "addLabels": {"a": "b"}}
    dt_error(dt.client.post("/v2/projects/plant/devices:batchUpdate", json=body, headers=reader.headers), 403)


def test_only_admins_manage_accounts_and_never_beyond_their_own_rights(dt: DT, dev: Account) -> None:
    dt_error(dt.client.post("/v2/projects/plant/serviceaccounts", json={}, headers=dev.headers), 403)
    admin = dt.account("plant", roles=["roles/project.admin"])
    ok(
        dt.client.post(
            "/v2/projects/plant/serviceaccounts", json={"roles": ["roles/project.user"]}, headers=admin.headers
        )
    )
    message = dt_error(
        dt.client.post(
            "/v2/projects/plant/serviceaccounts", json={"roles": ["roles/organization.admin"]}, headers=admin.headers
        ),
        403,
    )
    assert "one project" in message
    bad = dt.client.post("/v2/projects/plant/serviceaccounts", json={"roles": ["roles/owner"]}, headers=admin.headers)
    assert dt_error(bad, 400).startswith("roles[0]:")
    assert dt_error(
        dt.client.post("/v2/projects/plant/serviceaccounts", json={"displayname": "x"}, headers=admin.headers), 400
    ).startswith("displayname:")


def test_accounts_and_keys_are_listed_without_secrets(dt: DT, dev: Account) -> None:
    headers = {**dt.op, "X-Fleetlog-Tenant": "acme"}
    listed = ok(dt.client.get("/v2/projects/plant/serviceaccounts", headers=headers))["serviceAccounts"]
    assert [a["email"] for a in listed] == [dev.email]
    keys = ok(dt.client.get(f"/v2/projects/plant/serviceaccounts/{dev.id}/keys", headers=headers))["keys"]
    assert [k["id"] for k in keys] == [dev.key_id] and "secret" not in keys[0]
    database = (dt.client.app.state.services.config.data_dir / "fleetlog.db").read_bytes()  # type: ignore[attr-defined]
    assert dev.secret.encode() not in database


def test_an_operator_names_the_tenant_or_the_project_finds_it(dt: DT) -> None:
    ok(dt.client.get("/v2/projects/plant/devices", headers=dt.op))
    assert dt_error(dt.client.get("/v2/projects", headers=dt.op), 400).startswith("X-Fleetlog-Tenant:")
    ok(dt.client.get("/v2/projects", headers={**dt.op, "X-Fleetlog-Tenant": "globex"}))
    assert dt.client.post("/v1/tenants/globex/projects", json={"id": "plant"}, headers=dt.op).status_code == 201
    assert dt_error(dt.client.get("/v2/projects/plant/devices", headers=dt.op), 400).startswith("X-Fleetlog-Tenant:")


def test_a_key_deleted_by_another_process_stops_working_within_30_seconds(timed: DT) -> None:
    account = timed.account("plant")
    ok(timed.client.get("/v2/projects/plant/devices", headers=account.headers))
    documents = timed.client.app.state.services.documents  # type: ignore[attr-defined]
    timed.client.portal.call(documents.delete, "", "dt.key", account.key_id)  # type: ignore[attr-defined]
    assert timed.clock is not None
    timed.clock.advance(31)
    assert "deleted" in dt_error(timed.client.get("/v2/projects/plant/devices", headers=account.headers), 401)
