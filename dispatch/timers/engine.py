"""The SLA engine: APScheduler timers derived from the deadlines stored in assignment rows.

The database is the truth (``assignments.next_due/next_kind/next_level``, written by the store); this node's
scheduler only caches the deadlines due within ``sla.horizon_s`` and re-reads them on a periodic sweep.
Firing is claimed by the store: the lifecycle accepts one level at a time under the township lock and the
command id is derived from the rung, so when several nodes fire the same rung exactly one event is written.
A fire that fails because the database is unreachable is retried with a short backoff (not the sweep's
period) until the rungs due by then are written.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Coroutine, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_EXECUTED,
    EVENT_JOB_MISSED,
    EVENT_JOB_SUBMITTED,
    JobEvent,
)
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from dispatch.core.clock import Clock
from dispatch.core.commands import Escalate
from dispatch.core.config import Config
from dispatch.core.domain import SYSTEM_ACTOR, DeadlineKind
from dispatch.core.settings import ConfigRef
from dispatch.store.eventlog import EventRecord
from dispatch.store.pool import unreachable
from dispatch.store.writer import Store
from protocols.errors import CommandIdReused, IllegalTransition

log = logging.getLogger(__name__)
# APScheduler logs every added job at INFO; with a horizon of thousands that drowns the hub's own log.
SCHEDULER_LOG = logging.getLogger(f"{__name__}.scheduler")
SCHEDULER_LOG.setLevel(logging.WARNING)

SELECT_WITHIN_HORIZON = """
select id, next_due, next_kind, next_level
  from assignments
 where next_due is not null and next_due <= $1
 order by next_due
"""
SELECT_RUNG = """
select next_due, next_kind, next_level, ack_due, arrive_due, resolve_due,
       (doc->>'review_due')::timestamptz as review_due  -- the operator's deadline on a transfer request
  from assignments
 where id = $1
"""
SELECT_NEXT_DUE = "select id, next_due from assignments where id = any($1::uuid[])"

NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:xianghu:sla")
SWEEP_JOB = "sla-sweep"
FIRE_CONCURRENCY = 4  # escalations this node writes at once (the pool serves requests too)
DRAIN_TIMEOUT_S = 10.0
RETRY_FIRST_S = 0.25  # after a fire failed on an unreachable database: first retry, doubling up to the cap
RETRY_MAX_S = 1.0


def claim_id(assignment_id: UUID, kind: DeadlineKind, level: int, deadline: datetime) -> UUID:
    """The command id of one rung: the same on every node, new when a send-back resets the deadline."""
    when = deadline.astimezone(UTC).isoformat()
    return uuid.uuid5(NAMESPACE, f"{assignment_id}:{kind.value}:{level}:{when}")


class SlaEngine:
    """One node's timers: arm the near deadlines, sweep, fire escalations through the store."""

    def __init__(self, pool: asyncpg.Pool, store: Store, cfg: Config | ConfigRef, clock: Clock) -> None:
        self.pool = pool
        self.store = store
        self.config = cfg if isinstance(cfg, ConfigRef) else ConfigRef(cfg)
        self.clock = clock
        self.fired_total = 0  # escalations this node wrote (a lost claim does not count)
        self._horizon = timedelta(seconds=self.config.current.sla.horizon_s)
        self._scheduler: AsyncIOScheduler | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._running = False
        self._epoch = 0  # bumped when the clock jumps: every armed run date is then stale
        self._armed: dict[UUID, tuple[datetime, int]] = {}  # assignment -> (due, epoch) it was armed for
        self._locks: dict[UUID, asyncio.Lock] = {}
        self._lock_users: dict[UUID, int] = {}
        self._sweep_lock = asyncio.Lock()
        self._fire_slots = asyncio.Semaphore(FIRE_CONCURRENCY)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._submitted = 0  # jobs handed to the executor and not finished (their task may not run yet)
        self._stopping = asyncio.Event()  # wakes the retry backoff at stop
        self._retrying = False  # a retry loop is running
        self._retry_wanted = False  # a fire or sweep failed on an unreachable database since the last retry

    @property
    def cfg(self) -> Config:
        """The configuration in effect (sweep_s and horizon_s are the file's: they are read at start)."""
        return self.config.current

    # -- life cycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        """Arm the deadlines within the horizon and fire the overdue ones in the background."""
        if self._running:
            raise RuntimeError("the SLA engine is already running")
        self._loop = asyncio.get_running_loop()
        self._stopping.clear()
        self._scheduler = AsyncIOScheduler(timezone=UTC, logger=SCHEDULER_LOG)
        self._scheduler.add_listener(self._job_event,
                                     EVENT_JOB_SUBMITTED | EVENT_JOB_EXECUTED | EVENT_JOB_ERROR | EVENT_JOB_MISSED)
        self._scheduler.start()
        self._running = True
        self._scheduler.add_job(self._periodic_sweep, "interval", seconds=self.cfg.sla.sweep_s, id=SWEEP_JOB,
                                misfire_grace_time=None, coalesce=True, max_instances=1)
        on_change = getattr(self.clock, "on_change", None)
        if callable(on_change):
            on_change(self._clock_changed)
        try:
            await self._sweep(fire=False)
        except Exception:
            log.exception("SLA: arming deadlines at start failed; the next sweep retries")
        self._spawn(self._guarded_sweep())  # overdue ones (the hub was down) fire at once

    async def stop(self) -> None:
        """Let escalations being written finish, then stop the scheduler; safe to call twice."""
        if not self._running:
            return
        self._running = False
        self._stopping.set()
        pending = [t for t in self._tasks if not t.done()]
        if pending:
            _, late = await asyncio.wait(pending, timeout=DRAIN_TIMEOUT_S)
            for task in late:
                task.cancel()
        if self._scheduler is not None and self._scheduler.running:
            self._scheduler.shutdown(wait=False)
        self._armed.clear()

    # -- what tests and the fan-out call ------------------------------------------------------------

    async def sweep_now(self) -> int:
        """Fire every rung due by the clock now, arm the rest of the horizon; return how many this call fired."""
        return await self._sweep(fire=True)

    async def drain(self) -> None:
        """Wait until no timer of this node is due or running (sweeps triggered by a clock jump included)."""
        deadline = asyncio.get_running_loop().time() + DRAIN_TIMEOUT_S
        me = asyncio.current_task()
        await asyncio.sleep(0)  # let callbacks queued by a clock jump start their sweep
        while asyncio.get_running_loop().time() < deadline:
            pending = [t for t in self._tasks if t is not me and not t.done()]
            if pending:
                await asyncio.wait(pending, timeout=max(0.0, deadline - asyncio.get_running_loop().time()))
            elif self._submitted or self._jobs_due():
                await asyncio.sleep(0.001)  # the scheduler submits due jobs on its next wake-up
            else:
                return

    async def settled(self) -> int:
        """Drain, sweep and drain again: after it returns every rung due now has fired. Returns how many."""
        before = self.fired_total
        await self.drain()
        await self.sweep_now()
        await self.drain()
        return self.fired_total - before

    async def on_events(self, records: Sequence[EventRecord]) -> None:
        """Re-arm (or cancel) the timers of the assignments these newly committed events touched."""
        ids = list({r.assignment_id for r in records if r.assignment_id is not None})
        if not ids or not self._running:
            return
        rows = await self.pool.fetch(SELECT_NEXT_DUE, ids)
        horizon_end = self.clock.now() + self._horizon
        for row in rows:
            due = row["next_due"]
            if due is None or due > horizon_end:
                self._disarm(row["id"])
            else:
                self._arm(row["id"], due)  # already overdue: runs at once

    def armed(self) -> dict[UUID, datetime]:
        """The deadlines this node holds a timer for (assignment -> due, by the hub's clock)."""
        return {aid: due for aid, (due, _) in self._armed.items()}

    # -- timers ------------------------------------------------------------------------------------

    def _run_date(self, due: datetime) -> datetime:
        # APScheduler runs on real time; the hub's clock may be ahead of it (tests, OffsetClock).
        return datetime.now(UTC) + (due - self.clock.now())

    def _arm(self, aid: UUID, due: datetime) -> None:
        if not self._running or self._scheduler is None:
            return
        key = (due, self._epoch)
        if self._armed.get(aid) == key:
            return
        self._scheduler.add_job(self._job, "date", run_date=self._run_date(due), args=(aid,), id=str(aid),
                                replace_existing=True, misfire_grace_time=None, coalesce=True,
                                max_instances=10)  # the per-assignment lock serialises, not APScheduler
        self._armed[aid] = key

    def _disarm(self, aid: UUID) -> None:
        if self._armed.pop(aid, None) is None or self._scheduler is None:
            return
        with contextlib.suppress(JobLookupError):
            self._scheduler.remove_job(str(aid))

    def _jobs_due(self) -> bool:
        if self._scheduler is None or not self._running:
            return False
        now = datetime.now(UTC)
        return any(job.id != SWEEP_JOB and job.next_run_time is not None and job.next_run_time <= now
                   for job in self._scheduler.get_jobs())

    def _job_event(self, event: JobEvent) -> None:
        if event.code == EVENT_JOB_SUBMITTED:
            self._submitted += 1
        else:
            self._submitted = max(0, self._submitted - 1)

    def _clock_changed(self) -> None:
        """The clock jumped (tests, OffsetClock): armed run dates are stale and more may be due."""
        if not self._running or self._loop is None:
            return
        self._epoch += 1
        try:
            here = asyncio.get_running_loop() is self._loop
        except RuntimeError:
            here = False
        if here:
            self._spawn(self._guarded_sweep())
        else:
            self._loop.call_soon_threadsafe(lambda: self._spawn(self._guarded_sweep()))

    def _spawn(self, coro: Coroutine[Any, Any, object]) -> bool:
        if not self._running or self._loop is None:
            coro.close()
            return False
        task = self._loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    async def _job(self, aid: UUID) -> None:
        """A timer went off: the row decides what (if anything) is due."""
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        self._armed.pop(aid, None)
        if self._running:
            await self._fire_guarded(aid)

    async def _periodic_sweep(self) -> None:
        await self._guarded_sweep()

    async def _guarded_sweep(self) -> int:
        try:
            return await self._sweep(fire=True)
        except Exception as exc:
            if not unreachable(exc):
                log.exception("SLA sweep failed; the next sweep retries")
                return 0
            log.warning("SLA sweep failed, the database is unreachable (%r); retrying shortly", exc)
            self._retry_soon()
            return 0

    def _retry_soon(self) -> None:
        """Make sure one retry loop runs: the rungs that failed are still due in their rows."""
        self._retry_wanted = True
        if self._retrying or not self._running:
            return
        self._retrying = self._spawn(self._retry())

    async def _retry(self) -> None:
        """Sweep again after 0.25 s, 0.5 s, 1 s, 1 s, ... until a sweep meets no unreachable database."""
        delay = RETRY_FIRST_S
        try:
            while self._running and self._retry_wanted:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), delay)
                if not self._running:
                    return
                self._retry_wanted = False
                fired = await self._guarded_sweep()  # sets _retry_wanted again while the database is away
                if fired and not self._retry_wanted:
                    log.info("SLA: the database is back; %d escalation(s) written", fired)
                delay = min(delay * 2, RETRY_MAX_S)
        finally:
            self._retrying = False

    async def _sweep(self, *, fire: bool) -> int:
        async with self._sweep_lock:
            if not self._running:
                return 0
            now = self.clock.now()
            rows = await self.pool.fetch(SELECT_WITHIN_HORIZON, now + self._horizon)
            fired = 0
            for row in rows:
                if not self._running:
                    break
                if row["next_due"] <= now:
                    if fire:
                        fired += await self._fire_guarded(row["id"])
                    # at start the background sweep fires the overdue ones; no timer needed
                else:
                    self._arm(row["id"], row["next_due"])
            return fired

    # -- firing ------------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _claim(self, aid: UUID) -> AsyncIterator[None]:
        """One firing per assignment at a time on this node (a timer and a sweep may meet)."""
        lock = self._locks.setdefault(aid, asyncio.Lock())
        self._lock_users[aid] = self._lock_users.get(aid, 0) + 1
        try:
            async with lock:
                yield
        finally:
            self._lock_users[aid] -= 1
            if not self._lock_users[aid]:
                del self._lock_users[aid], self._locks[aid]

    async def _fire_guarded(self, aid: UUID) -> int:
        try:
            return await self._fire(aid)
        except Exception as exc:
            if not unreachable(exc):
                # Never lets a bad row stop the scheduler: the row is still due, so the next sweep retries.
                log.exception("SLA: escalating assignment %s failed; the next sweep retries", aid)
                return 0
            log.warning("SLA: escalating assignment %s failed, the database is unreachable (%r); retrying shortly",
                        aid, exc)
            self._retry_soon()
            return 0

    async def _fire(self, aid: UUID) -> int:
        """Escalate every rung of ``aid`` due by now, one level at a time; arm the next one."""
        fired = 0
        async with self._claim(aid):
            last: tuple[datetime, str, int] | None = None
            while self._running:
                row = await self.pool.fetchrow(SELECT_RUNG, aid)
                if row is None or row["next_due"] is None:
                    self._disarm(aid)
                    break
                due: datetime = row["next_due"]
                now = self.clock.now()
                if due > now:
                    if due <= now + self._horizon:
                        self._arm(aid, due)
                    else:
                        self._disarm(aid)
                    break
                rung = (due, str(row["next_kind"]), int(row["next_level"]))
                if rung == last:
                    # The claim was refused yet the row did not move: leave it to the next sweep.
                    log.warning("SLA: %s level %s of assignment %s was refused and is still due",
                                rung[1], rung[2], aid)
                    break
                last = rung
                fired += await self._escalate(aid, row, now)
        self.fired_total += fired
        return fired

    async def _escalate(self, aid: UUID, row: asyncpg.Record, now: datetime) -> int:
        kind = DeadlineKind(row["next_kind"])
        level = int(row["next_level"])
        deadline: datetime = row[f"{kind.value}_due"]
        cmd = Escalate(command_id=claim_id(aid, kind, level, deadline), assignment_id=aid, deadline_kind=kind,
                       level=level, deadline=deadline, due=row["next_due"], fired_at=now)
        try:
            async with self._fire_slots:
                outcome = await self.store.execute(SYSTEM_ACTOR, cmd)
        except (IllegalTransition, CommandIdReused) as exc:
            # Another node won this rung, or the assignment moved on since the row was read.
            log.debug("SLA: %s level %d of %s already done: %s", kind.value, level, aid, exc)
            return 0
        return 0 if outcome.replayed else 1
