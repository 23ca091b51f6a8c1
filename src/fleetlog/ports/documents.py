"""A small document store for what faces and workers keep for themselves: service accounts,
data connectors and their delivery cursors, campaigns, gateways, firmware images, ...

Documents are JSON-able values stored by (tenant, kind, id). `tenant` may be "" for
installation-wide documents. Writes are durable when the call returns.
"""

from __future__ import annotations

from typing import Any, Protocol


class DocumentStore(Protocol):
    async def get(self, tenant: str, kind: str, id: str) -> Any | None: ...

    async def put(self, tenant: str, kind: str, id: str, doc: Any) -> None: ...

    async def create(self, tenant: str, kind: str, id: str, doc: Any) -> bool:
        """Store `doc` only if no document has that id; False if one exists."""
        ...

    async def delete(self, tenant: str, kind: str, id: str) -> bool: ...

    async def list(
        self, tenant: str | None, kind: str, after: str | None = None, limit: int = 1000
    ) -> list[tuple[str, str, Any]]:
        """(tenant, id, doc) in id order; `tenant` None lists every tenant's."""
        ...
