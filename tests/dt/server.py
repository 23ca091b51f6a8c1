"""fleetlog served by uvicorn in a thread of the test process: real HTTP (for endless streams,
which the TestClient cannot read) with the app's state at hand."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette

from fleetlog.bootstrap import build_app
from fleetlog.config import Config
from fleetlog.ports.clock import Clock
from tests.conftest import OPERATOR_TOKEN
from tests.e2e.process import free_port


@contextmanager
def serve(data_dir: Path, clock: Clock | None = None, **settings: Any) -> Iterator[tuple[str, Starlette]]:
    app = build_app(Config(data_dir=data_dir, admin_token=OPERATOR_TOKEN, **settings), clock=clock)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.01)
    try:
        yield url, app
    finally:
        server.should_exit = True
        thread.join(10)


def setup(url: str) -> dict[str, str]:
    """Tenant acme with projects plant and office; returns operator headers for acme."""
    op = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
    for path, body in [
        ("/v1/tenants", {"id": "acme"}),
        ("/v1/tenants/acme/projects", {"id": "plant"}),
        ("/v1/tenants/acme/projects", {"id": "office"}),
    ]:
        assert httpx.post(url + path, json=body, headers=op).status_code == 201
    return {**op, "X-Fleetlog-Tenant": "acme"}
