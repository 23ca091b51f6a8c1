"""Event ids: 128 bits, time-ordered, shown as 32 lowercase hex characters (a valid Pelion id).

The upper 64 bits are the store sequence number: milliseconds since the epoch (48 bits) and a
16-bit counter within the millisecond. They sort by arrival and double as the row key, so a
lookup by id needs no index of its own. The lower 64 bits are random: ids are not guessable.
"""

from __future__ import annotations

import os
import re

_HEX_ID = re.compile(r"[0-9a-f]{32}")
COUNTER_BITS = 16


class SequenceClock:
    """Hands out strictly increasing sequence numbers derived from a millisecond clock.

    Not thread-safe: each store writer owns one.
    """

    def __init__(self, last: int = 0) -> None:
        self._last = last

    def next(self, now_ms: int) -> int:
        candidate = now_ms << COUNTER_BITS
        self._last = candidate if candidate > self._last else self._last + 1
        return self._last


def make_id(seq: int) -> str:
    return f"{seq:016x}{int.from_bytes(os.urandom(8), 'big'):016x}"


def parse_id(event_id: str) -> tuple[int, int] | None:
    """Split an event id into (seq, random tail); None if it is not a well-formed id."""
    if not _HEX_ID.fullmatch(event_id):
        return None
    return int(event_id[:16], 16), int(event_id[16:], 16)


def seq_of(event_id: str) -> int | None:
    parts = parse_id(event_id)
    return parts[0] if parts else None


def ms_of_seq(seq: int) -> int:
    return seq >> COUNTER_BITS
