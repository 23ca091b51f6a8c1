"""The native error shape: {"error": {"code", "message", "field"?}} with a matching status."""

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

STATUS_CODES = {
    400: "invalid_argument",
    401: "unauthenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    409: "already_exists",
    413: "payload_too_large",
    500: "internal",
    503: "unavailable",
}


def error(status: int, message: str, field: str | None = None, headers: dict[str, str] | None = None) -> Response:
    body: dict[str, str] = {"code": STATUS_CODES.get(status, "error"), "message": message}
    if field:
        body["field"] = field
    if status == 401:
        headers = {**(headers or {}), "WWW-Authenticate": 'Bearer realm="fleetlog"'}
    return JSONResponse({"error": body}, status_code=status, headers=headers)


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


def item_error(exc: FleetlogError) -> dict[str, object]:
    """One refused batch item, in the same vocabulary as a whole-request error."""
    status = status_of(exc)
    out: dict[str, object] = {"code": STATUS_CODES[status], "message": getattr(exc, "message", str(exc))}
    if isinstance(exc, InvalidInput) and exc.field:
        out["field"] = exc.field
    return out


def endpoint(fn: Handler) -> Handler:
    """Map domain errors to responses; never let an exception become a bare 500 page."""

    @functools.wraps(fn)
    async def wrapper(request: Request) -> Response:
        try:
            return await fn(request)
        except InvalidInput as exc:
            return error(400, exc.message, exc.field)
        except BodyTooLarge as exc:
            return error(413, str(exc))
        except FleetlogError as exc:
            return error(status_of(exc), str(exc))
        except Exception:
            log.exception("unhandled error in %s %s", request.method, request.url.path)
            return error(500, "internal error; nothing was changed by this request")

    return wrapper
