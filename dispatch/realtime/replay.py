"""Replay reads shared by the sockets that resume from the same place.

After a restart (or a network blip) many sockets of a township resume at once from the same cursor: each
would read the same events, decode the same bodies and encode the same frames. Here one read per (township,
cursor, head, batch, target) serves every socket that asks for it while it runs and for ``REUSE_S`` after:
the records are read and decoded once, and each event's frame is encoded once per visibility class
(``Encoded``: the township's operators, everyone else masked).

Events below the node's delivered head never change; only the reporter's name and phone joined into them may
be erased meanwhile, so a completed read is reused for a moment only — no longer than a replay that began
just before the erasure would still be sending the old frames.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

from dispatch.realtime.fanout import Encoded
from dispatch.store.eventlog import DELIVERY_COLUMNS, DELIVERY_FROM, EventRecord

if TYPE_CHECKING:
    import asyncpg

REPLAY_ALL = f"""
select {DELIVERY_COLUMNS}
  from {DELIVERY_FROM}
 where e.township_id = $1 and e.seq > $2 and e.seq <= $3
 order by e.seq
 limit $4
"""
REPLAY_TARGET = f"""
select {DELIVERY_COLUMNS}
  from {DELIVERY_FROM}
 where e.township_id = $1 and e.seq > $2 and e.seq <= $3 and $5 = any(e.audience)
 order by e.seq
 limit $4
"""
REUSE_S = 1.0  # a completed read serves the sockets that ask for it this long after it finished
MAX_KEPT = 256  # completed reads kept at most (a batch each)

# township, after, up to, batch, target (None: every event of the township)
Key = tuple[int, int, int, int, str | None]


def _retrieve(task: asyncio.Task[list[Encoded]]) -> None:
    """Mark a failed read's exception as seen: its waiters may all have left (each one that waited got it)."""
    if not task.cancelled():
        task.exception()


class SharedReads:
    """One read of a replay batch for every socket resuming from the same cursor at about the same time."""

    def __init__(self, pool: asyncpg.Pool, clock: Callable[[], float] | None = None) -> None:
        self.pool = pool
        self._clock = clock
        self._running: dict[Key, asyncio.Task[list[Encoded]]] = {}
        self._kept: dict[Key, tuple[float, list[Encoded]]] = {}  # insertion order: oldest first
        self.reads = 0  # database reads made (a test and the metrics read it)

    def _now(self) -> float:
        return self._clock() if self._clock is not None else asyncio.get_running_loop().time()

    async def batch(self, township_id: int, after: int, upto: int, limit: int, target: str | None) -> list[Encoded]:
        """The events of ``township_id`` after ``after`` up to ``upto`` (at most ``limit``, in order) that
        ``target`` may see (None: all), each ready to be encoded once per visibility class."""
        key: Key = (township_id, after, upto, limit, target)
        now = self._now()
        kept = self._kept.get(key)
        if kept is not None:
            if now - kept[0] <= REUSE_S:
                return kept[1]
            del self._kept[key]
        task = self._running.get(key)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._read(key), name=f"replay-read-{township_id}")
            self._running[key] = task
            task.add_done_callback(_retrieve)
        # A socket that leaves meanwhile must not cancel the read the others wait for.
        return await asyncio.shield(task)

    async def _read(self, key: Key) -> list[Encoded]:
        township_id, after, upto, limit, target = key
        try:
            self.reads += 1
            if target is None:
                rows = await self.pool.fetch(REPLAY_ALL, township_id, after, upto, limit)
            else:
                rows = await self.pool.fetch(REPLAY_TARGET, township_id, after, upto, limit, target)
            encoded = [Encoded(EventRecord.from_row(r)) for r in rows]
        finally:
            del self._running[key]
        self._keep(key, encoded)
        return encoded

    def _keep(self, key: Key, encoded: list[Encoded]) -> None:
        now = self._now()
        for old, (at, _) in list(self._kept.items()):
            if now - at <= REUSE_S and len(self._kept) < MAX_KEPT:
                break  # the rest are newer
            del self._kept[old]
        self._kept[key] = (now, encoded)
