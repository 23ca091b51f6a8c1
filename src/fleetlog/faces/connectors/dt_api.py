"""DT data connectors: /v2/projects/{p}/dataconnectors[/{c}[:metrics|:sync|:replay]].

As the `disruptive` client calls them: list (paged, `dataConnectors` + `nextPageToken`), create,
get, PATCH (only the fields sent; `update_mask` limits them further), DELETE (answers `{}`),
`:metrics` (last 3 hours) and `:sync`. `:replay` is fleetlog's own (push again from a time).

Credentials: the DT face's (service accounts) when it registers its authenticator as
`services.extras["dt.authenticate"]`, and fleetlog keys. Changing a connector needs Project
Developer (WRITE) for a DT service account, as at the vendor, and ADMIN for a fleetlog key
(a gateway's write key must not be able to send the tenant's data elsewhere).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, cast

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fleetlog.core.errors import InvalidInput, NotFound
from fleetlog.core.registry import Principal, Role
from fleetlog.core.timefmt import parse_time
from fleetlog.delivery.engine import DeliveryEngine
from fleetlog.delivery.model import Connector, Filter, Flavour, Status
from fleetlog.faces.connectors import checks
from fleetlog.faces.connectors.bodies import decode
from fleetlog.faces.connectors.dt_errors import endpoint, error
from fleetlog.faces.http import JSONResponse, bearer
from fleetlog.pipeline.services import Services

TENANT_HEADER = "x-fleetlog-tenant"
AUTH_HOOK = "dt.authenticate"
PAGE_SIZE = 100
SETTABLE_STATUSES = (Status.ACTIVE, Status.USER_DISABLED)


class HttpConfigIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    url: str | None = None
    signatureSecret: str | None = None
    headers: dict[str, str] | None = None


class DataConnectorIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: str | None = None  # output only: accepted (and ignored) so a GET result can be sent back
    displayName: str | None = None
    type: str | None = None
    status: str | None = None
    events: list[str] | None = None
    labels: list[str] | None = None
    httpConfig: HttpConfigIn | None = None


def render(c: Connector, reveal_secret: bool) -> dict[str, Any]:
    return {
        "name": f"projects/{c.project}/dataconnectors/{c.id}",
        "displayName": c.name,
        "type": "HTTP_PUSH",
        "status": c.status.value,
        "events": c.filter.types,
        "labels": c.include_labels,
        "httpConfig": {"url": c.url, "signatureSecret": c.secret if reveal_secret else "", "headers": c.headers},
    }


def latency_text(seconds: float | None) -> str:
    return f"{seconds or 0:.3f}s"


def routes(services: Services, engine: DeliveryEngine) -> list[Route]:
    directory = services.directory

    async def principal_of(request: Request) -> Principal:
        hook = cast(Callable[[Request], Awaitable[Principal]] | None, services.extras.get(AUTH_HOOK))
        if hook is not None:
            return await hook(request)
        return await directory.authenticate(bearer(request))

    async def tenant_of(request: Request, principal: Principal, project: str) -> str:
        if principal.tenant is not None:
            return principal.tenant
        named = request.headers.get(TENANT_HEADER)
        if named:
            await directory.tenant(named)
            return named
        found = [
            t.id
            for t in await directory.registry.list_tenants()
            if await directory.registry.get_project(t.id, project) is not None
        ]
        if not found:
            raise NotFound("project", project)
        if len(found) > 1:
            raise InvalidInput(f"project {project!r} exists in several tenants; name one", "X-Fleetlog-Tenant")
        return found[0]

    async def caller(request: Request, write: bool) -> tuple[Principal, str, str]:
        """(principal, tenant, project), after checking the caller may read or change."""
        project = request.path_params["project"]
        principal = await principal_of(request)
        tenant = await tenant_of(request, principal, project)
        role = Role.READ
        if write:
            role = Role.WRITE if principal.key_id.startswith("dt:") else Role.ADMIN
        await directory.require(principal, tenant, project, role)
        await directory.project(tenant, project)
        return principal, tenant, project

    async def find(tenant: str, project: str, connector_id: str) -> Connector:
        try:
            found = await engine.get(tenant, connector_id, Flavour.DT)
        except NotFound:
            found = None
        if found is None or found.project != project:
            raise NotFound("data connector", f"projects/{project}/dataconnectors/{connector_id}")
        return found

    def reveal(principal: Principal) -> bool:
        return principal.may(Role.WRITE)

    @endpoint
    async def collection(request: Request) -> Response:
        if request.method == "POST":
            return await create(request)
        principal, tenant, project = await caller(request, write=False)
        params = request.query_params
        _known(params, {"pageSize", "page_size", "pageToken", "page_token"})
        size = _page_size(params.get("pageSize") or params.get("page_size"))
        token = params.get("pageToken") or params.get("page_token") or ""
        page: list[Connector] = []
        more = False
        async for c in engine.list(tenant):
            if c.flavour is not Flavour.DT or c.project != project or c.id <= token:
                continue
            if len(page) == size:
                more = True
                break
            page.append(c)
        return JSONResponse(
            {
                "dataConnectors": [render(c, reveal(principal)) for c in page],
                "nextPageToken": page[-1].id if more else "",
            }
        )

    async def create(request: Request) -> Response:
        principal, tenant, project = await caller(request, write=True)
        _known(request.query_params, set())
        body = await decode(request, DataConnectorIn, services.limits.max_event_bytes)
        if body.httpConfig is None or body.httpConfig.url is None:
            raise InvalidInput("is required", "httpConfig.url")
        connector = Connector(id="", tenant=tenant, flavour=Flavour.DT, project=project, url="")
        await apply(connector, body, tenant, None)
        created = await engine.create(connector)
        return JSONResponse(render(created, reveal(principal)))

    async def apply(connector: Connector, body: DataConnectorIn, tenant: str, mask: set[str] | None) -> None:
        def wanted(name: str) -> bool:
            return mask is None or name in mask or name.split(".")[0] in mask

        if body.type is not None and body.type != "HTTP_PUSH":
            raise InvalidInput("only HTTP_PUSH data connectors are supported", "type")
        if body.displayName is not None and wanted("displayName"):
            if len(body.displayName) > 256:
                raise InvalidInput("must be at most 256 characters", "displayName")
            connector.name = body.displayName
        if body.status is not None and wanted("status"):
            connector.status = _status(body.status)
        if body.events is not None and wanted("events"):
            types = await checks.check_types(body.events, tenant, services.catalog, directory, "events")
            connector.filter = Filter(types=types)
        if body.labels is not None and wanted("labels"):
            connector.include_labels = checks.check_strings(body.labels, "labels", "label keys")
        config = body.httpConfig
        if config is not None:
            if config.url is not None and wanted("httpConfig.url"):
                connector.url = checks.check_url(config.url, "httpConfig.url")
                await checks.check_target(connector.url, "httpConfig.url", engine.settings.targets)
            if config.signatureSecret is not None and wanted("httpConfig.signatureSecret"):
                if len(config.signatureSecret) > 256:
                    raise InvalidInput("must be at most 256 characters", "httpConfig.signatureSecret")
                connector.secret = config.signatureSecret
            if config.headers is not None and wanted("httpConfig.headers"):
                connector.headers = checks.check_headers(config.headers, "httpConfig.headers")

    @endpoint
    async def item(request: Request) -> Response:
        ident, _, verb = request.path_params["connector"].partition(":")
        handler = {
            ("", "GET"): get_one,
            ("", "PATCH"): patch,
            ("", "DELETE"): delete,
            ("metrics", "GET"): metrics,
            ("sync", "POST"): sync,
            ("replay", "POST"): replay,
        }.get((verb, request.method))
        if handler is None:
            if verb not in ("", "metrics", "sync", "replay"):
                return error(404, f"no such method: :{verb}")
            return error(405, f"method {request.method} is not allowed here")
        return await handler(request, ident)

    async def get_one(request: Request, ident: str) -> Response:
        principal, tenant, project = await caller(request, write=False)
        _known(request.query_params, set())
        return JSONResponse(render(await find(tenant, project, ident), reveal(principal)))

    async def patch(request: Request, ident: str) -> Response:
        principal, tenant, project = await caller(request, write=True)
        params = request.query_params
        _known(params, {"update_mask", "updateMask"})
        raw_mask = params.get("update_mask") or params.get("updateMask")
        mask = None
        if raw_mask is not None:
            mask = {".".join(_camel(seg) for seg in path.split(".")) for path in raw_mask.split(",") if path.strip()}
        body = await decode(request, DataConnectorIn, services.limits.max_event_bytes)
        connector = await find(tenant, project, ident)
        await apply(connector, body, tenant, mask)
        return JSONResponse(render(await engine.update(connector), reveal(principal)))

    async def delete(request: Request, ident: str) -> Response:
        _, tenant, project = await caller(request, write=True)
        _known(request.query_params, set())
        connector = await find(tenant, project, ident)
        await engine.delete(tenant, connector.id)
        return JSONResponse({})

    async def metrics(request: Request, ident: str) -> Response:
        _, tenant, project = await caller(request, write=False)
        _known(request.query_params, set())
        connector = await find(tenant, project, ident)
        m = engine.metrics(tenant, connector.id)
        summary = m.summary(services.clock.now_us())
        return JSONResponse(
            {
                "metrics": {
                    "successCount": summary.success,
                    "errorCount": summary.error,
                    "latency99p": latency_text(summary.p99),
                },
                # fleetlog's own, beyond the vendor: what went wrong lately
                "droppedCount": m.dropped_total,
                "failures": list(reversed(m.failures)),
            }
        )

    async def sync(request: Request, ident: str) -> Response:
        _, tenant, project = await caller(request, write=True)
        _known(request.query_params, set())
        connector = await find(tenant, project, ident)
        if not await engine.sync(connector):
            raise InvalidInput(f"the data connector is {connector.status.value}, not ACTIVE", "status")
        return JSONResponse({})

    async def replay(request: Request, ident: str) -> Response:
        _, tenant, project = await caller(request, write=True)
        _known(request.query_params, set())
        body = await decode(request, ReplayIn, 4096)
        connector = await find(tenant, project, ident)
        if connector.status is not Status.ACTIVE:
            raise InvalidInput(f"the data connector is {connector.status.value}, not ACTIVE", "status")
        await engine.replay(connector, _time(body.startTime, "startTime"))
        return JSONResponse({})

    return [
        Route("/v2/projects/{project}/dataconnectors", collection, methods=["GET", "POST"]),
        Route("/v2/projects/{project}/dataconnectors/{connector}", item, methods=["GET", "POST", "PATCH", "DELETE"]),
    ]


class ReplayIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    startTime: str | int


def _time(value: str | int, field: str) -> int:
    try:
        return parse_time(str(value))
    except (ValueError, OverflowError):
        raise InvalidInput(f"not a time: {value!r} (use RFC 3339 or epoch milliseconds)", field) from None


def _status(value: str) -> Status:
    try:
        status = Status(value)
    except ValueError:
        raise InvalidInput("must be ACTIVE or USER_DISABLED", "status") from None
    if status not in SETTABLE_STATUSES:
        raise InvalidInput("SYSTEM_DISABLED is set by fleetlog only; use ACTIVE or USER_DISABLED", "status")
    return status


def _page_size(raw: str | None) -> int:
    if raw is None:
        return PAGE_SIZE
    if not raw.isdigit() or not 1 <= int(raw) <= PAGE_SIZE:
        raise InvalidInput(f"must be an integer from 1 to {PAGE_SIZE}", "pageSize")
    return int(raw)


def _known(params: Any, allowed: set[str]) -> None:
    for name in params:
        if name not in allowed:
            raise InvalidInput(f"unknown query parameter; allowed: {', '.join(sorted(allowed)) or 'none'}", name)


def _camel(path: str) -> str:
    """`http_config.signature_secret` -> `httpConfig.signatureSecret` (masks come in both)."""
    head, *rest = path.strip().split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)
