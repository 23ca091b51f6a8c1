"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fleetlog.faces.http import JSONResponse
from fleetlog.pipeline.services import Services


class PipelineCollector(Collector):
    """Reads counters the pipeline keeps anyway: nothing is added to the hot path."""

    def __init__(self, services: Services, storage_stats: Callable[[], dict[str, int]]) -> None:
        self._services = services
        self._storage_stats = storage_stats

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        stats = self._services.ingest.stats
        events = CounterMetricFamily("fleetlog_events", "Events offered to the pipeline, by result", labels=["result"])
        events.add_metric(["created"], stats.created)
        events.add_metric(["duplicate"], stats.duplicates)
        events.add_metric(["conflict"], stats.conflicts)
        events.add_metric(["rejected"], stats.rejected)
        events.add_metric(["deferred"], stats.deferred)
        yield events
        by_face = CounterMetricFamily(
            "fleetlog_events_created_by_face", "Events stored, by the face that took them", labels=["face"]
        )
        for face, count in sorted(stats.by_face.items()):
            by_face.add_metric([face or "internal"], count)
        yield by_face
        storage = self._storage_stats()
        yield CounterMetricFamily(
            "fleetlog_store_commits", "Transactions committed by the store writer", value=storage.get("commits", 0)
        )
        yield CounterMetricFamily(
            "fleetlog_store_jobs",
            "Write jobs committed (group commit: many per transaction)",
            value=storage.get("jobs", 0),
        )
        bus = self._services.bus
        yield GaugeMetricFamily(
            "fleetlog_bus_subscribers", "Live subscribers on the event bus", value=getattr(bus, "subscribers", 0)
        )
        yield CounterMetricFamily(
            "fleetlog_bus_published", "Events published on the bus", value=getattr(bus, "published", 0)
        )
        for name, value in self._services.extras.get("metrics", lambda: {})().items():
            yield GaugeMetricFamily(name, name.replace("_", " "), value=value)


def routes(services: Services, storage_stats: Callable[[], dict[str, int]]) -> list[Route]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(PipelineCollector(services, storage_stats))

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        if not services.ready:
            return JSONResponse({"status": "starting"}, status_code=503)
        try:
            await services.directory.registry.get_setting("ready-probe")
        except Exception as exc:  # the store does not answer: not ready
            return JSONResponse({"status": "unavailable", "reason": str(exc)}, status_code=503)
        return JSONResponse({"status": "ready"})

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(registry), media_type="text/plain; version=0.0.4; charset=utf-8")

    return [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]
