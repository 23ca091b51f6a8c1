"""The one place that wires adapters to ports and faces to the pipeline."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from fleetlog.adapters.bus.memory import MemoryBus
from fleetlog.adapters.storage.sqlite import SqliteStorage
from fleetlog.adapters.transports import device_transports
from fleetlog.config import Config
from fleetlog.core.catalog import builtin_catalog
from fleetlog.faces import Face, connectors, dt, native, pelion, span, tenant_ingest
from fleetlog.faces.native.errors import error as native_error
from fleetlog.pipeline.directory import Directory
from fleetlog.pipeline.ingest import Ingest
from fleetlog.pipeline.lifecycle import LifecycleEvents
from fleetlog.pipeline.services import Limits, Services
from fleetlog.pipeline.workers import deferred_worker, retention_worker
from fleetlog.ports.bus import Bus
from fleetlog.ports.clock import Clock, SystemClock

if TYPE_CHECKING:
    from fleetlog.adapters.storage.postgres import PostgresStorage

log = logging.getLogger("fleetlog")
ADMIN_TOKEN_FILE = "admin-token"

# Container allocations between two young-generation collections (CPython's default is 700).
# Ingest allocates a few containers per event, so at the default a batch of 1,000 events sets
# off several collections, each also walking the survivors of the last one: a quarter of the
# server's CPU at 35,000 events/s. Nothing the pipeline makes lives in a reference cycle, so
# collecting rarely costs no memory that matters (a few MB of young objects at most).
GC_YOUNG_THRESHOLD = 50_000

# How long the event loop may keep the GIL while another thread waits for it (CPython's
# default is 5 ms). The SQLite writer releases the GIL for every statement it runs and must
# take it back afterwards, waiting up to this long while the loop decodes the next batch.
# 1 ms: batch ingest +6 % (six alternated runs), single-event ingest unchanged
# (docs/benchmarks.md).
SWITCH_INTERVAL_SECONDS = 0.001


def tune_runtime() -> None:
    """For a long-running server, once everything is built: objects made at start-up (catalog,
    schemas, routes, caches) are never scanned again, young collections are rarer, and the
    store's threads get the GIL back sooner."""
    sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)


def build_app(config: Config, clock: Clock | None = None) -> Starlette:
    clock = clock or SystemClock()
    # The engines: embedded defaults, or PostgreSQL and NATS for several processes (their
    # client libraries are imported only when chosen).
    bus: Bus = MemoryBus()
    if config.bus_url:
        from fleetlog.adapters.bus.nats import NatsBus

        bus = NatsBus(config.bus_url)
    storage: SqliteStorage | PostgresStorage
    if config.storage_url:
        from fleetlog.adapters.storage.postgres import PostgresStorage

        storage = PostgresStorage(config.storage_url, bus=bus)
    else:
        storage = SqliteStorage(config.database, synchronous=config.sqlite_synchronous, bus=bus)
    catalog = builtin_catalog()
    directory = Directory(storage.registry, clock, catalog)
    ingest = Ingest(storage.events, directory, catalog, clock, storage.inbox)
    directory.on_device_change(LifecycleEvents(ingest))
    if hasattr(storage, "on_registry_change"):  # other processes change the registry too
        storage.on_registry_change(directory.forget)
    services = Services(
        ingest=ingest,
        directory=directory,
        store=storage.events,
        bus=bus,
        catalog=catalog,
        clock=clock,
        documents=storage.documents,
        leases=storage.leases,
        limits=Limits(config.max_event_bytes, config.max_batch_bytes, config.max_batch_items),
        config=config,
    )

    # Routes are matched in this order: the busiest single-event endpoint goes first.
    faces: list[Face] = [
        tenant_ingest.face(services),
        native.face(services, lambda: storage.stats),
        dt.face(services),
        pelion.face(services),
        span.face(services),
        connectors.face(services),
    ]
    # Device transports (UDP, MQTT) feed the Span face; each is off unless configured.
    faces.append(Face(name="transports", background=device_transports(config, span.device_sink(services))))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        for engine in (bus, storage):  # network engines connect here, on the server's loop
            if hasattr(engine, "open"):
                await engine.open()
        token = await directory.ensure_operator_key(config.admin_token)
        if token is not None:
            _write_admin_token(config.data_dir / ADMIN_TOKEN_FILE, token)
        tasks = [
            *(asyncio.create_task(work(), name=f"{f.name}:{work.__name__}") for f in faces for work in f.background),
            asyncio.create_task(deferred_worker(ingest, services.deferred_wake), name="deferred"),
            asyncio.create_task(
                retention_worker(storage.events, directory, clock, config.retention_interval_seconds),
                name="retention",
            ),
        ]
        services.ready = True
        try:
            yield
        finally:
            services.ready = False
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for engine in (storage, bus):  # the store first: its last commits still publish
                if hasattr(engine, "aclose"):
                    await engine.aclose()
                elif hasattr(engine, "close"):
                    engine.close()

    shapes = [(f.prefix, f.render_error) for f in faces if f.prefix and f.render_error]

    async def http_error(request: Request, exc: Exception) -> Response:
        """Unknown paths and wrong methods, answered in the shape of the face the path belongs to."""
        assert isinstance(exc, HTTPException)
        status = exc.status_code
        message = {
            404: f"no such resource: {request.url.path}",
            405: f"method {request.method} is not allowed here",
        }.get(status, str(exc.detail))
        render = next((r for prefix, r in shapes if request.url.path.startswith(prefix)), None)
        response = render(status, message) if render else native_error(status, message)
        if exc.headers:
            response.headers.update(exc.headers)
        return response

    app = Starlette(
        routes=[route for f in faces for route in f.routes],
        lifespan=lifespan,
        exception_handlers={HTTPException: http_error},
    )
    app.state.services = services
    app.state.storage = storage
    return app


def _write_admin_token(path: Path, token: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    log.warning("operator credential created and written to %s", path)
