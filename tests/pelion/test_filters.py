"""The filter language parser (pure)."""

from __future__ import annotations

import pytest

from fleetlog.core.errors import InvalidInput
from fleetlog.faces.pelion import filters as flt

T0 = 1_480_523_112_000_000  # 2016-11-30T16:25:12Z


def test_operators_of_every_field_map_to_sets_and_ranges() -> None:
    f = flt.parse(
        [
            ("device_id__in", "a,b,c"),
            ("device_id__nin", "c"),
            ("event_type", "SYS_112"),
            ("description__neq", "x"),
            ("id__in", "1,2"),
            ("state_change__neq", "False"),
            ("date_time__gte", "2016-11-30T16:25:12Z"),
            ("date_time__lte", "20161130T162513Z"),
        ]
    )
    assert f.device_id.effective == {"a", "b"}
    assert f.event_type.effective == {"SYS_112"}
    assert f.description.excluded == {"x"} and f.description.allowed is None
    assert f.id.allowed == {"1", "2"}
    assert f.state_change is True
    assert (f.date_time.gte, f.date_time.lte) == (T0, T0 + 1_000_000)


def test_the_filter_parameter_holds_an_encoded_query_string() -> None:
    f = flt.parse([("filter", "id%3D0158d38771f70000000000010010038c%26state_change%3DTrue")])
    assert f.id.allowed == {"0158d38771f70000000000010010038c"} and f.state_change is True
    # Already decoded once by the web framework: the inner string is key=value&key=value.
    f = flt.parse([("filter", "device_id__in=a,b&date_time__gte=2016-11-30T16:25:12.1234Z")])
    assert f.device_id.allowed == {"a", "b"} and f.date_time.gte == T0 + 123_400


def test_conditions_given_twice_must_both_hold() -> None:
    f = flt.parse([("device_id__in", "a,b"), ("filter", "device_id__in=b,c")])
    assert f.device_id.effective == {"b"}
    f = flt.parse([("date_time__gte", "20161130T162512Z"), ("filter", "date_time__gte=20161130T162514Z")])
    assert f.date_time.gte == T0 + 2_000_000
    assert flt.parse([("state_change", "true"), ("state_change__eq", "false")]).impossible


@pytest.mark.parametrize(
    "text", ["2016-11-30T16:25:12.1234Z", "2016-11-30T16:25:12Z", "20161130T162512Z", "2016-11-30T16:25:12 00:00"]
)
def test_three_date_time_forms_and_an_unencoded_plus(text: str) -> None:
    assert flt.parse([("date_time", text)]).date_time.points == (T0 + (123_400 if ".1234" in text else 0),)


@pytest.mark.parametrize(
    ("name", "value", "field"),
    [
        ("date_time__gte", "yesterday", "date_time__gte"),
        ("date_time", "2016-11-30", "date_time"),
        ("state_change", "yes", "state_change"),
        ("state_change__in", "true", "state_change__in"),
        ("device_id__lte", "a", "device_id__lte"),
        ("colour", "red", "colour"),
        ("device_id__in", ",,", "device_id__in"),
        ("filter", "", "filter"),
        ("filter", "novalue", "filter"),
        ("filter", "filter=x", "filter"),
    ],
)
def test_a_bad_pair_names_the_parameter(name: str, value: str, field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        flt.parse([(name, value)])
    assert caught.value.field == field


def test_a_bad_pair_inside_filter_names_the_inner_parameter() -> None:
    with pytest.raises(InvalidInput) as caught:
        flt.parse([("filter", "date_time__lte=soon")])
    assert caught.value.field == "date_time__lte" and "filter" in caught.value.message
