"""Who is calling the Span face, and which collections they may touch.

Span paths carry no tenant: a Span token is a fleetlog API key of one tenant (optionally scoped
to one project = one collection), sent as `X-API-Token` (or `Authorization: Bearer`). An
operator key has no tenant, so it is refused here with a clear message.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import HTTPConnection

from fleetlog.core.errors import Forbidden, NotFound
from fleetlog.core.registry import Device, Principal, Project, Role
from fleetlog.pipeline.directory import Directory


@dataclass(frozen=True)
class Caller:
    principal: Principal
    tenant: str

    def sees(self, collection: str) -> bool:
        return self.principal.sees_project(self.tenant, collection)


def token_of(conn: HTTPConnection) -> str | None:
    """The credential of a request or WebSocket: the X-API-Token header, a bearer token, or
    (for WebSockets, whose browser clients cannot set headers) the `api_token` query parameter."""
    header = conn.headers.get("x-api-token", "").strip()
    if header:
        return header
    scheme, _, value = conn.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return conn.query_params.get("api_token") or None


async def caller(directory: Directory, token: str | None, role: Role = Role.READ) -> Caller:
    principal = await directory.authenticate(token)
    if principal.tenant is None:
        raise Forbidden("the Span API needs a tenant's API key; an operator key has no tenant")
    await directory.require(principal, principal.tenant, None, role)
    return Caller(principal, principal.tenant)


async def collection(directory: Directory, who: Caller, collection_id: str, role: Role = Role.READ) -> Project:
    """The collection, if the caller may act on it with `role`. Another project's collection is
    refused (403); one that does not exist in the caller's tenant is not found (404)."""
    project = await directory.project(who.tenant, collection_id)
    await directory.require(who.principal, who.tenant, collection_id, role)
    return project


async def device(
    directory: Directory, who: Caller, collection_id: str, device_id: str, role: Role = Role.READ
) -> Device:
    """The device, if it is in that collection and the caller may act on it."""
    await collection(directory, who, collection_id, role)
    found = await directory.device(who.tenant, device_id)
    if found.project != collection_id:
        raise NotFound("device", device_id)
    return found


def require_tenant_wide(who: Caller, what: str) -> None:
    if who.principal.project is not None:
        raise Forbidden(f"a collection-scoped key cannot {what}")
