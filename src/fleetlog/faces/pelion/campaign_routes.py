"""Campaign REST, in two dialects over one service:

- native: /v1/tenants/{tenant}/campaigns..., fleetlog keys (operator or tenant), native errors;
- Pelion: /v3/update-campaigns..., the account of the `ak_` key, Pelion errors and list envelope.

    GET    .../campaigns                      list
    POST   .../campaigns                      create a draft {name, firmware_version,
                                              device_ids | device_labels, description?}
    GET    .../campaigns/{id}                 one, with per-state device counts
    DELETE .../campaigns/{id}                 a draft only
    POST   .../campaigns/{id}/start | /stop
    GET    .../campaigns/{id}/devices         each device's outcome (?state=, ?after=, ?limit=)
    POST   .../campaigns/{id}/devices         add devices {device_ids}
    DELETE .../campaigns/{id}/devices/{dev}   remove a pending device

Campaigns need a key for the whole tenant (a project key would see other projects' devices):
read for GET, write for the rest.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fleetlog.core.errors import Forbidden, InvalidInput
from fleetlog.core.registry import Role
from fleetlog.faces.http import JSONResponse, bearer, decode_error_field, read_body
from fleetlog.faces.native.errors import endpoint as native_endpoint
from fleetlog.faces.pelion.auth import account
from fleetlog.faces.pelion.campaigns import (
    CampaignIn,
    Campaigns,
    DevicesIn,
    State,
    campaign_out,
    record_out,
    titles,
)
from fleetlog.faces.pelion.errors import endpoint as pelion_endpoint
from fleetlog.pipeline.services import Services

T = TypeVar("T")
Handler = Callable[[Request], Awaitable[Response]]
MAX_BODY = 8 * 1024 * 1024  # 100,000 device ids fit


async def _decode(request: Request, kind: type[T]) -> T:
    body = await read_body(request, MAX_BODY)
    try:
        return msgspec.json.decode(body, type=kind)
    except msgspec.ValidationError as exc:
        where, why = decode_error_field(exc)
        raise InvalidInput(why, where) from None
    except msgspec.DecodeError as exc:
        raise InvalidInput(f"body is not valid JSON ({exc})") from None


def _limit(request: Request) -> int:
    raw = request.query_params.get("limit")
    if raw is None:
        return 100
    try:
        value = int(raw)
    except ValueError:
        raise InvalidInput(f"must be an integer, got {raw!r}", "limit") from None
    if not 1 <= value <= 1000:
        raise InvalidInput("must be from 1 to 1000", "limit")
    return value


def _state(request: Request) -> State | None:
    raw = request.query_params.get("state")
    if raw is None:
        return None
    try:
        return State(raw.lower())
    except ValueError:
        raise InvalidInput(f"must be one of {', '.join(s.value for s in State)}", "state") from None


def routes(services: Services, campaigns: Campaigns) -> list[Route]:
    directory = services.directory
    texts = titles(services.catalog.family("pelion"))

    async def native_tenant(request: Request, role: Role) -> str:
        tenant: str = request.path_params["tenant"]
        principal = await directory.authenticate(bearer(request))
        await directory.require(principal, tenant, None, role)
        if principal.project is not None:
            raise Forbidden("campaigns need a key for the whole tenant, not one project")
        return tenant

    async def pelion_tenant(request: Request, role: Role) -> str:
        principal, tenant = await account(directory, request, role)
        if principal.project is not None:
            raise Forbidden("campaigns need a key for the whole account, not one project")
        return tenant

    def dialect(
        tenant_of: Callable[[Request, Role], Awaitable[str]],
        wrap: Callable[[Handler], Handler],
        pelion: bool,
    ) -> dict[str, Handler]:
        def listing(items: list[dict[str, Any]], key: str, has_more: bool, limit: int, after: str | None) -> Any:
            if pelion:
                return {
                    "object": "list",
                    "data": items,
                    "has_more": has_more,
                    "limit": limit,
                    "after": after,
                    "order": "ASC",
                }
            return {key: items, "has_more": has_more}

        def one(campaign_doc: dict[str, Any]) -> dict[str, Any]:
            return {"object": "update-campaign", **campaign_doc} if pelion else campaign_doc

        @wrap
        async def list_campaigns(request: Request) -> Response:
            tenant = await tenant_of(request, Role.READ)
            found = await campaigns.all(tenant)
            items = [one(campaign_out(c)) for c in found]
            return JSONResponse(listing(items, "campaigns", False, len(items), None))

        @wrap
        async def create(request: Request) -> Response:
            tenant = await tenant_of(request, Role.WRITE)
            campaign = await campaigns.create(tenant, await _decode(request, CampaignIn))
            return JSONResponse(
                one(campaign_out(campaign, await campaigns.counts(tenant, campaign.id))), status_code=201
            )

        @wrap
        async def get_one(request: Request) -> Response:
            tenant = await tenant_of(request, Role.READ)
            campaign = await campaigns.get(tenant, request.path_params["campaign_id"])
            return JSONResponse(one(campaign_out(campaign, await campaigns.counts(tenant, campaign.id))))

        @wrap
        async def delete(request: Request) -> Response:
            tenant = await tenant_of(request, Role.WRITE)
            await campaigns.delete(tenant, request.path_params["campaign_id"])
            return Response(status_code=204)

        def command(action: str) -> Handler:
            @wrap
            async def run(request: Request) -> Response:
                tenant = await tenant_of(request, Role.WRITE)
                campaign_id = request.path_params["campaign_id"]
                if action == "start":
                    campaign = await campaigns.start(tenant, campaign_id)
                else:
                    campaign = await campaigns.stop(tenant, campaign_id)
                return JSONResponse(one(campaign_out(campaign, await campaigns.counts(tenant, campaign.id))))

            return run

        @wrap
        async def devices(request: Request) -> Response:
            tenant = await tenant_of(request, Role.READ)
            campaign = await campaigns.get(tenant, request.path_params["campaign_id"])
            state, limit = _state(request), _limit(request)
            after = request.query_params.get("after")
            items: list[dict[str, Any]] = []
            cursor = after
            has_more = False
            while True:
                batch = await campaigns.records(tenant, campaign.id, after=cursor, limit=1000)
                for record in batch:
                    if state is None or record.state is state:
                        if len(items) == limit:
                            has_more = True
                            break
                        items.append(record_out(record, texts))
                if has_more or len(batch) < 1000:
                    break
                cursor = batch[-1].device_id
            return JSONResponse(listing(items, "devices", has_more, limit, after))

        @wrap
        async def add_devices(request: Request) -> Response:
            tenant = await tenant_of(request, Role.WRITE)
            body = await _decode(request, DevicesIn)
            campaign = await campaigns.add_devices(tenant, request.path_params["campaign_id"], body.device_ids)
            return JSONResponse(one(campaign_out(campaign, await campaigns.counts(tenant, campaign.id))))

        @wrap
        async def remove_device(request: Request) -> Response:
            tenant = await tenant_of(request, Role.WRITE)
            campaign = await campaigns.remove_device(
                tenant, request.path_params["campaign_id"], request.path_params["device_id"]
            )
            return JSONResponse(one(campaign_out(campaign, await campaigns.counts(tenant, campaign.id))))

        return {
            "list": list_campaigns,
            "create": create,
            "get": get_one,
            "delete": delete,
            "start": command("start"),
            "stop": command("stop"),
            "devices": devices,
            "add_devices": add_devices,
            "remove_device": remove_device,
        }

    def table(base: str, h: dict[str, Handler], slashes: bool) -> list[Route]:
        spec = [
            ("", "GET", "list"),
            ("", "POST", "create"),
            ("/{campaign_id}", "GET", "get"),
            ("/{campaign_id}", "DELETE", "delete"),
            ("/{campaign_id}/start", "POST", "start"),
            ("/{campaign_id}/stop", "POST", "stop"),
            ("/{campaign_id}/devices", "GET", "devices"),
            ("/{campaign_id}/devices", "POST", "add_devices"),
            ("/{campaign_id}/devices/{device_id}", "DELETE", "remove_device"),
        ]
        out: list[Route] = []
        for suffix, method, name in spec:
            out.append(Route(base + suffix, h[name], methods=[method]))
            if slashes:
                out.append(Route(base + suffix + "/", h[name], methods=[method]))
        return out

    native = dialect(native_tenant, native_endpoint, pelion=False)
    pelion = dialect(pelion_tenant, pelion_endpoint, pelion=True)
    return [
        *table("/v1/tenants/{tenant}/campaigns", native, slashes=False),
        *table("/v3/update-campaigns", pelion, slashes=True),
    ]
