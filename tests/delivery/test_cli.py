"""`fleetlog webhooks ...` and `fleetlog connectors ...` against a running server."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import typer
from typer.testing import CliRunner

from fleetlog.cli import delivery
from tests.conftest import OPERATOR_TOKEN
from tests.delivery.receiver import Answer, Receiver
from tests.e2e.process import ServerProcess

pytestmark = pytest.mark.slow

app = typer.Typer()
app.add_typer(delivery.webhooks, name="webhooks")
app.add_typer(delivery.connectors, name="connectors")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    srv = ServerProcess(tmp_path, env={"FLEETLOG_DELIVERY_RETRY_BASE_SECONDS": "0.01"}).start()
    for path, body in [
        ("/v1/tenants", {"id": "acme"}),
        ("/v1/tenants/acme/projects", {"id": "plant"}),
        ("/v1/tenants/acme/devices", {"id": "freezer", "project": "plant"}),
    ]:
        assert httpx.post(srv.url + path, json=body, headers=srv.operator).status_code == 201
    yield srv
    srv.stop()


def run(server: ServerProcess, *args: str) -> str:
    result = CliRunner().invoke(app, [*args, "--url", server.url, "--token", OPERATOR_TOKEN])
    assert result.exit_code == 0, result.output
    return result.output


def test_webhooks_list_show_and_replay(server: ServerProcess, receiver: Receiver) -> None:
    receiver.plan = [Answer(503, body="maintenance window")]
    hook = httpx.post(
        f"{server.url}/v1/tenants/acme/webhooks",
        json={"url": receiver.url, "types": ["touch"]},
        headers=server.operator,
    ).json()
    events = [{"type": "touch", "device": "freezer"}]
    assert httpx.post(f"{server.url}/v1/tenants/acme/events", json=events, headers=server.operator).status_code == 200
    receiver.wait_for(lambda r: any(x.answered == 200 for x in r))

    assert hook["id"] in run(server, "webhooks", "list", "--tenant", "acme")
    deadline = time.monotonic() + 20  # the answer reaches the server's counts a moment after the receiver
    while "1 delivered" not in (shown := run(server, "webhooks", "show", hook["id"], "--tenant", "acme")):
        assert time.monotonic() < deadline, shown
        time.sleep(0.05)
    assert "1 delivered, 1 failed" in shown and "maintenance window" in shown and "503" in shown
    raw = json.loads(run(server, "webhooks", "show", hook["id"], "--tenant", "acme", "--json"))
    assert raw["metrics"]["failures"][0]["status"] == 503
    assert "replaying" in run(server, "webhooks", "replay", hook["id"], "--tenant", "acme", "--since", "0")
    receiver.wait_for(lambda r: len([x for x in r if x.answered == 200]) == 2)


def test_connectors_list_and_show(server: ServerProcess, receiver: Receiver) -> None:
    body = {"displayName": "dcon", "httpConfig": {"url": receiver.url}}
    created = httpx.post(f"{server.url}/v2/projects/plant/dataconnectors", json=body, headers=server.operator).json()
    ident = created["name"].rsplit("/", 1)[-1]
    assert ident in run(server, "connectors", "list", "--project", "plant")
    shown = run(server, "connectors", "show", ident, "--project", "plant", "--tenant", "acme")
    assert "ACTIVE" in shown and "no failures" in shown
    result = CliRunner().invoke(
        app, ["connectors", "show", "nope", "--project", "plant", "--url", server.url, "--token", OPERATOR_TOKEN]
    )
    assert result.exit_code == 1 and "not found" in result.output
