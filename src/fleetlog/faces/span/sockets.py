"""What the Span WebSockets share: the three ways to authenticate, and running until the
client goes away.

Authentication (CONTRACTS.md): the `X-API-Token` header, the `api_token` query parameter, or
(when neither is given) a first JSON message carrying the token, as the vendor's CLI sends it:
`{"jwt": "<token>", "collectionId": "...", "deviceId": "...", "gatewayId": "..."}` (`token` is
accepted as well as `jwt`). A refused credential closes the socket with code 1008 (policy
violation); before the handshake that is an HTTP 403.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

import msgspec
from starlette.websockets import WebSocket, WebSocketDisconnect

from fleetlog.core.errors import FleetlogError
from fleetlog.faces.span import access
from fleetlog.faces.span.errors import GRPC_CODES, message_of, status_of
from fleetlog.pipeline.directory import Directory

FIRST_MESSAGE_SECONDS = 10.0
POLICY_VIOLATION = 1008
_json = msgspec.json.Encoder()


@dataclass
class Session:
    caller: access.Caller
    first: dict[str, Any] = field(default_factory=dict)  # the first message, if it carried the token


async def refuse(ws: WebSocket, exc: FleetlogError | str) -> None:
    """Close with a reason; after the handshake, first say why in Span's error shape."""
    if isinstance(exc, str):
        status, text = 400, exc
    else:
        status, (text, _) = status_of(exc), message_of(exc)
    if ws.client_state.name == "CONNECTED":
        with contextlib.suppress(Exception):
            await ws.send_text(
                _json.encode({"code": GRPC_CODES.get(status, 2), "message": text, "details": []}).decode()
            )
    with contextlib.suppress(Exception):
        await ws.close(POLICY_VIOLATION, reason=text[:120])


async def open_session(ws: WebSocket, directory: Directory) -> Session | None:
    """Authenticate; the socket is accepted when this returns a session, closed when None."""
    token = access.token_of(ws)
    first: dict[str, Any] = {}
    if token is None:
        await ws.accept()
        try:
            raw = await asyncio.wait_for(ws.receive_text(), FIRST_MESSAGE_SECONDS)
            decoded = msgspec.json.decode(raw)
        except (TimeoutError, msgspec.DecodeError, KeyError, WebSocketDisconnect, RuntimeError):
            await refuse(ws, 'send the API token: an X-API-Token header, ?api_token=, or a first message {"jwt": ...}')
            return None
        if not isinstance(decoded, dict):
            await refuse(ws, 'the first message must be a JSON object with the token in "jwt"')
            return None
        first = decoded
        token = first.get("jwt") or first.get("token") or None
        if not isinstance(token, str):
            await refuse(ws, 'the first message has no token in "jwt"')
            return None
    try:
        caller = await access.caller(directory, token)
    except FleetlogError as exc:
        await refuse(ws, exc)
        return None
    return Session(caller, first)


async def accept(ws: WebSocket) -> None:
    if ws.client_state.name == "CONNECTING":
        await ws.accept()


KEEPALIVE = '{"type":"keepalive"}'


async def confirm(ws: WebSocket, session: Session) -> None:
    """After a first-message login, one keep-alive frame says the stream is live (it has no
    `collectionId`, so the vendor's clients skip it)."""
    if session.first:
        await ws.send_text(KEEPALIVE)


async def run_until_closed(ws: WebSocket, *work: Coroutine[Any, Any, None]) -> None:
    """Run the senders until the client disconnects (or a sender stops), then stop them all."""

    async def reader() -> None:
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                return

    tasks = [asyncio.ensure_future(c) for c in (reader(), *work)]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        # asyncio.wait, not gather: if this handler is itself being cancelled, the error that
        # propagates must be its own (the server's), not a child's.
        await asyncio.wait(tasks)
    with contextlib.suppress(Exception):
        await ws.close()
