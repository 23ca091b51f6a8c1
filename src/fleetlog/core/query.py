"""Event queries, keyset cursors and pages: what any store must answer."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from enum import StrEnum

from fleetlog.core.errors import InvalidInput
from fleetlog.core.event import Event, Outcome


class Order(StrEnum):
    NEWEST = "newest"
    OLDEST = "oldest"


@dataclass(frozen=True, slots=True)
class Position:
    """A place in the total order of events: (time, seq). seq breaks ties and is unique."""

    time: int
    seq: int


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a page ends. `backward` asks for the page before `position` (in query order)."""

    position: Position
    backward: bool = False

    def encode(self) -> str:
        raw = f"{'b' if self.backward else 'f'}{self.position.time}.{self.position.seq}"
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str, field_name: str = "cursor") -> Cursor:
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
            direction, rest = raw[0], raw[1:]
            time_text, seq_text = rest.split(".")
            if direction not in "fb":
                raise ValueError(direction)
            return cls(Position(int(time_text), int(seq_text)), backward=direction == "b")
        except (ValueError, IndexError, UnicodeDecodeError, binascii.Error):
            raise InvalidInput("not a cursor issued by this server", field_name) from None


@dataclass(frozen=True, slots=True)
class EventQuery:
    """Events of one tenant. Empty tuples mean "no restriction"; `projects` is always
    restricted by the caller's scope before it reaches the store."""

    tenant: str
    projects: tuple[str, ...] = ()
    devices: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    exclude_types: tuple[str, ...] = ()
    since: int | None = None  # inclusive, µs
    until: int | None = None  # exclusive, µs
    outcomes: tuple[Outcome, ...] = ()
    min_severity: int | None = None
    max_severity: int | None = None
    labels: tuple[tuple[str, str | None], ...] = ()  # (key, value) or (key, None) = has label
    state_change: bool | None = None
    order: Order = Order.NEWEST
    limit: int = 100
    cursor: Cursor | None = None
    extra: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Page:
    events: list[Event]
    has_more: bool
    next_cursor: Cursor | None
    prev_cursor: Cursor | None


def assemble_page(rows: list[tuple[Position, Event]], query: EventQuery) -> Page:
    """A page from the up to `limit + 1` rows a store read in its scan direction (the reverse
    of the query's order for a backward cursor), with the cursors to go on either way."""
    has_more = len(rows) > query.limit
    rows = rows[: query.limit]
    backward = query.cursor is not None and query.cursor.backward
    if backward:
        rows.reverse()
    events = [event for _, event in rows]
    if not rows:
        return Page(events, False, None, None)
    first, last = rows[0][0], rows[-1][0]
    if backward:
        return Page(events, True, Cursor(last), Cursor(first, backward=True) if has_more else None)
    next_cursor = Cursor(last) if has_more else None
    prev_cursor = Cursor(first, backward=True) if query.cursor is not None else None
    return Page(events, has_more, next_cursor, prev_cursor)
