"""Exactly-once storage of MQTT QoS 1 messages across crashes.

fleetlog acknowledges a message to the broker only after its event is committed. If fleetlog dies
between the commit and the broker receiving the PUBACK, the broker redelivers the message on
reconnect, with its original packet id. To store it only once, each message gets an idempotency
key, and the key is written to this journal (by packet id) before the event is submitted: a
redelivery finds its packet id here and reuses the key, so the store sees a duplicate.

Packet ids are reused by the broker, so an entry only matches a message whose packet id is
within `window` behind the newest one received (a broker sends packet ids in increasing order and
has at most its in-flight limit unacknowledged) and whose topic and payload digest are equal.
A broker session that starts afresh (session present = 0) cannot redeliver anything, so the
journal is cleared then.

The journal is a text file of `mid digest key` lines, written before each batch is submitted
(one write call; it survives a process crash like SQLite's synchronous=NORMAL), compacted when
it grows.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path

MID_SPACE = 65536
COMPACT_AFTER_LINES = 200_000


def digest(topic: str, payload: bytes) -> str:
    h = hashlib.blake2b(digest_size=8)
    h.update(topic.encode())
    h.update(b"\0")
    h.update(payload)
    return h.hexdigest()


class AckJournal:
    def __init__(self, path: Path, window: int = 8192) -> None:
        self.path = path
        self.window = window
        self._entries: dict[int, tuple[str, str]] = {}
        self._newest: int | None = None
        self._lines: list[str] = []
        self._written_lines = 0
        self.reused = 0  # redeliveries recognised
        # Keys: random per run, then a counter (cheaper than a uuid per message, as unique).
        self._run = uuid.uuid4().hex[:16]
        self._counter = 0

    def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            for line in self.path.read_text().splitlines():
                parts = line.split()
                if len(parts) == 3 and parts[0].isdigit():
                    mid = int(parts[0])
                    self._entries[mid] = (parts[1], parts[2])
                    self._advance(mid)
        self._compact()

    def new_session(self) -> None:
        """The broker kept no session: nothing can be redelivered."""
        self._entries.clear()
        self._newest = None
        self._compact()

    def key_for(self, mid: int, topic: str, payload: bytes) -> str:
        """The idempotency key for a QoS 1 message with packet id `mid`."""
        sig = digest(topic, payload)
        if self._newest is not None:
            behind = (self._newest - mid) % MID_SPACE
            entry = self._entries.get(mid)
            if behind < self.window and entry is not None and entry[0] == sig:
                self.reused += 1
                return entry[1]
        self._counter += 1
        key = f"mqtt:{self._run}:{self._counter}"
        self._entries[mid] = (sig, key)
        self._advance(mid)
        self._lines.append(f"{mid} {sig} {key}\n")
        return key

    def flush(self) -> None:
        """Write the new entries: before the events they name are submitted."""
        if not self._lines:
            return
        data = "".join(self._lines).encode()
        self._lines.clear()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        self._written_lines += data.count(b"\n")
        if self._written_lines > COMPACT_AFTER_LINES:
            self._compact()

    def _advance(self, mid: int) -> None:
        if self._newest is None or 0 < (mid - self._newest) % MID_SPACE < MID_SPACE // 2:
            self._newest = mid

    def _compact(self) -> None:
        """Rewrite the journal with only the entries that can still match (atomic rename)."""
        live: list[str] = []
        newest = self._newest
        if newest is not None:
            behind = {mid: (newest - mid) % MID_SPACE for mid in self._entries}
            # Oldest first, so that loading the file again restores `_newest` from the last line.
            live = [
                f"{mid} {sig} {key}\n"
                for mid, (sig, key) in sorted(self._entries.items(), key=lambda item: -behind[item[0]])
                if behind[mid] < self.window
            ]
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text("".join(live))
        os.replace(tmp, self.path)
        self._entries = {int(line.split()[0]): (line.split()[1], line.split()[2]) for line in live}
        self._written_lines = len(live)
