"""When to try a failed push again: exponential back-off with full jitter, or the receiver's
own `Retry-After` on 429 and 503."""

from __future__ import annotations

import random
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

RETRY_AFTER_STATUSES = frozenset({429, 503})
RETRY_AFTER_CAP_SECONDS = 3600.0  # a receiver cannot park a connector for longer than this


@dataclass(frozen=True)
class RetryPolicy:
    base_seconds: float = 1.0
    max_seconds: float = 300.0

    def backoff(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after the `attempt`-th failure (0-based): uniform in [0, base * 2^n],
        capped. Full jitter spreads retries of many lanes so they don't hit a receiver at once."""
        ceiling = min(self.max_seconds, self.base_seconds * (2 ** min(attempt, 32)))
        return (rng or random).uniform(0, ceiling)

    def delay(self, attempt: int, status: int, retry_after: str | None, now_seconds: float) -> float:
        if status in RETRY_AFTER_STATUSES and retry_after is not None:
            asked = parse_retry_after(retry_after, now_seconds)
            if asked is not None:
                return min(asked, RETRY_AFTER_CAP_SECONDS)
        return self.backoff(attempt)


def parse_retry_after(value: str, now_seconds: float) -> float | None:
    """`Retry-After`: delay-seconds or an HTTP-date (RFC 9110 10.2.3); None if neither."""
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now_seconds)
