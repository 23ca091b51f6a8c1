"""The Pelion face: /v3/device-events, the event log codes, update campaigns.

See docs/api/pelion.md for the contract as served.
"""

from __future__ import annotations

from fleetlog.faces import Face
from fleetlog.faces.pelion import campaign_routes, routes
from fleetlog.faces.pelion.campaigns import Campaigns
from fleetlog.faces.pelion.errors import render_error
from fleetlog.pipeline.services import Services


def face(services: Services) -> Face:
    campaigns = Campaigns(services)
    services.directory.on_device_change(campaigns.on_device_change)
    services.extras["pelion.campaigns"] = campaigns

    async def follow_campaign_results() -> None:
        await campaigns.run()

    return Face(
        name="pelion",
        routes=[*routes.routes(services), *campaign_routes.routes(services, campaigns)],
        prefix="/v3",
        render_error=render_error,
        background=[follow_campaign_results],
    )
