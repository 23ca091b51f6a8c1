"""Exactly the seed's contract: statuses 201/202/400/403/404/405/409, error codes -1/0/4/5/6.

Access rules (documented in docs/api/tenant-ingest.md):
- missing or unknown key: 401, error 0 (an invalid license key);
- a valid key of another tenant, or for a project the device is not in: 403, error 4 / 5
  (a key never learns whether another tenant exists);
- a tenant whose license is not valid: 403, error 0;
- an operator key naming a tenant or device that does not exist: 404, error 4 / 5.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from fleetlog.core.errors import Forbidden, InvalidInput, NotFound, Unauthenticated
from fleetlog.core.event import Event, SourceKind
from fleetlog.core.timefmt import MAX_US, rfc3339
from fleetlog.faces import Face
from fleetlog.faces.http import BodyTooLarge, JSONResponse, bearer, decode_error_field, read_body
from fleetlog.pipeline.services import Services
from fleetlog.ports.store import AppendStatus, Dedupe

log = logging.getLogger(__name__)

SERVER_ERROR, INVALID_LICENSE, INVALID_TENANT, INVALID_DEVICE, VALIDATION = -1, 0, 4, 5, 6
PATH = "/rest/v1/api/tenants/{tenant_id}/devices/{device_id}/events"


class TenantEvent(msgspec.Struct, forbid_unknown_fields=True):
    typeId: Annotated[str, msgspec.Meta(min_length=1, max_length=24, pattern=r"^\S+$")]
    description: Annotated[str, msgspec.Meta(max_length=255)]
    appId: Annotated[str, msgspec.Meta(min_length=1, max_length=255)]
    severity: Annotated[int, msgspec.Meta(ge=1, le=5)]
    data: dict[str, Any]
    timestamp: Annotated[int, msgspec.Meta(ge=0, le=MAX_US // 1000)]


_decoder = msgspec.json.Decoder(TenantEvent)


def _error(status: int, code: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse({"error": code, "message": message}, status_code=status, headers=headers)


def _parse(body: bytes) -> TenantEvent:
    if not body.strip():
        raise InvalidInput("request body is empty; expected a JSON object")
    try:
        parsed = _decoder.decode(body)
    except msgspec.ValidationError as exc:
        where, why = decode_error_field(exc)
        raise InvalidInput(why, where) from None
    except msgspec.DecodeError as exc:
        raise InvalidInput(f"body is not valid JSON ({exc})") from None
    except RecursionError:
        raise InvalidInput("body is nested too deeply") from None
    return parsed


def face(services: Services) -> Face:
    return Face(
        name="tenant-ingest",
        routes=list(routes(services)),
        prefix="/rest/",
        render_error=lambda status, message: _error(status, INVALID_TENANT if status == 404 else VALIDATION, message),
    )


def routes(services: Services) -> list[Route]:
    limits = services.limits

    async def report_event(request: Request) -> Response:
        if request.method != "POST":
            return _error(405, VALIDATION, f"method {request.method} is not allowed; use POST", {"Allow": "POST"})
        tenant_id: str = request.path_params["tenant_id"]
        device_id: str = request.path_params["device_id"]
        try:
            principal = await services.directory.authenticate(bearer(request, "x-api-key"))
        except Unauthenticated as exc:
            return _error(401, INVALID_LICENSE, f"invalid license: {exc}")
        if not principal.sees_tenant(tenant_id):
            return _error(403, INVALID_TENANT, f"this API key has no access to tenant {tenant_id!r}")
        try:
            tenant = await services.directory.tenant(tenant_id)
        except NotFound:
            return _error(404, INVALID_TENANT, f"tenant {tenant_id!r} not found")
        if not tenant.license_valid:
            return _error(403, INVALID_LICENSE, f"the license of tenant {tenant_id!r} is not valid")
        try:
            body = await read_body(request, limits.max_event_bytes)
            parsed = _parse(body)
        except BodyTooLarge as exc:
            return _error(413, VALIDATION, str(exc))
        except InvalidInput as exc:
            return _error(400, VALIDATION, _describe(exc))
        try:
            device = await services.directory.device(tenant_id, device_id)
        except NotFound:
            return _error(404, INVALID_DEVICE, f"device {device_id!r} not found in tenant {tenant_id!r}")
        if not principal.sees_project(tenant_id, device.project):
            return _error(403, INVALID_DEVICE, f"this API key has no access to device {device_id!r}")
        event = Event(
            tenant=tenant_id,
            project=device.project,
            device=device_id,
            source=SourceKind.DEVICE,
            type=parsed.typeId,
            time=parsed.timestamp * 1000,
            data=parsed.data,
            description=parsed.description,
            severity=parsed.severity,
            app_id=parsed.appId,
            idempotency_key=request.headers.get("idempotency-key"),
        )
        try:
            if "respond-async" in request.headers.get("prefer", ""):
                await services.ingest.defer(principal, event)
                services.deferred_wake.set()
                return JSONResponse(_render(event), status_code=202)
            result = await services.ingest.submit(principal, event, Dedupe.NATURAL, face="tenant")
        except InvalidInput as exc:
            return _error(400, VALIDATION, _describe(exc))
        except Forbidden as exc:
            return _error(403, INVALID_DEVICE, str(exc))
        except NotFound as exc:
            code = INVALID_TENANT if exc.kind == "tenant" else INVALID_DEVICE
            return _error(404, code, str(exc))
        except Exception:
            log.exception("tenant ingest failed")
            return _error(500, SERVER_ERROR, "unknown server error; the event was not saved")
        if result.status is not AppendStatus.CREATED:
            return _error(
                409,
                VALIDATION,
                f"event already exists: id {result.event.id} has the same device, type, timestamp and content",
            )
        return JSONResponse(_render(result.event), status_code=201)

    return [Route(PATH, _Asgi(report_event), methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"])]


class _Asgi:
    """The endpoint as a plain ASGI app: the same request and response objects, without the
    wrappers Starlette puts around a function endpoint on every request. (This face answers
    every error itself; anything unexpected still reaches the app's error middleware.)"""

    def __init__(self, handler: Callable[[Request], Awaitable[Response]]) -> None:
        self._handler = handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self._handler(Request(scope, receive, send))
        await response(scope, receive, send)


def _describe(exc: InvalidInput) -> str:
    return f"{exc.field}: {exc.message}" if exc.field else exc.message


def _render(event: Event) -> dict[str, object]:
    out: dict[str, object] = {
        "tenantId": event.tenant,
        "deviceId": event.device,
        "typeId": event.type,
        "description": event.description,
        "appId": event.app_id,
        "severity": event.severity,
        "data": event.data,
        "timestamp": event.time // 1000,
    }
    if event.id:
        out = {"id": event.id, **out, "received": rfc3339(event.received)}
    return out
