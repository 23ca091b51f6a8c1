"""One package per external API. Each translates its dialect to and from the core and hands
the bootstrap a `Face`: its routes, how it renders routing errors, its background work."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from starlette.responses import Response
from starlette.routing import BaseRoute

Background = Callable[[], Coroutine[Any, Any, None]]


@dataclass
class Face:
    name: str
    routes: list[BaseRoute] = field(default_factory=list)
    # Unknown paths and wrong methods under `prefix` are answered by `render_error(status, message)`.
    prefix: str | None = None
    render_error: Callable[[int, str], Response] | None = None
    # Started with the app, cancelled when it stops.
    background: list[Background] = field(default_factory=list)
