"""The registry as the pipeline and faces see it: cached lookups, credentials, access rules.

All registry writes go through here, so the caches stay true within one process.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from fleetlog.core.catalog import Catalog, EventType
from fleetlog.core.errors import Forbidden, InvalidInput, NotFound, Unauthenticated
from fleetlog.core.registry import (
    ApiKey,
    Device,
    DeviceChange,
    Principal,
    Project,
    Role,
    Tenant,
    check_name,
    hash_secret,
    new_secret,
    split_key,
    verify,
)
from fleetlog.ports.clock import Clock
from fleetlog.ports.registry import RegistryStore

OPERATOR_KEY_ID = "operator"
ChangeListener = Callable[[DeviceChange], Awaitable[None]]


class Directory:
    def __init__(self, registry: RegistryStore, clock: Clock, catalog: Catalog) -> None:
        self.registry = registry
        self._clock = clock
        self._catalog = catalog
        self._tenants: dict[str, Tenant] = {}
        self._devices: OrderedDict[tuple[str, str], Device] = OrderedDict()
        self._principals: OrderedDict[str, Principal] = OrderedDict()
        self._types: dict[str, dict[str, EventType]] = {}
        self._listeners: list[ChangeListener] = []

    def on_device_change(self, listener: ChangeListener) -> None:
        """Call `listener` after each device is created or changed, and before it is removed
        (so that events about the removal can still name it)."""
        self._listeners.append(listener)

    async def _changed(self, change: DeviceChange) -> None:
        for listener in self._listeners:
            await listener(change)

    # -- credentials -----------------------------------------------------------------------

    async def ensure_operator_key(self, token: str | None) -> str | None:
        """Create the operator credential on first start. Returns the new token if one was
        made (the caller shows it once), None if one exists already."""
        existing = await self.registry.get_key(OPERATOR_KEY_ID)
        if existing is not None:
            if token is not None and not verify(existing, token):
                await self.registry.delete_key(OPERATOR_KEY_ID)  # the configured token wins
            else:
                return None
        made = token is None
        if token is None:
            token, _ = new_secret(OPERATOR_KEY_ID)
        await self.registry.create_key(
            ApiKey(
                id=OPERATOR_KEY_ID,
                tenant=None,
                project=None,
                role=Role.ADMIN,
                secret_hash=hash_secret(token),
                name="operator",
                created=self._clock.now_us(),
            )
        )
        self._principals.clear()
        return token if made else None

    async def authenticate(self, token: str | None) -> Principal:
        if not token:
            raise Unauthenticated("credentials missing")
        cached = self._principals.get(token)
        if cached is not None:
            return cached
        key_id = split_key(token) or OPERATOR_KEY_ID
        key = await self.registry.get_key(key_id)
        if key is None or not verify(key, token):
            raise Unauthenticated("unknown or revoked API key")
        principal = Principal(key_id=key.id, role=key.role, tenant=key.tenant, project=key.project)
        self._principals[token] = principal
        if len(self._principals) > 10_000:
            self._principals.popitem(last=False)
        return principal

    async def create_key(
        self, principal: Principal, tenant: str | None, project: str | None, role: Role, name: str = ""
    ) -> tuple[str, ApiKey]:
        if tenant is None:
            if not principal.is_operator:
                raise Forbidden("only an operator can create operator keys")
        else:
            await self.require(principal, tenant, project, Role.ADMIN)
            if principal.project is not None and project != principal.project:
                raise Forbidden("a project key can only create keys for its own project")
            if project is not None:
                await self.project(tenant, project)
        if role > principal.role:
            raise Forbidden("cannot create a key with more rights than your own")
        token, key_id = new_secret()
        key = ApiKey(
            id=key_id,
            tenant=tenant,
            project=project,
            role=role,
            secret_hash=hash_secret(token),
            name=name,
            created=self._clock.now_us(),
        )
        await self.registry.create_key(key)
        return token, key

    async def delete_key(self, principal: Principal, tenant: str, key_id: str) -> None:
        """Revoke a key of `tenant`. A key of another tenant is "not found" here."""
        await self.require(principal, tenant, None, Role.ADMIN)
        key = await self.registry.get_key(key_id)
        if key is None or key.tenant != tenant:
            raise NotFound("key", key_id)
        await self.require(principal, tenant, key.project, Role.ADMIN)
        await self.registry.delete_key(key_id)
        self._principals.clear()

    # -- access rules ----------------------------------------------------------------------

    async def require(self, principal: Principal, tenant: str, project: str | None, role: Role) -> Tenant:
        """The tenant, if `principal` may act on it (and on `project`, if given) with `role`.

        A key of another tenant learns nothing: it gets NotFound as if the tenant did not exist.
        """
        if not principal.sees_tenant(tenant):
            raise Forbidden(f"this key has no access to tenant {tenant!r}")
        found = await self.tenant(tenant)
        self.check_rights(principal, tenant, project, role)
        return found

    @staticmethod
    def check_rights(principal: Principal, tenant: str, project: str | None, role: Role) -> None:
        """`require` for a tenant already known to exist: no lookup, nothing to await."""
        if not principal.sees_tenant(tenant):
            raise Forbidden(f"this key has no access to tenant {tenant!r}")
        if project is not None and not principal.sees_project(tenant, project):
            raise Forbidden(f"this key has no access to project {project!r}")
        if not principal.may(role):
            raise Forbidden(f"this key may not {_verb(role)}")

    def visible_projects(self, principal: Principal, requested: tuple[str, ...]) -> tuple[str, ...]:
        if principal.project is None:
            return requested
        if requested and any(p != principal.project for p in requested):
            raise Forbidden(f"this key has access to project {principal.project!r} only")
        return (principal.project,)

    # -- cached reads ----------------------------------------------------------------------

    # The ingest hot path asks these first: a cache hit costs no coroutine.
    def cached_tenant(self, tenant_id: str) -> Tenant | None:
        return self._tenants.get(tenant_id)

    def cached_device(self, tenant_id: str, device_id: str) -> Device | None:
        return self._devices.get((tenant_id, device_id))

    def cached_types(self, tenant_id: str) -> dict[str, EventType] | None:
        return self._types.get(tenant_id)

    async def tenant(self, tenant_id: str) -> Tenant:
        found = self._tenants.get(tenant_id)
        if found is None:
            found = await self.registry.get_tenant(tenant_id)
            if found is None:
                raise NotFound("tenant", tenant_id)
            self._tenants[tenant_id] = found
        return found

    async def project(self, tenant_id: str, project_id: str) -> Project:
        found = await self.registry.get_project(tenant_id, project_id)
        if found is None:
            raise NotFound("project", project_id)
        return found

    async def device(self, tenant_id: str, device_id: str) -> Device:
        key = (tenant_id, device_id)
        found = self._devices.get(key)
        if found is None:
            found = await self.registry.get_device(tenant_id, device_id)
            if found is None:
                raise NotFound("device", device_id)
            self._devices[key] = found
            if len(self._devices) > 100_000:
                self._devices.popitem(last=False)
        return found

    async def custom_types(self, tenant_id: str) -> dict[str, EventType]:
        types = self._types.get(tenant_id)
        if types is None:
            types = {t.name: t for t in await self.registry.list_event_types(tenant_id)}
            self._types[tenant_id] = types
        return types

    # -- writes (operators and tenant admins) ----------------------------------------------

    async def create_tenant(self, tenant: Tenant) -> Tenant:
        check_name(tenant.id, "id")
        if tenant.retention_days < 1:
            raise InvalidInput("must be at least 1", "retention_days")
        tenant.created = self._clock.now_us()
        return await self.registry.create_tenant(tenant)

    async def update_tenant(self, tenant: Tenant) -> Tenant:
        if tenant.retention_days < 1:
            raise InvalidInput("must be at least 1", "retention_days")
        self._tenants.pop(tenant.id, None)
        return await self.registry.update_tenant(tenant)

    async def create_project(self, project: Project) -> Project:
        check_name(project.id, "id")
        await self.tenant(project.tenant)
        project.created = self._clock.now_us()
        return await self.registry.create_project(project)

    async def delete_project(self, tenant_id: str, project_id: str) -> None:
        if not await self.registry.delete_project(tenant_id, project_id):
            raise NotFound("project", project_id)

    async def create_device(self, device: Device) -> Device:
        check_name(device.id, "id")
        await self.project(device.tenant, device.project)
        device.created = device.updated = self._clock.now_us()
        created = await self.registry.create_device(device)
        await self._changed(DeviceChange(None, created))
        return created

    async def update_device(self, device: Device) -> Device:
        before = await self.device(device.tenant, device.id)
        device.updated = self._clock.now_us()
        self._devices.pop((device.tenant, device.id), None)
        updated = await self.registry.update_device(device)
        await self._changed(DeviceChange(before, updated))
        return updated

    async def delete_device(self, tenant_id: str, device_id: str) -> None:
        before = await self.device(tenant_id, device_id)
        await self._changed(DeviceChange(before, None))
        self._devices.pop((tenant_id, device_id), None)
        if not await self.registry.delete_device(tenant_id, device_id):
            raise NotFound("device", device_id)

    async def put_event_type(self, tenant_id: str, event_type: EventType) -> EventType:
        if self._catalog.get(event_type.name) is not None:
            raise InvalidInput(f"{event_type.name!r} is a built-in type", "name")
        Catalog.check_custom_schema(event_type.schema)
        self._types.pop(tenant_id, None)
        return await self.registry.put_event_type(tenant_id, event_type)

    async def delete_event_type(self, tenant_id: str, name: str) -> None:
        self._types.pop(tenant_id, None)
        if not await self.registry.delete_event_type(tenant_id, name):
            raise NotFound("event type", name)

    def forget(self, **_: Any) -> None:
        """Drop every cache (after a change made behind the directory's back)."""
        self._tenants.clear()
        self._devices.clear()
        self._principals.clear()
        self._types.clear()


def _verb(role: Role) -> str:
    return {Role.READ: "read", Role.WRITE: "write", Role.ADMIN: "administer"}[role]
