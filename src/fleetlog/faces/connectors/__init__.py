"""The APIs of the delivery engine: DT data connectors (/v2/projects/{p}/dataconnectors) and
native webhooks (/v1/tenants/{t}/webhooks), plus Prometheus metrics per connector
(/metrics/delivery). The engine runs as this face's background task."""

from __future__ import annotations

from fleetlog.config import Config, ConfigError
from fleetlog.delivery.engine import DeliveryEngine
from fleetlog.delivery.retry import RetryPolicy
from fleetlog.delivery.sender import Pusher, Sender
from fleetlog.delivery.sender_process import SenderProcess
from fleetlog.delivery.targets import TargetPolicy
from fleetlog.delivery.worker import Settings
from fleetlog.faces import Face
from fleetlog.faces.connectors import dt_api, prometheus, webhooks_api
from fleetlog.pipeline.services import Services

ENGINE = "delivery"  # services.extras key of the engine (tests and the DT face may use it)


def settings(config: Config) -> Settings:
    try:
        targets = TargetPolicy.parse(config.delivery_deny_networks)
    except ValueError as exc:
        raise ConfigError(f"FLEETLOG_DELIVERY_DENY_NETWORKS: {exc}") from None
    return Settings(
        timeout_seconds=config.delivery_timeout_seconds,
        max_age_seconds=config.delivery_max_age_seconds,
        disable_after_seconds=config.delivery_disable_after_seconds,
        retry=RetryPolicy(config.delivery_retry_base_seconds, config.delivery_retry_max_seconds),
        lanes=config.delivery_lanes,
        window=config.delivery_window,
        checkpoint_seconds=config.delivery_checkpoint_seconds,
        max_connectors=config.delivery_max_connectors,
        max_loop_lag_seconds=config.delivery_max_loop_lag_seconds,
        targets=targets,
    )


def face(services: Services) -> Face:
    config = services.config
    delivery = settings(config)
    sender: Pusher = (
        SenderProcess(config.delivery_timeout_seconds, config.delivery_deny_networks)
        if config.delivery_sender_process
        else Sender(config.delivery_timeout_seconds, delivery.targets)
    )
    engine = DeliveryEngine(
        services.store,
        services.bus,
        services.documents,
        services.directory,
        services.clock,
        delivery,
        sender,
        services.leases,
    )
    services.extras[ENGINE] = engine
    # /metrics shows the extras' "metrics" gauges: add ours to whatever is there.
    previous = services.extras.get("metrics")
    services.extras["metrics"] = lambda: {**(previous() if previous else {}), **engine.stats()}
    return Face(
        name="connectors",
        routes=[
            *dt_api.routes(services, engine),
            *webhooks_api.routes(services, engine),
            *prometheus.routes(engine, services.clock),
        ],
        background=[engine.run],
    )
