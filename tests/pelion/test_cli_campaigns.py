"""`fleetlog campaigns` against a real fleetlog process."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner, Result

from fleetlog.cli.campaigns import app
from tests.conftest import OPERATOR_TOKEN
from tests.e2e.process import ServerProcess

ENV = {"COLUMNS": "250", "FLEETLOG_URL": None, "FLEETLOG_TOKEN": None, "FLEETLOG_DATA_DIR": None}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path).start()
    try:
        with httpx.Client(base_url=proc.url, headers=proc.operator, timeout=30) as http:
            for path, body in [
                ("/v1/tenants", {"id": "acme"}),
                ("/v1/tenants/acme/projects", {"id": "plant"}),
                ("/v1/tenants/acme/devices", {"id": "oven-1", "project": "plant", "labels": {"site": "oslo"}}),
                ("/v1/tenants/acme/devices", {"id": "oven-2", "project": "plant", "labels": {"site": "oslo"}}),
            ]:
                assert http.post(path, json=body).status_code == 201
        yield proc
    finally:
        proc.stop()


def cli(proc: ServerProcess, *args: str) -> Result:
    return CliRunner().invoke(app, [*args, "--url", proc.url, "--token", OPERATOR_TOKEN], env=ENV)


def as_json(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_a_campaign_from_the_command_line(server: ServerProcess) -> None:
    made = as_json(
        cli(server, "create", "spring", "--tenant", "acme", "--version", "2.0", "--label", "site=oslo", "--json")
    )
    assert made["phase"] == "draft"
    shown = cli(server, "start", made["id"], "--tenant", "acme")
    assert shown.exit_code == 0 and "active" in shown.output and "pending 2" in shown.output
    token = httpx.post(f"{server.url}/v1/tenants/acme/keys", json={"role": "write"}, headers=server.operator).json()
    httpx.post(
        f"{server.url}/v1/tenants/acme/events",
        headers={"Authorization": f"Bearer {token['token']}"},
        json=[{"type": "UPD2_OK_18", "device": "oven-1"}, {"type": "UPD4_FAIL_24", "device": "oven-2"}],
    )
    deadline = time.monotonic() + 30
    while as_json(cli(server, "show", made["id"], "--tenant", "acme", "--json"))["phase"] != "completed":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    table = cli(server, "devices", made["id"], "--tenant", "acme", "--state", "failed")
    assert table.exit_code == 0
    assert "oven-2" in table.output and "SYS_111" in table.output and "UPD4_FAIL_24" in table.output
    assert "oven-1" not in table.output
    listed = cli(server, "list", "--tenant", "acme")
    assert made["id"] in listed.output and "completed" in listed.output


def test_errors_are_explained(server: ServerProcess) -> None:
    result = cli(server, "create", "x", "--tenant", "acme", "--version", "1")
    assert result.exit_code == 1 and "--device" in result.output
    result = cli(server, "create", "x", "--tenant", "acme", "--version", "1", "--device", "ghost")
    assert result.exit_code == 1 and "device_ids[0]" in result.output
    result = cli(server, "stop", "0123", "--tenant", "acme")
    assert result.exit_code == 1 and "not found" in result.output
