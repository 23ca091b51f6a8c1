"""One HTTP POST per push, with aiohttp (STACK.md: ~20x faster than httpx for this).

One session for the whole engine. Its pool has no per-host limit: concurrency is bounded by
each connector's lanes instead, so two connectors on one host never wait for each other.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from fleetlog.delivery.targets import TargetDenied, TargetPolicy, is_ip

EXCERPT_BYTES = 512  # of a failed answer, kept for the operator
DRAIN_BYTES = 64 * 1024
USER_AGENT = "fleetlog-delivery/0.1"


@dataclass(frozen=True, slots=True)
class Attempt:
    """What one push got: `status` 0 means no HTTP answer (refused, timeout, reset...)."""

    status: int
    latency: float  # seconds
    error: str = ""
    excerpt: str = ""
    retry_after: str | None = None

    @property
    def delivered(self) -> bool:
        return self.status == 200  # the vendor rule: only 200 takes an event off the queue


class Pusher(Protocol):
    """What the workers push with: `Sender` here, or `SenderProcess` from a child process."""

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> Attempt: ...

    async def close(self) -> None: ...


class _GuardedResolver(AbstractResolver):
    """Resolves names as usual, then keeps only the addresses pushes may go to."""

    def __init__(self, targets: TargetPolicy) -> None:
        self._inner = aiohttp.DefaultResolver()
        self._targets = targets

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        allowed = [r for r in found if not self._targets.denies(r["host"])]
        if not allowed:
            raise TargetDenied(
                f"{host} resolves only to networks pushes may not go to (FLEETLOG_DELIVERY_DENY_NETWORKS)"
            )
        return allowed

    async def close(self) -> None:
        await self._inner.close()


class Sender:
    def __init__(self, timeout_seconds: float, targets: TargetPolicy | None = None) -> None:
        """`targets`: the networks pushes may not go to (none by default)."""
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._session: aiohttp.ClientSession | None = None
        self._targets = targets or TargetPolicy()

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    limit=0, ttl_dns_cache=300, resolver=_GuardedResolver(self._targets) if self._targets else None
                ),
                timeout=self._timeout,
                headers={"User-Agent": USER_AGENT},
                auto_decompress=False,
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> Attempt:
        started = time.perf_counter()
        if self._targets:  # a name is checked by the resolver; an address literal is not resolved
            host = urlsplit(url).hostname or ""
            if is_ip(host) and self._targets.denies(host):
                return Attempt(0, 0.0, error=f"cannot connect: {host} is in a network pushes may not go to")
        try:
            async with self.session.post(url, data=body, headers=headers, allow_redirects=False) as response:
                status = response.status
                excerpt = await _drain(response)
                if status == 200:
                    return Attempt(status, time.perf_counter() - started)
                return Attempt(
                    status,
                    time.perf_counter() - started,
                    error=f"HTTP {status} {response.reason or ''}".strip(),
                    excerpt=excerpt[:EXCERPT_BYTES].decode("utf-8", "replace"),
                    retry_after=response.headers.get("Retry-After"),
                )
        except TimeoutError:
            return Attempt(0, time.perf_counter() - started, error=f"timed out after {self._timeout.total} s")
        except aiohttp.ClientConnectorError as exc:
            return Attempt(0, time.perf_counter() - started, error=f"cannot connect: {exc.os_error or exc}")
        except (aiohttp.ClientError, ValueError, OSError) as exc:
            return Attempt(0, time.perf_counter() - started, error=f"{type(exc).__name__}: {exc}")


async def _drain(response: aiohttp.ClientResponse) -> bytes:
    """Read a small answer to its end (so the connection is kept alive); a large one is cut
    off and its connection closed, so a receiver cannot make us hold much."""
    head = b""
    while len(head) < DRAIN_BYTES and not response.content.at_eof():
        chunk = await response.content.read(DRAIN_BYTES - len(head))
        if not chunk:
            break
        head += chunk
    return head
