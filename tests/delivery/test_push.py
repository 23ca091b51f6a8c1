"""What a push looks like on the wire: body, key order, signature, headers."""

from __future__ import annotations

import hashlib

import jwt
import pytest

from tests.conftest import Fleet
from tests.delivery.conftest import dt_connector, event
from tests.delivery.receiver import Receiver

pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")


def test_dt_push_body_and_signature(fleet: Fleet, receiver: Receiver) -> None:
    dt_connector(
        fleet,
        receiver.url,
        labels=["name", "missing"],
        httpConfig={"url": receiver.url, "signatureSecret": "s3cret", "headers": {"X-Custom": "yes"}},
    )
    stored = fleet.ingest(event("sensor-1", "temperature", data={"value": -18.5}, time="2026-11-22T10:00:00.123456Z"))
    event_id = stored["id"]  # type: ignore[index]
    (got,) = receiver.wait_for(lambda r: len(r) >= 1)
    expected = (
        '{"event":{"eventId":"'
        + event_id
        + '","targetName":"projects/plant/devices/sensor-1","eventType":"temperature",'
        '"data":{"temperature":{"value":-18.5,"samples":[{"value":-18.5,"sampleTime":"2026-11-22T10:00:00.123456Z"}],'
        '"isBackfilled":false,"updateTime":"2026-11-22T10:00:00.123456Z"}},"timestamp":"2026-11-22T10:00:00.123456Z"},'
        '"labels":{"name":"Freezer 3"},'
        '"metadata":{"deviceId":"sensor-1","projectId":"plant","deviceType":"","productNumber":""}}'
    )
    assert got.body.decode() == expected
    assert got.headers["Content-Type"] == "application/json"
    assert got.headers["X-Custom"] == "yes"
    token = got.headers["X-Dt-Signature"]
    assert jwt.get_unverified_header(token) == {"alg": "HS256", "typ": "JWT"}
    claims = jwt.decode(token, "s3cret", algorithms=["HS256"])
    assert list(claims) == ["checksum", "checksum_sha256", "exp", "iat", "jti"]
    assert claims["checksum"] == hashlib.sha1(got.body).hexdigest()
    assert claims["checksum_sha256"] == hashlib.sha256(got.body).hexdigest()
    assert claims["exp"] == claims["iat"] + 3600
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, "wrong", algorithms=["HS256"])
