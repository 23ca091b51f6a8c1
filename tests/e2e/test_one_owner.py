"""The embedded SQLite store belongs to one process at a time (see adapters/storage/sqlite/owner.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from fleetlog.adapters.storage.sqlite import SqliteStorage, StoreInUse
from tests.e2e.process import ServerProcess, free_port

pytestmark = pytest.mark.slow


def test_a_second_process_on_the_same_store_is_refused_until_the_first_dies(tmp_path: Path) -> None:
    first = ServerProcess(tmp_path).start()
    try:
        assert first.proc is not None
        second = subprocess.run(
            [sys.executable, "-m", "fleetlog", "serve", "--data-dir", str(tmp_path), "--port", str(free_port())],
            capture_output=True,
            text=True,
            timeout=60,
            env=first.env,
        )
        assert second.returncode == 2, second.stderr
        assert f"in use by another fleetlog process (pid {first.proc.pid})" in second.stderr
        assert "Traceback" not in second.stderr
        # The first one is untouched and still takes events.
        assert httpx.post(f"{first.url}/v1/tenants", json={"id": "acme"}, headers=first.operator).status_code == 201
        first.kill()  # SIGKILL: the kernel releases the lock, so a restart is never refused
        again = ServerProcess(tmp_path).start()
        try:
            assert httpx.get(f"{again.url}/v1/tenants/acme", headers=again.operator).status_code == 200
        finally:
            again.stop()
    finally:
        first.stop()


def test_the_store_can_be_opened_again_once_closed(tmp_path: Path) -> None:
    path = tmp_path / "fleetlog.db"
    storage = SqliteStorage(path)
    with pytest.raises(StoreInUse, match="in use by another fleetlog process"):
        SqliteStorage(path)
    storage.close()
    SqliteStorage(path).close()
