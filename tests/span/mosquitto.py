"""A private Mosquitto broker for tests, on a free port with its own configuration.

The machine's broker keeps Mosquitto's defaults, which drop queued messages beyond 1,000 per
client (STACK.md); these tests need a broker that keeps everything for an absent subscriber.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.services import reachable

BINARY = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def require_mosquitto() -> None:
    if os.path.exists(BINARY):
        return
    message = "the mosquitto binary is not installed (apt-get install -y mosquitto)"
    if os.environ.get("FLEETLOG_REQUIRE_SERVICES") == "1":
        pytest.fail(message)
    pytest.skip(message)


class Mosquitto:
    def __init__(self, directory: Path, persistence: bool = False) -> None:
        require_mosquitto()
        self.directory = directory
        self.port = free_port()
        self.url = f"mqtt://127.0.0.1:{self.port}"
        directory.mkdir(parents=True, exist_ok=True)
        lines = [
            f"listener {self.port} 127.0.0.1",
            "allow_anonymous true",
            "max_queued_messages 0",  # keep everything for a subscriber that is away
            "max_inflight_messages 1000",  # bounds what the subscriber holds
            f"persistence {'true' if persistence else 'false'}",
            f"persistence_location {directory}/",
        ]
        self.config = directory / "mosquitto.conf"
        self.config.write_text("\n".join(lines) + "\n")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Mosquitto:
        log = open(self.directory / "mosquitto.log", "ab")  # noqa: SIM115 (closed with the process)
        self.proc = subprocess.Popen([BINARY, "-c", str(self.config)], stdout=log, stderr=log)
        log.close()
        deadline = time.monotonic() + 10
        while not reachable("127.0.0.1", self.port, timeout=0.2):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((self.directory / "mosquitto.log").read_text())
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


def publisher(port: int, client_id: str = "test-publisher") -> paho.Client:
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", port)
    client.loop_start()
    return client


def stop(client: paho.Client) -> None:
    client.disconnect()
    client.loop_stop()
