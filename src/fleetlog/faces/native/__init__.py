"""The native API under /v1: events, registry, catalog, operations, OpenAPI and docs."""

from __future__ import annotations

from collections.abc import Callable

from fleetlog.faces import Face
from fleetlog.faces.native import events, openapi, ops, registry
from fleetlog.faces.native.errors import error
from fleetlog.pipeline.services import Services


def face(services: Services, storage_stats: Callable[[], dict[str, int]]) -> Face:
    return Face(
        name="native",
        routes=[
            *events.routes(services),
            *registry.routes(services),
            *ops.routes(services, storage_stats),
            *openapi.routes(),
        ],
        render_error=lambda status, message: error(status, message),
    )
