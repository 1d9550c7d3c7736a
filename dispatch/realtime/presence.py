"""Which liaisons are connected, per township and target, over every hub node: people, not sockets (one
liaison with a phone and a tablet, or a reconnecting phone, counts once).

Each node counts its own sockets and announces its counts with NOTIFY on change and every
ANNOUNCE_S; counts from a node not heard of for EXPIRE_S are dropped (a node that died).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import asyncpg

log = logging.getLogger(__name__)

CHANNEL = "xianghu_presence"
NOTIFY = "select pg_notify('xianghu_presence', $1)"
ANNOUNCE_S = 10.0
EXPIRE_S = 35.0


class Presence:
    def __init__(self, pool: asyncpg.Pool, node_id: str, on_change: Callable[[int, dict[str, int]], None]) -> None:
        self.pool = pool
        self.node_id = node_id
        self.on_change = on_change
        # township → target → user id → open sockets on this node
        self._local: dict[int, dict[str, Counter[int]]] = {}
        # node → (last heard, township → target → user ids online there)
        self._remote: dict[str, tuple[float, dict[int, dict[str, list[int]]]]] = {}
        self._dirty: set[int] = set()
        self._flush: asyncio.Task[None] | None = None
        self._ticker: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._ticker = asyncio.create_task(self._tick(), name="presence")

    async def stop(self) -> None:
        for task in (self._ticker, self._flush):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        # Tell the other nodes this one is gone.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.pool.execute(NOTIFY, json.dumps({"node": self.node_id, "gone": True})), 2)

    def _people_here(self, township_id: int) -> dict[str, list[int]]:
        return {target: sorted(uid for uid, n in users.items() if n > 0)
                for target, users in self._local.get(township_id, {}).items() if any(users.values())}

    def people(self, township_id: int) -> dict[str, set[int]]:
        """Per target, the ids of the liaisons connected to any node (the duty roster's online marks)."""
        people: dict[str, set[int]] = {t: set(u) for t, u in self._people_here(township_id).items()}
        now = time.monotonic()
        for seen, counts in self._remote.values():
            if now - seen <= EXPIRE_S:
                for target, users in counts.get(township_id, {}).items():
                    people.setdefault(target, set()).update(users)
        return {t: u for t, u in people.items() if u}

    def online(self, township_id: int) -> dict[str, int]:
        return {t: len(u) for t, u in sorted(self.people(township_id).items())}

    def joined(self, township_id: int, target: str, user_id: int) -> None:
        self._local.setdefault(township_id, {}).setdefault(target, Counter())[user_id] += 1
        self._changed(township_id)

    def left(self, township_id: int, target: str, user_id: int) -> None:
        users = self._local.setdefault(township_id, {}).setdefault(target, Counter())
        users[user_id] -= 1
        if users[user_id] <= 0:
            del users[user_id]
        self._changed(township_id)

    def announce_soon(self) -> None:
        """Re-send this node's counts (after the listener reconnected, the others may have dropped them)."""
        if self._flush is None or self._flush.done():
            self._flush = asyncio.create_task(self._announce_soon())

    def _changed(self, township_id: int) -> None:
        self._dirty.add(township_id)
        if self._flush is None or self._flush.done():
            self._flush = asyncio.create_task(self._announce_soon())

    async def _announce_soon(self) -> None:
        # Coalesce a burst of connects into one push and one announcement; changes that arrive while
        # announcing are picked up by the next round, never dropped.
        while True:
            await asyncio.sleep(0.05)
            dirty, self._dirty = self._dirty, set()
            for tid in sorted(dirty):
                self.on_change(tid, self.online(tid))
            await self._announce()
            if not self._dirty:
                return

    async def _announce(self) -> None:
        counts = {str(t): self._people_here(t) for t in self._local}
        try:
            await self.pool.execute(NOTIFY, json.dumps({"node": self.node_id, "counts": counts}))
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("presence announcement failed: %r", exc)

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(ANNOUNCE_S)
            await self._announce()
            now = time.monotonic()
            for node, (seen, counts) in list(self._remote.items()):
                if now - seen > EXPIRE_S:
                    del self._remote[node]
                    for tid in counts:
                        self.on_change(tid, self.online(tid))

    def notified(self, _conn: Any, _pid: int, _channel: str, payload: object) -> None:
        try:
            msg = json.loads(str(payload))
            node = str(msg["node"])
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring malformed presence notification")
            return
        if node == self.node_id:
            return
        before = self._remote.get(node, (0.0, {}))[1]
        if msg.get("gone"):
            self._remote.pop(node, None)
            after: dict[int, dict[str, list[int]]] = {}
        else:
            try:
                after = {int(t): {str(k): [int(u) for u in v] for k, v in c.items()}
                         for t, c in msg.get("counts", {}).items()}
            except (ValueError, TypeError, AttributeError):
                log.warning("ignoring malformed presence counts from node %s", node)
                return
            self._remote[node] = (time.monotonic(), after)
        for tid in set(before) | set(after):
            if before.get(tid) != after.get(tid):
                self.on_change(tid, self.online(tid))
