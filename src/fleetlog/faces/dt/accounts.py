"""Service accounts and their keys, kept as documents.

A key's secret is never stored. It is derived from the installation's DT secret key
(HMAC-SHA256 of the key id), so the token endpoint can check the HS256 signature of a client's
JWT assertion; the document keeps only a SHA-256 hash of the secret (checked for Basic auth, and
before a derived secret is trusted). A database copy alone reveals no secret.

Roles are DT's names. A `project.*` role gives that right in the account's own project; an
`organization.*` role gives it in every project of the tenant.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os
import secrets
from pathlib import Path
from typing import Any, Final

import msgspec

from fleetlog.core.errors import InvalidInput, NotFound
from fleetlog.core.registry import Principal, Role
from fleetlog.ports.clock import Clock
from fleetlog.ports.documents import DocumentStore

ACCOUNT_KIND: Final = "dt.service_account"
KEY_KIND: Final = "dt.key"  # installation-wide index (tenant ""): key id -> its account
SECRET_FILE: Final = "dt-secret-key"
ROLES: Final[dict[str, tuple[Role, bool]]] = {
    "roles/project.user": (Role.READ, False),
    "roles/project.developer": (Role.WRITE, False),
    "roles/project.admin": (Role.ADMIN, False),
    "roles/organization.user": (Role.READ, True),
    "roles/organization.developer": (Role.WRITE, True),
    "roles/organization.admin": (Role.ADMIN, True),
}
DEFAULT_ROLE: Final = "roles/project.developer"
_ALPHABET: Final = "0123456789abcdefghijklmnopqrstuv"  # DT ids: 20 characters of base32hex


def new_id(prefix: str = "") -> str:
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(20))


class ServiceAccount(msgspec.Struct, kw_only=True):
    id: str
    tenant: str
    project: str
    display_name: str = ""
    basic_auth: bool = False
    roles: list[str] = []
    keys: list[str] = []
    created: int = 0
    updated: int = 0

    @property
    def email(self) -> str:
        return f"{self.id}@{self.project}.serviceaccount.fleetlog"

    @property
    def role(self) -> Role:
        return max((ROLES[r][0] for r in self.roles if r in ROLES), default=Role.READ)

    @property
    def tenant_wide(self) -> bool:
        return any(ROLES[r][1] for r in self.roles if r in ROLES)

    def principal(self, key_id: str) -> Principal:
        return Principal(
            key_id=f"dt:{key_id}",
            role=self.role,
            tenant=self.tenant,
            project=None if self.tenant_wide else self.project,
        )


class KeyRecord(msgspec.Struct, kw_only=True):
    id: str
    tenant: str
    account: str
    secret_hash: str
    created: int = 0


def check_roles(roles: list[str]) -> list[str]:
    for index, role in enumerate(roles):
        if role not in ROLES:
            raise InvalidInput(f"unknown role {role!r}; one of {', '.join(ROLES)}", f"roles[{index}]")
    return list(dict.fromkeys(roles)) or [DEFAULT_ROLE]


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def load_master_key(configured: str | None, data_dir: Path) -> bytes:
    """The configured DT secret key, else the one in <data_dir>/dt-secret-key (made on first use)."""
    if configured:
        return configured.encode()
    path = data_dir / SECRET_FILE
    if path.exists():
        return path.read_text().strip().encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(value + "\n")
    return value.encode()


class Accounts:
    def __init__(self, documents: DocumentStore, clock: Clock, master_key: Any) -> None:
        """`master_key`: a callable returning the installation's DT secret key (read lazily)."""
        self._docs = documents
        self._clock = clock
        self._master_key = master_key
        self._master: bytes | None = None
        self._lock = asyncio.Lock()  # read-modify-write of an account's key list

    def _derive(self, purpose: str, ident: str) -> bytes:
        if self._master is None:
            self._master = self._master_key()
        assert self._master is not None
        return hmac.new(self._master, f"{purpose}:{ident}".encode(), hashlib.sha256).digest()

    def secret_of(self, key: KeyRecord) -> str | None:
        """The key's secret (derived), or None if it does not match the stored hash (the DT
        secret key changed since the key was made)."""
        secret = base64.urlsafe_b64encode(self._derive("dt-key", key.id)).decode().rstrip("=")
        return secret if hmac.compare_digest(_hash(secret), key.secret_hash) else None

    def token_key(self) -> bytes:
        """The key that signs the access tokens this installation issues."""
        return self._derive("dt-access-token", "v1")

    # -- accounts ---------------------------------------------------------------------------

    async def create(
        self, tenant: str, project: str, display_name: str, basic_auth: bool, roles: list[str]
    ) -> ServiceAccount:
        now = self._clock.now_us()
        account = ServiceAccount(
            id=new_id(),
            tenant=tenant,
            project=project,
            display_name=display_name,
            basic_auth=basic_auth,
            roles=check_roles(roles),
            created=now,
            updated=now,
        )
        await self._docs.put(tenant, ACCOUNT_KIND, account.id, msgspec.to_builtins(account))
        return account

    async def get(self, tenant: str, account_id: str) -> ServiceAccount | None:
        doc = await self._docs.get(tenant, ACCOUNT_KIND, account_id)
        return None if doc is None else msgspec.convert(doc, ServiceAccount)

    async def in_project(self, tenant: str, project: str, account_id: str) -> ServiceAccount:
        account = await self.get(tenant, account_id)
        if account is None or account.project != project:
            raise NotFound("service account", account_id)
        return account

    async def of_project(self, tenant: str, project: str) -> list[ServiceAccount]:
        out: list[ServiceAccount] = []
        after: str | None = None
        while True:
            rows = await self._docs.list(tenant, ACCOUNT_KIND, after=after, limit=1000)
            out += [a for a in (msgspec.convert(doc, ServiceAccount) for _, _, doc in rows) if a.project == project]
            if len(rows) < 1000:
                return out
            after = rows[-1][1]

    async def save(self, account: ServiceAccount) -> ServiceAccount:
        account.updated = self._clock.now_us()
        await self._docs.put(account.tenant, ACCOUNT_KIND, account.id, msgspec.to_builtins(account))
        return account

    async def delete(self, account: ServiceAccount) -> None:
        async with self._lock:
            for key_id in account.keys:
                await self._docs.delete("", KEY_KIND, key_id)
            await self._docs.delete(account.tenant, ACCOUNT_KIND, account.id)

    # -- keys -------------------------------------------------------------------------------

    async def create_key(self, account: ServiceAccount) -> tuple[KeyRecord, str]:
        async with self._lock:
            fresh = await self.in_project(account.tenant, account.project, account.id)
            record = KeyRecord(
                id=new_id(), tenant=account.tenant, account=account.id, secret_hash="", created=self._clock.now_us()
            )
            secret = base64.urlsafe_b64encode(self._derive("dt-key", record.id)).decode().rstrip("=")
            record.secret_hash = _hash(secret)
            await self._docs.put("", KEY_KIND, record.id, msgspec.to_builtins(record))
            fresh.keys = [*fresh.keys, record.id]
            await self.save(fresh)
        return record, secret

    async def key(self, key_id: str) -> KeyRecord | None:
        doc = await self._docs.get("", KEY_KIND, key_id)
        return None if doc is None else msgspec.convert(doc, KeyRecord)

    async def keys(self, account: ServiceAccount) -> list[KeyRecord]:
        found = [await self.key(k) for k in account.keys]
        return [k for k in found if k is not None]

    async def delete_key(self, account: ServiceAccount, key_id: str) -> None:
        async with self._lock:
            fresh = await self.in_project(account.tenant, account.project, account.id)
            if key_id not in fresh.keys:
                raise NotFound("key", key_id)
            await self._docs.delete("", KEY_KIND, key_id)
            fresh.keys = [k for k in fresh.keys if k != key_id]
            await self.save(fresh)

    async def verify(self, key_id: str, secret: str) -> tuple[ServiceAccount, KeyRecord] | None:
        """The account and key, if `secret` is this key's secret."""
        record = await self.key(key_id)
        if record is None or not hmac.compare_digest(_hash(secret), record.secret_hash):
            return None
        account = await self.get(record.tenant, record.account)
        return None if account is None else (account, record)
