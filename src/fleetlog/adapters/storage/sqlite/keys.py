"""Registry ids (text) to row keys (integers), cached: events store integers, APIs speak text."""

from __future__ import annotations

import sqlite3
from collections import OrderedDict

from fleetlog.core.errors import NotFound


class KeyCache:
    """Thread-safe enough under the GIL: entries are immutable and only ever replaced whole."""

    def __init__(self, max_devices: int = 200_000) -> None:
        self._tenants: dict[str, int] = {}
        self._projects: dict[tuple[int, str], int] = {}
        self._devices: OrderedDict[tuple[int, str], int] = OrderedDict()
        self._max_devices = max_devices

    def tenant(self, conn: sqlite3.Connection, tenant: str) -> int:
        pk = self._tenants.get(tenant)
        if pk is None:
            row = conn.execute("SELECT pk FROM tenants WHERE id = ?", (tenant,)).fetchone()
            if row is None:
                raise NotFound("tenant", tenant)
            pk = self._tenants[tenant] = row[0]
        return pk

    def project(self, conn: sqlite3.Connection, tenant_pk: int, project: str) -> int:
        key = (tenant_pk, project)
        pk = self._projects.get(key)
        if pk is None:
            row = conn.execute("SELECT pk FROM projects WHERE tenant = ? AND id = ?", key).fetchone()
            if row is None:
                raise NotFound("project", project)
            pk = self._projects[key] = row[0]
        return pk

    def device(self, conn: sqlite3.Connection, tenant_pk: int, device: str) -> int:
        key = (tenant_pk, device)
        pk = self._devices.get(key)
        if pk is None:
            row = conn.execute("SELECT pk FROM devices WHERE tenant = ? AND id = ?", key).fetchone()
            if row is None:
                raise NotFound("device", device)
            pk = row[0]
            self._devices[key] = pk
            if len(self._devices) > self._max_devices:
                self._devices.popitem(last=False)
        return pk

    def forget_tenant(self, tenant: str) -> None:
        pk = self._tenants.pop(tenant, None)
        if pk is not None:
            for key in [k for k in self._projects if k[0] == pk]:
                del self._projects[key]
            for dkey in [k for k in self._devices if k[0] == pk]:
                del self._devices[dkey]

    def forget_project(self, tenant_pk: int, project: str) -> None:
        self._projects.pop((tenant_pk, project), None)

    def forget_device(self, tenant_pk: int, device: str) -> None:
        self._devices.pop((tenant_pk, device), None)
