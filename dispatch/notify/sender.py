"""The sender: claims due outbox messages (the head of each destination's queue), delivers them through their
channel, retries with backoff, records each attempt and puts the outcome on the call's timeline.

Every node runs one; the claim (``for update skip locked`` plus a lease) makes each message go out once
even with several nodes. A message whose channel is down waits (and holds back the later messages to the
same destination, so they arrive in order) until it goes through or ``give_up_after_s`` passes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import httpx

from dispatch.core.clock import Clock
from dispatch.core.config import Config
from dispatch.core.domain import DEPARTMENT_KINDS, DeadlineKind
from dispatch.core.settings import ConfigRef
from dispatch.core.transitions import WAITING_FOR, AssignmentState
from dispatch.notify.channels import Channel, Delivery, Message, RobotChannel, SmsChannel
from dispatch.notify.webpush import VapidKeys, WebPushChannel
from dispatch.store import outbox
from dispatch.store.eventlog import EventRecord
from dispatch.store.pool import unreachable
from dispatch.store.writer import Store

log = logging.getLogger(__name__)

BATCH = 50
# Event types whose command may have written notices (dispatch.core.notices).
CAUSES = frozenset({"assignment.dispatched", "assignment.escalated", "assignment.nudged", "assignment.reopened",
                    "assignment.withdrawn", "assignment.transfer_rejected"})
WAITING_KINDS = {k.value for k in DEPARTMENT_KINDS}


def backoff(cfg: Config, attempts: int) -> float:
    """Seconds before retry number ``attempts`` (1-based): doubling from retry_initial_s up to retry_max_s."""
    n = cfg.notify
    return float(min(n.retry_max_s, n.retry_initial_s * 2 ** max(0, attempts - 1)))


def still_wanted(row: Mapping[str, Any]) -> bool:
    """A repeat of an escalation goes out only while the clock it is about still runs (until acknowledged,
    on scene or reported); the first message of every notice always goes out, however late."""
    kind = row["deadline_kind"]
    if not row["repeat"] or kind not in WAITING_KINDS or row["assignment_state"] is None:
        return True
    return AssignmentState(row["assignment_state"]) in WAITING_FOR[DeadlineKind(kind)]


class Sender:
    def __init__(self, pool: asyncpg.Pool, store: Store, cfg: Config | ConfigRef, clock: Clock, node_id: str,
                 channels: Mapping[str, Channel] | None = None, vapid: VapidKeys | None = None) -> None:
        self.pool, self.store, self.clock, self.node_id = pool, store, clock, node_id
        self.config = cfg if isinstance(cfg, ConfigRef) else ConfigRef(cfg)
        cfg = self.config.current
        self.vapid = vapid
        self._client = httpx.AsyncClient(timeout=cfg.notify.timeout_s, trust_env=False)
        self.channels: dict[str, Channel] = dict(channels) if channels is not None else self._default_channels()
        self._wake = asyncio.Event()
        self._round = asyncio.Lock()  # one round at a time on this node: `settled` waits for the loop's round
        self._task: asyncio.Task[None] | None = None
        self.sent_total = 0
        self.failed_total = 0

    @property
    def cfg(self) -> Config:
        return self.config.current

    def _default_channels(self) -> dict[str, Channel]:
        n = self.cfg.notify
        out: dict[str, Channel] = {}
        if "sms" in n.channels and n.sms is not None:
            out["sms"] = SmsChannel(n.sms, self._client)
        for kind in ("wecom", "dingtalk", "webhook"):
            if kind in n.channels:
                out[kind] = RobotChannel(kind, n.robots, self._client)
        if "webpush" in n.channels and self.vapid is not None:
            out["webpush"] = WebPushChannel(self.pool, n.webpush, self._client, self.vapid, self.clock)
        return out

    # -- life cycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="notify-sender")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._client.aclose()

    def wake(self) -> None:
        self._wake.set()

    async def on_events(self, records: Sequence[EventRecord]) -> None:
        """The fan-out's hook: events that may have written notices (on any node) wake this sender. With no
        channel configured the write path writes none (``Store.execute``): no round per dispatch, then; the
        sweep (``notify.sweep_s``) still picks up whatever a node configured otherwise queued."""
        if self.cfg.notify.channels and any(r.type in CAUSES for r in records):
            self._wake.set()

    async def _loop(self) -> None:
        while True:
            try:
                done = await self.run_once()
            except Exception as exc:
                if not unreachable(exc):
                    log.exception("notify: a sending round failed; retrying")
                done = 0
            if done:
                continue
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.cfg.notify.sweep_s)

    # -- one round --------------------------------------------------------------------------------

    async def run_once(self) -> int:
        """Claim what is due now and deliver it; return how many messages were handled."""
        async with self._round:
            return await self._round_once()

    async def _round_once(self) -> int:
        now = self.clock.now()
        lease = now + timedelta(seconds=self.cfg.notify.timeout_s * 2 + 5)
        async with self.pool.acquire() as conn:
            rows = await outbox.claim(conn, now, BATCH, lease, self.node_id)
        if not rows:
            return 0
        await asyncio.gather(*(self._handle(dict(r.items())) for r in rows))
        return len(rows)

    async def settled(self, rounds: int = 100) -> int:
        """Deliver until nothing is due by the clock now (tests with a fast-forwarded clock); how many."""
        total = 0
        for _ in range(rounds):
            done = await self.run_once()
            if not done:
                return total
            total += done
        return total

    async def _handle(self, row: dict[str, Any]) -> None:
        now = self.clock.now()
        if not still_wanted(row):
            async with self.pool.acquire() as conn:
                await conn.execute(outbox.MARK_OBSOLETE, row["id"], now)
            return
        attempt = row["attempts"] + 1
        channel = self.channels.get(row["channel"])
        msg = Message(row["id"], row["channel"], row["destination"], row["user_id"], row["recipient"], row["phone"],
                      dict(row["payload"]), attempt, row["assignment_state"])
        if channel is None:
            result = Delivery(False, None, f"channel {row['channel']} is not configured on this hub", permanent=True)
        else:
            try:
                result = await channel.send(msg)
            except Exception as exc:  # a channel's fault must not lose the message
                log.exception("notify: channel %s raised on message %s", row["channel"], row["id"])
                result = Delivery(False, None, f"{type(exc).__name__}: {exc}"[:300])
        await self._record(row, attempt, result, self.clock.now())

    async def _record(self, row: dict[str, Any], attempt: int, result: Delivery, at: datetime) -> None:
        """The attempt, the message's new state and (when it says something new) the timeline event commit
        together: a delivery is never on the timeline without its outbox state, nor the reverse."""
        final_failure = not result.ok and (
            result.permanent or at - row["created_at"] >= timedelta(seconds=self.cfg.notify.give_up_after_s))
        # On the timeline: each delivery, the first failure (the channel is down: visible at once), giving up.
        on_timeline = result.ok or final_failure or attempt == 1
        body = {"notification_id": row["id"], "reason": row["reason"], "channel": row["channel"],
                "recipient": row["recipient"], "audience": row["audience"], "attempt": attempt,
                "repeat": row["repeat"], "deadline_kind": row["deadline_kind"], "level": row["level"],
                "status": result.status, "error": result.error, "final": result.ok or final_failure}
        async with self.pool.acquire() as conn, conn.transaction():
            await outbox.record_attempt(conn, row["id"], attempt, at, result.ok, result.status, result.error)
            if result.ok:
                await conn.execute(outbox.MARK_SENT, row["id"], attempt, at)
            elif final_failure:
                await conn.execute(outbox.MARK_FAILED, row["id"], attempt, at, result.error)
            else:
                retry_at = at + timedelta(seconds=backoff(self.cfg, attempt))
                await conn.execute(outbox.MARK_RETRY, row["id"], attempt, retry_at, result.error)
            if on_timeline:
                await self.store.record_notice(conn, row["township_id"], row["call_id"], row["assignment_id"],
                                               "notice.sent" if result.ok else "notice.failed", body)
        if result.ok:
            self.sent_total += 1
        else:
            self.failed_total += 1
