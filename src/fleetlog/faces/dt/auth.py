"""Who is calling /v2: a service account (an access token from /oauth2/token, or Basic auth
with key id and secret), or a fleetlog key (`Bearer fl_...`; tenant admins and the operator,
so that setups can be scripted).

The DT face works within the tenant of the credential. An operator credential belongs to no
tenant: it names one with the `X-Fleetlog-Tenant` header, or the project id in the path finds it.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from collections import OrderedDict
from dataclasses import dataclass
from typing import Final

import jwt
from starlette.requests import Request

from fleetlog.core.errors import InvalidInput, NotFound, Unauthenticated
from fleetlog.core.registry import Principal, Role
from fleetlog.faces.dt.accounts import Accounts, ServiceAccount
from fleetlog.pipeline.directory import Directory
from fleetlog.ports.clock import Clock

TENANT_HEADER: Final = "x-fleetlog-tenant"
TOKEN_ISSUER: Final = "fleetlog-dt"
_CACHE_SIZE: Final = 10_000
CACHE_SECONDS: Final = 30


@dataclass(frozen=True, slots=True)
class Caller:
    principal: Principal
    tenant: str


class Authenticator:
    def __init__(self, directory: Directory, accounts: Accounts, clock: Clock, token_seconds: int) -> None:
        self._directory = directory
        self._accounts = accounts
        self._clock = clock
        self.token_seconds = token_seconds
        # access token -> (principal, until µs); cleared whenever a key or account is removed here
        self._tokens: OrderedDict[str, tuple[Principal, int]] = OrderedDict()

    def forget(self) -> None:
        self._tokens.clear()

    # -- access tokens ----------------------------------------------------------------------

    def issue(self, account: ServiceAccount, key_id: str) -> str:
        now = self._clock.now_us() // 1_000_000
        claims = {
            "iss": TOKEN_ISSUER,
            "sub": account.id,
            "tid": account.tenant,
            "kid": key_id,
            "iat": now,
            "exp": now + self.token_seconds,
            "jti": secrets.token_hex(8),
        }
        return jwt.encode(claims, self._accounts.token_key(), algorithm="HS256")

    async def _access_token(self, token: str) -> Principal:
        now = self._clock.now_us()
        cached = self._tokens.get(token)
        if cached is not None:
            if cached[1] > now:
                return cached[0]
            del self._tokens[token]
        try:
            claims = jwt.decode(
                token,
                self._accounts.token_key(),
                algorithms=["HS256"],
                issuer=TOKEN_ISSUER,
                options={"verify_exp": False, "verify_iat": False, "require": ["exp", "sub", "kid"]},
            )
        except jwt.PyJWTError:
            raise Unauthenticated("invalid access token") from None
        expires = int(claims["exp"]) * 1_000_000
        if expires <= now:
            raise Unauthenticated("access token expired; get a new one from the token endpoint")
        record = await self._accounts.key(str(claims["kid"]))
        account = None if record is None else await self._accounts.get(record.tenant, record.account)
        if record is None or account is None or account.id != claims["sub"]:
            raise Unauthenticated("the key of this access token was deleted")
        principal = account.principal(record.id)
        # Re-checked at least every CACHE_SECONDS: a key deleted by another process stops working soon.
        self._tokens[token] = (principal, min(expires, now + CACHE_SECONDS * 1_000_000))
        if len(self._tokens) > _CACHE_SIZE:
            self._tokens.popitem(last=False)
        return principal

    async def _basic(self, value: str) -> Principal:
        try:
            key_id, sep, secret = base64.b64decode(value, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise Unauthenticated("malformed Basic credentials") from None
        found = await self._accounts.verify(key_id, secret) if sep else None
        if found is None:
            raise Unauthenticated("wrong key id or secret")
        account, record = found
        if not account.basic_auth:
            raise Unauthenticated("Basic auth is not enabled for this service account")
        return account.principal(record.id)

    # -- the caller of a request ------------------------------------------------------------

    async def principal(self, request: Request) -> Principal:
        header = request.headers.get("authorization", "").strip()
        if not header:
            raise Unauthenticated("credentials missing: send Authorization: Bearer <access token>, or Basic")
        scheme, _, value = header.partition(" ")
        value = value.strip()
        if scheme.lower() == "basic" and value:
            return await self._basic(value)
        if scheme.lower() != "bearer" or not value:
            raise Unauthenticated("unsupported Authorization scheme; use Bearer or Basic")
        if value.count(".") == 2:  # a JWT: one of our access tokens
            return await self._access_token(value)
        return await self._directory.authenticate(value)

    async def caller(self, request: Request, project: str | None = None, tenant_hint: str | None = None) -> Caller:
        principal = await self.principal(request)
        if principal.tenant is not None:
            return Caller(principal, principal.tenant)
        return Caller(principal, await self._operator_tenant(request, project, tenant_hint))

    async def _operator_tenant(self, request: Request, project: str | None, hint: str | None) -> str:
        named = request.headers.get(TENANT_HEADER) or hint
        if named:
            await self._directory.tenant(named)
            return named
        if not project or project == "-":
            raise InvalidInput("an operator credential must name the tenant here", "X-Fleetlog-Tenant")
        found = [
            t.id
            for t in await self._directory.registry.list_tenants()
            if await self._directory.registry.get_project(t.id, project) is not None
        ]
        if not found:
            raise NotFound("project", project)
        if len(found) > 1:
            raise InvalidInput(f"project {project!r} exists in several tenants; name one", "X-Fleetlog-Tenant")
        return found[0]

    async def require(self, caller: Caller, project: str, role: Role) -> None:
        """The caller may act on `project` with `role` (403 if not), and the project exists (404)."""
        await self._directory.require(caller.principal, caller.tenant, project, role)
        await self._directory.project(caller.tenant, project)
