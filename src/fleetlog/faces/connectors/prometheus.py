"""Prometheus metrics per connector, at /metrics/delivery (a scrape target next to /metrics)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fleetlog.delivery.engine import DeliveryEngine
from fleetlog.ports.clock import Clock

LABELS = ["tenant", "connector", "kind"]


class DeliveryCollector(Collector):
    def __init__(self, engine: DeliveryEngine, clock: Clock) -> None:
        self._engine = engine
        self._clock = clock

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        pushes = CounterMetricFamily(
            "fleetlog_delivery_pushes", "Pushes since start, by result (success: HTTP 200)", labels=[*LABELS, "result"]
        )
        dropped = CounterMetricFamily(
            "fleetlog_delivery_dropped", "Events never delivered: older than the maximum age", labels=LABELS
        )
        p99 = GaugeMetricFamily(
            "fleetlog_delivery_latency_p99_seconds", "p99 push latency, last 3 hours", labels=LABELS
        )
        in_flight = GaugeMetricFamily(
            "fleetlog_delivery_in_flight", "Events held in memory (queued or pushing)", labels=LABELS
        )
        lag = GaugeMetricFamily(
            "fleetlog_delivery_lag_seconds", "Age of the oldest event not yet delivered (0: caught up)", labels=LABELS
        )
        now = self._clock.now_us()
        for (tenant, ident), metrics in self._engine.all_metrics():
            worker = self._engine.worker(tenant, ident)
            kind = worker.connector.flavour.value if worker else ""
            labels = [tenant, ident, kind]
            pushes.add_metric([*labels, "success"], metrics.success_total)
            pushes.add_metric([*labels, "error"], metrics.error_total)
            dropped.add_metric(labels, metrics.dropped_total)
            summary = metrics.summary(now)
            if summary.p99 is not None:
                p99.add_metric(labels, summary.p99)
            if worker is not None:
                in_flight.add_metric(labels, worker.in_flight)
                lag.add_metric(labels, worker.lag_seconds(now))
        yield from (pushes, dropped, p99, in_flight, lag)
        pacer = self._engine.pacer
        yield CounterMetricFamily(
            "fleetlog_delivery_pace_slowdowns",
            "Times pushes were slowed so the API's requests wait less",
            value=pacer.slowdowns,
        )
        yield GaugeMetricFamily(
            "fleetlog_delivery_pace_limit_per_second", "Pushes/s allowed now (+Inf: no limit)", value=pacer.rate
        )


def routes(engine: DeliveryEngine, clock: Clock) -> list[Route]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DeliveryCollector(engine, clock))

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(registry), media_type="text/plain; version=0.0.4; charset=utf-8")

    return [Route("/metrics/delivery", metrics, methods=["GET"])]
