"""The Disruptive Technologies face: /v2 projects, devices, events, stream, emulator."""

from __future__ import annotations

from fleetlog.faces import Face
from fleetlog.pipeline.services import Services


def face(services: Services) -> Face:
    return Face(name="dt")
