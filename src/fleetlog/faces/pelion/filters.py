"""Pelion's filter language for /v3/device-events, parsed into one `Filters` value. Pure.

Filters come as query parameters (`device_id__in=a,b`) or inside `filter=`, a URL-encoded
query string of the same pairs. Both may be combined: every condition must hold.

    field          operators
    date_time      = __eq __neq __in __nin __lte __gte
    description    = __eq __neq __in __nin
    id             = __eq __neq __in __nin
    device_id      = __eq __neq __in __nin
    event_type     = __eq __neq __in __nin
    state_change   = __eq __neq               (True/False, any case)

`__in`/`__nin` take comma-separated values. Date-times are UTC RFC 3339 with or without
fractional seconds, or the short form 20161130T162512Z. A bad pair raises `InvalidInput`
naming the parameter as it was written (e.g. `date_time__gte`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote

from fleetlog.core.errors import InvalidInput
from fleetlog.core.timefmt import MAX_US, parse_rfc3339

FILTER_PARAM = "filter"
MAX_VALUES = 1000  # values in one __in/__nin list
OPERATORS = {
    "date_time": ("eq", "neq", "in", "nin", "lte", "gte"),
    "description": ("eq", "neq", "in", "nin"),
    "id": ("eq", "neq", "in", "nin"),
    "device_id": ("eq", "neq", "in", "nin"),
    "event_type": ("eq", "neq", "in", "nin"),
    "state_change": ("eq", "neq"),
}
_OFFSET_SPACE = re.compile(r" (\d\d:\d\d)$")  # an unencoded "+00:00" arrives as " 00:00"


@dataclass
class Values:
    """A string field: `allowed` None means any value; `excluded` values never match."""

    allowed: frozenset[str] | None = None
    excluded: frozenset[str] = frozenset()

    def restrict(self, values: Iterable[str]) -> None:
        new = frozenset(values)
        self.allowed = new if self.allowed is None else self.allowed & new

    def exclude(self, values: Iterable[str]) -> None:
        self.excluded = self.excluded | frozenset(values)

    def admits(self, value: str | None) -> bool:
        if value is None:
            return self.allowed is None
        return (self.allowed is None or value in self.allowed) and value not in self.excluded

    @property
    def effective(self) -> frozenset[str] | None:
        """The allowed values minus the excluded ones (None: any value not excluded)."""
        return None if self.allowed is None else self.allowed - self.excluded

    @property
    def active(self) -> bool:
        return self.allowed is not None or bool(self.excluded)


@dataclass
class Times:
    """date_time: exact values (µs), excluded values, and an inclusive range."""

    allowed: frozenset[int] | None = None
    excluded: frozenset[int] = frozenset()
    gte: int | None = None
    lte: int | None = None

    def admits(self, value: int) -> bool:
        if self.gte is not None and value < self.gte:
            return False
        if self.lte is not None and value > self.lte:
            return False
        return (self.allowed is None or value in self.allowed) and value not in self.excluded

    @property
    def points(self) -> tuple[int, ...] | None:
        """The exact times that can match, in order (None: a range, not a set of points)."""
        if self.allowed is None:
            return None
        return tuple(sorted(t for t in self.allowed if self.admits(t)))


@dataclass
class Filters:
    date_time: Times = field(default_factory=Times)
    description: Values = field(default_factory=Values)
    id: Values = field(default_factory=Values)
    device_id: Values = field(default_factory=Values)
    event_type: Values = field(default_factory=Values)
    state_change: bool | None = None
    # Contradictory conditions (state_change=true and state_change=false): nothing matches.
    impossible: bool = False
    # (field, operator, parameter as written), in the order given: to name one in an error.
    given: list[tuple[str, str, str]] = field(default_factory=list)


def split_name(name: str) -> tuple[str, str]:
    """`device_id__in` -> ("device_id", "in"); a bare field name is "eq"."""
    base, sep, op = name.rpartition("__")
    if sep and base:
        return base, op
    return name, "eq"


def is_filter(name: str) -> bool:
    return name == FILTER_PARAM or split_name(name)[0] in OPERATORS


def parse(pairs: Iterable[tuple[str, str]]) -> Filters:
    """The filters among the query parameters (`pairs` holds only filter parameters)."""
    filters = Filters()
    for name, value in pairs:
        if name == FILTER_PARAM:
            for inner_name, inner_value in _inner(value):
                _apply(filters, inner_name, inner_value, inside=True)
        else:
            _apply(filters, name, value, inside=False)
    return filters


def _inner(text: str) -> list[tuple[str, str]]:
    if not text.strip():
        raise InvalidInput("must be a URL-encoded query string such as device_id%3Dabc", FILTER_PARAM)
    if "=" not in text and "%3d" in text.lower():
        text = unquote(text)  # encoded twice by the client: still understood
    try:
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        raise InvalidInput(
            "must be a URL-encoded query string of key=value pairs joined by &, such as "
            "device_id%3Dabc%26event_type%3DSYS_112",
            FILTER_PARAM,
        ) from None
    for name, _ in pairs:
        if name == FILTER_PARAM:
            raise InvalidInput("a filter cannot contain another filter", FILTER_PARAM)
    return pairs


def _apply(filters: Filters, name: str, raw: str, *, inside: bool) -> None:
    where = f"{FILTER_PARAM}: " if inside else ""
    field_name, op = split_name(name)
    ops = OPERATORS.get(field_name)
    if ops is None:
        raise InvalidInput(f"{where}unknown filter field; filterable: {', '.join(OPERATORS)}", name)
    if op not in ops:
        raise InvalidInput(f"{where}{field_name} supports {', '.join('__' + o for o in ops)}", name)
    filters.given.append((field_name, op, name))
    if field_name == "state_change":
        wanted = _boolean(raw, name, where)
        value = wanted if op == "eq" else not wanted
        if filters.state_change is not None and filters.state_change != value:
            filters.impossible = True
        filters.state_change = value
        return
    values = _list(raw, name, where) if op in ("in", "nin") else [raw]
    if field_name == "date_time":
        times = [_time(v, name, where) for v in values]
        dt = filters.date_time
        if op in ("eq", "in"):
            new = frozenset(times)
            dt.allowed = new if dt.allowed is None else dt.allowed & new
        elif op in ("neq", "nin"):
            dt.excluded = dt.excluded | frozenset(times)
        elif op == "gte":
            dt.gte = times[0] if dt.gte is None else max(dt.gte, times[0])
        else:
            dt.lte = times[0] if dt.lte is None else min(dt.lte, times[0])
        return
    target: Values = getattr(filters, field_name)
    if op in ("eq", "in"):
        target.restrict(values)
    else:
        target.exclude(values)


def _list(raw: str, name: str, where: str) -> list[str]:
    values = [v.strip() for v in raw.split(",") if v.strip()]
    if not values:
        raise InvalidInput(f"{where}must list at least one value (comma-separated)", name)
    if len(values) > MAX_VALUES:
        raise InvalidInput(f"{where}may list at most {MAX_VALUES} values", name)
    return values


def _boolean(raw: str, name: str, where: str) -> bool:
    lowered = raw.strip().lower()
    if lowered == "true":
        return True
    if lowered == "false":
        return False
    raise InvalidInput(f"{where}must be True or False, got {raw!r}", name)


def parse_date_time(raw: str) -> int:
    """A Pelion date-time in µs. Raises ValueError."""
    text = _OFFSET_SPACE.sub(r"+\1", raw.strip())
    value = parse_rfc3339(text)
    if not 0 <= value <= MAX_US:
        raise ValueError(raw)
    return value


def _time(raw: str, name: str, where: str) -> int:
    try:
        return parse_date_time(raw)
    except (ValueError, OverflowError):
        raise InvalidInput(
            f"{where}not a UTC RFC 3339 date-time: {raw!r} (use 2016-11-30T16:25:12.1234Z, "
            "2016-11-30T16:25:12Z or 20161130T162512Z)",
            name,
        ) from None
