"""Event commands (placeholder until the CLI lands)."""

import typer

app = typer.Typer(help="Query and export events")
