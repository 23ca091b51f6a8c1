"""The PostgreSQL registry: tenants, projects, devices, keys, tenant event types, settings."""

from __future__ import annotations

import json
from typing import Any, TypeVar

import msgspec

from fleetlog.adapters.storage.postgres.appends import Commit, Conn
from fleetlog.adapters.storage.postgres.database import Database
from fleetlog.core.catalog import EventType
from fleetlog.core.errors import Conflict, NotFound
from fleetlog.core.registry import ApiKey, Device, Project, Tenant

S = TypeVar("S", bound=msgspec.Struct)
_enc = msgspec.msgpack.Encoder()


def _dec(kind: type[S], blob: bytes) -> S:
    return msgspec.msgpack.decode(blob, type=kind)


def _count(status: str) -> int:
    """Rows touched, from a command status such as 'DELETE 3' or 'INSERT 0 1'."""
    return int(status.split()[-1])


class PostgresRegistry:
    """Changes other processes cache (updates, deletions) send a registry notice."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._keys = db.keys

    # -- tenants ---------------------------------------------------------------------------

    async def create_tenant(self, tenant: Tenant) -> Tenant:
        async def job(conn: Conn, _: Commit) -> Tenant:
            status = await conn.execute(
                "INSERT INTO tenants (id, doc) VALUES ($1, $2) ON CONFLICT DO NOTHING", tenant.id, _enc.encode(tenant)
            )
            if _count(status) == 0:
                raise Conflict(f"tenant {tenant.id!r} already exists")
            return tenant

        return await self._db.write(job)

    async def get_tenant(self, tenant_id: str) -> Tenant | None:
        doc = await self._db.read(lambda c: c.fetchval("SELECT doc FROM tenants WHERE id = $1", tenant_id))
        return _dec(Tenant, doc) if doc is not None else None

    async def list_tenants(self) -> list[Tenant]:
        rows = await self._db.read(lambda c: c.fetch("SELECT doc FROM tenants ORDER BY id"))
        return [_dec(Tenant, r[0]) for r in rows]

    async def update_tenant(self, tenant: Tenant) -> Tenant:
        async def job(conn: Conn, _: Commit) -> Tenant:
            status = await conn.execute("UPDATE tenants SET doc = $1 WHERE id = $2", _enc.encode(tenant), tenant.id)
            if _count(status) == 0:
                raise NotFound("tenant", tenant.id)
            await self._db.notices.send(conn)
            return tenant

        return await self._db.write(job)

    # -- projects --------------------------------------------------------------------------

    async def create_project(self, project: Project) -> Project:
        async def job(conn: Conn, _: Commit) -> Project:
            tenant_pk = await self._keys.tenant(conn, project.tenant)
            status = await conn.execute(
                "INSERT INTO projects (tenant, id, doc) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                tenant_pk,
                project.id,
                _enc.encode(project),
            )
            if _count(status) == 0:
                raise Conflict(f"project {project.id!r} already exists")
            return project

        return await self._db.write(job)

    async def get_project(self, tenant_id: str, project_id: str) -> Project | None:
        doc = await self._db.read(
            lambda c: c.fetchval(
                "SELECT p.doc FROM projects p JOIN tenants t ON t.pk = p.tenant WHERE t.id = $1 AND p.id = $2",
                tenant_id,
                project_id,
            )
        )
        return _dec(Project, doc) if doc is not None else None

    async def list_projects(self, tenant_id: str) -> list[Project]:
        rows = await self._db.read(
            lambda c: c.fetch(
                "SELECT p.doc FROM projects p JOIN tenants t ON t.pk = p.tenant WHERE t.id = $1 ORDER BY p.id",
                tenant_id,
            )
        )
        return [_dec(Project, r[0]) for r in rows]

    async def delete_project(self, tenant_id: str, project_id: str) -> bool:
        async def job(conn: Conn, _: Commit) -> bool:
            tenant_pk = await self._keys.tenant(conn, tenant_id)
            pk = await conn.fetchval(
                "SELECT pk FROM projects WHERE tenant = $1 AND id = $2 FOR UPDATE", tenant_pk, project_id
            )
            if pk is None:
                return False
            if await conn.fetchval("SELECT 1 FROM devices WHERE project = $1 LIMIT 1", pk):
                raise Conflict(f"project {project_id!r} still has devices")
            await conn.execute("DELETE FROM events WHERE project = $1", pk)
            await conn.execute("DELETE FROM projects WHERE pk = $1", pk)
            await self._db.notices.send(conn)
            self._keys.forget_project(tenant_pk, project_id)
            return True

        return await self._db.write(job)

    # -- devices ---------------------------------------------------------------------------

    async def create_device(self, device: Device) -> Device:
        async def job(conn: Conn, _: Commit) -> Device:
            tenant_pk = await self._keys.tenant(conn, device.tenant)
            project_pk = await self._keys.project(conn, tenant_pk, device.project)
            status = await conn.execute(
                "INSERT INTO devices (tenant, project, id, labels, doc) VALUES ($1, $2, $3, $4::jsonb, $5) "
                "ON CONFLICT DO NOTHING",
                tenant_pk,
                project_pk,
                device.id,
                json.dumps(device.labels),
                _enc.encode(device),
            )
            if _count(status) == 0:
                raise Conflict(f"device {device.id!r} already exists")
            return device

        return await self._db.write(job)

    async def get_device(self, tenant_id: str, device_id: str) -> Device | None:
        doc = await self._db.read(
            lambda c: c.fetchval(
                "SELECT d.doc FROM devices d JOIN tenants t ON t.pk = d.tenant WHERE t.id = $1 AND d.id = $2",
                tenant_id,
                device_id,
            )
        )
        return _dec(Device, doc) if doc is not None else None

    async def list_devices(
        self,
        tenant_id: str,
        project_id: str | None = None,
        labels: tuple[tuple[str, str | None], ...] = (),
        after: str | None = None,
        limit: int = 1000,
    ) -> list[Device]:
        sql = "SELECT d.doc FROM devices d JOIN tenants t ON t.pk = d.tenant WHERE t.id = $1"
        params: list[Any] = [tenant_id]

        def p(value: Any) -> str:
            params.append(value)
            return f"${len(params)}"

        if project_id is not None:
            sql += f" AND d.project = (SELECT pk FROM projects WHERE tenant = t.pk AND id = {p(project_id)})"
        for key, value in labels:
            if value is None:
                sql += f" AND d.labels ? {p(key)}"
            else:
                sql += f" AND d.labels ->> {p(key)} = {p(value)}"
        if after is not None:
            sql += f" AND d.id > {p(after)}"
        sql += f" ORDER BY d.id LIMIT {p(limit)}"
        rows = await self._db.read(lambda c: c.fetch(sql, *params))
        return [_dec(Device, r[0]) for r in rows]

    async def update_device(self, device: Device) -> Device:
        async def job(conn: Conn, _: Commit) -> Device:
            tenant_pk = await self._keys.tenant(conn, device.tenant)
            project_pk = await self._keys.project(conn, tenant_pk, device.project)
            status = await conn.execute(
                "UPDATE devices SET project = $1, labels = $2::jsonb, doc = $3 WHERE tenant = $4 AND id = $5",
                project_pk,
                json.dumps(device.labels),
                _enc.encode(device),
                tenant_pk,
                device.id,
            )
            if _count(status) == 0:
                raise NotFound("device", device.id)
            await self._db.notices.send(conn)
            return device

        return await self._db.write(job)

    async def delete_device(self, tenant_id: str, device_id: str) -> bool:
        async def job(conn: Conn, _: Commit) -> bool:
            tenant_pk = await self._keys.tenant(conn, tenant_id)
            pk = await conn.fetchval(
                "DELETE FROM devices WHERE tenant = $1 AND id = $2 RETURNING pk", tenant_pk, device_id
            )
            if pk is None:
                return False
            await conn.execute("DELETE FROM device_state WHERE device = $1", pk)
            await conn.execute(
                "INSERT INTO removed_devices VALUES ($1, $2, $3) ON CONFLICT DO NOTHING", tenant_pk, device_id, pk
            )
            await self._db.notices.send(conn)
            self._keys.forget_device(tenant_pk, device_id)
            return True

        return await self._db.write(job)

    # -- API keys --------------------------------------------------------------------------

    async def create_key(self, key: ApiKey) -> ApiKey:
        async def job(conn: Conn, _: Commit) -> ApiKey:
            tenant_pk = await self._keys.tenant(conn, key.tenant) if key.tenant is not None else None
            if tenant_pk is not None and key.project is not None:
                await self._keys.project(conn, tenant_pk, key.project)
            status = await conn.execute(
                "INSERT INTO api_keys (id, tenant, doc) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                key.id, tenant_pk, _enc.encode(key),
            )  # fmt: skip
            if _count(status) == 0:
                # Processes starting together on one database each create the operator key
                # from the same configured token: the same secret is the same key.
                existing = _dec(ApiKey, await conn.fetchval("SELECT doc FROM api_keys WHERE id = $1", key.id))
                if existing.secret_hash != key.secret_hash:
                    raise Conflict(f"key {key.id!r} already exists")
                return existing
            return key

        return await self._db.write(job)

    async def get_key(self, key_id: str) -> ApiKey | None:
        doc = await self._db.read(lambda c: c.fetchval("SELECT doc FROM api_keys WHERE id = $1", key_id))
        return _dec(ApiKey, doc) if doc is not None else None

    async def list_keys(self, tenant_id: str | None) -> list[ApiKey]:
        if tenant_id is None:
            rows = await self._db.read(lambda c: c.fetch("SELECT doc FROM api_keys"))
        else:
            rows = await self._db.read(
                lambda c: c.fetch(
                    "SELECT k.doc FROM api_keys k JOIN tenants t ON t.pk = k.tenant WHERE t.id = $1", tenant_id
                )
            )
        return sorted((_dec(ApiKey, r[0]) for r in rows), key=lambda k: k.created)

    async def delete_key(self, key_id: str) -> bool:
        async def job(conn: Conn, _: Commit) -> bool:
            deleted = _count(await conn.execute("DELETE FROM api_keys WHERE id = $1", key_id)) > 0
            if deleted:
                await self._db.notices.send(conn)  # a revoked key stops working in every process
            return deleted

        return await self._db.write(job)

    # -- tenant event types ----------------------------------------------------------------

    async def put_event_type(self, tenant_id: str, event_type: EventType) -> EventType:
        async def job(conn: Conn, _: Commit) -> EventType:
            tenant_pk = await self._keys.tenant(conn, tenant_id)
            await conn.execute(
                "INSERT INTO event_types (tenant, name, doc) VALUES ($1, $2, $3) "
                "ON CONFLICT (tenant, name) DO UPDATE SET doc = excluded.doc",
                tenant_pk,
                event_type.name,
                _enc.encode(event_type),
            )
            await self._db.notices.send(conn)
            return event_type

        return await self._db.write(job)

    async def list_event_types(self, tenant_id: str) -> list[EventType]:
        rows = await self._db.read(
            lambda c: c.fetch(
                "SELECT e.doc FROM event_types e JOIN tenants t ON t.pk = e.tenant WHERE t.id = $1 ORDER BY e.name",
                tenant_id,
            )
        )
        return [_dec(EventType, r[0]) for r in rows]

    async def delete_event_type(self, tenant_id: str, name: str) -> bool:
        async def job(conn: Conn, _: Commit) -> bool:
            tenant_pk = await self._keys.tenant(conn, tenant_id)
            status = await conn.execute("DELETE FROM event_types WHERE tenant = $1 AND name = $2", tenant_pk, name)
            await self._db.notices.send(conn)
            return _count(status) > 0

        return await self._db.write(job)

    # -- settings --------------------------------------------------------------------------

    async def get_setting(self, name: str) -> Any:
        value = await self._db.read(lambda c: c.fetchval("SELECT value FROM settings WHERE name = $1", name))
        return json.loads(value) if value is not None else None

    async def put_setting(self, name: str, value: Any) -> None:
        async def job(conn: Conn, _: Commit) -> None:
            await conn.execute(
                "INSERT INTO settings VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                name,
                json.dumps(value),
            )

        await self._db.write(job)
