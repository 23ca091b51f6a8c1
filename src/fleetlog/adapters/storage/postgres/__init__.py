"""The storage engine for scale: PostgreSQL, shared by any number of fleetlog processes.

`PostgresStorage(dsn, bus=...)` exposes the same ports as `SqliteStorage`: `.events`,
`.registry`, `.inbox`, `.documents`, `.leases`, `.stats`, `.close()`; plus `open()` and `aclose()`
(it connects on first use if `open()` was not awaited). The DSN is asyncpg's: extra query
parameters are server settings, so `?search_path=fleetlog` keeps the tables in a schema.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from fleetlog.adapters.storage.postgres.appends import AppendBatch, Commit
from fleetlog.adapters.storage.postgres.database import Database
from fleetlog.adapters.storage.postgres.documents import PostgresDocuments
from fleetlog.adapters.storage.postgres.events import PostgresEventStore
from fleetlog.adapters.storage.postgres.inbox import PostgresInbox
from fleetlog.adapters.storage.postgres.leases import PostgresLeases
from fleetlog.adapters.storage.postgres.registry import PostgresRegistry
from fleetlog.core.event import Event
from fleetlog.ports.bus import Bus


@runtime_checkable
class ChainedBus(Protocol):
    """A bus that carries, with each commit's events, the highest seq committed before them,
    so a subscriber in another process can tell when it missed a commit."""

    def publish_after(self, prev_seq: int, events: list[Event]) -> None: ...


class PostgresStorage:
    def __init__(self, dsn: str, *, bus: Bus | None = None, readers: int = 4) -> None:
        if not dsn.startswith(("postgresql://", "postgres://")):
            raise ValueError(f"storage URL {dsn.split('@')[-1]!r}: expected postgresql://[user@]host[:port]/database")
        self._bus = bus
        self._db = Database(dsn, readers=readers, on_commit=self._published if bus else None)
        self.events = PostgresEventStore(self._db)
        self.registry = PostgresRegistry(self._db)
        self.inbox = PostgresInbox(self._db)
        self.documents = PostgresDocuments(self._db)
        self.leases = PostgresLeases(self._db)

    async def open(self) -> None:
        """Connect and migrate (otherwise done on first use)."""
        await self._db.open()

    def _published(self, commit: Commit, results: list[Any]) -> None:
        created: list[Event] = []
        for result in results:
            if isinstance(result, AppendBatch):
                created += result.created()
        if not created or self._bus is None:
            return
        if isinstance(self._bus, ChainedBus):
            self._bus.publish_after(commit.prev_high, created)
        else:
            self._bus.publish(created)

    def on_registry_change(self, listener: Callable[[], None]) -> None:
        """Call `listener` when another process changed the registry (drop caches)."""
        self._db.notices.on_change(listener)

    @property
    def stats(self) -> dict[str, int]:
        return {"commits": self._db.writer.commits, "jobs": self._db.writer.jobs}

    async def aclose(self) -> None:
        """Commit what is queued, then close the connections."""
        await self.inbox.aclose()
        await self._db.aclose()

    def close(self) -> None:
        """Close at once (synchronous callers): writes not yet committed fail."""
        self.inbox.close()
        self._db.close()
