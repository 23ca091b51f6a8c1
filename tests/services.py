"""Real services for tests: PostgreSQL, NATS, Mosquitto, ...

A test that needs one calls `require(name, port)`. Where the service is not running the test
is skipped with the reason, except when FLEETLOG_REQUIRE_SERVICES=1 (set by .ci/run): then a
missing service fails the test, so CI can never pass by skipping.
"""

from __future__ import annotations

import os
import socket

import pytest


def reachable(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def require(name: str, port: int, host: str = "127.0.0.1") -> None:
    if reachable(host, port):
        return
    message = f"{name} is not reachable at {host}:{port}"
    if os.environ.get("FLEETLOG_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{message} (FLEETLOG_REQUIRE_SERVICES=1: services are required here)")
    pytest.skip(message)
