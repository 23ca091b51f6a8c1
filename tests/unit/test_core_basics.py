"""Times, ids and cursors: the small pure pieces everything else leans on."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fleetlog.core.errors import InvalidInput
from fleetlog.core.ids import SequenceClock, make_id, ms_of_seq, parse_id, seq_of
from fleetlog.core.query import Cursor, Position
from fleetlog.core.timefmt import MAX_US, parse_rfc3339, parse_time, rfc3339, rfc3339_ms, to_datetime


@pytest.mark.parametrize(
    ("text", "us"),
    [
        ("2021-05-16T08:13:15.361624Z", 1621152795361624),
        ("2021-05-16T08:13:15Z", 1621152795000000),
        ("2021-05-16T10:13:15.5+02:00", 1621152795500000),
        ("2016-11-30T16:25:12.1234567Z", 1480523112123456),
        ("20161130T162512Z", 1480523112000000),
        ("2021-05-16t08:13:15z", 1621152795000000),
    ],
)
def test_rfc3339_forms(text: str, us: int) -> None:
    assert parse_rfc3339(text) == us


@pytest.mark.parametrize(
    "text", ["2021-05-16", "2021-05-16T08:13:15", "yesterday", "2021-13-01T00:00:00Z", "2021-05-16T08:13:15.Z", ""]
)
def test_bad_times_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_rfc3339(text)


def test_query_times_also_take_epoch_milliseconds() -> None:
    assert parse_time("1440014969567") == 1440014969567000
    assert parse_time("2015-08-19T20:09:29.567Z") == 1440014969567000


@given(st.integers(min_value=0, max_value=MAX_US))
def test_rendering_round_trips(us: int) -> None:
    assert parse_rfc3339(rfc3339(us)) == us
    assert rfc3339_ms(us).endswith("Z") and len(rfc3339_ms(us)) == 24
    # the same text as the reference rendering through strftime
    assert rfc3339(us) == to_datetime(us).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert rfc3339_ms(us) == to_datetime(us).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def test_rendering_keeps_every_digit_at_the_edges() -> None:
    assert rfc3339(0) == "1970-01-01T00:00:00.000000Z"
    assert rfc3339(MAX_US) == "9999-12-31T23:59:59.999999Z"
    assert rfc3339_ms(1478599327033000) == "2016-11-08T10:02:07.033Z"
    assert rfc3339_ms(1478599327000999) == "2016-11-08T10:02:07.000Z"


def test_sequence_is_strictly_increasing_even_when_the_clock_stalls_or_goes_back() -> None:
    clock = SequenceClock()
    seqs = [clock.next(1000), clock.next(1000), clock.next(999), clock.next(1001)]
    assert seqs == sorted(seqs) and len(set(seqs)) == 4
    assert ms_of_seq(seqs[0]) == 1000 and ms_of_seq(seqs[-1]) == 1001


def test_ids_are_32_hex_and_carry_their_sequence() -> None:
    event_id = make_id(123456789)
    assert len(event_id) == 32 and seq_of(event_id) == 123456789
    assert parse_id("XYZ") is None and parse_id(event_id.upper()) is None


@given(st.integers(min_value=-(2**62), max_value=2**62), st.integers(min_value=0, max_value=2**62), st.booleans())
def test_cursors_round_trip(time: int, seq: int, backward: bool) -> None:
    cursor = Cursor(Position(time, seq), backward)
    assert Cursor.decode(cursor.encode()) == cursor


@pytest.mark.parametrize("token", ["", "garbage", "Zg", "eDEuMg", "!!!", "Zjx4Pi4x"])
def test_foreign_cursors_are_refused_with_the_field_named(token: str) -> None:
    with pytest.raises(InvalidInput) as info:
        Cursor.decode(token, "pageToken")
    assert info.value.field == "pageToken"
