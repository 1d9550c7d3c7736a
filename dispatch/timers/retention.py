"""The retention period (``[privacy] retention_days``): once a day a hub erases the reporters of calls closed
more than that many days ago (``dispatch.store.erasure``). One node at a time: the run holds an advisory lock
and reads when the last run was (``meta``), so several nodes checking at once erase once. The clock is the
hub's own, so tests jump it instead of waiting a day.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime, timedelta

import asyncpg

from dispatch.core.clock import Clock
from dispatch.core.domain import SYSTEM_ACTOR
from dispatch.store import erasure
from dispatch.store.erasure import ErasureReport
from dispatch.store.pool import unreachable

log = logging.getLogger(__name__)

EVERY = timedelta(days=1)
CHECK_S = 600.0  # how often (real seconds) a node looks whether a day has passed since the last run
RUN_LOCK = "select pg_try_advisory_xact_lock(7420190011)"
SELECT_LAST_RUN = "select value from meta where key = 'retention_last_run'"
SET_LAST_RUN = """
insert into meta (key, value) values ('retention_last_run', $1)
on conflict (key) do update set value = excluded.value
"""


class Retention:
    def __init__(self, pool: asyncpg.Pool, clock: Clock, retention_days: int) -> None:
        self.pool = pool
        self.clock = clock
        self.days = retention_days
        self.runs: list[ErasureReport] = []  # this node's runs (tests and logs read them)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self.days == 0:
            return
        on_change = getattr(self.clock, "on_change", None)
        if on_change is not None:  # a clock that jumps (tests) wakes the check at once
            on_change(self._wake.set)
        self._task = asyncio.create_task(self._run(), name="retention")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    async def run_if_due(self) -> ErasureReport | None:
        """Erase what the retention period allows if no node did so within a day; None when not due here."""
        now = self.clock.now()
        async with self.pool.acquire() as conn, conn.transaction():
            if not await conn.fetchval(RUN_LOCK):
                return None  # another node is running it now
            last = await conn.fetchval(SELECT_LAST_RUN)
            if last is not None and now - datetime.fromisoformat(last) < EVERY:
                return None
            report = await erasure.erase(conn, cutoff=now - timedelta(days=self.days), now=now, actor=SYSTEM_ACTOR)
            await conn.execute(SET_LAST_RUN, now.isoformat())
        self.runs.append(report)
        if report.calls:
            log.info("retention: erased the reporters of %d calls closed before %s", report.calls, report.cutoff)
        return report

    async def _run(self) -> None:
        while True:
            try:
                await self.run_if_due()
            except Exception as exc:
                if unreachable(exc):
                    log.warning("retention check: database unreachable (%r); retrying later", exc)
                else:
                    log.exception("retention check failed")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), CHECK_S)
