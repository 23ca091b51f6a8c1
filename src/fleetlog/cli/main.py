"""The `fleetlog` command. `fleetlog` alone runs `fleetlog serve`.

Heavy imports (the server, HTTP client, rich) happen inside the commands that need them, so
`fleetlog --help` starts fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fleetlog.cli import campaigns, codes, delivery, events, operator
from fleetlog.config import Config, ConfigError

app = typer.Typer(
    help="fleetlog: a device event service for IoT fleets.",
    no_args_is_help=False,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(operator.tenants, name="tenants")
app.add_typer(operator.projects, name="projects")
app.add_typer(operator.devices, name="devices")
app.add_typer(operator.keys, name="keys")
app.add_typer(events.app, name="events")
app.add_typer(campaigns.app, name="campaigns")
app.add_typer(delivery.webhooks, name="webhooks")
app.add_typer(delivery.connectors, name="connectors")
app.command("codes")(codes.codes)


@app.callback(invoke_without_command=True)
def default(ctx: typer.Context) -> None:
    if ctx.invoked_subcommand is None:
        ctx.invoke(serve)


@app.command()
def serve(
    host: Annotated[
        str | None, typer.Option(help="Address to listen on (env FLEETLOG_HOST; default 127.0.0.1)")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port (env FLEETLOG_PORT; default 8080)")] = None,
    data_dir: Annotated[
        Path | None, typer.Option(help="Where the SQLite database lives (env FLEETLOG_DATA_DIR; default ./data)")
    ] = None,
    log_level: Annotated[str | None, typer.Option(help="debug, info, warning, error")] = None,
) -> None:
    """Run the server on the embedded defaults (SQLite in the data directory)."""
    import logging

    import uvicorn

    from fleetlog.adapters.storage.sqlite import StoreInUse
    from fleetlog.bootstrap import ADMIN_TOKEN_FILE, build_app, tune_runtime

    try:  # a setting fleetlog cannot use, or a store in use, is named without a traceback
        config = Config.from_env()
        if host is not None:
            config.host = host
        if port is not None:
            config.port = port
        if data_dir is not None:
            config.data_dir = data_dir
        if log_level is not None:
            config.log_level = log_level
        logging.basicConfig(level=config.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        app_ = build_app(config)
    except (ConfigError, StoreInUse) as exc:
        typer.echo(f"fleetlog: {exc}", err=True)
        raise typer.Exit(2) from None
    tune_runtime()
    typer.echo(f"fleetlog listening on http://{config.host}:{config.port}  (data: {config.database})")
    typer.echo(
        f"API docs: http://{config.host}:{config.port}/docs   operator token: {config.data_dir / ADMIN_TOKEN_FILE}"
    )
    uvicorn.run(
        app_,
        host=config.host,
        port=config.port,
        log_level=config.log_level,
        access_log=False,
        loop="uvloop",
        http="httptools",
        timeout_graceful_shutdown=5,
    )


def main() -> None:
    app()
