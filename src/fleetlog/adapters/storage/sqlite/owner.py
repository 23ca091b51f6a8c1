"""One process at a time owns a SQLite store.

The embedded default has one writer thread, one sequence clock for event ids, registry caches
and an in-process bus. A second process writing the same file would hand out the same ids,
serve devices the first one removed from its caches, and never tell the first one's live
subscribers (streams, connectors) about its events. So the store's owner holds an exclusive
`flock` on a file beside the database for as long as the store is open. The kernel lets go of
it when the process ends, however it ends (`kill -9` included): a restart after a crash is
never refused. Several processes share a store through PostgreSQL instead.
"""

from __future__ import annotations

import contextlib
import fcntl  # POSIX, as uvloop already requires
import os
from pathlib import Path


class StoreInUse(RuntimeError):
    """Another process has the store open."""


class Ownership:
    """Held from `acquire` until `release` (or the end of the process)."""

    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, database: Path) -> Ownership:
        path = database.with_name(database.name + ".owner")
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise StoreInUse(
                f"the database {database} is in use by another fleetlog process (pid {holder}); "
                "the embedded SQLite store serves one process: stop the other one, or share a "
                "PostgreSQL store between processes (FLEETLOG_STORAGE_URL)"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return cls(fd)

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)  # closing the descriptor releases the lock
