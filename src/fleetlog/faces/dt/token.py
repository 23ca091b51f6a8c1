"""POST /oauth2/token: the OAuth2 JWT-bearer grant, as DT's identity service answers it.

The client signs a JWT with its key's secret: header {"alg": "HS256", "kid": <key id>}, claims
`iat`, `exp` (at most an hour after iat), `aud` (this endpoint's URL) and `iss` (the service
account's email). It posts `assertion=<jwt>&grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`
and gets {"access_token", "token_type": "Bearer", "expires_in"}. Anything wrong is a 400.
"""

from __future__ import annotations

from typing import Final
from urllib.parse import parse_qs

import jwt
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fleetlog.core.errors import InvalidInput
from fleetlog.faces.dt.accounts import Accounts
from fleetlog.faces.dt.auth import Authenticator
from fleetlog.faces.dt.errors import endpoint, error
from fleetlog.faces.http import JSONResponse, read_body
from fleetlog.ports.clock import Clock

GRANT_TYPE: Final = "urn:ietf:params:oauth:grant-type:jwt-bearer"
MAX_ASSERTION_SECONDS: Final = 3600
LEEWAY_SECONDS: Final = 60


def routes(accounts: Accounts, auth: Authenticator, clock: Clock, audience: str) -> list[Route]:
    @endpoint
    async def token(request: Request) -> Response:
        body = await read_body(request, 16 * 1024)
        try:
            form = parse_qs(body.decode(), strict_parsing=False)
        except UnicodeDecodeError:
            raise InvalidInput("body must be application/x-www-form-urlencoded") from None
        grant = (form.get("grant_type") or [""])[0]
        if grant != GRANT_TYPE:
            raise InvalidInput(f"must be {GRANT_TYPE}", "grant_type")
        assertion = (form.get("assertion") or [""])[0]
        if not assertion:
            raise InvalidInput("is required", "assertion")
        try:
            header = jwt.get_unverified_header(assertion)
        except jwt.PyJWTError as exc:
            raise InvalidInput(f"not a JWT ({exc})", "assertion") from None
        if header.get("alg") != "HS256":
            raise InvalidInput("must be signed with HS256", "assertion.alg")
        key_id = header.get("kid")
        record = await accounts.key(key_id) if isinstance(key_id, str) and key_id else None
        account = None if record is None else await accounts.get(record.tenant, record.account)
        secret = None if record is None else accounts.secret_of(record)
        if record is None or account is None or secret is None:
            raise InvalidInput("unknown key", "assertion.kid")
        expected_aud = audience or str(request.url.replace(query="")).rstrip("/")
        try:
            claims = jwt.decode(
                assertion,
                secret,
                algorithms=["HS256"],
                audience=expected_aud,
                issuer=account.email,
                options={"verify_exp": False, "verify_iat": False, "require": ["iat", "exp", "aud", "iss"]},
            )
        except jwt.InvalidSignatureError:
            raise InvalidInput("signature does not match the key's secret", "assertion") from None
        except jwt.InvalidAudienceError:
            raise InvalidInput(f"must be {expected_aud}", "assertion.aud") from None
        except jwt.InvalidIssuerError:
            raise InvalidInput("must be the service account's email", "assertion.iss") from None
        except jwt.PyJWTError as exc:
            raise InvalidInput(str(exc), "assertion") from None
        now = clock.now_us() // 1_000_000
        iat, exp = claims["iat"], claims["exp"]
        if not isinstance(iat, int) or not isinstance(exp, int):
            raise InvalidInput("iat and exp must be integers (seconds)", "assertion")
        if exp <= now:
            raise InvalidInput("has expired", "assertion.exp")
        if iat > now + LEEWAY_SECONDS:
            raise InvalidInput("is in the future", "assertion.iat")
        if exp - iat > MAX_ASSERTION_SECONDS:
            raise InvalidInput(f"may be at most {MAX_ASSERTION_SECONDS} s after iat", "assertion.exp")
        return JSONResponse(
            {"access_token": auth.issue(account, record.id), "token_type": "Bearer", "expires_in": auth.token_seconds}
        )

    async def wrong_method(request: Request) -> Response:
        return error(405, f"method {request.method} is not allowed here; POST a token request")

    return [
        Route("/oauth2/token", token, methods=["POST"]),
        Route("/oauth2/token", wrong_method, methods=["GET", "PUT", "PATCH", "DELETE"]),
    ]
