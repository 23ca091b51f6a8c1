"""Span's error shape: a gRPC status `{"code", "message", "details"}` with the matching HTTP status.

A refused field is named at the start of the message and again in a google.rpc.BadRequest detail,
so both people and programs can find it.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from fleetlog.core.errors import Conflict, FleetlogError, Forbidden, InvalidInput, NotFound, Unauthenticated
from fleetlog.faces.http import BodyTooLarge, JSONResponse

log = logging.getLogger(__name__)

Handler = Callable[[Request], Awaitable[Response]]

# HTTP status -> gRPC status code (google.rpc.Code), as grpc-gateway maps them.
GRPC_CODES = {
    400: 3,  # INVALID_ARGUMENT
    401: 16,  # UNAUTHENTICATED
    403: 7,  # PERMISSION_DENIED
    404: 5,  # NOT_FOUND
    405: 12,  # UNIMPLEMENTED
    409: 6,  # ALREADY_EXISTS / FAILED_PRECONDITION
    413: 8,  # RESOURCE_EXHAUSTED
    500: 13,  # INTERNAL
    503: 14,  # UNAVAILABLE
}


class SpanConflict(Conflict):
    """A request that the current state does not allow (a collection that still has devices)."""


def error(status: int, message: str, field: str | None = None) -> Response:
    details: list[dict[str, object]] = []
    if field:
        message = f"{field}: {message}"
        details.append(
            {
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [{"field": field, "description": message}],
            }
        )
    body = {"code": GRPC_CODES.get(status, 2), "message": message, "details": details}
    return JSONResponse(body, status_code=status)


def status_of(exc: FleetlogError) -> int:
    if isinstance(exc, InvalidInput):
        return 400
    if isinstance(exc, Unauthenticated):
        return 401
    if isinstance(exc, Forbidden):
        return 403
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, Conflict):
        return 409
    return 400


def message_of(exc: FleetlogError) -> tuple[str, str | None]:
    if isinstance(exc, InvalidInput):
        return exc.message, exc.field
    return str(exc), None


def endpoint(fn: Handler) -> Handler:
    """Domain errors become Span errors; nothing becomes a bare 500 page."""

    @functools.wraps(fn)
    async def wrapper(request: Request) -> Response:
        try:
            return await fn(request)
        except BodyTooLarge as exc:
            return error(413, str(exc))
        except FleetlogError as exc:
            message, field = message_of(exc)
            return error(status_of(exc), message, field)
        except Exception:
            log.exception("unhandled error in %s %s", request.method, request.url.path)
            return error(500, "internal error; nothing was changed by this request")

    return wrapper
