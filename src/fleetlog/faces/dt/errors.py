"""DT's error shape: {"error": "<message>", "code": <status>, "help": "<url>"}, with the vendor's
status codes (400, 401, 403, 404, 409, 429, 500, 503, 504)."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from fleetlog.core.errors import Conflict, FleetlogError, Forbidden, NotFound, Unauthenticated
from fleetlog.faces.http import BodyTooLarge, JSONResponse

log = logging.getLogger(__name__)

Handler = Callable[[Request], Awaitable[Response]]
HELP = "https://developer.d21s.com/docs/error-codes#{code}"


def error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    if status == 401:
        headers = {**(headers or {}), "WWW-Authenticate": 'Bearer realm="fleetlog"'}
    body = {"error": message, "code": status, "help": HELP.format(code=status)}
    return JSONResponse(body, status_code=status, headers=headers)


def status_of(exc: FleetlogError) -> int:
    if isinstance(exc, Unauthenticated):
        return 401
    if isinstance(exc, Forbidden):
        return 403
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, Conflict):
        return 409
    return 400


def batch_code(exc: FleetlogError) -> str:
    """The gRPC-style code of one failed item in a batch answer."""
    return {403: "PERMISSION_DENIED", 404: "NOT_FOUND", 409: "ALREADY_EXISTS"}.get(status_of(exc), "INVALID_ARGUMENT")


def endpoint(fn: Handler) -> Handler:
    """Map domain errors to DT's shape; an unexpected exception is a 500 that changed nothing."""

    @functools.wraps(fn)
    async def wrapper(request: Request) -> Response:
        try:
            return await fn(request)
        except BodyTooLarge as exc:
            return error(400, str(exc))  # DT has no 413; its clients treat unknown codes as bugs
        except FleetlogError as exc:
            return error(status_of(exc), str(exc))
        except Exception:
            log.exception("unhandled error in %s %s", request.method, request.url.path)
            return error(500, "internal error; nothing was changed by this request")

    return wrapper
