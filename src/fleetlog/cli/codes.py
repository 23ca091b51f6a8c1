"""Catalog lookup (placeholder until the CLI lands)."""


def codes(name: str) -> None:
    """Look up an event type or event log code."""
    raise SystemExit(name)
