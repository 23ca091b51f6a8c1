"""Query parameters, strictly: an unknown or malformed parameter is named in a 400."""

from __future__ import annotations

from collections.abc import Iterable

from starlette.datastructures import QueryParams

from fleetlog.core.errors import InvalidInput

# Every Span query parameter may also carry the WebSocket token; it is never an error.
ALWAYS = frozenset({"api_token"})


def check_known(params: QueryParams, allowed: Iterable[str]) -> None:
    known = set(allowed) | ALWAYS
    for name in params:
        if name not in known:
            allowed_text = ", ".join(sorted(known - ALWAYS)) or "none"
            raise InvalidInput(f"unknown query parameter; allowed: {allowed_text}", name)


def one(params: QueryParams, name: str) -> str | None:
    values = params.getlist(name)
    if len(values) > 1:
        raise InvalidInput("given more than once", name)
    return values[0] if values else None


def flag(params: QueryParams, name: str) -> bool:
    raw = one(params, name)
    if raw is None:
        return False
    if raw.lower() in ("true", "1"):
        return True
    if raw.lower() in ("false", "0", ""):
        return False
    raise InvalidInput(f"must be true or false, got {raw!r}", name)


def integer(params: QueryParams, name: str, low: int, high: int) -> int | None:
    raw = one(params, name)
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise InvalidInput(f"must be an integer, got {raw!r}", name) from None
    if not low <= value <= high:
        raise InvalidInput(f"must be from {low} to {high}", name)
    return value


def epoch_ms(params: QueryParams, name: str) -> int | None:
    """A time in milliseconds since the epoch (Span sends them as strings); returns µs."""
    value = integer(params, name, 0, 253402300799999)
    return None if value is None else value * 1000
