"""Heartbeat scheduling: sockets in buckets by the tick (a tenth of a second of the loop clock in the hub) their
next heartbeat is due in, so a tick touches only the sockets that are due, not every open one, and the pings of
sockets that connected together are spread over the second instead of sent in one burst."""

from __future__ import annotations

import math
from collections.abc import Hashable
from typing import Generic, TypeVar

T = TypeVar("T", bound=Hashable)


class DueBuckets(Generic[T]):
    """Items by the step (``step`` seconds: a whole second by default) their due time falls in. ``due(now)``
    takes out every item of the steps up to ``now``'s, so an item may come out up to a step before its due time
    (the caller checks and schedules it again) but never after the first tick past it: ticks run a little after
    each step's start, and an item due between that and its tick is taken by that tick, as a walk over every
    item at each tick would. An item is in at most one bucket (scheduling it again moves it), and ``discard``
    forgets it at once (nothing holds a closed socket)."""

    def __init__(self, now: float, step: float = 1.0) -> None:
        self.step = step
        self._buckets: dict[int, set[T]] = {}
        self._bucket_of: dict[T, int] = {}
        self._done = math.floor(now / step)  # buckets up to this step have been taken out

    def __len__(self) -> int:
        return len(self._bucket_of)

    def schedule(self, item: T, at: float) -> None:
        """Have ``due`` return ``item`` at the first call in or after the step ``at`` falls in (the next call,
        if that step has been taken out already)."""
        self.discard(item)
        at_step = at / self.step
        key = self._done + 1 if at_step < self._done + 1 else math.floor(at_step)
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
        upto = math.floor(now / self.step)
        if len(self._buckets) < upto - self._done:  # after a long stall: fewer buckets than steps passed
            keys = sorted(k for k in self._buckets if k <= upto)
        else:
            keys = [k for k in range(self._done + 1, upto + 1) if k in self._buckets]
        for key in keys:
            for item in self._buckets.pop(key):
                del self._bucket_of[item]
                out.append(item)
        self._done = max(self._done, upto)
        return out
