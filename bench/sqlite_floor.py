"""The storage floor: the same rows, inserted with plain `sqlite3` into a table shaped like
fleetlog's `events` but with no secondary index, on a connection opened by fleetlog's own
`connect()` (same pragmas: WAL, synchronous, cache, mmap). No HTTP, no validation, no
dedupe: what SQLite alone costs for the rows fleetlog writes.

`indexed=True` inserts into fleetlog's own schema instead (its migrations: the project and
project-and-type indexes, the idempotency index, and the trigger that puts each row's entry in
`recent_device`): what SQLite costs for the rows and the index entries fleetlog writes in its
commits. Not included: fleetlog's move of those entries into `device_index` every 20,000 rows,
so here `recent_device` keeps growing and gets dearer per row than fleetlog's does.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from bench.payloads import row, stored_event
from fleetlog.adapters.storage.sqlite.connection import connect
from fleetlog.adapters.storage.sqlite.schema import migrate
from fleetlog.core.ids import SequenceClock

TABLE = """CREATE TABLE events (
    seq INTEGER PRIMARY KEY, tail INTEGER NOT NULL, tenant INTEGER NOT NULL,
    project INTEGER NOT NULL, device INTEGER, type TEXT NOT NULL, time INTEGER NOT NULL,
    outcome TEXT NOT NULL, severity INTEGER NOT NULL, state_change INTEGER NOT NULL,
    idem TEXT, doc BLOB NOT NULL)"""


def rows(count: int, devices: int, base_ms: int) -> list[tuple[Any, ...]]:
    clock = SequenceClock()
    now_us = time.time_ns() // 1000
    out = []
    for i in range(count):
        event = stored_event("bench", "fleet", f"dev-{i % devices}", i, base_ms, now_us + i)
        out.append(row(clock.next((now_us + i) // 1000), 1, 1, 1 + i % devices, event))
    return out


def insert_rate(
    directory: Path,
    per_transaction: int,
    *,
    count: int,
    devices: int = 1000,
    synchronous: str = "NORMAL",
    max_seconds: float = 10.0,
    indexed: bool = False,
) -> dict[str, Any]:
    """Rows/s inserting `count` rows (fewer if `max_seconds` runs out) `per_transaction` at a time
    with executemany. The rows (msgpack docs included) are built before the clock starts."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"floor-{per_transaction}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    conn = connect(path, synchronous=synchronous)
    if indexed:
        migrate(conn)
    else:
        conn.execute(TABLE)
    data = rows(count, devices, int(time.time() * 1000))
    sql = "INSERT INTO events VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"
    done = 0
    took: list[float] = []
    start = time.perf_counter()
    deadline = start + max_seconds
    while done < count:
        t0 = time.perf_counter()
        if t0 > deadline:
            break
        chunk = data[done : done + per_transaction]
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(sql, chunk)
        conn.execute("COMMIT")
        took.append(time.perf_counter() - t0)
        done += len(chunk)
    elapsed = time.perf_counter() - start
    took.sort()
    conn.close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return {
        "rows_per_transaction": per_transaction,
        "indexed": indexed,
        "rows": done,
        "seconds": elapsed,
        "rate_per_s": done / elapsed,
        "txn_p50_us": took[len(took) // 2] * 1e6,
        "txn_p99_us": took[min(len(took) - 1, len(took) * 99 // 100)] * 1e6,
    }
