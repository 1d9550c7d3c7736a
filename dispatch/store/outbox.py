"""The notification outbox: notices become rows (one per person or robot and channel) in the command's
transaction; senders on any node claim the head of each destination's queue, and record every attempt."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from dispatch.core.config import Config, Robot
from dispatch.core.notices import Notice
from dispatch.core.records import Call
from dispatch.store.pool import Conn

NOTIFY_CHANNEL = "xianghu_outbox"
WAKE = "select pg_notify('xianghu_outbox', '')"
COUNTY = ("department_head", "leader", "supervisor")
SELECT_RECIPIENTS = """
select u.id, u.display_name, u.role, u.team_lead, u.phone, u.channels,
       exists (select 1 from push_subscriptions p where p.user_id = u.id and p.gone_at is null) as has_push
  from users u
 where not u.disabled and (
       (u.role = 'liaison' and u.township_id = $1 and (u.department = $2 or 'unit:' || u.unit_id = $2)
        and ('liaisons' = any($3) or ('team_lead' = any($3) and u.team_lead)))
    or ('department_head' = any($3) and u.role = 'department_head' and u.department = $2)
    or ('operators' = any($3) and u.role = 'operator' and u.township_id = $1)
    or ('leader' = any($3) and u.role = 'leader' and u.township_id = $1)
    or ('supervisor' = any($3) and u.role = 'supervisor' and (u.township_id is null or u.township_id = $1)))
 order by u.id
"""
SELECT_TOWNSHIP_CODE = "select code from townships where id = $1"
INSERT_NOTIFICATION = """
insert into notifications (township_id, call_id, assignment_id, cause_seq, reason, deadline_kind, level, audience,
                           user_id, recipient, channel, destination, repeat, payload, not_before, next_attempt_at,
                           created_at)
values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $15, $16)
on conflict do nothing
"""
# The head of every destination's queue that is due and not claimed: one message per destination at a time,
# in the order they fell due, so a receiver that was down gets them all once, in order.
CLAIM = """
with heads as (
    select distinct on (channel, destination) id
      from notifications
     where state = 'pending' and not_before <= $1
     order by channel, destination, not_before, id
)
select n.id, n.township_id, n.call_id, n.assignment_id, n.reason, n.deadline_kind, n.level, n.audience, n.user_id,
       n.recipient, n.channel, n.destination, n.repeat, n.payload, n.attempts, n.created_at,
       a.state as assignment_state, a.target, u.phone
  from notifications n
  join heads h on h.id = n.id
  left join assignments a on a.id = n.assignment_id
  left join users u on u.id = n.user_id
 where n.next_attempt_at <= $1 and (n.claimed_until is null or n.claimed_until < $1)
 order by n.not_before, n.id
 limit $2
   for update of n skip locked
"""
MARK_CLAIMED = "update notifications set claimed_until = $2, claimed_by = $3 where id = any($1::bigint[])"
INSERT_ATTEMPT = """
insert into notification_attempts (notification_id, attempt, at, ok, status, error) values ($1, $2, $3, $4, $5, $6)
"""
MARK_SENT = """
update notifications set state = 'sent', attempts = $2, done_at = $3, claimed_until = null, last_error = null
 where id = $1
"""
MARK_RETRY = """
update notifications set attempts = $2, next_attempt_at = $3, last_error = $4, claimed_until = null where id = $1
"""
MARK_FAILED = """
update notifications set state = 'failed', attempts = $2, done_at = $3, last_error = $4, claimed_until = null
 where id = $1
"""
MARK_OBSOLETE = "update notifications set state = 'obsolete', done_at = $2, claimed_until = null where id = $1"
# When the next message falls due (the sender sleeps until then, or until woken).
NEXT_DUE = """
select min(greatest(not_before, next_attempt_at)) from notifications where state = 'pending'
"""
# Per channel: what waits and what failed lately (the operator console's warning and /api/v1/notify/status).
CHANNEL_STATUS = """
select channel,
       count(*) filter (where state = 'pending') as pending,
       count(*) filter (where state = 'pending' and attempts > 0) as retrying,
       count(*) filter (where state = 'failed') as failed,
       max(last_error) filter (where state = 'pending' and attempts > 0) as last_error,
       min(created_at) filter (where state = 'pending' and attempts > 0) as failing_since
  from notifications
 where ($1::integer is null or township_id = $1) and (state = 'pending' or done_at > $2)
 group by channel
 order by channel
"""


@dataclass(frozen=True, slots=True)
class Recipient:
    user_id: int | None
    name: str
    audience: str
    channel: str
    destination: str


def _audience_of(row: asyncpg.Record, wanted: set[str]) -> str:
    role = row["role"]
    if role == "liaison":
        return "team_lead" if row["team_lead"] and "team_lead" in wanted else "liaisons"
    if role == "operator":
        return "operators"
    return str(role)


def _robot_matches(robot: Robot, code: str, target: str | None, reason: str) -> bool:
    return ((not robot.townships or code in robot.townships)
            and (not robot.departments or (target is not None and target in robot.departments))
            and (not robot.reasons or reason in robot.reasons))


async def recipients(conn: Conn, cfg: Config, notice: Notice, code: str) -> list[Recipient]:
    """Every (person or robot, channel) the notice goes to, by the deployment's and each person's channels."""
    wanted = set(notice.audiences)
    if "county" in wanted:
        wanted |= set(COUNTY)
    enabled = set(cfg.notify.channels)
    out: list[Recipient] = []
    if enabled & {"webpush", "sms"}:
        for r in await conn.fetch(SELECT_RECIPIENTS, notice.township_id, notice.target or "", sorted(wanted)):
            mine = set(r["channels"] or ())
            audience = _audience_of(r, wanted)
            if "webpush" in enabled and "webpush" in mine and r["has_push"]:
                out.append(Recipient(r["id"], r["display_name"], audience, "webpush", f"user:{r['id']}"))
            if "sms" in enabled and "sms" in mine and r["phone"]:
                out.append(Recipient(r["id"], r["display_name"], audience, "sms", f"user:{r['id']}"))
    for robot in cfg.notify.robots:
        if robot.kind in enabled and _robot_matches(robot, code, notice.target, notice.reason):
            out.append(Recipient(None, robot.name, "robot", robot.kind, f"robot:{robot.name}"))
    return out


async def enqueue(conn: Conn, cfg: Config, notices: Sequence[Notice], seqs: Sequence[int], call: Call,
                  now: datetime, code: str | None = None) -> int:
    """Write the notices of one command (``seqs[i]``: the seq of the command's i-th event). Returns rows written."""
    if not notices or not cfg.notify.channels:
        return 0  # only the consoles' WebSocket: the events themselves are the message
    if code is None:  # the write path passes the code it keeps; anyone else reads it
        code = await conn.fetchval(SELECT_TOWNSHIP_CODE, call.township_id)
    rows: list[tuple[Any, ...]] = []
    for notice in notices:
        payload = notice.payload(call)
        for who in await recipients(conn, cfg, notice, code):
            # repeats wake a person; a group robot is told once
            delays = (None, *notice.repeats) if who.user_id is not None else (None,)
            for repeat, delay in enumerate(delays):
                due = now if delay is None else now + delay
                rows.append((notice.township_id, notice.call_id, notice.assignment_id, seqs[notice.event_index],
                             notice.reason, notice.deadline_kind, notice.level, who.audience, who.user_id, who.name,
                             who.channel, who.destination, repeat, {**payload, "repeat": repeat}, due, now))
    if rows:
        await conn.executemany(INSERT_NOTIFICATION, rows)
        await conn.execute(WAKE)
    return len(rows)


async def claim(conn: Conn, now: datetime, limit: int, lease_until: datetime, node: str) -> list[asyncpg.Record]:
    async with conn.transaction():
        rows: list[asyncpg.Record] = await conn.fetch(CLAIM, now, limit)
        if rows:
            await conn.execute(MARK_CLAIMED, [r["id"] for r in rows], lease_until, node)
    return rows


async def record_attempt(conn: Conn, notification_id: int, attempt: int, at: datetime, ok: bool,
                         status: int | None, error: str | None) -> None:
    await conn.execute(INSERT_ATTEMPT, notification_id, attempt, at, ok, status, error)


async def next_due(conn: Conn) -> datetime | None:
    value: datetime | None = await conn.fetchval(NEXT_DUE)
    return value


async def channel_status(conn: Conn, township_id: int | None, since: datetime) -> list[dict[str, Any]]:
    return [dict(r.items()) for r in await conn.fetch(CHANNEL_STATUS, township_id, since)]
