"""Token buckets keyed by caller (an integration): ``take`` answers how long to wait, time passed in."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    """A bucket per key holding up to ``per_minute`` requests, refilled at ``per_minute`` a minute: a caller
    may send a minute's allowance at once, then one every 60/``per_minute`` seconds."""

    def __init__(self, max_keys: int = 10_000) -> None:
        self._buckets: dict[Hashable, _Bucket] = {}
        self._max_keys = max_keys

    def take(self, key: Hashable, per_minute: int, now: float) -> float:
        """Spend one token of ``key``'s bucket: 0.0 when allowed, else the seconds until a token is there."""
        rate = per_minute / 60.0
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self._max_keys:
                self._buckets.clear()
            bucket = self._buckets[key] = _Bucket(float(per_minute), now)
        # A clock that went back (or a limit lowered) never gives tokens beyond the allowance.
        bucket.tokens = min(float(per_minute), bucket.tokens + max(0.0, now - bucket.at) * rate)
        bucket.at = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / rate
