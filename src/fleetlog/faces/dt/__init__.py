"""The Disruptive Technologies face: /v2 projects, devices, events, stream; the emulator under
/emulator/v2; the OAuth2 token endpoint at /oauth2/token. See docs/api/dt.md."""

from __future__ import annotations

from fleetlog.faces import Face
from fleetlog.faces.dt import devices, emulator, history, projects, serviceaccounts, stream, token
from fleetlog.faces.dt.accounts import Accounts, load_master_key
from fleetlog.faces.dt.auth import Authenticator
from fleetlog.faces.dt.errors import error
from fleetlog.faces.dt.fanout import Hubs
from fleetlog.faces.dt.views import DeviceViews
from fleetlog.pipeline.connectivity import ConnectivityMonitor
from fleetlog.pipeline.services import Services

CONNECTIVITY = "dt.connectivity"
STREAM_HUBS = "dt.stream_hubs"
AUTHENTICATE = "dt.authenticate"  # used by the connectors face for /v2/projects/{p}/dataconnectors


def face(services: Services) -> Face:
    config = services.config
    accounts = Accounts(
        services.documents, services.clock, lambda: load_master_key(config.dt_secret_key, config.data_dir)
    )
    auth = Authenticator(services.directory, accounts, services.clock, config.dt_token_seconds)
    services.extras[AUTHENTICATE] = auth.principal
    views = DeviceViews(services.store)
    monitor = ConnectivityMonitor(
        services.ingest, services.directory, services.store, services.bus, services.clock, config.dt_offline_min_seconds
    )
    services.extras[CONNECTIVITY] = monitor
    hubs = services.extras[STREAM_HUBS] = Hubs(services.store, services.bus, services.directory)

    async def connectivity() -> None:
        await monitor.run()

    return Face(
        name="dt",
        routes=[
            *token.routes(accounts, auth, services.clock, config.dt_token_audience),
            *emulator.routes(services, auth, views),
            *stream.routes(services, auth, hubs),
            *devices.routes(services.directory, auth, views),
            *history.routes(services.directory, auth, services.store, services.clock),
            *serviceaccounts.routes(accounts, auth),
            *projects.routes(services.directory, auth),
        ],
        prefix="/v2",
        render_error=error,
        background=[connectivity],
    )
