"""Operator commands (placeholder until the CLI lands)."""

import typer

tenants = typer.Typer(help="Tenants")
projects = typer.Typer(help="Projects")
devices = typer.Typer(help="Devices")
keys = typer.Typer(help="API keys")
