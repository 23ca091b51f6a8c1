"""Device sessions: a device is connected from its first message until it stays silent for the
idle timeout. Kept in memory (a restart starts new sessions), oldest activity first, so finding
the idle ones costs only what it returns."""

from __future__ import annotations

from collections import OrderedDict


class Sessions:
    def __init__(self, idle_us: int) -> None:
        self.idle_us = idle_us
        self._last: OrderedDict[tuple[str, str], int] = OrderedDict()

    def touch(self, tenant: str, device: str, now_us: int) -> bool:
        """Record activity; True if this starts a new session."""
        key = (tenant, device)
        new = key not in self._last
        self._last[key] = now_us
        self._last.move_to_end(key)
        return new

    def expired(self, now_us: int) -> list[tuple[str, str]]:
        """Remove and return the sessions idle for longer than the timeout."""
        gone: list[tuple[str, str]] = []
        while self._last:
            key, seen = next(iter(self._last.items()))
            if now_us - seen < self.idle_us:
                break
            del self._last[key]
            gone.append(key)
        return gone

    def forget(self, tenant: str, device: str) -> None:
        self._last.pop((tenant, device), None)

    def __contains__(self, key: tuple[str, str]) -> bool:
        return key in self._last

    def __len__(self) -> int:
        return len(self._last)
