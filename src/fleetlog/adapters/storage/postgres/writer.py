"""One writer task with group commit, on one PostgreSQL connection.

Every write is a job: an `AppendJob`, or a coroutine function of (connection, commit). The
task takes all the jobs waiting (up to a limit) and runs them in one transaction, then
commits once and only then answers the callers: many callers share one commit.

Consecutive appends run together (see `appends`): they only read while deciding, and their
rows wait in the shared `Commit`, written with one COPY before the next other job and before
COMMIT. Other jobs run inside their own savepoint, so a failing job undoes only itself. If the
transaction as a whole fails, each job is retried in a transaction of its own, so one bad job
cannot fail its neighbours.

Event sequence numbers stay unique and in commit order across several fleetlog processes on
one database: each transaction first locks the one row of `event_seq` (the installation's
highest committed seq) and starts its own numbers above it, then raises it before COMMIT.
Writers of different processes therefore take turns, and seq order is commit order.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from fleetlog.adapters.storage.postgres.appends import AppendJob, Commit, Conn, SharedSequence, run_appends

log = logging.getLogger(__name__)
T = TypeVar("T")


Job = Callable[[Conn, Commit], Awaitable[Any]]
OnCommit = Callable[[Commit, list[Any]], None]


class _Item:
    __slots__ = ("future", "job")

    def __init__(self, job: Job | AppendJob, future: asyncio.Future[Any]) -> None:
        self.job = job
        self.future = future


_STOP: Any = object()


class Writer:
    def __init__(
        self,
        connect: Callable[[], Awaitable[Conn]],
        seqs: SharedSequence,
        *,
        max_jobs: int = 512,
        on_commit: OnCommit | None = None,
    ) -> None:
        """`on_commit` runs with each committed batch's results, in commit order, before any
        caller of that batch resumes (the bus publishes from it)."""
        self._connect = connect
        self._conn: Conn = None
        self._seqs = seqs
        self._max_jobs = max_jobs
        self._on_commit = on_commit
        self._queue: asyncio.Queue[_Item] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self.commits = 0
        self.jobs = 0

    def start(self, conn: Conn) -> None:
        self._conn = conn
        self._task = asyncio.get_running_loop().create_task(self._run(), name="fleetlog-postgres-writer")

    async def run(self, job: Callable[[Conn, Commit], Awaitable[T]] | AppendJob) -> T:
        """Run `job` in the writer's transaction; return its result once committed."""
        if self._task is None or self._task.done():
            raise RuntimeError("the PostgreSQL writer is not running")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Item(job, future))
        return await future

    async def stop(self) -> None:
        """Finish the jobs already queued, then stop."""
        if self._task is not None and not self._task.done():
            self._queue.put_nowait(_STOP)
            await asyncio.shield(self._task)

    def abort(self) -> None:
        """Stop now (from synchronous code): jobs not yet committed fail."""
        if self._task is not None:
            self._task.cancel()
        while not self._queue.empty():
            item = self._queue.get_nowait()
            if item is not _STOP and not item.future.done():
                item.future.set_exception(RuntimeError("the PostgreSQL store was closed"))

    @property
    def connection(self) -> Conn:
        return self._conn

    async def _run(self) -> None:
        while True:
            item = await self._queue.get()
            if item is _STOP:
                return
            batch = [item]
            stop = False
            while len(batch) < self._max_jobs and not self._queue.empty():
                item = self._queue.get_nowait()
                if item is _STOP:
                    stop = True
                    break
                batch.append(item)
            try:
                await self._process(batch)
            except asyncio.CancelledError:
                for it in batch:
                    if not it.future.done():
                        it.future.set_exception(RuntimeError("the PostgreSQL store was closed"))
                raise
            if stop:
                return

    async def _process(self, batch: list[_Item]) -> None:
        try:
            commit, outcomes = await self._transaction(batch)
        except Exception as exc:
            if len(batch) == 1:
                log.error("commit failed: %s", exc)
                _settle(batch[0].future, None, exc)
                return
            # Something in the batch broke the whole transaction: give each job its own.
            log.warning("commit of %d jobs failed (%s); retrying them one by one", len(batch), exc)
            for item in batch:
                await self._process([item])
            return
        if self._on_commit is not None:
            try:
                self._on_commit(commit, [result for result, error in outcomes if error is None])
            except Exception:
                log.exception("on_commit hook failed")
        for item, (result, error) in zip(batch, outcomes, strict=True):
            _settle(item.future, result, error)

    async def _transaction(self, batch: list[_Item]) -> tuple[Commit, list[tuple[Any, BaseException | None]]]:
        conn = await self._connection()
        mark = self._seqs.last
        try:
            return await self._jobs(conn, batch)
        except BaseException:
            self._seqs.rewind(mark)
            raise

    async def _jobs(self, conn: Conn, batch: list[_Item]) -> tuple[Commit, list[tuple[Any, BaseException | None]]]:
        outcomes: list[tuple[Any, BaseException | None]] = []
        async with conn.transaction():
            high = await conn.fetchval("SELECT last FROM event_seq FOR UPDATE")
            self._seqs.at_least(high)  # another process may have written since: number above it
            commit = Commit(high, self._seqs)
            i = 0
            while i < len(batch):
                job = batch[i].job
                if isinstance(job, AppendJob):  # with the appends that follow it
                    appends: list[AppendJob] = []
                    while i < len(batch) and isinstance(batch[i].job, AppendJob):
                        appends.append(batch[i].job)  # type: ignore[arg-type]
                        i += 1
                    outcomes += await run_appends(conn, commit, appends)
                    continue
                await commit.flush(conn)
                try:
                    async with conn.transaction():  # a savepoint: a failing job undoes only itself
                        outcomes.append((await job(conn, commit), None))
                except Exception as exc:
                    outcomes.append((None, exc))
                i += 1
            await commit.flush(conn)
            if commit.high > high:
                await conn.execute("UPDATE event_seq SET last = $1", commit.high)
        self.commits += 1
        self.jobs += len(batch)
        return commit, outcomes

    async def _connection(self) -> Conn:
        if self._conn is None or self._conn.is_closed():
            log.warning("PostgreSQL writer connection lost; reconnecting")
            self._conn = await self._connect()
        return self._conn


def _settle(future: asyncio.Future[Any], result: Any, exc: BaseException | None) -> None:
    if future.done():
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)
