"""The connections of one PostgreSQL store: a writer connection and a small reader pool.

Opened on first use (or by `open()`), on the running event loop: the ports are async, and
asyncpg connects asynchronously.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg

from fleetlog.adapters.storage.postgres.appends import AppendJob, Commit, Conn, SharedSequence
from fleetlog.adapters.storage.postgres.keys import KeyCache
from fleetlog.adapters.storage.postgres.notices import RegistryNotices
from fleetlog.adapters.storage.postgres.schema import migrate
from fleetlog.adapters.storage.postgres.writer import OnCommit, Writer

T = TypeVar("T")


class Database:
    def __init__(self, dsn: str, *, readers: int = 4, on_commit: OnCommit | None = None) -> None:
        self.dsn = dsn
        self.keys = KeyCache()
        self._readers = readers
        self._pool: Any = None
        self._lock: asyncio.Lock | None = None
        self._closed = False
        self.writer = Writer(self._connect, SharedSequence(), on_commit=on_commit)
        self.notices = RegistryNotices(self._connect, self.keys.forget_all)

    async def _connect(self) -> Conn:
        # Statements are prepared per connection and cached: the same few run all the time.
        return await asyncpg.connect(self.dsn, statement_cache_size=256)

    async def open(self) -> None:
        if self._pool is not None:
            return
        if self._closed:
            raise RuntimeError("the PostgreSQL store is closed")
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self.is_open:  # another caller opened it while this one waited
                return
            conn = await self._connect()
            try:
                await migrate(conn)
                schema = await conn.fetchval("SELECT current_schema()")
                pool = await asyncpg.create_pool(self.dsn, min_size=1, max_size=self._readers)
            except BaseException:
                await conn.close()
                raise
            self.writer.start(conn)
            self.notices.start(schema)
            self._pool = pool

    @property
    def is_open(self) -> bool:
        return self._pool is not None

    async def write(self, job: Callable[[Conn, Commit], Awaitable[T]] | AppendJob) -> T:
        """Run a job in the writer's group-committed transaction; returns once committed."""
        if self._pool is None:
            await self.open()
        return await self.writer.run(job)

    async def read(self, fn: Callable[[Conn], Awaitable[T]]) -> T:
        if self._pool is None:
            await self.open()
        async with self._pool.acquire() as conn:
            return await fn(conn)

    async def connect(self) -> Conn:
        """A connection of its own (for work that holds a transaction open)."""
        if self._pool is None:
            await self.open()
        return await self._connect()

    async def aclose(self) -> None:
        """Commit what is queued, then close the connections."""
        self._closed = True
        if self._pool is None:
            return
        pool, self._pool = self._pool, None
        await self.notices.stop()
        await self.writer.stop()
        conn = self.writer.connection
        if conn is not None and not conn.is_closed():
            await conn.close()
        await pool.close()

    def close(self) -> None:
        """From synchronous code: stop now; anything not yet committed fails."""
        self._closed = True
        if self._pool is None:
            return
        pool, self._pool = self._pool, None
        self.notices.abort()
        self.writer.abort()
        conn = self.writer.connection
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.terminate()
        pool.terminate()
