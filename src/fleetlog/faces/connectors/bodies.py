"""Request bodies: read with a size limit, decoded strictly; a bad field is named."""

from __future__ import annotations

from typing import TypeVar

import msgspec
from starlette.requests import Request

from fleetlog.core.errors import InvalidInput
from fleetlog.faces.http import decode_error_field, read_body

T = TypeVar("T")


async def decode(request: Request, kind: type[T], limit: int) -> T:
    raw = await read_body(request, limit)
    if not raw.strip():
        raw = b"{}"  # a POST without a body (the disruptive client's :sync) is an empty object
    try:
        return msgspec.json.decode(raw, type=kind)
    except msgspec.ValidationError as exc:
        where, why = decode_error_field(exc)
        raise InvalidInput(why, where) from None
    except msgspec.DecodeError as exc:
        raise InvalidInput(f"body is not valid JSON ({exc})") from None
