"""One writer thread with group commit.

Every write is a job: a function of the connection. The thread takes all the jobs waiting
(up to a limit), runs them in one transaction, each inside its own savepoint so a failing
job does not undo the others, commits once, and only then answers each caller. Many callers
share one commit, so commits/s stop being the limit.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable
from typing import Any, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")
OnCommit = Callable[[list[Any]], None]

_STOP = object()


class Writer:
    def __init__(
        self,
        conn: sqlite3.Connection,
        *,
        max_jobs: int = 512,
        on_commit: OnCommit | None = None,
    ) -> None:
        """`on_commit` runs on the event loop with the results of each committed batch, in
        commit order, before any caller of that batch resumes (the bus publishes from it)."""
        self._conn = conn
        self._on_commit = on_commit
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._max_jobs = max_jobs
        self._thread = threading.Thread(target=self._run, name="fleetlog-sqlite-writer", daemon=True)
        self._thread.start()
        self.commits = 0
        self.jobs = 0

    async def run(self, job: Callable[[sqlite3.Connection], T]) -> T:
        """Run `job` in the writer's transaction; return its result once committed."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put((job, future, loop))
        return await future

    def run_sync(self, job: Callable[[sqlite3.Connection], T]) -> T:
        """For threads without an event loop (start-up, CLI, tests)."""
        done = threading.Event()
        box: list[Any] = []
        self._queue.put((job, (done, box), None))
        done.wait()
        if box[1] is not None:
            raise box[1]
        return box[0]  # type: ignore[no-any-return]

    def close(self) -> None:
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join()

    def _run(self) -> None:
        conn = self._conn
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            batch = [item]
            stop = False
            while len(batch) < self._max_jobs:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stop = True
                    break
                batch.append(item)
            outcomes = self._commit(conn, batch)
            self._deliver(batch, outcomes)
            if stop:
                return

    def _commit(self, conn: sqlite3.Connection, batch: list[Any]) -> list[tuple[Any, BaseException | None]]:
        outcomes: list[tuple[Any, BaseException | None]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            for job, _, _ in batch:
                conn.execute("SAVEPOINT job")
                try:
                    outcomes.append((job(conn), None))
                    conn.execute("RELEASE job")
                except Exception as exc:  # the job's own failure: undo only this job
                    conn.execute("ROLLBACK TO job")
                    conn.execute("RELEASE job")
                    outcomes.append((None, exc))
            conn.execute("COMMIT")
            self.commits += 1
            self.jobs += len(batch)
        except sqlite3.Error as exc:  # the transaction itself failed: nobody is committed
            log.error("commit failed for %d jobs: %s", len(batch), exc)
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            outcomes = [(None, exc)] * len(batch)
        return outcomes

    def _deliver(self, batch: list[Any], outcomes: list[tuple[Any, BaseException | None]]) -> None:
        by_loop: dict[Any, list[tuple[Any, Any, BaseException | None]]] = {}
        for (_, target, loop), (result, exc) in zip(batch, outcomes, strict=True):
            if loop is None:
                done, box = target
                box[:] = [result, exc]
                done.set()
            else:
                by_loop.setdefault(loop, []).append((target, result, exc))
        for loop, items in by_loop.items():
            try:
                loop.call_soon_threadsafe(_resolve, items, self._on_commit)
            except RuntimeError:  # loop closed: nobody is waiting any more
                pass


def _resolve(
    items: list[tuple[asyncio.Future[Any], Any, BaseException | None]], on_commit: OnCommit | None
) -> None:
    if on_commit is not None:
        try:
            on_commit([result for _, result, exc in items if exc is None])
        except Exception:
            log.exception("on_commit hook failed")
    for future, result, exc in items:
        if future.done():
            continue
        if exc is not None:
            future.set_exception(exc)
        else:
            future.set_result(result)
