"""Domain errors. Faces translate them into their dialect's error shape."""

from __future__ import annotations


class FleetlogError(Exception):
    """Base class of every error the core raises on purpose."""


class InvalidInput(FleetlogError):
    """Input that breaks a rule; `field` names the offending field (a dotted path) if known."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


class NotFound(FleetlogError):
    """A named resource does not exist (or is not visible to the caller)."""

    def __init__(self, kind: str, ident: str) -> None:
        super().__init__(f"{kind} {ident!r} not found")
        self.kind = kind
        self.ident = ident


class Conflict(FleetlogError):
    """The request collides with existing state (a duplicate event, an existing name)."""

    def __init__(self, message: str, existing_id: str | None = None) -> None:
        super().__init__(message)
        self.existing_id = existing_id


class Forbidden(FleetlogError):
    """A valid credential without the right to do this."""


class Unauthenticated(FleetlogError):
    """Missing, malformed, unknown or expired credentials."""
