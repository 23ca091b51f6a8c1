"""One writer thread with group commit.

Every write is a job: a function of the connection. The thread takes all the jobs waiting
(up to a limit), runs them in one transaction, each inside its own savepoint so a failing
job does not undo the others, commits once, and only then answers each caller. Many callers
share one commit, so commits/s stop being the limit.

Jobs of one kind that arrive together (a `Merge`, e.g. appends of events) can also be run as
one: a single call does the work of all of them, so a commit of 50 single-event appends costs
a handful of SQL statements, not 300. This matters beyond the statements themselves: every
statement releases the GIL while SQLite works and must take it back afterwards, and while the
event loop is busy that can take up to the interpreter's switch interval (5 ms).

Checkpoints (copying the WAL back into the database file, with its fsyncs) run in a thread of
their own, so commits seldom wait for one; the writer's own automatic checkpoint stays as a
backstop that keeps the WAL from growing without bound under continuous load.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")
P = TypeVar("P")
OnCommit = Callable[[list[Any]], None]
Outcome = tuple[Any, BaseException | None]

_STOP = object()

# Pages in the WAL after which the writer checkpoints itself (SQLite's default is 1000). The
# background checkpointer normally keeps the WAL well below this.
WAL_BACKSTOP_PAGES = 10_000
# How often the background checkpointer looks for new commits, seconds.
CHECKPOINT_INTERVAL = 0.05


@dataclass(frozen=True, slots=True)
class Merge(Generic[P, T]):
    """A kind of job the writer may run several of at once.

    `many(conn, payloads)` does the work of every payload and returns, for each in order, its
    result or the exception that refused it; a refused payload must leave no writes behind
    (do every check before the first write). If `many` raises, the writer undoes all it did
    and runs each payload alone with `one(conn, payload)`, each in its own savepoint, exactly
    as plain jobs are run.
    """

    one: Callable[[sqlite3.Connection, P], T]
    many: Callable[[sqlite3.Connection, Sequence[P]], list[tuple[T | None, BaseException | None]]]


class _Merged:
    __slots__ = ("kind", "payload")

    def __init__(self, kind: Merge[Any, Any], payload: Any) -> None:
        self.kind = kind
        self.payload = payload

    def __call__(self, conn: sqlite3.Connection) -> Any:
        return self.kind.one(conn, self.payload)


class Writer:
    def __init__(
        self,
        conn: sqlite3.Connection,
        *,
        max_jobs: int = 512,
        on_commit: OnCommit | None = None,
        background_checkpoints: bool = True,
    ) -> None:
        """`on_commit` runs on the event loop with the results of each committed batch, in
        commit order, before any caller of that batch resumes (the bus publishes from it)."""
        self._conn = conn
        self._on_commit = on_commit
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._max_jobs = max_jobs
        self.commits = 0
        self.jobs = 0
        self._checkpointer = _Checkpointer.start(conn) if background_checkpoints else None
        if self._checkpointer is not None:
            conn.execute(f"PRAGMA wal_autocheckpoint={WAL_BACKSTOP_PAGES}")
        self._thread = threading.Thread(target=self._run, name="fleetlog-sqlite-writer", daemon=True)
        self._thread.start()

    async def run(self, job: Callable[[sqlite3.Connection], T]) -> T:
        """Run `job` in the writer's transaction; return its result once committed."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.put((job, future, future.get_loop()))
        return await future

    async def run_merged(self, kind: Merge[P, T], payload: P) -> T:
        """Like `run`, for a job of a kind that may be run together with others of its kind."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.put((_Merged(kind, payload), future, future.get_loop()))
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
        if self._checkpointer is not None:
            self._checkpointer.stop()

    def _run(self) -> None:
        conn = self._conn
        get, get_nowait = self._queue.get, self._queue.get_nowait
        while True:
            item = get()
            if item is _STOP:
                return
            batch = [item]
            stop = False
            while len(batch) < self._max_jobs:
                try:
                    item = get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stop = True
                    break
                batch.append(item)
            outcomes = self._commit(conn, batch)
            self._deliver(batch, outcomes)
            if self._checkpointer is not None:
                self._checkpointer.poke()
            if stop:
                return

    def _commit(self, conn: sqlite3.Connection, batch: list[Any]) -> list[Outcome]:
        groups: list[tuple[Merge[Any, Any] | None, list[Any]]] = []
        for job, _, _ in batch:
            kind = job.kind if type(job) is _Merged else None
            if kind is not None and groups and groups[-1][0] is kind:
                groups[-1][1].append(job)
            else:
                groups.append((kind, [job]))
        try:
            conn.execute("BEGIN IMMEDIATE")
            if len(groups) == 1:
                outcomes = self._run_alone(conn, *groups[0])
            else:
                outcomes = []
                for kind, jobs in groups:
                    if kind is None:
                        outcomes.append(self._run_one(conn, jobs[0]))
                    else:
                        outcomes += self._run_merged(conn, kind, jobs)
            conn.execute("COMMIT")
            self.commits += 1
            self.jobs += len(batch)
        except sqlite3.Error as exc:  # the transaction itself failed: nobody is committed
            log.error("commit failed for %d jobs: %s", len(batch), exc)
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            outcomes = [(None, exc)] * len(batch)
        return outcomes

    def _run_alone(self, conn: sqlite3.Connection, kind: Merge[Any, Any] | None, jobs: list[Any]) -> list[Outcome]:
        """The only work of its transaction: no savepoint needed, a rollback undoes it."""
        try:
            if kind is None:
                return [(jobs[0](conn), None)]
            outcomes = kind.many(conn, [job.payload for job in jobs])
            if len(outcomes) != len(jobs):
                raise RuntimeError(f"merged job answered {len(outcomes)} of {len(jobs)} payloads")
            return outcomes
        except Exception as exc:
            conn.execute("ROLLBACK")
            conn.execute("BEGIN IMMEDIATE")
            if kind is None:
                return [(None, exc)]
            return [self._run_one(conn, job) for job in jobs]

    @staticmethod
    def _run_one(conn: sqlite3.Connection, job: Callable[[sqlite3.Connection], Any]) -> Outcome:
        conn.execute("SAVEPOINT job")
        try:
            result = job(conn)
        except Exception as exc:  # the job's own failure: undo only this job
            conn.execute("ROLLBACK TO job")
            conn.execute("RELEASE job")
            return (None, exc)
        conn.execute("RELEASE job")
        return (result, None)

    def _run_merged(self, conn: sqlite3.Connection, kind: Merge[Any, Any], jobs: list[_Merged]) -> list[Outcome]:
        if len(jobs) == 1:
            return [self._run_one(conn, jobs[0])]
        conn.execute("SAVEPOINT merged")
        try:
            outcomes = kind.many(conn, [job.payload for job in jobs])
            if len(outcomes) != len(jobs):
                raise RuntimeError(f"merged job answered {len(outcomes)} of {len(jobs)} payloads")
        except Exception:  # run them one by one: only the failing ones fail
            conn.execute("ROLLBACK TO merged")
            conn.execute("RELEASE merged")
            return [self._run_one(conn, job) for job in jobs]
        conn.execute("RELEASE merged")
        return outcomes

    def _deliver(self, batch: list[Any], outcomes: list[Outcome]) -> None:
        by_loop: dict[Any, list[tuple[Any, Any, BaseException | None]]] = {}
        for (_, target, loop), (result, exc) in zip(batch, outcomes, strict=True):
            if loop is None:
                done, box = target
                box[:] = [result, exc]
                done.set()
            else:
                items = by_loop.get(loop)
                if items is None:
                    items = by_loop[loop] = []
                items.append((target, result, exc))
        for loop, items in by_loop.items():
            with contextlib.suppress(RuntimeError):  # loop closed: nobody is waiting any more
                loop.call_soon_threadsafe(_resolve, items, self._on_commit)


def _resolve(items: list[tuple[asyncio.Future[Any], Any, BaseException | None]], on_commit: OnCommit | None) -> None:
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


class _Checkpointer:
    """Runs PASSIVE checkpoints on its own connection shortly after commits.

    A passive checkpoint never blocks the writer or the readers; it copies what it can and
    syncs the database file as the writer's `synchronous` setting asks, so durability is
    exactly that of a checkpoint run by the writer itself.
    """

    def __init__(self, path: str, synchronous: int) -> None:
        self._path = path
        self._synchronous = synchronous
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fleetlog-sqlite-checkpoint", daemon=True)
        self._thread.start()

    @classmethod
    def start(cls, conn: sqlite3.Connection) -> _Checkpointer | None:
        """A checkpointer for the database of `conn`, if it is a file in WAL mode."""
        path = next((row[2] for row in conn.execute("PRAGMA database_list") if row[1] == "main"), "")
        mode = str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower()
        if not path or mode != "wal":
            return None
        return cls(path, int(conn.execute("PRAGMA synchronous").fetchone()[0]))

    def poke(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        self._thread.join()

    def _run(self) -> None:
        try:
            conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            log.warning("no background checkpoints (%s); the writer checkpoints itself", exc)
            return
        try:
            conn.execute(f"PRAGMA synchronous={self._synchronous}")
            while True:
                self._wake.wait()
                if self._stopping.is_set():
                    return
                self._wake.clear()
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                except sqlite3.Error as exc:  # busy or the like: the next commit tries again
                    log.debug("background checkpoint: %s", exc)
                if self._stopping.wait(CHECKPOINT_INTERVAL):  # at most one pass per interval
                    return
        finally:
            conn.close()
