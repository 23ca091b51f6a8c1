"""The native API under /v1: events, registry, catalog, operations, OpenAPI and docs."""

from __future__ import annotations

from collections.abc import Callable

from starlette.routing import BaseRoute

from fleetlog.faces.native import events, openapi, ops, registry
from fleetlog.pipeline.services import Services


def routes(services: Services, storage_stats: Callable[[], dict[str, int]]) -> list[BaseRoute]:
    return [
        *events.routes(services),
        *registry.routes(services),
        *ops.routes(services, storage_stats),
        *openapi.routes(),
    ]
