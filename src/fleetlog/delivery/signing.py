"""Push signatures: an HS256 JWT carrying checksums of the raw body (DT's X-Dt-Signature).

Header `{"alg":"HS256","typ":"JWT"}`; claims, keys sorted: `checksum` (sha1 hex of the body),
`checksum_sha256`, `exp` (= iat + 3600), `iat`, `jti` (unique per push, also per retry).
A receiver verifies the JWT with the shared secret (any JWT library, e.g. PyJWT), then compares
a checksum with its own of the raw body (docs/api/connectors.md).

Signed here with hmac rather than PyJWT: PyJWT warns on every call when a secret is shorter
than 32 bytes (DT secrets often are), and the token is the same standard compact JWS.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import secrets

import msgspec

LIFETIME_SECONDS = 3600
# jti: unique, not secret. A random prefix per process and a counter: no system call per push.
_JTI_PREFIX = secrets.token_hex(8)
_jti_counter = itertools.count()
_HEADER = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').rstrip(b"=")
_encode = msgspec.json.Encoder().encode


def _b64(raw: bytes) -> bytes:
    return base64.urlsafe_b64encode(raw).rstrip(b"=")


def sign(body: bytes, secret: str, now_seconds: int) -> str:
    claims = {  # already in sorted key order; msgspec keeps it
        "checksum": hashlib.sha1(body).hexdigest(),
        "checksum_sha256": hashlib.sha256(body).hexdigest(),
        "exp": now_seconds + LIFETIME_SECONDS,
        "iat": now_seconds,
        "jti": f"{_JTI_PREFIX}{next(_jti_counter):016x}",
    }
    signing_input = _HEADER + b"." + _b64(_encode(claims))
    signature = hmac.new(secret.encode(), signing_input, hashlib.sha256).digest()
    return (signing_input + b"." + _b64(signature)).decode("ascii")
