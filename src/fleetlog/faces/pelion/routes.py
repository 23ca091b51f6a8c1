"""/v3/device-events (list, read, report), /v3/event-log-codes and the bootstrap report.

Every path works with and without its trailing slash.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fleetlog.core.catalog.pelion import message_type
from fleetlog.core.errors import InvalidInput, NotFound
from fleetlog.core.event import Event, SourceKind
from fleetlog.core.registry import Principal, Role
from fleetlog.faces.http import JSONResponse, decode_error_field, read_body
from fleetlog.faces.pelion import filters as flt
from fleetlog.faces.pelion import query as pq
from fleetlog.faces.pelion.auth import account
from fleetlog.faces.pelion.codes import code_item, codes, find
from fleetlog.faces.pelion.errors import endpoint
from fleetlog.faces.pelion.filters import parse_date_time
from fleetlog.faces.pelion.render import item, page
from fleetlog.pipeline.services import Services

LIMIT_MIN, LIMIT_MAX, LIMIT_DEFAULT = 2, 1000, 50
CONTROL = ("limit", "order", "after", "include")
INCLUDES = ("total_count",)


class EventIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A device event reported through the Pelion face (a fleetlog extension of the API)."""

    device_id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    event_type: Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=r"^\S+$")]
    date_time: str | None = None
    description: Annotated[str, msgspec.Meta(max_length=1024)] = ""
    event_type_description: str | None = None
    event_type_category: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    state_change: bool = False
    changes: dict[str, Any] = {}  # deprecated in Pelion's spec; accepted and ignored
    data: dict[str, Any] = {}


_decode_event = msgspec.json.Decoder(EventIn)


def _one(params: QueryParams, name: str) -> str | None:
    values = params.getlist(name)
    if len(values) > 1:
        raise InvalidInput("given more than once", name)
    return values[0] if values else None


def parse_limit(raw: str | None) -> int:
    """Pelion clamps the page size into 2..1000 instead of refusing it."""
    if raw is None:
        return LIMIT_DEFAULT
    try:
        value = int(raw)
    except ValueError:
        raise InvalidInput(f"must be an integer, got {raw!r}", "limit") from None
    return min(max(value, LIMIT_MIN), LIMIT_MAX)


def parse_order(raw: str | None) -> bool:
    """True for ASC (the default)."""
    if raw is None or raw.upper() == "ASC":
        return True
    if raw.upper() == "DESC":
        return False
    raise InvalidInput(f"must be ASC or DESC, got {raw!r}", "order")


def parse_include(raw: str | None) -> bool:
    """True when total_count is asked for."""
    if raw is None:
        return False
    wanted = [v.strip() for v in raw.split(",") if v.strip()]
    for value in wanted:
        if value not in INCLUDES:
            raise InvalidInput(f"unknown value {value!r}; supported: {', '.join(INCLUDES)}", "include")
    return "total_count" in wanted


def filter_pairs(params: QueryParams) -> list[tuple[str, str]]:
    """The filter parameters, refusing unknown parameters by name."""
    pairs: list[tuple[str, str]] = []
    for name, value in params.multi_items():
        if name in CONTROL:
            continue
        if not flt.is_filter(name):
            raise InvalidInput(
                f"unknown parameter; allowed: {', '.join(CONTROL)}, filter and the filters of "
                f"{', '.join(flt.OPERATORS)}",
                name,
            )
        pairs.append((name, value))
    return pairs


async def list_request(services: Services, principal: Principal, tenant: str, params: QueryParams) -> pq.Request:
    """A query-string into a query request (validating every parameter)."""
    filters = flt.parse(filter_pairs(params))
    after_id = _one(params, "after")
    after: Event | None = None
    if after_id:
        after = await services.store.get(tenant, after_id)
        if after is None or not principal.sees_project(tenant, after.project):
            raise InvalidInput(f"no device event {after_id!r} in this account", "after")
    return pq.Request(
        tenant=tenant,
        projects=(principal.project,) if principal.project else (),
        filters=filters,
        ascending=parse_order(_one(params, "order")),
        limit=parse_limit(_one(params, "limit")),
        after=after,
        total=parse_include(_one(params, "include")),
        max_scan=services.config.pelion_max_scan_events,
    )


def to_event(tenant: str, body: EventIn, now_us: int) -> Event:
    when = now_us
    if body.date_time is not None:
        try:
            when = parse_date_time(body.date_time)
        except (ValueError, OverflowError):
            raise InvalidInput(f"not a UTC RFC 3339 date-time: {body.date_time!r}", "date_time") from None
    event = Event(
        tenant=tenant,
        project="",
        type=body.event_type,
        time=when,
        data=body.data,
        device=body.device_id,
        description=body.description,
        category=body.event_type_category,
        state_change=body.state_change,
    )
    if body.event_type_description is not None:
        # UNDETERMINED (deprecated) is read as INFO. A catalog code keeps its own message type.
        event.outcome = message_type(body.event_type_description)
    return event


def routes(services: Services) -> list[Route]:
    directory = services.directory

    @endpoint
    async def list_events(request: Request) -> Response:
        principal, tenant = await account(directory, request, Role.READ)
        req = await list_request(services, principal, tenant, request.query_params)
        listing = await pq.list_events(services.store, req)
        return JSONResponse(
            page(
                listing.events,
                has_more=listing.has_more,
                limit=req.limit,
                after=req.after.id if req.after else None,
                ascending=req.ascending,
                total=listing.total_count,
            )
        )

    @endpoint
    async def get_event(request: Request) -> Response:
        principal, tenant = await account(directory, request, Role.READ)
        event_id = request.path_params["device_event_id"]
        if request.query_params:
            name = next(iter(request.query_params))
            raise InvalidInput("this endpoint takes no query parameters", name)
        event = await services.store.get(tenant, event_id)
        if event is None or not principal.sees_project(tenant, event.project):
            raise NotFound("device event", event_id)
        return JSONResponse(item(event))

    @endpoint
    async def report_event(request: Request) -> Response:
        principal, tenant = await account(directory, request, Role.WRITE)
        body = await read_body(request, services.limits.max_event_bytes)
        try:
            decoded = _decode_event.decode(body)
        except msgspec.ValidationError as exc:
            where, why = decode_error_field(exc)
            raise InvalidInput(why, where) from None
        except msgspec.DecodeError as exc:
            raise InvalidInput(f"body is not valid JSON ({exc})") from None
        except RecursionError:
            raise InvalidInput("body is nested too deeply") from None
        event = to_event(tenant, decoded, services.clock.now_us())
        result = await services.ingest.submit(principal, event, face="pelion")
        return JSONResponse(item(result.event), status_code=201)

    @endpoint
    async def bootstrap(request: Request) -> Response:
        """SYS_107: the device reports that it bootstrapped (obtained its credentials)."""
        principal, tenant = await account(directory, request, Role.WRITE)
        device_id = request.path_params["device_id"]
        device = await directory.device(tenant, device_id)
        now = services.clock.now_us()
        event = Event(
            tenant=tenant, project=device.project, device=device.id, type="SYS_107", time=now, source=SourceKind.SYSTEM
        )
        result = await services.ingest.submit(principal, event, face="pelion")
        return JSONResponse(item(result.event), status_code=201)

    @endpoint
    async def list_codes(request: Request) -> Response:
        await account(directory, request, Role.READ)
        found = [code_item(t) for t in codes(services.catalog)]
        return JSONResponse(
            {
                "object": "list",
                "data": found,
                "has_more": False,
                "limit": len(found),
                "after": None,
                "order": "ASC",
                "total_count": len(found),
            }
        )

    @endpoint
    async def get_code(request: Request) -> Response:
        await account(directory, request, Role.READ)
        code = request.path_params["code"]
        found = find(services.catalog, code)
        if found is None:
            raise NotFound("event log code", code)
        return JSONResponse(code_item(found))

    def both(path: str, handler: Any, methods: list[str]) -> list[Route]:
        return [Route(path, handler, methods=methods), Route(path + "/", handler, methods=methods)]

    return [
        Route("/v3/device-events", list_events, methods=["GET"]),
        Route("/v3/device-events/", list_events, methods=["GET"]),
        Route("/v3/device-events", report_event, methods=["POST"]),
        Route("/v3/device-events/", report_event, methods=["POST"]),
        *both("/v3/device-events/{device_event_id}", get_event, ["GET"]),
        *both("/v3/devices/{device_id}/bootstrap", bootstrap, ["POST"]),
        *both("/v3/event-log-codes", list_codes, ["GET"]),
        *both("/v3/event-log-codes/{code}", get_code, ["GET"]),
    ]
