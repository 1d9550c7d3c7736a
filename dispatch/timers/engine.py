"""The SLA engine: APScheduler timers derived from the deadlines stored in assignment rows.

The database is the truth (``assignments.next_due/next_kind/next_level``, written by the store); this node only
caches the deadlines due within ``sla.horizon_s`` and re-reads them on a periodic sweep. The cache is a heap of
(due, assignment) with one APScheduler date job (``sla-wake``) set for the earliest: arming 100,000 deadlines is
100,000 heap pushes, not 100,000 scheduler jobs. What falls due goes to its township's queue; one writer per
township takes everything queued for it and escalates it in one transaction (``Store.execute_many``), so a burst
of rungs costs one township lock and one commit per batch, and townships are written concurrently (up to
``FIRE_CONCURRENCY``). Firing is claimed by the store: the lifecycle accepts one level at a time under the
township lock and the command id is derived from the rung, so when several nodes fire the same rung exactly one
event is written. A fire that fails because the database is unreachable is retried with a short backoff (not the
sweep's period) until the rungs due by then are written. The sweep reads the horizon in pages, yielding between
them, so that re-reading 100,000 rows never holds the event loop for long.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import uuid
from collections.abc import Coroutine, Sequence
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
from dispatch.store.writer import Outcome, Store
from protocols.errors import CommandIdReused, IllegalTransition

log = logging.getLogger(__name__)
# APScheduler logs every added job at INFO; with a horizon of thousands that drowns the hub's own log.
SCHEDULER_LOG = logging.getLogger(f"{__name__}.scheduler")
SCHEDULER_LOG.setLevel(logging.WARNING)

# One page of the horizon, after (due, id) of the previous page's last row.
SELECT_WITHIN_HORIZON = """
select id, township_id, next_due
  from assignments
 where next_due is not null and next_due <= $1 and (next_due, id) > ($2, $3)
 order by next_due, id
 limit $4
"""
# The operator's deadline on a transfer request is in the document only: read (the document detoasted) only for
# a rung of that kind, the only one that uses it.
SELECT_RUNGS = """
select id, township_id, next_due, next_kind, next_level, ack_due, arrive_due, resolve_due,
       case when next_kind = 'review' then (doc->>'review_due')::timestamptz end as review_due
  from assignments
 where id = any($1::uuid[])
"""
SELECT_NEXT_DUE = "select id, township_id, next_due from assignments where id = any($1::uuid[])"

# Events the fan-out hook does not re-arm for (``on_events``): the firing writer re-reads the row itself.
REARMED_BY_FIRE = frozenset({"assignment.escalated"})
NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:xianghu:sla")
SWEEP_JOB = "sla-sweep"
WAKE_JOB = "sla-wake"  # set for the earliest armed deadline
FIRE_CONCURRENCY = 4  # township batches this node writes at once (the pool serves requests too)
BATCH_MAX = 500  # assignments one township batch takes from its queue
PAGE = 2_000  # rows of the horizon a sweep reads at a time (then lets the event loop run)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
NIL = UUID(int=0)
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
        self._armed: dict[UUID, tuple[datetime, int]] = {}  # assignment -> (due, township) it is armed for
        self._heap: list[tuple[datetime, UUID]] = []  # (due, assignment); an entry not in _armed is stale
        self._wake_at: datetime | None = None  # the due the wake job is set for
        # township -> assignment -> the futures of those waiting for its fire (a sweep counting what it fired)
        self._queues: dict[int, dict[UUID, list[asyncio.Future[int]]]] = {}
        self._writers: dict[int, asyncio.Task[None]] = {}
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
        """Arm the deadlines within the horizon; the overdue ones go to their townships' writers at once."""
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
            await self._sweep(fire=False)  # queues the overdue ones (the hub was down) without waiting for them
        except Exception as exc:
            if unreachable(exc):
                self._retry_soon()
            log.exception("SLA: arming deadlines at start failed; the next sweep retries")

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
        self._heap.clear()
        self._wake_at = None
        for queue in self._queues.values():
            for waiters in queue.values():
                _settle(waiters, 0)
        self._queues.clear()

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
            elif self._submitted or self._jobs_due() or any(self._queues.values()):
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
        """Re-arm (or cancel) the timers of the assignments these newly committed events touched.

        Escalations are left out: the writer that fired one re-reads its row and arms the next rung, and on any
        other node the rung it still holds falls due no later than the next one (the ladder only moves later),
        fires, loses its claim and re-reads the row then. So a burst of 10,000 escalations costs the fan-out,
        which awaits this hook before its next page, no lookup of 10,000 rows."""
        ids = list({r.assignment_id for r in records if r.assignment_id is not None and r.type not in REARMED_BY_FIRE})
        if not ids or not self._running:
            return
        rows = await self.pool.fetch(SELECT_NEXT_DUE, ids)
        horizon_end = self.clock.now() + self._horizon
        for row in rows:
            due = row["next_due"]
            if due is None or due > horizon_end:
                self._disarm(row["id"])
            else:
                self._arm(row["id"], due, row["township_id"])  # already overdue: the wake job runs at once
        self._schedule_wake()

    def armed(self) -> dict[UUID, datetime]:
        """The deadlines this node holds a timer for (assignment -> due, by the hub's clock)."""
        return {aid: due for aid, (due, _) in self._armed.items()}

    # -- timers ------------------------------------------------------------------------------------

    def _run_date(self, due: datetime) -> datetime:
        # APScheduler runs on real time; the hub's clock may be ahead of it (tests, OffsetClock).
        return datetime.now(UTC) + (due - self.clock.now())

    def _arm(self, aid: UUID, due: datetime, township_id: int) -> None:
        """Hold ``aid``'s deadline; the caller then calls ``_schedule_wake`` (once for many)."""
        if not self._running:
            return
        key = (due, township_id)
        if self._armed.get(aid) == key:
            return
        self._armed[aid] = key
        heapq.heappush(self._heap, (due, aid))

    def _disarm(self, aid: UUID) -> None:
        self._armed.pop(aid, None)  # its heap entry is now stale: dropped when it reaches the top

    def _schedule_wake(self) -> None:
        """Set the wake job for the earliest armed deadline (drop stale heap entries; compact a heap gone stale)."""
        if not self._running or self._scheduler is None:
            return
        heap = self._heap
        if len(heap) > 2 * len(self._armed) + 1_000:
            self._heap = heap = [(due, aid) for aid, (due, _) in self._armed.items()]
            heapq.heapify(heap)
        while heap and self._armed.get(heap[0][1], (None,))[0] != heap[0][0]:
            heapq.heappop(heap)
        if not heap:
            if self._wake_at is not None:
                self._wake_at = None
                with contextlib.suppress(JobLookupError):
                    self._scheduler.remove_job(WAKE_JOB)
            return
        due = heap[0][0]
        if due == self._wake_at and self._scheduler.get_job(WAKE_JOB) is not None:
            return
        self._wake_at = due
        self._scheduler.add_job(self._wake, "date", run_date=self._run_date(due), id=WAKE_JOB,
                                replace_existing=True, misfire_grace_time=None, coalesce=True, max_instances=10)

    async def _wake(self) -> None:
        """The wake job went off: queue every armed deadline due by now, set the job for the next one."""
        self._wake_at = None
        if not self._running:
            return
        now = self.clock.now()
        heap = self._heap
        while heap and heap[0][0] <= now:
            due, aid = heapq.heappop(heap)
            armed = self._armed.get(aid)
            if armed is None or armed[0] != due:
                continue  # stale: disarmed or re-armed for another due
            del self._armed[aid]
            self._submit(armed[1], aid)
        self._schedule_wake()

    def _jobs_due(self) -> bool:
        if self._scheduler is None or not self._running:
            return False
        job = self._scheduler.get_job(WAKE_JOB)
        return job is not None and job.next_run_time is not None and job.next_run_time <= datetime.now(UTC)

    def _job_event(self, event: JobEvent) -> None:
        if event.code == EVENT_JOB_SUBMITTED:
            self._submitted += 1
        else:
            self._submitted = max(0, self._submitted - 1)

    def _clock_changed(self) -> None:
        """The clock jumped (tests, OffsetClock): the wake job's run date is stale and more may be due."""
        if not self._running or self._loop is None:
            return
        try:
            here = asyncio.get_running_loop() is self._loop
        except RuntimeError:
            here = False
        if here:
            self._jumped()
        else:
            self._loop.call_soon_threadsafe(self._jumped)

    def _jumped(self) -> None:
        self._wake_at = None
        self._schedule_wake()
        self._spawn(self._guarded_sweep())

    def _spawn(self, coro: Coroutine[Any, Any, object]) -> bool:
        if not self._running or self._loop is None:
            coro.close()
            return False
        task = self._loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

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
        """Read the horizon page by page: queue what is due by now, arm the rest. With ``fire``, wait for what
        it queued and return how many of those this node escalated; without, return at once (start-up)."""
        async with self._sweep_lock:
            if not self._running:
                return 0
            now = self.clock.now()
            end = now + self._horizon
            waiting: list[asyncio.Future[int]] = []
            after: tuple[datetime, UUID] = (EPOCH, NIL)
            while self._running:
                rows = await self.pool.fetch(SELECT_WITHIN_HORIZON, end, after[0], after[1], PAGE)
                for row in rows:
                    aid, due, township_id = row["id"], row["next_due"], row["township_id"]
                    if due <= now:
                        self._disarm(aid)
                        future = self._submit(township_id, aid, wait=fire)
                        if future is not None:
                            waiting.append(future)
                    else:
                        self._arm(aid, due, township_id)
                self._schedule_wake()
                if len(rows) < PAGE:
                    break
                after = (rows[-1]["next_due"], rows[-1]["id"])
                await asyncio.sleep(0)  # a page at a time: the fan-out and requests run in between
            if not waiting:
                return 0
            return sum(await asyncio.gather(*waiting))

    # -- firing ------------------------------------------------------------------------------------

    def _submit(self, township_id: int, aid: UUID, *, wait: bool = False) -> asyncio.Future[int] | None:
        """Queue ``aid`` for its township's writer (started if none runs); with ``wait``, a future of how many
        rungs of it this node then escalates (0 if another fire of it got there first)."""
        if not self._running or self._loop is None:
            return None
        waiters = self._queues.setdefault(township_id, {}).setdefault(aid, [])
        future: asyncio.Future[int] | None = None
        if wait:
            future = self._loop.create_future()
            waiters.append(future)
        self._start_writer(township_id)
        return future

    async def _write(self, township_id: int) -> None:
        """One township's writer: escalate what is queued for it, a batch at a time, until the queue is empty."""
        try:
            while self._running and self._queues.get(township_id):
                async with self._fire_slots:  # what arrives while it waits for a slot joins this batch
                    queue = self._queues.get(township_id, {})
                    batch = dict(itertools.islice(queue.items(), BATCH_MAX))
                    for aid in batch:
                        del queue[aid]
                    fired: dict[UUID, int] = {}
                    try:
                        fired = await self._fire_guarded(township_id, list(batch))
                    finally:
                        for aid, waiters in batch.items():
                            _settle(waiters, fired.get(aid, 0))
        finally:
            del self._writers[township_id]
            if self._running and self._queues.get(township_id):
                self._start_writer(township_id)

    def _start_writer(self, township_id: int) -> None:
        if township_id in self._writers or self._loop is None:
            return
        task = self._loop.create_task(self._write(township_id))
        self._writers[township_id] = task
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _fire_guarded(self, township_id: int, aids: list[UUID]) -> dict[UUID, int]:
        try:
            return await self._fire(aids)
        except Exception as exc:
            if not unreachable(exc):
                # Never lets a bad row stop the scheduler: the row is still due, so the next sweep retries.
                log.exception("SLA: escalating %d assignment(s) of township %s failed; the next sweep retries",
                              len(aids), township_id)
                return {}
            log.warning("SLA: escalating %d assignment(s) of township %s failed, the database is unreachable "
                        "(%r); retrying shortly", len(aids), township_id, exc)
            self._retry_soon()
            return {}

    async def _fire(self, aids: list[UUID]) -> dict[UUID, int]:
        """Escalate every rung of ``aids`` due by now, one level at a time (a batch per round); arm the next."""
        fired: dict[UUID, int] = {}
        last: dict[UUID, tuple[datetime, str, int]] = {}
        todo = aids
        try:
            while self._running and todo:
                rows = {r["id"]: r for r in await self.pool.fetch(SELECT_RUNGS, todo)}
                now = self.clock.now()
                due_now: list[tuple[UUID, asyncpg.Record]] = []
                for aid in todo:
                    row = rows.get(aid)
                    if row is None or row["next_due"] is None:
                        self._disarm(aid)
                        continue
                    due: datetime = row["next_due"]
                    if due > now:
                        if due <= now + self._horizon:
                            self._arm(aid, due, row["township_id"])
                        else:
                            self._disarm(aid)
                        continue
                    rung = (due, str(row["next_kind"]), int(row["next_level"]))
                    if last.get(aid) == rung:
                        # The claim was refused yet the row did not move: leave it to the next sweep.
                        log.warning("SLA: %s level %s of assignment %s was refused and is still due",
                                    rung[1], rung[2], aid)
                        continue
                    last[aid] = rung
                    due_now.append((aid, row))
                self._schedule_wake()
                wrote = await self._escalate(due_now, now)
                for aid, n in wrote.items():
                    fired[aid] = fired.get(aid, 0) + n
                todo = [aid for aid, _ in due_now]
        finally:
            self.fired_total += sum(fired.values())
        return fired

    async def _escalate(self, due_now: list[tuple[UUID, asyncpg.Record]], now: datetime) -> dict[UUID, int]:
        """Write one rung of each: through ``execute`` alone, or ``execute_many`` (one transaction per township)."""
        cmds = []
        for aid, row in due_now:
            kind = DeadlineKind(row["next_kind"])
            level = int(row["next_level"])
            deadline: datetime = row[f"{kind.value}_due"]
            cmds.append(Escalate(command_id=claim_id(aid, kind, level, deadline), assignment_id=aid,
                                 deadline_kind=kind, level=level, deadline=deadline, due=row["next_due"],
                                 fired_at=now))
        if not cmds:
            return {}
        answers: list[Outcome | BaseException]
        if len(cmds) == 1:
            answers = [await self._one(cmds[0])]
        else:
            try:
                answers = list(await self.store.execute_many(SYSTEM_ACTOR, cmds))
            except Exception as exc:
                if unreachable(exc):
                    raise
                # Not the database being away: find the one that fails by writing them one by one.
                log.exception("SLA: a batch of %d escalations failed; writing them one at a time", len(cmds))
                answers = [await self._one(cmd) for cmd in cmds]
        out: dict[UUID, int] = {}
        for cmd, answer in zip(cmds, answers, strict=True):
            if isinstance(answer, (IllegalTransition, CommandIdReused)):
                # Another node won this rung, or the assignment moved on since the row was read.
                log.debug("SLA: %s level %d of %s already done: %s", cmd.deadline_kind.value, cmd.level,
                          cmd.assignment_id, answer)
            elif isinstance(answer, BaseException):
                log.error("SLA: escalating assignment %s failed: %r", cmd.assignment_id, answer)
            else:
                out[cmd.assignment_id] = 0 if answer.replayed else 1
        return out

    async def _one(self, cmd: Escalate) -> Outcome | BaseException:
        """One escalation through ``Store.execute``; an unreachable database is raised, any other failure
        logged with its assignment and returned (the row is still due: the next sweep retries it)."""
        try:
            return await self.store.execute(SYSTEM_ACTOR, cmd)
        except (IllegalTransition, CommandIdReused) as exc:
            return exc
        except Exception as exc:
            if unreachable(exc):
                raise
            log.exception("SLA: escalating assignment %s failed; the next sweep retries", cmd.assignment_id)
            return exc


def _settle(waiters: list[asyncio.Future[int]], fired: int) -> None:
    """Tell those waiting for one assignment's fire how many rungs it wrote (the first of them counts them)."""
    for i, future in enumerate(waiters):
        if not future.done():
            future.set_result(fired if i == 0 else 0)
