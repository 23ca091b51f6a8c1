"""The APIs of the delivery engine: DT data connectors (/v2/projects/{p}/dataconnectors) and
native webhooks (/v1/tenants/{t}/webhooks)."""

from __future__ import annotations

from fleetlog.faces import Face
from fleetlog.pipeline.services import Services


def face(services: Services) -> Face:
    return Face(name="connectors")
