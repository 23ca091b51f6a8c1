"""Times are integers: microseconds since the Unix epoch, UTC. These helpers parse and render them."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_SHORT = re.compile(r"(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MIN_US = 0
MAX_US = 253402300799999999  # 9999-12-31T23:59:59.999999Z


def from_datetime(dt: datetime) -> int:
    if dt.tzinfo is None:
        raise ValueError("time zone missing")
    delta = dt - _EPOCH
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def to_datetime(us: int) -> datetime:
    return datetime.fromtimestamp(us // 1_000_000, UTC).replace(microsecond=us % 1_000_000)


def parse_rfc3339(text: str) -> int:
    """RFC 3339 with a zone (Z or offset), with or without fractional seconds; also
    Pelion's short form 20161130T162512Z. Raises ValueError."""
    m = _SHORT.fullmatch(text)
    if m:
        y, mo, d, h, mi, s = (int(g) for g in m.groups())
        return from_datetime(datetime(y, mo, d, h, mi, s, tzinfo=UTC))
    if len(text) < 20 or text[10] not in "Tt ":
        raise ValueError(f"not an RFC 3339 date-time: {text!r}")
    frac_us = 0
    body = text
    dot = text.find(".", 19)
    if dot == 19:
        end = dot + 1
        while end < len(text) and text[end].isdigit():
            end += 1
        digits = text[dot + 1 : end]
        if not digits:
            raise ValueError(f"not an RFC 3339 date-time: {text!r}")
        frac_us = int((digits + "000000")[:6])
        body = text[:dot] + text[end:]
    if body.endswith(("Z", "z")):
        body = body[:-1] + "+00:00"
    try:
        dt = datetime.fromisoformat(body)
    except ValueError:
        raise ValueError(f"not an RFC 3339 date-time: {text!r}") from None
    if dt.tzinfo is None:
        raise ValueError(f"date-time without a time zone: {text!r}")
    return from_datetime(dt) + frac_us


def parse_time(text: str) -> int:
    """A query-parameter time: RFC 3339 (or the short form) or integer epoch milliseconds."""
    if text.isdigit() or (text.startswith("-") and text[1:].isdigit()):
        return int(text) * 1000
    return parse_rfc3339(text)


# Rendering goes through a naive datetime's isoformat, which is C all the way: two and a half
# times as fast as strftime, and every event rendered in a page or a stream has two times.
_EPOCH_NAIVE = datetime(1970, 1, 1)


def rfc3339(us: int) -> str:
    """RFC 3339 UTC with microseconds, as DT renders it: 2021-05-16T08:13:15.361624Z."""
    return (_EPOCH_NAIVE + timedelta(microseconds=us)).isoformat(timespec="microseconds") + "Z"


def rfc3339_ms(us: int) -> str:
    """RFC 3339 UTC with milliseconds: 2016-11-08T10:02:07.033Z."""
    return (_EPOCH_NAIVE + timedelta(microseconds=us)).isoformat(timespec="milliseconds") + "Z"
