"""The `fleetlog` CLI against a real server (uvicorn in a background thread)."""

from __future__ import annotations

import csv
import io
import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from typer.testing import CliRunner, Result

from fleetlog.bootstrap import ADMIN_TOKEN_FILE, build_app
from fleetlog.cli.main import app
from fleetlog.config import Config

runner = CliRunner()
# Tables wide enough that no cell is wrapped or cut, whatever the terminal.
WIDE = {"COLUMNS": "250", "FLEETLOG_URL": None, "FLEETLOG_TOKEN": None, "FLEETLOG_DATA_DIR": None}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, url: str, data: Path) -> None:
        self.url = url
        self.data = data
        self.token = (data / ADMIN_TOKEN_FILE).read_text().strip()

    def cli(self, *args: str, env: dict[str, str | None] | None = None) -> Result:
        """Run `fleetlog ARGS` with an explicit --url and --token."""
        return run(*args, "--url", self.url, "--token", self.token, env=env)

    def ingest(self, tenant: str, token: str, events: list[dict[str, Any]]) -> dict[str, Any]:
        response = httpx.post(
            f"{self.url}/v1/tenants/{tenant}/events",
            json=events,
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        assert body["created"] == len(events) and body["failed"] == 0
        return body


def run(*args: str, env: dict[str, str | None] | None = None) -> Result:
    return runner.invoke(app, list(args), env={**WIDE, **(env or {})})


def ok(result: Result) -> str:
    assert result.exit_code == 0, f"exit {result.exit_code}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("data")
    port = free_port()
    # No admin_token: the server makes one and writes it to <data>/admin-token, as in production.
    config = Config(data_dir=data, port=port)
    srv = uvicorn.Server(uvicorn.Config(build_app(config), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not srv.started:
        assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
        time.sleep(0.02)
    yield Server(f"http://127.0.0.1:{port}", data)
    srv.should_exit = True
    thread.join(timeout=10)


def write_key(server: Server, tenant: str) -> str:
    key = json.loads(ok(server.cli("keys", "create", "--tenant", tenant, "--role", "write", "--json")))
    token: str = key["token"]
    return token


# -- operator commands ---------------------------------------------------------------------


def test_operator_journey(server: Server) -> None:
    # Tenant: with --url/--token given explicitly.
    out = ok(server.cli("tenants", "create", "acme", "--name", "Acme Corp", "--retention-days", "90"))
    assert "acme" in out and "Acme Corp" in out and "90" in out
    out = ok(server.cli("tenants", "list"))
    assert re.search(r"acme\s*│\s*Acme Corp\s*│\s*90\s*│\s*yes", out), out
    shown = json.loads(ok(server.cli("tenants", "show", "acme", "--json")))
    assert shown["id"] == "acme" and shown["retention_days"] == 90 and shown["license_valid"] is True

    changed = json.loads(
        ok(server.cli("tenants", "update", "acme", "--license-invalid", "--retention-days", "7", "--json"))
    )
    assert changed["license_valid"] is False and changed["retention_days"] == 7 and changed["name"] == "Acme Corp"
    changed = json.loads(ok(server.cli("tenants", "update", "acme", "--license-valid", "--json")))
    assert changed["license_valid"] is True and changed["retention_days"] == 7

    # From here on the token comes from <data dir>/admin-token, the URL from the environment.
    def cli(*args: str) -> Result:
        return run(*args, "--data-dir", str(server.data), env={"FLEETLOG_URL": server.url})

    out = ok(cli("projects", "create", "plant", "--tenant", "acme", "--name", "Plant 1"))
    assert "plant" in out and "Plant 1" in out
    ok(cli("projects", "create", "spare", "--tenant", "acme"))
    listed = json.loads(ok(cli("projects", "list", "--tenant", "acme", "--json")))
    assert sorted(p["id"] for p in listed["projects"]) == ["plant", "spare"]
    assert "deleted project spare" in ok(cli("projects", "delete", "spare", "--tenant", "acme"))
    assert "spare" not in ok(cli("projects", "list", "--tenant", "acme"))

    device = json.loads(
        ok(
            cli(
                "devices",
                "create",
                "sensor-1",
                "--tenant",
                "acme",
                "--project",
                "plant",
                "--type",
                "temperature",
                "--label",
                "site=oslo",
                "--label",
                "floor=2",
                "--json",
            )
        )
    )
    assert device["labels"] == {"site": "oslo", "floor": "2"} and device["type"] == "temperature"
    ok(cli("devices", "create", "sensor-2", "--tenant", "acme", "--project", "plant", "--label", "site=bergen"))
    out = ok(cli("devices", "list", "--tenant", "acme", "--label", "site=oslo"))
    assert "sensor-1" in out and "site=oslo" in out and "sensor-2" not in out
    listed = json.loads(ok(cli("devices", "list", "--tenant", "acme", "--project", "plant", "--json")))
    assert [d["id"] for d in listed["devices"]] == ["sensor-1", "sensor-2"]
    out = ok(cli("devices", "show", "sensor-1", "--tenant", "acme"))
    assert "temperature" in out and "floor=2" in out
    updated = json.loads(ok(cli("devices", "update", "sensor-2", "--tenant", "acme", "--label", "site=oslo", "--json")))
    assert updated["labels"] == {"site": "oslo"}
    out = ok(cli("devices", "list", "--tenant", "acme", "--label", "site=oslo"))
    assert "sensor-1" in out and "sensor-2" in out
    assert "deleted device sensor-2" in ok(cli("devices", "delete", "sensor-2", "--tenant", "acme"))
    assert (
        run(
            "devices",
            "show",
            "sensor-2",
            "--tenant",
            "acme",
            "--data-dir",
            str(server.data),
            env={"FLEETLOG_URL": server.url},
        ).exit_code
        == 1
    )

    # Keys: the token is printed once, prominently, with the warning; it works; revoking stops it.
    out = ok(cli("keys", "create", "--tenant", "acme", "--role", "write", "--project", "plant", "--name", "gateway"))
    match = re.search(r"token: (\S+)", out)
    assert match, out
    token = match.group(1)
    assert "will not be shown again" in out
    keys = json.loads(ok(cli("keys", "list", "--tenant", "acme", "--json")))["keys"]
    assert len(keys) == 1 and keys[0]["name"] == "gateway" and keys[0]["role"] == "write"
    assert "token" not in keys[0]
    key_id = keys[0]["id"]
    assert key_id in ok(cli("keys", "list", "--tenant", "acme"))
    server.ingest("acme", token, [{"type": "temperature", "device": "sensor-1", "data": {"value": 20.5}}])
    # The new key reads its tenant: it is a credential the CLI accepts through FLEETLOG_TOKEN as well.
    out = ok(run("events", "query", "--tenant", "acme", env={"FLEETLOG_URL": server.url, "FLEETLOG_TOKEN": token}))
    assert "sensor-1" in out and "20.5" in out
    assert f"revoked key {key_id}" in ok(cli("keys", "revoke", key_id, "--tenant", "acme"))
    assert json.loads(ok(cli("keys", "list", "--tenant", "acme", "--json")))["keys"] == []
    refused = run("events", "query", "--tenant", "acme", "--url", server.url, "--token", token)
    assert refused.exit_code == 1 and "error:" in refused.stderr


def test_keys_revoke_under_the_wrong_tenant_fails(server: Server) -> None:
    ok(server.cli("tenants", "create", "keyowner"))
    ok(server.cli("tenants", "create", "bystander"))
    key_id = json.loads(ok(server.cli("keys", "create", "--tenant", "keyowner", "--role", "read", "--json")))["id"]
    result = server.cli("keys", "revoke", key_id, "--tenant", "bystander")
    still_there = [
        k["id"] for k in json.loads(ok(server.cli("keys", "list", "--tenant", "keyowner", "--json")))["keys"]
    ]
    assert result.exit_code == 1 and key_id in still_there


def test_keys_create_rejects_unknown_role(server: Server) -> None:
    result = server.cli("keys", "create", "--tenant", "acme", "--role", "superuser")
    assert result.exit_code == 2 and "superuser" in result.stderr


def test_api_error_exits_1_with_the_message(server: Server) -> None:
    ok(server.cli("tenants", "create", "dup"))
    result = server.cli("tenants", "create", "dup")
    assert result.exit_code == 1
    assert "error: tenant 'dup' already exists" in result.stderr
    assert result.stdout == ""
    # An error naming a field is printed as `error: <field>: <message>`.
    result = server.cli("tenants", "create", "bad", "--retention-days", "0")
    assert result.exit_code == 1
    assert re.search(r"error: retention_days: .*1", result.stderr), result.stderr


def test_unreachable_server_gives_a_hint(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = run("tenants", "list", "--url", url, "--token", "whatever")
    assert result.exit_code == 1
    assert f"cannot reach fleetlog at {url} — is `fleetlog serve` running?" in result.stderr


def test_missing_token_file_is_explained(server: Server, tmp_path: Path) -> None:
    result = run("tenants", "list", "--url", server.url, "--data-dir", str(tmp_path))
    assert result.exit_code == 1
    assert "no API key" in result.stderr and str(tmp_path / "admin-token") in result.stderr


# -- events --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def events_tenant(server: Server) -> str:
    ok(server.cli("tenants", "create", "ev"))
    ok(server.cli("projects", "create", "p1", "--tenant", "ev"))
    ok(server.cli("devices", "create", "d1", "--tenant", "ev", "--project", "p1", "--label", "room=a"))
    ok(server.cli("devices", "create", "d2", "--tenant", "ev", "--project", "p1", "--label", "room=b"))
    token = write_key(server, "ev")
    server.ingest(
        "ev",
        token,
        [
            {"type": "temperature", "device": "d1", "time": "2024-05-01T10:00:00Z", "data": {"value": 21.5}},
            {"type": "temperature", "device": "d1", "time": "2024-05-01T10:01:00Z", "data": {"value": 22.5}},
            {"type": "temperature", "device": "d1", "time": "2024-05-01T10:02:00Z", "data": {"value": 23.5}},
            {
                "type": "touch",
                "device": "d2",
                "time": "2024-05-01T10:03:00Z",
                "data": {},
                "description": 'pressed,\n"twice"',
            },
            {"type": "SYS_112", "device": "d2", "time": "2024-05-01T10:04:00Z", "data": {"campaign": "c1"}},
        ],
    )
    return "ev"


def test_events_query_shows_and_filters(server: Server, events_tenant: str) -> None:
    out = ok(server.cli("events", "query", "--tenant", events_tenant))
    for text in ("21.5", "22.5", "23.5", "touch", "SYS_112", "SUCCESS"):
        assert text in out
    assert "7 events; no more pages" in out  # 5 reported + 2 device registrations (SYS_106)
    # Newest first by default (without the registrations: their times, now, may read "..:21.5..").
    out = ok(server.cli("events", "query", "--tenant", events_tenant, "--type", "temperature", "--type", "SYS_112"))
    assert out.index("SYS_112") < out.index("23.5") < out.index("21.5")

    out = ok(server.cli("events", "query", "--tenant", events_tenant, "--type", "touch"))
    assert "touch" in out and "d2" in out and "temperature" not in out and "1 events" in out

    out = ok(server.cli("events", "query", "--tenant", events_tenant, "--type", "touch", "--type", "SYS_112"))
    assert "2 events" in out and "temperature" not in out

    page = json.loads(
        ok(
            server.cli(
                "events",
                "query",
                "--tenant",
                events_tenant,
                "--device",
                "d1",
                "--type",
                "temperature",
                "--order",
                "oldest",
                "--json",
            )
        )
    )
    assert [e["data"]["value"] for e in page["events"]] == [21.5, 22.5, 23.5]

    page = json.loads(ok(server.cli("events", "query", "--tenant", events_tenant, "--outcome", "SUCCESS", "--json")))
    assert [e["type"] for e in page["events"]] == ["SYS_112"]

    page = json.loads(
        ok(
            server.cli(
                "events",
                "query",
                "--tenant",
                events_tenant,
                "--label",
                "room=a",
                "--since",
                "2024-05-01T10:01:00Z",
                "--until",
                "2024-05-01T10:02:00Z",
                "--json",
            )
        )
    )
    assert [e["data"]["value"] for e in page["events"]] == [22.5]


def test_events_query_pages_with_the_printed_cursor(server: Server, events_tenant: str) -> None:
    out = ok(server.cli("events", "query", "--tenant", events_tenant, "--order", "oldest", "--limit", "3"))
    match = re.search(r"next page: --cursor (\S+)", out)
    assert match, out
    assert "21.5" in out and "23.5" in out and "touch" not in out
    out = ok(
        server.cli(
            "events",
            "query",
            "--tenant",
            events_tenant,
            "--order",
            "oldest",
            "--limit",
            "3",
            "--cursor",
            match.group(1),
        )
    )
    # the rest: touch, SYS_112, then the two SYS_106 registrations (logged now, so newest)
    assert "touch" in out and "SYS_112" in out and "21.5" not in out and "next page" in out


def test_events_query_bad_filter_is_an_api_error(server: Server, events_tenant: str) -> None:
    result = server.cli("events", "query", "--tenant", events_tenant, "--since", "yesterday")
    assert result.exit_code == 1 and "error: since: not a time" in result.stderr


def test_export_csv_to_file(server: Server, events_tenant: str, tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    result = server.cli("events", "export", "--tenant", events_tenant, "--format", "csv", "--output", str(target))
    assert f"exported 7 events to {target}" in ok(result)  # with the 2 SYS_106 registrations
    rows = list(csv.reader(io.StringIO(target.read_text(encoding="utf-8"))))
    assert rows[0][:3] == ["id", "time", "received"] and len(rows) == 1 + 7
    by_type = {r[rows[0].index("type")]: r for r in rows[1:]}
    # A description with a line break and quotes survives (and counts as one row).
    assert by_type["touch"][rows[0].index("description")] == 'pressed,\n"twice"'
    assert not list(tmp_path.glob(".*.part")), "the temporary file is left behind"
    # The progress display went to stderr, with the count of rows.
    assert "7 events (" in result.stderr


def test_export_ndjson_with_filters(server: Server, events_tenant: str, tmp_path: Path) -> None:
    target = tmp_path / "out.ndjson"
    ok(server.cli("events", "export", "--tenant", events_tenant, "--output", str(target)))
    lines = target.read_text().splitlines()
    assert len(lines) == 7 and all(json.loads(line)["tenant"] == "ev" for line in lines)

    out = ok(
        server.cli(
            "events",
            "export",
            "--tenant",
            events_tenant,
            "--format",
            "ndjson",
            "--type",
            "temperature",
            "--order",
            "oldest",
            "--output",
            str(target),
        )
    )
    assert "exported 3 events" in out
    assert [json.loads(line)["data"]["value"] for line in target.read_text().splitlines()] == [21.5, 22.5, 23.5]


def test_export_to_stdout(server: Server, events_tenant: str) -> None:
    result = server.cli("events", "export", "--tenant", events_tenant, "--device", "d2")
    lines = ok(result).splitlines()
    assert sorted(json.loads(line)["type"] for line in lines) == ["SYS_106", "SYS_112", "touch"]
    assert "exported 3 events to stdout" in result.stderr
    # stderr is not a terminal and the data goes to stdout: no progress display, only the summary.
    assert "exporting" not in result.stderr and "events (" not in result.stderr


def test_export_error_leaves_no_file(server: Server, events_tenant: str, tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    result = server.cli(
        "events",
        "export",
        "--tenant",
        events_tenant,
        "--format",
        "csv",
        "--output",
        str(target),
        "--min-severity",
        "3",
        "--outcome",
        "MAYBE",
    )
    assert result.exit_code == 1 and "error: outcome:" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_export_of_several_chunks(server: Server, tmp_path: Path) -> None:
    ok(server.cli("tenants", "create", "bulk"))
    ok(server.cli("projects", "create", "p", "--tenant", "bulk"))
    ok(server.cli("devices", "create", "dev", "--tenant", "bulk", "--project", "p"))
    token = write_key(server, "bulk")
    # One batch: every event gets the same received time; 2,500 is three export chunks of 1,000.
    server.ingest("bulk", token, [{"type": "temperature", "device": "dev", "data": {"value": i}} for i in range(2500)])

    csv_file = tmp_path / "bulk.csv"
    out = ok(server.cli("events", "export", "--tenant", "bulk", "--format", "csv", "--output", str(csv_file)))
    assert f"exported 2501 events to {csv_file}" in out  # and the device registration
    rows = list(csv.reader(io.StringIO(csv_file.read_text())))
    assert rows[0][0] == "id" and len(rows) == 2502
    assert len({r[0] for r in rows[1:]}) == 2501
    readings = [r for r in rows[1:] if r[rows[0].index("type")] == "temperature"]
    assert sorted(json.loads(r[rows[0].index("data")])["value"] for r in readings) == list(range(2500))

    ndjson_file = tmp_path / "bulk.ndjson"
    out = ok(
        server.cli(
            "events",
            "export",
            "--tenant",
            "bulk",
            "--format",
            "ndjson",
            "--order",
            "oldest",
            "--output",
            str(ndjson_file),
        )
    )
    assert "exported 2501 events" in out  # with the device's registration (SYS_106)
    lines = [json.loads(line) for line in ndjson_file.read_text().splitlines()]
    values = [e["data"]["value"] for e in lines if e["type"] == "temperature"]
    assert sorted(values) == list(range(2500))


# -- codes (offline) -----------------------------------------------------------------------


def test_codes_exact_name_shows_details() -> None:
    out = ok(run("codes", "SYS_112"))
    assert "Device reached desired state." in out and "SUCCESS" in out and "pelion" in out


def test_codes_shows_the_schema() -> None:
    out = ok(run("codes", "temperature"))
    assert '"value": {' in out and '"type": "number"' in out and '"additionalProperties": false' in out
    data = json.loads(ok(run("codes", "temperature", "--json")))
    assert data["name"] == "temperature" and data["schema"]["required"] == ["value"]


def test_codes_search_and_family() -> None:
    out = ok(run("codes", "desired state"))
    assert "SYS_110" in out and "SYS_111" in out and "SYS_112" in out
    listed = json.loads(ok(run("codes", "--family", "span", "--json")))["event_types"]
    assert listed and {t["family"] for t in listed} == {"span"}
    everything = json.loads(ok(run("codes", "--json")))["event_types"]
    assert {t["family"] for t in everything} == {"dt", "span", "pelion"}
    assert len(everything) > len(listed)


def test_codes_unknown_exits_1() -> None:
    result = run("codes", "nosuchthing")
    assert result.exit_code == 1 and "nosuchthing" in result.stderr and result.stdout == ""
