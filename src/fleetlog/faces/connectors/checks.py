"""Checks shared by both connector APIs: the endpoint URL, custom headers, event type names and
label filters. Each failure names the field, in the caller's own spelling."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from fleetlog.core.catalog import Catalog
from fleetlog.core.errors import InvalidInput
from fleetlog.delivery.targets import TargetPolicy, is_ip, resolve
from fleetlog.pipeline.directory import Directory

MAX_URL = 2048
MAX_HEADERS = 32
MAX_HEADER_VALUE = 1024
MAX_LIST = 100
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,128}")
# Set by the engine on every push: a custom header may not replace them.
RESERVED_HEADERS = frozenset(
    {
        "content-type",
        "content-length",
        "content-encoding",
        "transfer-encoding",
        "host",
        "connection",
        "x-dt-signature",
        "x-fleetlog-signature",
        "x-fleetlog-event-id",
        "x-fleetlog-webhook",
    }
)


def check_url(url: str, field: str) -> str:
    if len(url) > MAX_URL:
        raise InvalidInput(f"must be at most {MAX_URL} characters", field)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidInput(f"not a valid URL: {exc}", field) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput("must be an absolute http:// or https:// URL", field)
    if port == 0:
        raise InvalidInput("port 0 cannot be reached", field)
    if any(c in url for c in "\r\n\t ") or parts.fragment:
        raise InvalidInput("must not contain spaces, control characters or a #fragment", field)
    return url


async def check_target(url: str, field: str, targets: TargetPolicy) -> None:
    """The URL's host must not be, or resolve now to, a network pushes may not go to (each
    push checks again, as a name may point elsewhere later)."""
    if not targets:
        return
    parts = urlsplit(url)
    host = parts.hostname or ""
    if is_ip(host):
        addresses = [host]
    else:
        addresses = await resolve(host, parts.port or (443 if parts.scheme == "https" else 80))
    for address in addresses:
        if targets.denies(address):
            where = host if address == host else f"{host} resolves to {address}, which"
            raise InvalidInput(f"{where} is in a network pushes may not go to (FLEETLOG_DELIVERY_DENY_NETWORKS)", field)


def check_headers(headers: dict[str, str], field: str) -> dict[str, str]:
    if len(headers) > MAX_HEADERS:
        raise InvalidInput(f"at most {MAX_HEADERS} headers", field)
    seen: set[str] = set()
    for name, value in headers.items():
        where = f"{field}.{name}"
        if not _TOKEN.fullmatch(name):
            raise InvalidInput("not a valid header name", where)
        lower = name.lower()
        if lower in RESERVED_HEADERS:
            raise InvalidInput("set by fleetlog on every push; cannot be replaced", where)
        if lower in seen:
            raise InvalidInput("given twice (header names are case-insensitive)", where)
        seen.add(lower)
        if len(value) > MAX_HEADER_VALUE or any(c in value for c in "\r\n\0"):
            raise InvalidInput(f"must be at most {MAX_HEADER_VALUE} characters, without line breaks", where)
    return headers


async def check_types(names: list[str], tenant: str, catalog: Catalog, directory: Directory, field: str) -> list[str]:
    if len(names) > MAX_LIST:
        raise InvalidInput(f"at most {MAX_LIST} event types", field)
    custom = await directory.custom_types(tenant)
    for i, name in enumerate(names):
        if catalog.get(name, custom) is None:
            raise InvalidInput(f"unknown event type {name!r}", f"{field}[{i}]")
    return list(dict.fromkeys(names))


def check_strings(values: list[str], field: str, what: str) -> list[str]:
    if len(values) > MAX_LIST:
        raise InvalidInput(f"at most {MAX_LIST} {what}", field)
    for i, value in enumerate(values):
        if not value or len(value) > 128:
            raise InvalidInput(f"each of the {what} must be 1-128 characters", f"{field}[{i}]")
    return list(dict.fromkeys(values))


def parse_label_filters(values: list[str], field: str) -> list[tuple[str, str | None]]:
    """`key=value` (the label has this value) or `key` (the device has the label)."""
    check_strings(values, field, "label filters")
    out: list[tuple[str, str | None]] = []
    for i, raw in enumerate(values):
        key, sep, value = raw.partition("=")
        if not key:
            raise InvalidInput("must be key=value or key", f"{field}[{i}]")
        out.append((key, value if sep else None))
    return out
