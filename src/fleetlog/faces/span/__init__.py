"""The Span face: /span collections, devices, gateways, firmware, data and activity."""

from __future__ import annotations

from fleetlog.faces import Face
from fleetlog.pipeline.services import Services


def face(services: Services) -> Face:
    return Face(name="span")
