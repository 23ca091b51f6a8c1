"""DT's error shape for the data connector routes: {"error": "<message>", "code": <status>,
"help": "<url>"}, the same as the DT face's."""

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
HELP = "https://developer.d21s.com/docs/error-codes#{code}"


def error(status: int, message: str) -> Response:
    headers = {"WWW-Authenticate": 'Bearer realm="fleetlog"'} if status == 401 else None
    return JSONResponse({"error": message, "code": status, "help": HELP.format(code=status)}, status, headers)


def status_of(exc: FleetlogError) -> int:
    for kind, status in ((Unauthenticated, 401), (Forbidden, 403), (NotFound, 404), (Conflict, 409)):
        if isinstance(exc, kind):
            return status
    return 400


def endpoint(fn: Handler) -> Handler:
    """Domain errors in DT's shape; an unexpected exception is a 500 that changed nothing."""

    @functools.wraps(fn)
    async def wrapper(request: Request) -> Response:
        try:
            return await fn(request)
        except BodyTooLarge as exc:
            return error(400, str(exc))  # DT has no 413
        except InvalidInput as exc:
            return error(400, str(exc))  # "field: message"
        except FleetlogError as exc:
            return error(status_of(exc), str(exc))
        except Exception:
            log.exception("unhandled error in %s %s", request.method, request.url.path)
            return error(500, "internal error; nothing was changed by this request")

    return wrapper
