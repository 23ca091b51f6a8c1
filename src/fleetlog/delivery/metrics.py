"""What a connector did lately: counts and p99 latency over the last 3 hours (DT's `:metrics`),
the last failures, and totals since start for Prometheus.

Kept in memory, in one-minute buckets, each with a sparse log-scale latency histogram (bins
about 19 % wide), so a connector costs the same at 10 or 10,000 pushes a second. The window and
the last failures are saved with the connector's cursor (`snapshot`, `restore`), so a restart
does not forget them; the totals are counters since start, as Prometheus expects.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import msgspec

from fleetlog.core.timefmt import rfc3339
from fleetlog.delivery.sender import Attempt

WINDOW_SECONDS = 3 * 3600
BUCKET_SECONDS = 60
FAILURES_KEPT = 20
_BINS_PER_DOUBLING = 4
_MIN_LATENCY = 0.0001  # seconds: bin 0 holds everything faster


def _bin(latency: float) -> int:
    if latency <= _MIN_LATENCY:
        return 0
    return 1 + int(math.log2(latency / _MIN_LATENCY) * _BINS_PER_DOUBLING)


def _upper(bin_: int) -> float:
    """The upper edge of a bin, in seconds."""
    return _MIN_LATENCY * 2 ** (bin_ / _BINS_PER_DOUBLING)


@dataclass
class _Bucket:
    minute: int
    success: int = 0
    error: int = 0
    latency: dict[int, int] = field(default_factory=dict)


class _Saved(msgspec.Struct, omit_defaults=True):
    """The stored form: buckets as [minute, success, error, [[bin, count], ...]]."""

    buckets: list[tuple[int, int, int, list[tuple[int, int]]]] = []
    failures: list[dict[str, Any]] = []
    last_success: int | None = None


@dataclass(frozen=True)
class Summary:
    success: int
    error: int
    p99: float | None  # seconds; None without pushes


class ConnectorMetrics:
    def __init__(self) -> None:
        self._buckets: deque[_Bucket] = deque()
        self.failures: deque[dict[str, Any]] = deque(maxlen=FAILURES_KEPT)
        self.success_total = 0
        self.error_total = 0
        self.dropped_total = 0  # older than the maximum age: never delivered
        self.last_success: int | None = None
        self.changed = False  # since the last snapshot

    def snapshot(self) -> dict[str, Any]:
        self.changed = False
        saved = _Saved(
            [(b.minute, b.success, b.error, sorted(b.latency.items())) for b in self._buckets],
            list(self.failures),
            self.last_success,
        )
        return msgspec.to_builtins(saved)  # type: ignore[no-any-return]

    @classmethod
    def restore(cls, doc: Any) -> ConnectorMetrics:
        """Metrics from a snapshot (a damaged one gives empty metrics: they are not vital)."""
        metrics = cls()
        try:
            saved = msgspec.convert(doc, _Saved)
        except msgspec.ValidationError:
            return metrics
        metrics._buckets.extend(_Bucket(m, s, e, dict(latency)) for m, s, e, latency in saved.buckets)
        metrics.failures.extend(saved.failures)
        metrics.last_success = saved.last_success
        return metrics

    def _bucket(self, now_us: int) -> _Bucket:
        minute = now_us // (BUCKET_SECONDS * 1_000_000)
        if not self._buckets or self._buckets[-1].minute != minute:
            self._buckets.append(_Bucket(minute))
            self._expire(minute)
        return self._buckets[-1]

    def _expire(self, minute: int) -> None:
        oldest = minute - WINDOW_SECONDS // BUCKET_SECONDS
        while self._buckets and self._buckets[0].minute <= oldest:
            self._buckets.popleft()

    def record(self, now_us: int, attempt: Attempt, event_id: str, tries: int) -> None:
        self.changed = True
        bucket = self._bucket(now_us)
        b = _bin(attempt.latency)
        bucket.latency[b] = bucket.latency.get(b, 0) + 1
        if attempt.delivered:
            bucket.success += 1
            self.success_total += 1
            self.last_success = now_us
            return
        bucket.error += 1
        self.error_total += 1
        self.failures.append(
            {
                "time": rfc3339(now_us),
                "status": attempt.status,
                "error": attempt.error,
                "body": attempt.excerpt,
                "eventId": event_id,
                "attempt": tries,
            }
        )

    def dropped(self) -> None:
        self.dropped_total += 1

    def summary(self, now_us: int) -> Summary:
        self._expire(now_us // (BUCKET_SECONDS * 1_000_000))
        success = sum(b.success for b in self._buckets)
        error = sum(b.error for b in self._buckets)
        hist: dict[int, int] = {}
        for bucket in self._buckets:
            for b, n in bucket.latency.items():
                hist[b] = hist.get(b, 0) + n
        total = sum(hist.values())
        if not total:
            return Summary(success, error, None)
        rank = math.ceil(total * 0.99)
        seen = 0
        for b in sorted(hist):
            seen += hist[b]
            if seen >= rank:
                return Summary(success, error, _upper(b))
        raise AssertionError("unreachable")  # pragma: no cover
