"""Strict query-string parsing: unknown parameters are an error, not silently ignored."""

from __future__ import annotations

from collections.abc import Iterable

from starlette.datastructures import QueryParams

from fleetlog.core.errors import InvalidInput
from fleetlog.core.event import Outcome
from fleetlog.core.query import Cursor, EventQuery, Order
from fleetlog.core.timefmt import parse_time

QUERY_PARAMS = {
    "project": "project id (repeat or comma-separate for several)",
    "device": "device id (repeat or comma-separate for several)",
    "type": "event type (repeat or comma-separate for several)",
    "exclude_type": "event type to leave out (repeatable)",
    "since": "events at or after this time (RFC 3339 or epoch milliseconds)",
    "until": "events before this time (RFC 3339 or epoch milliseconds)",
    "outcome": "SUCCESS, FAIL, SKIPPED or INFO (repeatable)",
    "min_severity": "lowest severity, 1-5",
    "max_severity": "highest severity, 1-5",
    "label": "device label filter: key=value, or key to require the label (repeatable)",
    "state_change": "true or false",
    "order": "newest (default) or oldest first",
    "limit": "page size, 1-1000 (default 100)",
    "cursor": "the next_cursor or prev_cursor of a previous page",
}


def check_known(params: QueryParams, allowed: Iterable[str]) -> None:
    known = set(allowed)
    for name in params:
        if name not in known:
            raise InvalidInput(f"unknown query parameter; allowed: {', '.join(sorted(known))}", name)


def many(params: QueryParams, name: str) -> tuple[str, ...]:
    values: list[str] = []
    for raw in params.getlist(name):
        values += [v.strip() for v in raw.split(",") if v.strip()]
    return tuple(dict.fromkeys(values))


def one(params: QueryParams, name: str) -> str | None:
    values = params.getlist(name)
    if len(values) > 1:
        raise InvalidInput("given more than once", name)
    return values[0] if values else None


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


def time(params: QueryParams, name: str) -> int | None:
    raw = one(params, name)
    if raw is None:
        return None
    try:
        return parse_time(raw)
    except (ValueError, OverflowError):
        raise InvalidInput(
            f"not a time: {raw!r} (use RFC 3339, e.g. 2024-05-01T12:00:00Z, or epoch milliseconds)", name
        ) from None


def boolean(params: QueryParams, name: str) -> bool | None:
    raw = one(params, name)
    if raw is None:
        return None
    lowered = raw.lower()
    if lowered in {"true", "1"}:
        return True
    if lowered in {"false", "0"}:
        return False
    raise InvalidInput(f"must be true or false, got {raw!r}", name)


def event_query(tenant: str, params: QueryParams, *, extra_allowed: Iterable[str] = ()) -> EventQuery:
    check_known(params, [*QUERY_PARAMS, *extra_allowed])
    outcomes: list[Outcome] = []
    for raw in many(params, "outcome"):
        try:
            outcomes.append(Outcome(raw.upper()))
        except ValueError:
            raise InvalidInput(f"must be one of SUCCESS, FAIL, SKIPPED, INFO; got {raw!r}", "outcome") from None
    labels: list[tuple[str, str | None]] = []
    for raw in params.getlist("label"):
        key, sep, value = raw.partition("=")
        if not key:
            raise InvalidInput("must be key=value or key", "label")
        labels.append((key, value if sep else None))
    order_raw = one(params, "order") or "newest"
    try:
        order = Order(order_raw.lower())
    except ValueError:
        raise InvalidInput("must be newest or oldest", "order") from None
    cursor_raw = one(params, "cursor")
    since, until = time(params, "since"), time(params, "until")
    if since is not None and until is not None and since > until:
        raise InvalidInput("must not be after until", "since")
    return EventQuery(
        tenant=tenant,
        projects=many(params, "project"),
        devices=many(params, "device"),
        types=many(params, "type"),
        exclude_types=many(params, "exclude_type"),
        since=since,
        until=until,
        outcomes=tuple(outcomes),
        min_severity=integer(params, "min_severity", 1, 5),
        max_severity=integer(params, "max_severity", 1, 5),
        labels=tuple(labels),
        state_change=boolean(params, "state_change"),
        order=order,
        limit=integer(params, "limit", 1, 1000) or 100,
        cursor=Cursor.decode(cursor_raw) if cursor_raw else None,
    )
