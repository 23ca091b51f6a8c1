"""The embedded default storage: one SQLite file in WAL mode, one writer, a few readers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fleetlog.adapters.storage.sqlite.appends import MERGE_ROWS, AppendBatch
from fleetlog.adapters.storage.sqlite.connection import connect
from fleetlog.adapters.storage.sqlite.documents import SqliteDocuments
from fleetlog.adapters.storage.sqlite.events import SqliteEventStore
from fleetlog.adapters.storage.sqlite.inbox import SqliteInbox
from fleetlog.adapters.storage.sqlite.keys import KeyCache
from fleetlog.adapters.storage.sqlite.owner import Ownership, StoreInUse
from fleetlog.adapters.storage.sqlite.readers import Readers
from fleetlog.adapters.storage.sqlite.registry import SqliteRegistry
from fleetlog.adapters.storage.sqlite.schema import migrate
from fleetlog.adapters.storage.sqlite.writer import Writer
from fleetlog.core.event import Event
from fleetlog.core.ids import SequenceClock
from fleetlog.ports.bus import Bus
from fleetlog.ports.lease import SoleLeases

__all__ = ["SqliteStorage", "StoreInUse"]


class SqliteStorage:
    """Opens (and migrates) the database; exposes the event store, registry and inbox ports.

    One process at a time: a second one opening the same file gets `StoreInUse`."""

    def __init__(
        self,
        path: Path,
        *,
        synchronous: str = "NORMAL",
        bus: Bus | None = None,
        readers: int = 4,
        merge_rows: int = MERGE_ROWS,
    ) -> None:
        """`merge_rows`: see appends.MERGE_ROWS (tests set it low, so that every read crosses
        both halves of the per-device index)."""
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._owner = Ownership.acquire(path)  # raises StoreInUse if another process has it
        try:
            conn = connect(path, synchronous=synchronous)
            migrate(conn)
        except BaseException:
            self._owner.release()
            raise
        conn.execute("PRAGMA optimize")
        last_seq = conn.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0]
        self._bus = bus
        self._writer = Writer(conn, on_commit=self._published if bus else None)
        self._readers = Readers(path, size=readers)
        keys = KeyCache()
        self.events = SqliteEventStore(self._writer, self._readers, keys, SequenceClock(last_seq), merge_rows)
        self.registry = SqliteRegistry(self._writer, self._readers, keys)
        self.inbox = SqliteInbox(self._writer, self._readers)
        self.documents = SqliteDocuments(self._writer, self._readers)
        self.leases = SoleLeases()  # this process owns the store: every lease is its own

    def _published(self, results: list[Any]) -> None:
        if self._bus is None:
            return
        created: list[Event] = []
        for result in results:
            if isinstance(result, AppendBatch):
                created += result.created()
        if created:
            self._bus.publish(created)

    @property
    def stats(self) -> dict[str, int]:
        return {"commits": self._writer.commits, "jobs": self._writer.jobs}

    def close(self) -> None:
        self._writer.close()
        self._readers.close()
        self._owner.release()
