"""The SQLite registry: tenants, projects, devices, keys, tenant event types, settings."""

from __future__ import annotations

import json
import sqlite3
from typing import Any, TypeVar

import msgspec

from fleetlog.adapters.storage.sqlite.keys import KeyCache
from fleetlog.adapters.storage.sqlite.readers import Readers
from fleetlog.adapters.storage.sqlite.writer import Writer
from fleetlog.core.catalog import EventType
from fleetlog.core.errors import Conflict, NotFound
from fleetlog.core.registry import ApiKey, Device, Project, Tenant

S = TypeVar("S", bound=msgspec.Struct)
_enc = msgspec.msgpack.Encoder()


def _dec(kind: type[S], blob: bytes) -> S:
    return msgspec.msgpack.decode(blob, type=kind)


class SqliteRegistry:
    def __init__(self, writer: Writer, readers: Readers, keys: KeyCache) -> None:
        self._writer = writer
        self._readers = readers
        self._keys = keys

    # -- tenants ---------------------------------------------------------------------------

    async def create_tenant(self, tenant: Tenant) -> Tenant:
        def job(conn: sqlite3.Connection) -> Tenant:
            try:
                conn.execute("INSERT INTO tenants (id, doc) VALUES (?, ?)", (tenant.id, _enc.encode(tenant)))
            except sqlite3.IntegrityError:
                raise Conflict(f"tenant {tenant.id!r} already exists") from None
            return tenant

        return await self._writer.run(job)

    async def get_tenant(self, tenant_id: str) -> Tenant | None:
        row = await self._readers.run(
            lambda c: c.execute("SELECT doc FROM tenants WHERE id = ?", (tenant_id,)).fetchone()
        )
        return _dec(Tenant, row[0]) if row else None

    async def list_tenants(self) -> list[Tenant]:
        rows = await self._readers.run(lambda c: c.execute("SELECT doc FROM tenants ORDER BY id").fetchall())
        return [_dec(Tenant, r[0]) for r in rows]

    async def update_tenant(self, tenant: Tenant) -> Tenant:
        def job(conn: sqlite3.Connection) -> Tenant:
            cur = conn.execute("UPDATE tenants SET doc = ? WHERE id = ?", (_enc.encode(tenant), tenant.id))
            if cur.rowcount == 0:
                raise NotFound("tenant", tenant.id)
            return tenant

        return await self._writer.run(job)

    # -- projects --------------------------------------------------------------------------

    async def create_project(self, project: Project) -> Project:
        def job(conn: sqlite3.Connection) -> Project:
            tenant_pk = self._keys.tenant(conn, project.tenant)
            try:
                conn.execute(
                    "INSERT INTO projects (tenant, id, doc) VALUES (?, ?, ?)",
                    (tenant_pk, project.id, _enc.encode(project)),
                )
            except sqlite3.IntegrityError:
                raise Conflict(f"project {project.id!r} already exists") from None
            return project

        return await self._writer.run(job)

    async def get_project(self, tenant_id: str, project_id: str) -> Project | None:
        row = await self._readers.run(
            lambda c: c.execute(
                "SELECT p.doc FROM projects p JOIN tenants t ON t.pk = p.tenant WHERE t.id = ? AND p.id = ?",
                (tenant_id, project_id),
            ).fetchone()
        )
        return _dec(Project, row[0]) if row else None

    async def list_projects(self, tenant_id: str) -> list[Project]:
        rows = await self._readers.run(
            lambda c: c.execute(
                "SELECT p.doc FROM projects p JOIN tenants t ON t.pk = p.tenant WHERE t.id = ? ORDER BY p.id",
                (tenant_id,),
            ).fetchall()
        )
        return [_dec(Project, r[0]) for r in rows]

    async def delete_project(self, tenant_id: str, project_id: str) -> bool:
        def job(conn: sqlite3.Connection) -> bool:
            tenant_pk = self._keys.tenant(conn, tenant_id)
            row = conn.execute(
                "SELECT pk FROM projects WHERE tenant = ? AND id = ?", (tenant_pk, project_id)
            ).fetchone()
            if row is None:
                return False
            if conn.execute("SELECT 1 FROM devices WHERE project = ? LIMIT 1", (row[0],)).fetchone():
                raise Conflict(f"project {project_id!r} still has devices")
            conn.execute("DELETE FROM events WHERE project = ?", (row[0],))
            conn.execute("DELETE FROM projects WHERE pk = ?", (row[0],))
            self._keys.forget_project(tenant_pk, project_id)
            return True

        return await self._writer.run(job)

    # -- devices ---------------------------------------------------------------------------

    async def create_device(self, device: Device) -> Device:
        def job(conn: sqlite3.Connection) -> Device:
            tenant_pk = self._keys.tenant(conn, device.tenant)
            project_pk = self._keys.project(conn, tenant_pk, device.project)
            try:
                conn.execute(
                    "INSERT INTO devices (tenant, project, id, labels, doc) VALUES (?, ?, ?, ?, ?)",
                    (tenant_pk, project_pk, device.id, json.dumps(device.labels), _enc.encode(device)),
                )
            except sqlite3.IntegrityError:
                raise Conflict(f"device {device.id!r} already exists") from None
            return device

        return await self._writer.run(job)

    async def get_device(self, tenant_id: str, device_id: str) -> Device | None:
        row = await self._readers.run(
            lambda c: c.execute(
                "SELECT d.doc FROM devices d JOIN tenants t ON t.pk = d.tenant WHERE t.id = ? AND d.id = ?",
                (tenant_id, device_id),
            ).fetchone()
        )
        return _dec(Device, row[0]) if row else None

    async def list_devices(
        self,
        tenant_id: str,
        project_id: str | None = None,
        labels: tuple[tuple[str, str | None], ...] = (),
        after: str | None = None,
        limit: int = 1000,
    ) -> list[Device]:
        sql = "SELECT d.doc FROM devices d JOIN tenants t ON t.pk = d.tenant WHERE t.id = ?"
        params: list[Any] = [tenant_id]
        if project_id is not None:
            sql += " AND d.project = (SELECT pk FROM projects WHERE tenant = t.pk AND id = ?)"
            params.append(project_id)
        for key, value in labels:
            path = "$." + json.dumps(key)
            if value is None:
                sql += " AND json_type(d.labels, ?) IS NOT NULL"
                params.append(path)
            else:
                sql += " AND json_extract(d.labels, ?) = ?"
                params += [path, value]
        if after is not None:
            sql += " AND d.id > ?"
            params.append(after)
        sql += " ORDER BY d.id LIMIT ?"
        params.append(limit)
        rows = await self._readers.run(lambda c: c.execute(sql, params).fetchall())
        return [_dec(Device, r[0]) for r in rows]

    async def update_device(self, device: Device) -> Device:
        def job(conn: sqlite3.Connection) -> Device:
            tenant_pk = self._keys.tenant(conn, device.tenant)
            project_pk = self._keys.project(conn, tenant_pk, device.project)
            cur = conn.execute(
                "UPDATE devices SET project = ?, labels = ?, doc = ? WHERE tenant = ? AND id = ?",
                (project_pk, json.dumps(device.labels), _enc.encode(device), tenant_pk, device.id),
            )
            if cur.rowcount == 0:
                raise NotFound("device", device.id)
            return device

        return await self._writer.run(job)

    async def delete_device(self, tenant_id: str, device_id: str) -> bool:
        def job(conn: sqlite3.Connection) -> bool:
            tenant_pk = self._keys.tenant(conn, tenant_id)
            row = conn.execute("SELECT pk FROM devices WHERE tenant = ? AND id = ?", (tenant_pk, device_id)).fetchone()
            if row is None:
                return False
            conn.execute("DELETE FROM device_state WHERE device = ?", (row[0],))
            conn.execute("DELETE FROM devices WHERE pk = ?", (row[0],))
            conn.execute("INSERT OR IGNORE INTO removed_devices VALUES (?, ?, ?)", (tenant_pk, device_id, row[0]))
            self._keys.forget_device(tenant_pk, device_id)
            return True

        return await self._writer.run(job)

    # -- API keys --------------------------------------------------------------------------

    async def create_key(self, key: ApiKey) -> ApiKey:
        def job(conn: sqlite3.Connection) -> ApiKey:
            tenant_pk = self._keys.tenant(conn, key.tenant) if key.tenant is not None else None
            if key.tenant is not None and key.project is not None and tenant_pk is not None:
                self._keys.project(conn, tenant_pk, key.project)
            conn.execute(
                "INSERT INTO api_keys (id, tenant, doc) VALUES (?, ?, ?)", (key.id, tenant_pk, _enc.encode(key))
            )
            return key

        return await self._writer.run(job)

    async def get_key(self, key_id: str) -> ApiKey | None:
        row = await self._readers.run(
            lambda c: c.execute("SELECT doc FROM api_keys WHERE id = ?", (key_id,)).fetchone()
        )
        return _dec(ApiKey, row[0]) if row else None

    async def list_keys(self, tenant_id: str | None) -> list[ApiKey]:
        if tenant_id is None:
            rows = await self._readers.run(lambda c: c.execute("SELECT doc FROM api_keys").fetchall())
        else:
            rows = await self._readers.run(
                lambda c: c.execute(
                    "SELECT k.doc FROM api_keys k JOIN tenants t ON t.pk = k.tenant WHERE t.id = ?",
                    (tenant_id,),
                ).fetchall()
            )
        return sorted((_dec(ApiKey, r[0]) for r in rows), key=lambda k: k.created)

    async def delete_key(self, key_id: str) -> bool:
        def job(conn: sqlite3.Connection) -> bool:
            return conn.execute("DELETE FROM api_keys WHERE id = ?", (key_id,)).rowcount > 0

        return await self._writer.run(job)

    # -- tenant event types ----------------------------------------------------------------

    async def put_event_type(self, tenant_id: str, event_type: EventType) -> EventType:
        def job(conn: sqlite3.Connection) -> EventType:
            tenant_pk = self._keys.tenant(conn, tenant_id)
            conn.execute(
                "INSERT OR REPLACE INTO event_types (tenant, name, doc) VALUES (?, ?, ?)",
                (tenant_pk, event_type.name, _enc.encode(event_type)),
            )
            return event_type

        return await self._writer.run(job)

    async def list_event_types(self, tenant_id: str) -> list[EventType]:
        rows = await self._readers.run(
            lambda c: c.execute(
                "SELECT e.doc FROM event_types e JOIN tenants t ON t.pk = e.tenant WHERE t.id = ? ORDER BY e.name",
                (tenant_id,),
            ).fetchall()
        )
        return [_dec(EventType, r[0]) for r in rows]

    async def delete_event_type(self, tenant_id: str, name: str) -> bool:
        def job(conn: sqlite3.Connection) -> bool:
            tenant_pk = self._keys.tenant(conn, tenant_id)
            return conn.execute("DELETE FROM event_types WHERE tenant = ? AND name = ?", (tenant_pk, name)).rowcount > 0

        return await self._writer.run(job)

    # -- settings --------------------------------------------------------------------------

    async def get_setting(self, name: str) -> Any:
        row = await self._readers.run(
            lambda c: c.execute("SELECT value FROM settings WHERE name = ?", (name,)).fetchone()
        )
        return json.loads(row[0]) if row else None

    async def put_setting(self, name: str, value: Any) -> None:
        def job(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT OR REPLACE INTO settings VALUES (?, ?)", (name, json.dumps(value)))

        await self._writer.run(job)
