"""Opening SQLite connections the way fleetlog needs them."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def connect(path: Path | str, *, synchronous: str = "NORMAL", readonly: bool = False) -> sqlite3.Connection:
    """A connection in WAL mode with autocommit off (we issue BEGIN ourselves).

    synchronous=NORMAL in WAL mode survives a crash of the process (the WAL is in the OS page
    cache the moment COMMIT returns); FULL also survives a power cut, at a cost per commit.
    """
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, cached_statements=256)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=10000")
    conn.execute("PRAGMA cache_size=-65536")  # 64 MiB page cache per connection
    conn.execute("PRAGMA temp_store=MEMORY")
    conn.execute("PRAGMA mmap_size=268435456")
    if readonly:
        conn.execute("PRAGMA query_only=ON")
    return conn
