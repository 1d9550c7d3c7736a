"""Heartbeat scheduling: sockets in buckets by the whole second (loop clock) their next heartbeat is due, so
a tick touches only the sockets that are due, not every open one."""

from __future__ import annotations

import math
from collections.abc import Hashable
from typing import Generic, TypeVar

T = TypeVar("T", bound=Hashable)


class DueBuckets(Generic[T]):
    """Items by the whole second their due time falls in. ``due(now)`` takes out every item of the seconds up
    to ``now``'s, so an item may come out up to a second before its due time (the caller checks and schedules it
    again) but never after the first tick past it: ticks run a little after each whole second, and an item due
    between the second and its tick is taken by that tick, as a walk over every item at each tick would. An
    item is in at most one bucket (scheduling it again moves it), and ``discard`` forgets it at once (nothing
    holds a closed socket)."""

    def __init__(self, now: float) -> None:
        self._buckets: dict[int, set[T]] = {}
        self._bucket_of: dict[T, int] = {}
        self._done = math.floor(now)  # buckets up to this second have been taken out

    def __len__(self) -> int:
        return len(self._bucket_of)

    def schedule(self, item: T, at: float) -> None:
        """Have ``due`` return ``item`` at the first call in or after the second ``at`` falls in (the next call,
        if that second has been taken out already)."""
        self.discard(item)
        key = self._done + 1 if at < self._done + 1 else math.floor(at)
        self._buckets.setdefault(key, set()).add(item)
        self._bucket_of[item] = key

    def discard(self, item: T) -> None:
        key = self._bucket_of.pop(item, None)
        if key is not None:
            bucket = self._buckets[key]
            bucket.discard(item)
            if not bucket:
                del self._buckets[key]

    def due(self, now: float) -> list[T]:
        """Take out the items due by ``now`` (oldest bucket first)."""
        out: list[T] = []
        upto = math.floor(now)
        if len(self._buckets) < upto - self._done:  # after a long stall: fewer buckets than seconds passed
            keys = sorted(k for k in self._buckets if k <= upto)
        else:
            keys = [k for k in range(self._done + 1, upto + 1) if k in self._buckets]
        for key in keys:
            for item in self._buckets.pop(key):
                del self._bucket_of[item]
                out.append(item)
        self._done = max(self._done, upto)
        return out
