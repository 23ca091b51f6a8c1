"""Query parameters as DT's clients send them: repeated lists, camelCase and snake_case spellings.

Unknown parameters are an error (naming the parameter), never silently ignored.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from starlette.datastructures import QueryParams

from fleetlog.core.errors import InvalidInput
from fleetlog.core.timefmt import parse_rfc3339

PAGE_PARAMS = ("pageSize", "page_size", "pageToken", "page_token")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def check_known(params: QueryParams, allowed: Iterable[str]) -> None:
    known = set(allowed)
    for name in params:
        if name not in known:
            raise InvalidInput(f"unknown query parameter; allowed here: {', '.join(sorted(known))}", name)


def one(params: QueryParams, *names: str) -> str | None:
    """One value given under any of `names` (spellings of the same parameter)."""
    found: list[tuple[str, str]] = [(n, v) for n in names for v in params.getlist(n)]
    if len(found) > 1:
        raise InvalidInput("given more than once", " / ".join(dict.fromkeys(n for n, _ in found)))
    return found[0][1] if found else None


def many(params: QueryParams, *names: str, split: bool = True) -> tuple[str, ...]:
    """Every value given under any of `names`, repeated (`a=1&a=2`) or, with `split`, comma-separated."""
    values: list[str] = []
    for name in names:
        for raw in params.getlist(name):
            parts = raw.split(",") if split else [raw]
            values += [p.strip() for p in parts if p.strip()]
    return tuple(dict.fromkeys(values))


def page_size(params: QueryParams, default: int, maximum: int) -> int:
    raw = one(params, "pageSize", "page_size")
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidInput(f"must be an integer, got {raw!r}", "pageSize") from None
    if value == 0:
        return default  # proto3: 0 means "not set"
    if not 1 <= value <= maximum:
        raise InvalidInput(f"must be from 1 to {maximum}", "pageSize")
    return value


def page_token(params: QueryParams) -> str | None:
    return one(params, "pageToken", "page_token") or None


def time(params: QueryParams, *names: str) -> int | None:
    raw = one(params, *names)
    if raw is None or raw == "":
        return None
    try:
        return parse_rfc3339(raw)
    except (ValueError, OverflowError):
        raise InvalidInput(f"not an RFC 3339 time: {raw!r} (e.g. 2024-05-01T12:00:00Z)", names[0]) from None


def duration(params: QueryParams, name: str, low: float, high: float) -> float | None:
    """A duration such as `10s`, `500ms`, `1.5m` or `1h`, in seconds."""
    raw = one(params, name)
    if raw is None or raw == "":
        return None
    match = _DURATION.fullmatch(raw.strip())
    if match is None:
        raise InvalidInput(f"must be a duration such as 10s or 500ms, got {raw!r}", name)
    seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if not low <= seconds <= high:
        raise InvalidInput(f"must be from {low:g}s to {high:g}s", name)
    return seconds


def label_filters(params: QueryParams, *names: str) -> tuple[tuple[str, str | None], ...]:
    """`key=value` (that value), `key=` or `key` (has the label)."""
    out: list[tuple[str, str | None]] = []
    for raw in many(params, *names, split=False):
        key, sep, value = raw.partition("=")
        if not key:
            raise InvalidInput("must be key=value, or key to require the label", names[0])
        out.append((key, value if sep and value else None))
    return tuple(out)
