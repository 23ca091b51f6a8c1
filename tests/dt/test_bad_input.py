"""Whatever JSON arrives, the DT face answers 200 or a 4xx in DT's shape: never a 500, and a
refused request stores nothing."""

from __future__ import annotations

import base64
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fleetlog.core.catalog.dt import EXAMPLES
from tests.dt.conftest import DT, Account

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=10,
)
# Bodies near the real ones (a known event type with mangled data) and anywhere else.
publish_bodies = st.one_of(
    json_values,
    st.builds(lambda t, d: {t: d}, st.sampled_from(sorted(EXAMPLES)), json_values),
    st.builds(
        lambda t, d: {t: {**EXAMPLES[t], **d}},
        st.sampled_from(sorted(EXAMPLES)),
        st.dictionaries(st.sampled_from(["value", "state", "samples", "total", "rssi", "x"]), json_values),
    ),
)
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def answer_is_dt_shaped(response: Any) -> int:
    status = int(response.status_code)
    assert status == 200 or 400 <= status < 500, response.text
    if status != 200:
        body = response.json()
        assert set(body) == {"error", "code", "help"} and body["code"] == status
    return status


@SETTINGS
@given(body=publish_bodies)
def test_publishing_anything(dt: DT, dev: Account, body: Any) -> None:
    if "sensor" not in dt.state:
        dt.state["sensor"] = dt.emulated(dev, "plant", "temperature")
    device = dt.state["sensor"]
    before = len(dt.history(dev, "plant", device))
    status = answer_is_dt_shaped(
        dt.client.post(f"/emulator/v2/projects/plant/devices/{device}:publish", json=body, headers=dev.headers)
    )
    if status != 200:
        assert len(dt.history(dev, "plant", device)) == before


@SETTINGS
@given(
    body=json_values
    | st.fixed_dictionaries({"devices": json_values}, optional={"addLabels": json_values, "removeLabels": json_values})
)
def test_batch_updating_anything(dt: DT, dev: Account, body: Any) -> None:
    answer_is_dt_shaped(dt.client.post("/v2/projects/plant/devices:batchUpdate", json=body, headers=dev.headers))


@SETTINGS
@given(
    params=st.dictionaries(
        st.sampled_from(
            [
                "device_ids",
                "device_types",
                "label_filters",
                "order_by",
                "query",
                "pageSize",
                "pageToken",
                "product_numbers",
                "colour",
            ]
        ),
        st.text(max_size=12),
        max_size=4,
    )
)
def test_listing_with_any_parameters(dt: DT, dev: Account, params: dict[str, str]) -> None:
    answer_is_dt_shaped(dt.client.get("/v2/projects/plant/devices", params=params, headers=dev.headers))


@SETTINGS
@given(
    params=st.dictionaries(
        st.sampled_from(["eventTypes", "startTime", "endTime", "pageSize", "pageToken", "page_size", "x"]),
        st.text(max_size=30),
        max_size=4,
    )
)
def test_history_with_any_parameters(dt: DT, dev: Account, params: dict[str, str]) -> None:
    if "touch" not in dt.state:
        dt.state["touch"] = dt.emulated(dev, "plant", "touch")
    device = dt.state["touch"]
    answer_is_dt_shaped(
        dt.client.get(f"/v2/projects/plant/devices/{device}/events", params=params, headers=dev.headers)
    )


@SETTINGS
@given(
    form=st.dictionaries(st.sampled_from(["assertion", "grant_type", "scope"]), st.text(max_size=60), max_size=3),
    header=st.dictionaries(st.sampled_from(["alg", "kid", "typ"]), json_values, max_size=3),
)
def test_token_requests_of_any_shape(dt: DT, form: dict[str, str], header: dict[str, Any]) -> None:
    forged = base64.urlsafe_b64encode(json.dumps(header).encode()).decode().rstrip("=") + ".e30.c2ln"
    for data in (form, {**form, "assertion": forged, "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer"}):
        assert answer_is_dt_shaped(dt.client.post("/oauth2/token", data=data)) == 400
