"""/v2/projects/{p}/serviceaccounts: service accounts and their keys (project admins only)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fleetlog.core.errors import Forbidden, NotFound
from fleetlog.core.registry import Role
from fleetlog.core.timefmt import rfc3339
from fleetlog.faces.dt import params as qp
from fleetlog.faces.dt.accounts import ROLES, Accounts, KeyRecord, ServiceAccount, check_roles
from fleetlog.faces.dt.auth import Authenticator, Caller
from fleetlog.faces.dt.bodies import AccountIn, AccountPatch, decode
from fleetlog.faces.dt.errors import endpoint
from fleetlog.faces.http import JSONResponse


def account_json(a: ServiceAccount) -> dict[str, Any]:
    return {
        "name": f"projects/{a.project}/serviceaccounts/{a.id}",
        "email": a.email,
        "displayName": a.display_name,
        "enableBasicAuth": a.basic_auth,
        "createTime": rfc3339(a.created),
        "updateTime": rfc3339(a.updated),
        "roles": a.roles,  # fleetlog: the account's rights (DT keeps these as project members)
    }


def key_json(a: ServiceAccount, k: KeyRecord) -> dict[str, Any]:
    return {
        "name": f"projects/{a.project}/serviceaccounts/{a.id}/keys/{k.id}",
        "id": k.id,
        "createTime": rfc3339(k.created),
    }


def routes(accounts: Accounts, auth: Authenticator) -> list[Route]:
    async def admin(request: Request) -> tuple[Caller, str]:
        project = request.path_params["project"]
        caller = await auth.caller(request, project)
        await auth.require(caller, project, Role.ADMIN)
        return caller, project

    def may_grant(caller: Caller, roles: list[str]) -> None:
        for role in roles:
            right, tenant_wide = ROLES[role]
            if right > caller.principal.role:
                raise Forbidden(f"cannot grant {role}: it has more rights than your own")
            if tenant_wide and caller.principal.project is not None:
                raise Forbidden(f"cannot grant {role}: your credential is limited to one project")

    async def account(request: Request) -> tuple[Caller, ServiceAccount]:
        caller, project = await admin(request)
        return caller, await accounts.in_project(caller.tenant, project, request.path_params["account"])

    @endpoint
    async def list_accounts(request: Request) -> Response:
        caller, project = await admin(request)
        qp.check_known(request.query_params, qp.PAGE_PARAMS)
        found = await accounts.of_project(caller.tenant, project)
        return JSONResponse({"serviceAccounts": [account_json(a) for a in found], "nextPageToken": ""})

    @endpoint
    async def create_account(request: Request) -> Response:
        caller, project = await admin(request)
        body = await decode(request, AccountIn)
        roles = check_roles(body.roles)
        may_grant(caller, roles)
        made = await accounts.create(caller.tenant, project, body.display_name, body.enable_basic_auth, roles)
        return JSONResponse(account_json(made))

    @endpoint
    async def get_account(request: Request) -> Response:
        return JSONResponse(account_json((await account(request))[1]))

    @endpoint
    async def patch_account(request: Request) -> Response:
        caller, found = await account(request)
        body = await decode(request, AccountPatch)
        if body.display_name is not None:
            found.display_name = body.display_name
        if body.enable_basic_auth is not None:
            found.basic_auth = body.enable_basic_auth
        if body.roles is not None:
            found.roles = check_roles(body.roles)
            may_grant(caller, found.roles)
        saved = await accounts.save(found)
        auth.forget()
        return JSONResponse(account_json(saved))

    @endpoint
    async def delete_account(request: Request) -> Response:
        _, found = await account(request)
        await accounts.delete(found)
        auth.forget()
        return JSONResponse({})

    @endpoint
    async def list_keys(request: Request) -> Response:
        _, found = await account(request)
        qp.check_known(request.query_params, qp.PAGE_PARAMS)
        return JSONResponse({"keys": [key_json(found, k) for k in await accounts.keys(found)], "nextPageToken": ""})

    @endpoint
    async def create_key(request: Request) -> Response:
        _, found = await account(request)
        record, secret = await accounts.create_key(found)
        return JSONResponse({"key": key_json(found, record), "secret": secret})

    @endpoint
    async def get_key(request: Request) -> Response:
        _, found = await account(request)
        key_id = request.path_params["key"]
        record = await accounts.key(key_id) if key_id in found.keys else None
        if record is None:
            raise NotFound("key", key_id)
        return JSONResponse(key_json(found, record))

    @endpoint
    async def delete_key(request: Request) -> Response:
        _, found = await account(request)
        await accounts.delete_key(found, request.path_params["key"])
        auth.forget()
        return JSONResponse({})

    base = "/v2/projects/{project}/serviceaccounts"
    return [
        Route(base, list_accounts, methods=["GET"]),
        Route(base, create_account, methods=["POST"]),
        Route(base + "/{account}", get_account, methods=["GET"]),
        Route(base + "/{account}", patch_account, methods=["PATCH"]),
        Route(base + "/{account}", delete_account, methods=["DELETE"]),
        Route(base + "/{account}/keys", list_keys, methods=["GET"]),
        Route(base + "/{account}/keys", create_key, methods=["POST"]),
        Route(base + "/{account}/keys/{key}", get_key, methods=["GET"]),
        Route(base + "/{account}/keys/{key}", delete_key, methods=["DELETE"]),
    ]
