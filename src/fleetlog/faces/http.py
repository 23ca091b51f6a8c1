"""What every HTTP face shares: bounded body reading, credentials, JSON responses."""

from __future__ import annotations

import re
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

_json = msgspec.json.Encoder()
_FIELD_AT = re.compile(r"- at `\$(.*)`$")
_MISSING = re.compile(r"missing required field `([^`]+)`")
_UNKNOWN = re.compile(r"unknown field `([^`]+)`")


class BodyTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"request body larger than {limit} bytes")
        self.limit = limit


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing (without reading it all) anything over `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def bearer(request: Request, *header_names: str) -> str | None:
    """The credential from `Authorization: Bearer ...` or any of the named headers."""
    auth = request.headers.get("authorization")
    if auth:
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    for name in header_names:
        header = request.headers.get(name)
        if header:
            return header.strip()
    return None


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return _json.encode(content)


def decode_error_field(error: msgspec.ValidationError | msgspec.DecodeError, root: str = "") -> tuple[str | None, str]:
    """Turn a msgspec error into (field path, reason): `$.a.b` -> `a.b`."""
    text = str(error)
    missing = _MISSING.search(text)
    at = _FIELD_AT.search(text)
    path = at.group(1).lstrip(".") if at else ""
    if missing:
        name = missing.group(1)
        full = f"{path}.{name}" if path else name
        return (f"{root}.{full}" if root else full), "is required"
    reason = _FIELD_AT.sub("", text).strip()
    if reason.startswith("Expected"):
        reason = "must be " + reason[len("Expected ") :].replace("`", "")
    unknown = _UNKNOWN.search(text)
    if unknown:
        path = f"{path}.{unknown.group(1)}" if path else unknown.group(1)
        reason = "unknown field"
    if not path:
        return (root or None), reason
    return (f"{root}.{path}" if root else path), reason
