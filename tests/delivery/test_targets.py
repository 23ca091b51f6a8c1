"""FLEETLOG_DELIVERY_DENY_NETWORKS: connectors may not be pointed at, nor push to, denied
networks (a tenant must not make fleetlog reach its own host or private network)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from fleetlog.delivery.sender import Sender
from fleetlog.delivery.sender_process import SenderProcess
from fleetlog.delivery.targets import TargetPolicy
from tests.conftest import Fleet
from tests.delivery.conftest import make_fleet
from tests.delivery.receiver import Receiver

LOCAL = "127.0.0.0/8, ::1/128"


def test_private_covers_loopback_private_link_local_and_mapped_addresses() -> None:
    policy = TargetPolicy.parse("private")
    for address in ("127.0.0.1", "10.1.2.3", "172.16.0.9", "192.168.1.1", "169.254.169.254", "100.64.0.1"):
        assert policy.denies(address), address
    for address in ("::1", "fd00::1", "fe80::1%eth0", "::ffff:127.0.0.1", "::ffff:10.0.0.1"):
        assert policy.denies(address), address
    for address in ("8.8.8.8", "203.0.113.5", "2001:db8::1", "::ffff:8.8.8.8"):
        assert not policy.denies(address), address
    assert not TargetPolicy.parse("")  # empty: every address is allowed
    assert not TargetPolicy.parse("").denies("127.0.0.1")
    assert TargetPolicy.parse(" 10.0.0.0/8 ,, private").denies("192.168.0.1")


def test_a_bad_network_is_named() -> None:
    with pytest.raises(ValueError, match=re.escape("'10.0.0.0/33'")):
        TargetPolicy.parse("private,10.0.0.0/33")


# -- the push ---------------------------------------------------------------------------------


def post(sender: Sender | SenderProcess, url: str) -> tuple[int, str]:
    async def run() -> tuple[int, str]:
        try:
            attempt = await sender.post(url, b"{}", {"Content-Type": "application/json"})
        finally:
            await sender.close()
        return attempt.status, attempt.error

    return asyncio.run(run())


def test_a_push_to_a_denied_address_is_not_made(receiver: Receiver) -> None:
    status, error = post(Sender(2.0, TargetPolicy.parse(LOCAL)), receiver.url)
    assert status == 0 and "127.0.0.1 is in a network pushes may not go to" in error
    # A name is resolved on each connection, and only allowed addresses are used.
    status, error = post(Sender(2.0, TargetPolicy.parse(LOCAL)), receiver.url.replace("127.0.0.1", "localhost"))
    assert status == 0 and "localhost resolves only to networks pushes may not go to" in error
    assert receiver.received == []
    # Other networks denied: the receiver is reached.
    assert post(Sender(2.0, TargetPolicy.parse("10.0.0.0/8")), receiver.url) == (200, "")
    assert len(receiver.received) == 1


def test_the_sender_process_applies_the_same_rule(receiver: Receiver) -> None:
    status, error = post(SenderProcess(2.0, LOCAL), receiver.url)
    assert status == 0 and "not go to" in error
    assert receiver.received == []
    assert post(SenderProcess(2.0, ""), receiver.url) == (200, "")
    with pytest.raises(ValueError, match="not a network"):
        SenderProcess(2.0, "nonsense")


# -- the APIs ---------------------------------------------------------------------------------


@pytest.fixture
def guarded(tmp_path: Path) -> Iterator[Fleet]:
    with make_fleet(tmp_path, delivery_deny_networks="private") as f:
        yield f


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://127.0.0.1:9/hook", "127.0.0.1 is in a network pushes may not go to"),
        ("http://[::1]:9/hook", "::1 is in a network pushes may not go to"),
        ("http://169.254.169.254/latest/meta-data", "169.254.169.254 is in a network"),
        ("http://localhost:9/hook", "localhost resolves to"),
    ],
)
def test_a_connector_cannot_point_at_a_denied_network(guarded: Fleet, url: str, why: str) -> None:
    client = guarded.client
    response = client.post(
        "/v2/projects/plant/dataconnectors", json={"httpConfig": {"url": url}}, headers=guarded.admin
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"].startswith("httpConfig.url") and why in response.json()["error"]
    response = client.post("/v1/tenants/acme/webhooks", json={"url": url}, headers=guarded.admin)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["field"] == "url" and why in response.json()["error"]["message"]
    assert client.get("/v2/projects/plant/dataconnectors", headers=guarded.admin).json()["dataConnectors"] == []
    assert client.get("/v1/tenants/acme/webhooks", headers=guarded.admin).json()["webhooks"] == []


def test_an_allowed_address_is_accepted_and_a_change_to_a_denied_one_is_refused(guarded: Fleet) -> None:
    client = guarded.client
    response = client.post(
        "/v2/projects/plant/dataconnectors",
        json={"httpConfig": {"url": "http://203.0.113.5/hook"}},
        headers=guarded.admin,
    )
    assert response.status_code == 200, response.text
    name = response.json()["name"]
    response = client.patch(f"/v2/{name}", json={"httpConfig": {"url": "http://10.0.0.7/hook"}}, headers=guarded.admin)
    assert response.status_code == 400 and "10.0.0.7 is in a network" in response.json()["error"]
    assert client.get(f"/v2/{name}", headers=guarded.admin).json()["httpConfig"]["url"] == "http://203.0.113.5/hook"
