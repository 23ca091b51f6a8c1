"""Native webhooks: /v1/tenants/{t}/webhooks[/{id}[/metrics|/replay]].

A webhook pushes a tenant's (or one project's) events, filtered by type, device, device label,
outcome and severity, one signed POST per event (body: the event as /v1 shows it; signature:
`X-Fleetlog-Signature`). Reading needs READ; creating, changing, removing and replaying need
ADMIN (a webhook sends the tenant's data elsewhere). A project key sees only its project's
webhooks.
"""

from __future__ import annotations

import secrets
from typing import Annotated, Any, Literal

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fleetlog.core.errors import Forbidden, InvalidInput, NotFound
from fleetlog.core.event import Outcome
from fleetlog.core.registry import Principal, Role
from fleetlog.core.timefmt import parse_time, rfc3339
from fleetlog.delivery.engine import DeliveryEngine
from fleetlog.delivery.model import Connector, Filter, Flavour, Status
from fleetlog.faces.connectors import checks
from fleetlog.faces.connectors.bodies import decode
from fleetlog.faces.http import JSONResponse, bearer
from fleetlog.faces.native.errors import endpoint
from fleetlog.faces.native.params import check_known
from fleetlog.pipeline.services import Services

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
Severity = Annotated[int, msgspec.Meta(ge=1, le=5)]
Secret = Annotated[str, msgspec.Meta(min_length=16, max_length=256)]
StatusIn = Literal["ACTIVE", "USER_DISABLED"]


class WebhookIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    url: str
    name: Annotated[str, msgspec.Meta(max_length=256)] = ""
    project: Name | None = None
    secret: Secret | None = None  # generated when not given
    headers: dict[str, str] = {}
    types: list[str] = []
    devices: list[str] = []
    labels: list[str] = []  # key=value, or key: the device has the label
    outcomes: list[Outcome] = []
    min_severity: Severity = 1
    max_severity: Severity = 5
    status: StatusIn = "ACTIVE"


class WebhookPatch(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    url: str | None = None
    name: Annotated[str, msgspec.Meta(max_length=256)] | None = None
    secret: Secret | None = None
    headers: dict[str, str] | None = None
    types: list[str] | None = None
    devices: list[str] | None = None
    labels: list[str] | None = None
    outcomes: list[Outcome] | None = None
    min_severity: Severity | None = None
    max_severity: Severity | None = None
    status: StatusIn | None = None


class ReplayIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    since: str | int  # RFC 3339 or epoch milliseconds: events that arrived at or after it


def render(c: Connector, reveal_secret: bool) -> dict[str, Any]:
    f = c.filter
    out: dict[str, Any] = {
        "id": c.id,
        "tenant": c.tenant,
        "project": c.project,
        "name": c.name,
        "url": c.url,
        "status": c.status.value,
        "headers": c.headers,
        "types": f.types,
        "devices": f.devices,
        "labels": [key if value is None else f"{key}={value}" for key, value in f.labels],
        "outcomes": [o.value for o in f.outcomes],
        "min_severity": f.min_severity,
        "max_severity": f.max_severity,
        "created": rfc3339(c.created),
        "updated": rfc3339(c.updated),
    }
    if reveal_secret:
        out["secret"] = c.secret
    return out


def routes(services: Services, engine: DeliveryEngine) -> list[Route]:
    directory = services.directory

    async def caller(request: Request, role: Role) -> tuple[Principal, str]:
        principal = await directory.authenticate(bearer(request))
        tenant = request.path_params["tenant"]
        await directory.require(principal, tenant, None, role)
        return principal, tenant

    async def find(principal: Principal, tenant: str, ident: str) -> Connector:
        try:
            found = await engine.get(tenant, ident, Flavour.NATIVE)
        except NotFound:
            found = None
        if found is None or (principal.project is not None and found.project != principal.project):
            raise NotFound("webhook", ident)
        return found

    async def set_filter(c: Connector, tenant: str, body: WebhookIn | WebhookPatch) -> None:
        f = c.filter
        types = (
            f.types
            if body.types is None
            else await checks.check_types(body.types, tenant, services.catalog, directory, "types")
        )
        c.filter = Filter(
            types=types,
            devices=f.devices if body.devices is None else checks.check_strings(body.devices, "devices", "devices"),
            labels=f.labels if body.labels is None else checks.parse_label_filters(body.labels, "labels"),
            outcomes=f.outcomes if body.outcomes is None else list(dict.fromkeys(body.outcomes)),
            min_severity=f.min_severity if body.min_severity is None else body.min_severity,
            max_severity=f.max_severity if body.max_severity is None else body.max_severity,
        )
        if c.filter.min_severity > c.filter.max_severity:
            raise InvalidInput("must not be above max_severity", "min_severity")
        if body.url is not None:
            c.url = checks.check_url(body.url, "url")
            await checks.check_target(c.url, "url", engine.settings.targets)
        if body.headers is not None:
            c.headers = checks.check_headers(body.headers, "headers")
        if body.name is not None:
            c.name = body.name
        if body.secret is not None:
            c.secret = body.secret
        if body.status is not None:
            c.status = Status(body.status)

    @endpoint
    async def collection(request: Request) -> Response:
        if request.method == "POST":
            return await create(request)
        principal, tenant = await caller(request, Role.READ)
        check_known(request.query_params, [])
        found = [
            c
            async for c in engine.list(tenant)
            if c.flavour is Flavour.NATIVE and (principal.project is None or c.project == principal.project)
        ]
        return JSONResponse({"webhooks": [render(c, principal.may(Role.ADMIN)) for c in found]})

    async def create(request: Request) -> Response:
        principal, tenant = await caller(request, Role.ADMIN)
        check_known(request.query_params, [])
        body = await decode(request, WebhookIn, services.limits.max_event_bytes)
        project = body.project
        if principal.project is not None:
            if project is not None and project != principal.project:
                raise Forbidden(f"this key has access to project {principal.project!r} only")
            project = principal.project
        if project is not None:
            await directory.project(tenant, project)
        connector = Connector(
            id="",
            tenant=tenant,
            flavour=Flavour.NATIVE,
            project=project,
            url="",
            secret=secrets.token_urlsafe(32),
        )
        await set_filter(connector, tenant, body)
        created = await engine.create(connector)
        return JSONResponse(render(created, True), status_code=201)

    @endpoint
    async def item(request: Request) -> Response:
        ident = request.path_params["id"]
        if request.method == "GET":
            principal, tenant = await caller(request, Role.READ)
            check_known(request.query_params, [])
            return JSONResponse(render(await find(principal, tenant, ident), principal.may(Role.ADMIN)))
        principal, tenant = await caller(request, Role.ADMIN)
        check_known(request.query_params, [])
        if request.method == "DELETE":
            connector = await find(principal, tenant, ident)
            await engine.delete(tenant, connector.id)
            return Response(status_code=204)
        body = await decode(request, WebhookPatch, services.limits.max_event_bytes)
        connector = await find(principal, tenant, ident)
        await set_filter(connector, tenant, body)
        return JSONResponse(render(await engine.update(connector), True))

    @endpoint
    async def metrics(request: Request) -> Response:
        principal, tenant = await caller(request, Role.READ)
        check_known(request.query_params, [])
        connector = await find(principal, tenant, request.path_params["id"])
        return JSONResponse(delivery_report(engine, connector, services.clock.now_us()))

    @endpoint
    async def replay(request: Request) -> Response:
        principal, tenant = await caller(request, Role.ADMIN)
        check_known(request.query_params, [])
        body = await decode(request, ReplayIn, 4096)
        connector = await find(principal, tenant, request.path_params["id"])
        if connector.status is not Status.ACTIVE:
            raise InvalidInput(f"the webhook is {connector.status.value}, not ACTIVE", "status")
        try:
            since = parse_time(str(body.since))
        except (ValueError, OverflowError):
            raise InvalidInput(f"not a time: {body.since!r} (use RFC 3339 or epoch milliseconds)", "since") from None
        await engine.replay(connector, since)
        return JSONResponse({"replaying_since": rfc3339(since)}, status_code=202)

    base = "/v1/tenants/{tenant}/webhooks"
    return [
        Route(base, collection, methods=["GET", "POST"]),
        Route(base + "/{id}", item, methods=["GET", "PATCH", "DELETE"]),
        Route(base + "/{id}/metrics", metrics, methods=["GET"]),
        Route(base + "/{id}/replay", replay, methods=["POST"]),
    ]


def delivery_report(engine: DeliveryEngine, c: Connector, now_us: int) -> dict[str, Any]:
    """Counts and p99 over the last 3 hours, totals since start, the position, last failures."""
    m = engine.metrics(c.tenant, c.id)
    summary = m.summary(now_us)
    worker = engine.worker(c.tenant, c.id)
    failing_since = worker.state.failing_since if worker else None
    return {
        "status": c.status.value,
        "last_3h": {
            "success_count": summary.success,
            "error_count": summary.error,
            "latency_p99_seconds": round(summary.p99, 6) if summary.p99 is not None else None,
        },
        "since_start": {"success": m.success_total, "error": m.error_total, "dropped": m.dropped_total},
        "in_flight": worker.in_flight if worker else 0,
        "failing_since": rfc3339(failing_since) if failing_since else None,
        "last_success": rfc3339(m.last_success) if m.last_success else None,
        "failures": list(reversed(m.failures)),
    }
