"""Registry ids (text) to row keys (integers), cached: events store integers, APIs speak text."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from fleetlog.core.errors import NotFound


class KeyCache:
    """Only ever touched from the event loop. Entries are immutable: a deleted project or
    device is forgotten here, and its ids, if created again, get new keys."""

    def __init__(self, max_devices: int = 200_000) -> None:
        self._tenants: dict[str, int] = {}
        self._projects: dict[tuple[int, str], int] = {}
        self._devices: OrderedDict[tuple[int, str], int] = OrderedDict()
        self._max_devices = max_devices

    async def tenant(self, conn: Any, tenant: str) -> int:
        pk = self._tenants.get(tenant)
        if pk is None:
            pk = await conn.fetchval("SELECT pk FROM tenants WHERE id = $1", tenant)
            if pk is None:
                raise NotFound("tenant", tenant)
            self._tenants[tenant] = pk
        return pk

    async def project(self, conn: Any, tenant_pk: int, project: str) -> int:
        key = (tenant_pk, project)
        pk = self._projects.get(key)
        if pk is None:
            pk = await conn.fetchval("SELECT pk FROM projects WHERE tenant = $1 AND id = $2", tenant_pk, project)
            if pk is None:
                raise NotFound("project", project)
            self._projects[key] = pk
        return pk

    async def device(self, conn: Any, tenant_pk: int, device: str) -> int:
        key = (tenant_pk, device)
        pk = self._devices.get(key)
        if pk is None:
            pk = await conn.fetchval("SELECT pk FROM devices WHERE tenant = $1 AND id = $2", tenant_pk, device)
            if pk is None:
                raise NotFound("device", device)
            self._devices[key] = pk
            if len(self._devices) > self._max_devices:
                self._devices.popitem(last=False)
        return pk

    def forget_all(self) -> None:
        """After another process changed the registry: ids may now have other keys."""
        self._tenants.clear()
        self._projects.clear()
        self._devices.clear()

    def forget_project(self, tenant_pk: int, project: str) -> None:
        self._projects.pop((tenant_pk, project), None)

    def forget_device(self, tenant_pk: int, device: str) -> None:
        self._devices.pop((tenant_pk, device), None)
