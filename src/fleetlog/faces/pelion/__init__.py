"""The Pelion face: /v3/device-events and the event log codes."""

from __future__ import annotations

from fleetlog.faces import Face
from fleetlog.pipeline.services import Services


def face(services: Services) -> Face:
    return Face(name="pelion")
