"""Starting the servers under test as child processes, and setting up a fleet over REST.

Both servers run exactly as `fleetlog serve` runs: one uvicorn worker, uvloop, httptools,
no access log. Only 127.0.0.1 is ever used.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import httpx

HOST = "127.0.0.1"
OPERATOR_TOKEN = "fl_operator_bench-operator-token-0123456789abcdef"
ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, all cores (Linux /proc/stat)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    tick = os.sysconf("SC_CLK_TCK")
    return (sum(fields[:8]) - idle) / tick, sum(fields[:8]) / tick


class CpuWatch:
    """CPU used during a measurement: by the whole machine and by the server under test.
    Anything beyond the server and the load generator is another program competing."""

    def __init__(self, server: Server | None = None) -> None:
        self._server = server
        self._t0 = time.monotonic()
        self._m0 = machine_cpu()
        self._s0 = server.cpu() if server else 0.0

    def stop(self) -> dict[str, float]:
        seconds = time.monotonic() - self._t0
        m1 = machine_cpu()
        out = {"machine_busy_cores": round((m1[0] - self._m0[0]) / seconds, 2)}
        if self._server is not None:
            out["server_cores"] = round((self._server.cpu() - self._s0) / seconds, 2)
        return out


class Server:
    """A child process serving HTTP on 127.0.0.1:port; a context manager."""

    def __init__(self, argv: list[str], port: int, env: dict[str, str] | None = None, log: Path | None = None) -> None:
        self.port = port
        self.url = f"http://{HOST}:{port}"
        self._log = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115
        self.proc = subprocess.Popen(
            argv, cwd=ROOT, env={**os.environ, **(env or {})}, stdout=self._log, stderr=self._log
        )
        self._wait()

    def _wait(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}: {self.proc.args}")
            try:
                with socket.create_connection((HOST, self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"server did not listen on {self.port} within {timeout}s")

    def cpu(self) -> float:
        return cpu_seconds(self.proc.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._log is not subprocess.DEVNULL:
            self._log.close()  # type: ignore[union-attr]

    def __enter__(self) -> Server:
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


def fleetlog_server(data_dir: Path, port: int, log: Path | None = None) -> Server:
    server = Server(
        [
            sys.executable,
            "-m",
            "fleetlog",
            "serve",
            "--data-dir",
            str(data_dir),
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        port,
        env={"FLEETLOG_ADMIN_TOKEN": OPERATOR_TOKEN},
        log=log,
    )
    deadline = time.monotonic() + 30
    while httpx.get(f"{server.url}/readyz").status_code != 200:
        if time.monotonic() > deadline:
            raise RuntimeError("fleetlog did not become ready")
        time.sleep(0.05)
    return server


def bare_server(port: int) -> Server:
    return Server([sys.executable, "-m", "bench.bare", "--port", str(port)], port)


@dataclass
class Fleet:
    tenant: str
    project: str
    devices: int
    write_key: str
    read_key: str


def setup_fleet(url: str, tenant: str = "bench", project: str = "fleet", devices: int = 1000) -> Fleet:
    """Tenant, project, devices dev-0..dev-N-1 and two keys, through the registry REST API."""
    op = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
    with httpx.Client(base_url=url, headers=op, timeout=30) as client:

        def post(path: str, body: dict[str, object]) -> dict[str, object]:
            r = client.post(path, json=body)
            if r.status_code not in (200, 201):
                raise RuntimeError(f"POST {path}: {r.status_code} {r.text}")
            return r.json()  # type: ignore[no-any-return]

        post("/v1/tenants", {"id": tenant, "retention_days": 36500})
        post(f"/v1/tenants/{tenant}/projects", {"id": project})
        for d in range(devices):
            post(f"/v1/tenants/{tenant}/devices", {"id": f"dev-{d}", "project": project})
        write = str(post(f"/v1/tenants/{tenant}/keys", {"role": "write"})["token"])
        read = str(post(f"/v1/tenants/{tenant}/keys", {"role": "read"})["token"])
    return Fleet(tenant, project, devices, write, read)


def metrics(url: str) -> dict[str, float]:
    """fleetlog's Prometheus counters, flattened: {'fleetlog_store_commits_total': 12.0, ...}."""
    out: dict[str, float] = {}
    for line in httpx.get(f"{url}/metrics").text.splitlines():
        m = re.match(r"^([a-z_]+(?:\{[^}]*\})?) ([0-9.e+]+)$", line)
        if m:
            out[m.group(1)] = float(m.group(2))
    return out
