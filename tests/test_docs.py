"""The documentation stays true: every setting is in the README, every documented command exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fleetlog.cli.main import app
from fleetlog.config import Config, ConfigError, describe

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_every_setting_is_documented_with_its_default() -> None:
    rows = dict(re.findall(r"^\| `(FLEETLOG_[A-Z_0-9]+)` \| `?([^|`]*)`? \|", README, re.MULTILINE))
    for name, default, _ in describe():
        assert name in rows, f"{name} is missing from the README's configuration table"
        if name != "FLEETLOG_ADMIN_TOKEN":
            assert rows[name].strip() == default, f"{name}: README says {rows[name]!r}, code says {default!r}"
    assert set(rows) <= {name for name, _, _ in describe()}, "the README documents a setting that does not exist"


def test_settings_come_from_the_environment() -> None:
    config = Config.from_env({"FLEETLOG_PORT": "9999", "FLEETLOG_DATA_DIR": "/tmp/x", "FLEETLOG_LOG_LEVEL": "debug"})
    assert (config.port, str(config.data_dir), config.log_level) == (9999, "/tmp/x", "debug")


def test_every_cli_command_in_the_readme_exists() -> None:
    runner = CliRunner()
    commands = re.findall(r"^uv run fleetlog ([a-z]+(?: [a-z]+)?)", README, re.MULTILINE)
    assert commands
    for command in commands:
        result = runner.invoke(app, [*command.split(), "--help"])
        assert result.exit_code == 0, f"`fleetlog {command}` from the README does not exist: {result.output}"


def test_a_bad_setting_is_named_and_serve_refuses_to_start(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="FLEETLOG_PORT: 'abc' is not a valid int"):
        Config.from_env({"FLEETLOG_PORT": "abc"})
    with pytest.raises(ConfigError, match="FLEETLOG_DELIVERY_SENDER_PROCESS: 'maybe'"):
        Config.from_env({"FLEETLOG_DELIVERY_SENDER_PROCESS": "maybe"})
    flags = [Config.from_env({"FLEETLOG_DELIVERY_SENDER_PROCESS": w}).delivery_sender_process for w in ("Off", "yes")]
    assert flags == [False, True]
    runner = CliRunner()
    for env, named in [
        ({"FLEETLOG_PORT": "abc"}, "FLEETLOG_PORT"),
        ({"FLEETLOG_DELIVERY_DENY_NETWORKS": "private,10.0.0.0/33"}, "FLEETLOG_DELIVERY_DENY_NETWORKS"),
    ]:
        result = runner.invoke(app, ["serve", "--data-dir", str(tmp_path), "--port", "1"], env=env)
        assert result.exit_code == 2, result.output
        assert named in result.output and "Traceback" not in result.output
