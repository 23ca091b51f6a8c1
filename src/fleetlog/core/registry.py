"""Tenants, projects, devices and API keys: the registry model and its access rules."""

from __future__ import annotations

import hashlib
import re
import secrets
from enum import IntEnum
from typing import Any

import msgspec

from fleetlog.core.errors import InvalidInput

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}")
DEFAULT_RETENTION_DAYS = 31


class Role(IntEnum):
    """What a key may do. Each role includes the ones below it."""

    READ = 1
    WRITE = 2
    ADMIN = 3


class Tenant(msgspec.Struct, kw_only=True):
    id: str
    name: str = ""
    retention_days: int = DEFAULT_RETENTION_DAYS
    license_valid: bool = True
    created: int = 0


class Project(msgspec.Struct, kw_only=True):
    id: str
    tenant: str
    name: str = ""
    created: int = 0


class Device(msgspec.Struct, kw_only=True):
    id: str
    tenant: str
    project: str
    type: str = ""
    labels: dict[str, str] = {}
    attrs: dict[str, Any] = {}
    created: int = 0
    updated: int = 0


class DeviceChange(msgspec.Struct, frozen=True):
    """A change to a device in the registry: before is None for a new device, after is None
    for a removed one."""

    before: Device | None
    after: Device | None

    @property
    def labels_diff(self) -> tuple[dict[str, str], dict[str, str], list[str]]:
        """(added, modified, removed) labels, as DT's labelsChanged event reports them."""
        old = self.before.labels if self.before else {}
        new = self.after.labels if self.after else {}
        added = {k: v for k, v in new.items() if k not in old}
        modified = {k: v for k, v in new.items() if k in old and old[k] != v}
        removed = sorted(k for k in old if k not in new)
        return added, modified, removed


class ApiKey(msgspec.Struct, kw_only=True):
    """A stored key. Only the hash of the secret is kept."""

    id: str
    tenant: str | None  # None: an operator key for every tenant
    project: str | None  # None: every project of the tenant
    role: Role
    secret_hash: str
    name: str = ""
    created: int = 0


KEY_PREFIX = "fl_"


def new_secret(key_id: str | None = None) -> tuple[str, str]:
    """A fresh key (`fl_<id>_<secret>`) and its id."""
    key_id = key_id or secrets.token_hex(6)
    return f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(24)}", key_id


def split_key(token: str) -> str | None:
    """The key id inside a token, or None if the token is not shaped like one of ours."""
    if not token.startswith(KEY_PREFIX):
        return None
    key_id, sep, secret = token[len(KEY_PREFIX) :].partition("_")
    return key_id if sep and key_id and secret else None


def hash_secret(token: str) -> str:
    # Keys are 190 random bits: a fast hash is enough; a slow KDF would only cost latency.
    return hashlib.sha256(token.encode()).hexdigest()


def verify(key: ApiKey, token: str) -> bool:
    return secrets.compare_digest(key.secret_hash, hash_secret(token))


class Principal(msgspec.Struct, frozen=True):
    """Who is calling: an operator (all tenants) or a key scoped to a tenant or project."""

    key_id: str
    role: Role
    tenant: str | None = None
    project: str | None = None

    @property
    def is_operator(self) -> bool:
        return self.tenant is None

    def sees_tenant(self, tenant: str) -> bool:
        return self.tenant is None or self.tenant == tenant

    def sees_project(self, tenant: str, project: str) -> bool:
        return self.sees_tenant(tenant) and (self.project is None or self.project == project)

    def may(self, role: Role) -> bool:
        return self.role >= role


def check_name(value: str, what: str) -> str:
    if not NAME_RE.fullmatch(value):
        raise InvalidInput(
            "must be 1-64 characters of letters, digits, '_', '-' or '.', starting with a letter or digit",
            what,
        )
    return value
