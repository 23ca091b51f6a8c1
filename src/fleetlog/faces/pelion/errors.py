"""Pelion's error shape:

    {"object": "error", "code": 400, "type": "validation_error", "message": "...",
     "request_id": "<32 hex>", "fields": [{"name": "limit", "message": "..."}]}

`fields` is present on validation errors and names the offending parameter or body field.
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from fleetlog.core.errors import Conflict, FleetlogError, Forbidden, InvalidInput, NotFound, Unauthenticated
from fleetlog.faces.http import BodyTooLarge, JSONResponse

log = logging.getLogger(__name__)

Handler = Callable[[Request], Awaitable[Response]]

TYPES = {
    400: "validation_error",
    401: "invalid_auth",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    500: "internal_server_error",
    503: "unavailable",
}


def error(status: int, message: str, field: str | None = None, type_: str | None = None) -> Response:
    request_id = uuid.uuid4().hex
    body: dict[str, object] = {
        "object": "error",
        "code": status,
        "type": type_ or TYPES.get(status, "error"),
        "message": message,
        "request_id": request_id,
    }
    if status == 400:
        body["fields"] = [{"name": field, "message": message}] if field else []
    headers = {"X-Request-ID": request_id}
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="fleetlog"'
    return JSONResponse(body, status_code=status, headers=headers)


def render_error(status: int, message: str) -> Response:
    """Unknown paths and wrong methods under /v3."""
    return error(status, message)


def endpoint(fn: Handler) -> Handler:
    """Domain errors become Pelion errors; nothing becomes a bare 500 page."""

    @functools.wraps(fn)
    async def wrapper(request: Request) -> Response:
        try:
            return await fn(request)
        except InvalidInput as exc:
            return error(400, exc.message, exc.field)
        except Unauthenticated as exc:
            # No credential at all is "unauthorized"; a wrong one is "invalid_auth".
            missing = "missing" in str(exc)
            return error(401, str(exc), type_="unauthorized" if missing else "invalid_auth")
        except Forbidden as exc:
            return error(403, str(exc))
        except NotFound as exc:
            return error(404, str(exc))
        except Conflict as exc:
            return error(409, str(exc))
        except BodyTooLarge as exc:
            return error(413, str(exc))
        except FleetlogError as exc:
            return error(400, str(exc))
        except Exception:
            log.exception("unhandled error in %s %s", request.method, request.url.path)
            return error(500, "internal error; nothing was changed by this request")

    return wrapper
