"""The Span face: /span collections, devices, gateways, firmware, data and activity (docs/api/span.md).

`face(services)` returns the routes and the session sweeper; `device_sink(services)` is what the
device transports (adapters/transports) hand their messages to. Both share one `SpanRuntime`.
"""

from __future__ import annotations

from starlette.responses import Response

from fleetlog.faces import Face
from fleetlog.faces.span import (
    activity,
    blobs,
    collections,
    data,
    device_http,
    devices,
    firmware,
    gateway_link,
    gateways,
    network,
    stream,
)
from fleetlog.faces.span.errors import error
from fleetlog.faces.span.runtime import SpanRuntime
from fleetlog.faces.span.transports import SpanDeviceSink
from fleetlog.pipeline.services import Services

_KEY = "span.runtime"


def runtime(services: Services) -> SpanRuntime:
    """The face's one runtime for these services (created on first use)."""
    found = services.extras.get(_KEY)
    if not isinstance(found, SpanRuntime):
        found = services.extras[_KEY] = SpanRuntime(services)
    return found


def device_sink(services: Services) -> SpanDeviceSink:
    return SpanDeviceSink(runtime(services))


def face(services: Services) -> Face:
    rt = runtime(services)
    hub = gateway_link.GatewayHub(rt)
    rt.gateways = hub
    config = services.config
    if config.span_udp_port:
        rt.status("udp").state = "starting"
    if config.span_mqtt_url:
        rt.status("mqtt").state = "starting"

    def render_error(status: int, message: str) -> Response:
        return error(status, message)

    return Face(
        name="span",
        routes=[
            *collections.routes(rt),
            *devices.routes(rt),
            *data.routes(rt),
            *device_http.routes(rt),
            *firmware.routes(rt),
            *blobs.routes(rt),
            *gateways.routes(rt, hub),
            *network.routes(rt),
            *activity.routes(rt),
            *stream.routes(rt),
            *gateway_link.routes(rt, hub),
        ],
        prefix="/span",
        render_error=render_error,
        background=[rt.sweeper],
    )
