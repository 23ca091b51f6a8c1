"""Pelion API keys.

A Pelion key is a fleetlog API key shown with Pelion's `ak_` prefix instead of fleetlog's
`fl_`: the key `fl_1a2b3c_SECRET` is presented to the Pelion face as `ak_1a2b3c_SECRET` (the
`fl_` spelling works too). Nothing extra is stored: revoking the fleetlog key revokes it here.

A Pelion account is a fleetlog tenant, so the key must belong to one tenant; an operator key
(every tenant) names no account and is refused. A project key sees its project's events only.
"""

from __future__ import annotations

from starlette.requests import Request

from fleetlog.core.errors import Forbidden
from fleetlog.core.registry import KEY_PREFIX, Principal, Role
from fleetlog.faces.http import bearer
from fleetlog.pipeline.directory import Directory

PELION_PREFIX = "ak_"


def fleetlog_token(token: str) -> str:
    """The fleetlog spelling of a key given in Pelion's."""
    return KEY_PREFIX + token[len(PELION_PREFIX) :] if token.startswith(PELION_PREFIX) else token


def pelion_token(token: str) -> str:
    """The Pelion spelling of a fleetlog key."""
    return PELION_PREFIX + token[len(KEY_PREFIX) :] if token.startswith(KEY_PREFIX) else token


async def account(directory: Directory, request: Request, role: Role) -> tuple[Principal, str]:
    """The caller and its account (tenant), if it may act with `role`."""
    token = bearer(request)
    principal = await directory.authenticate(fleetlog_token(token) if token else None)
    if principal.tenant is None:
        raise Forbidden("an operator key belongs to no account: use an API key of one tenant")
    await directory.require(principal, principal.tenant, principal.project, role)
    return principal, principal.tenant
