"""Command execution: the one write path. Load the call under the township lock, ``decide``, fold,
write the projection and append the events in one transaction; idempotent by ``command_id``."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
from uuid_utils.compat import uuid7

from dispatch.core.clock import Clock
from dispatch.core.commands import Command, Escalate, command_assignment_id, command_attachments, command_call_id
from dispatch.core.config import Config
from dispatch.core.domain import SYSTEM_ACTOR, Actor
from dispatch.core.lifecycle import DecideContext, decide, decide_and_fold, evolve
from dispatch.core.notices import notices_for
from dispatch.core.numbering import format_number, numbering_year
from dispatch.core.records import Assignment, Call, Event
from dispatch.core.reporter import Reporter
from dispatch.core.settings import ConfigRef
from dispatch.core.sla_policy import next_escalation
from dispatch.evaluation.facts import Facts, touches
from dispatch.store import attachments, eventlog, outbox, reporters
from dispatch.store import facts as evaluation_facts
from dispatch.store.eventlog import EventRecord
from dispatch.store.pool import Conn, json_text, unavailable, unreachable
from protocols.errors import ClientError, CommandIdReused, Forbidden, IllegalTransition, InternalError, NotFound
from protocols.messages import encode_event, to_ms

log = logging.getLogger(__name__)


def new_id() -> UUID:
    """A new call's or assignment's id: UUID version 7 (RFC 9562), which starts with the time in milliseconds (and
    is monotonic within the process), so its entries in calls_pkey, assignments_pkey, assignments_call, events,
    assignment_facts and reporters are appended at the rightmost leaf instead of a random one: the whole index
    is no longer the working set, and after a checkpoint fewer leaves are written to the WAL in full. The time
    in the id says when its call or assignment was created, which the call itself says to whoever sees the id."""
    return uuid7()

# A township's stations and units change rarely; each node re-reads them at most this often.
TARGETS_TTL_S = 30.0
SELECT_CALL_TOWNSHIP = "select township_id from calls where id = $1"
SELECT_ASSIGNMENT_CALL = "select township_id, call_id from assignments where id = $1"
SELECT_CALL_DOC = "select doc from calls where id = $1"
# The township's lock, its head, and whether this command_id was seen before: one round trip.
LOCK_HEAD_AND_COMMAND = """
select h.seq, h.hash, c.user_id, c.payload_hash, c.result
  from township_heads h
  left join commands c on c.command_id = $2
 where h.township_id = $1
   for update of h
"""
# The same for ``create_call``, which also draws the township's next call number this year under that lock (the
# insert reads the locked head, so it runs after the lock is held); none is drawn for a command already seen.
LOCK_HEAD_COMMAND_AND_NUMBER = """
with h as (select seq, hash from township_heads where township_id = $1 for update),
     c as (select user_id, payload_hash, result from commands where command_id = $2),
     n as (insert into call_numbers as n (township_id, year, last)
           select $1, $3, 1 from h where not exists (select from c)
           on conflict (township_id, year) do update
              set last = n.last + 1
           returning last)
select h.seq, h.hash, c.user_id, c.payload_hash, c.result, (select last from n) as number
  from h
  left join c on true
"""
# A command's recorded answer, read after a refusal: a concurrent twin may have committed it meanwhile.
SELECT_COMMAND = "select user_id, payload_hash, result from commands where command_id = $1"
SELECT_TOWNSHIP_CODE = "select code from townships where id = $1"
SELECT_TARGETS = """
select department as target from stations where township_id = $1
union all
select 'unit:' || id from units where township_id = $1 and retired_at is null
"""
# The township's next call number this year; rolled back with the call when the creation fails.
NEXT_CALL_NUMBER = """
insert into call_numbers as n (township_id, year, last)
values ($1, $2, 1)
on conflict (township_id, year) do update
   set last = n.last + 1
returning last
"""
# Under the township lock only its holder draws, so the last number drawn is this transaction's own.
GIVE_BACK_CALL_NUMBER = "update call_numbers set last = last - 1 where township_id = $1 and year = $2"
# The projection's columns, in the order of ``call_row`` and ``assignment_row`` (the bulk loader copies them).
CALL_COLUMNS = ("id", "township_id", "number", "state", "category", "priority", "source", "title", "address",
                "created_at", "updated_at", "closed_at", "last_seq", "doc")
ASSIGNMENT_COLUMNS = ("id", "call_id", "township_id", "target", "state", "ack_due", "arrive_due", "resolve_due",
                      "next_due", "next_kind", "next_level", "updated_at", "doc")
# What a row already there takes from the new one (every projection write of calls and assignments).
ON_CALL_CONFLICT = """on conflict (id) do update
   set state = excluded.state, category = excluded.category, priority = excluded.priority,
       title = excluded.title, address = excluded.address, updated_at = excluded.updated_at,
       closed_at = excluded.closed_at, last_seq = excluded.last_seq, doc = excluded.doc"""
ON_ASSIGNMENT_CONFLICT = """on conflict (id) do update
   set state = excluded.state, ack_due = excluded.ack_due, arrive_due = excluded.arrive_due,
       resolve_due = excluded.resolve_due, next_due = excluded.next_due, next_kind = excluded.next_kind,
       next_level = excluded.next_level, updated_at = excluded.updated_at, doc = excluded.doc"""
UPSERT_CALL = f"""
insert into calls (id, township_id, number, state, category, priority, source, title, address,
                   created_at, updated_at, closed_at, last_seq, doc)
values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
{ON_CALL_CONFLICT}
"""
UPSERT_ASSIGNMENT = f"""
insert into assignments (id, call_id, township_id, target, state, ack_due, arrive_due, resolve_due,
                         next_due, next_kind, next_level, updated_at, doc)
values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
{ON_ASSIGNMENT_CONFLICT}
"""
# What a command writes, in one statement: its events (numbered and chained under the lock), the township's head
# moved to the last of them and every node woken
# (eventlog.UPDATE_HEAD_AND_NOTIFY), the call's row, its assignments' rows, the reporter kept aside, the command's
# record, the evaluation's facts it changed. Data-modifying CTEs all run; the foreign keys of assignments and
# reporters see the call inserted beside them (checked at the statement's end).
FINISH_COMMAND = f"""
with moved as (
    update township_heads set seq = $2, hash = $3 where township_id = $1 returning township_id
), called as (
    insert into calls (id, township_id, number, state, category, priority, source, title, address,
                       created_at, updated_at, closed_at, last_seq, doc)
    values ($4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
    {ON_CALL_CONFLICT}
), assigned as (
    insert into assignments (id, call_id, township_id, target, state, ack_due, arrive_due, resolve_due,
                             next_due, next_kind, next_level, updated_at, doc)
    select a.id, $4, $5, a.target, a.state, a.ack_due, a.arrive_due, a.resolve_due,
           a.next_due, a.next_kind, a.next_level, a.updated_at, $17::jsonb -> 'assignments' -> a.position
      from unnest($18::uuid[], $19::text[], $20::text[], $21::timestamptz[], $22::timestamptz[],
                  $23::timestamptz[], $24::timestamptz[], $25::text[], $26::integer[], $27::timestamptz[],
                  $28::integer[])
           as a (id, target, state, ack_due, arrive_due, resolve_due, next_due, next_kind, next_level,
                 updated_at, position)
    {ON_ASSIGNMENT_CONFLICT}
), reported as (
    insert into reporters (call_id, township_id, name, phone, salt, digest, created_at)
    select $4, $5, r.name, r.phone, r.salt, r.digest, r.created_at
      from unnest($29::text[], $30::text[], $31::bytea[], $32::bytea[], $33::timestamptz[])
           as r (name, phone, salt, digest, created_at)
), recorded as (
    insert into commands (command_id, user_id, kind, payload_hash, township_id, result, created_at)
    values ($34, $35, $36, $37, $1, $38, $39)
), facts as ({evaluation_facts.UPSERT_FACTS_JSON_CTE.format(rows=40)}
), appended as ({eventlog.INSERT_EVENTS_JSON_CTE.format(rows=41)})
select pg_notify('xianghu_events', $1::text || ':' || $2::text) from moved
"""
UPDATE_CALL_LAST_SEQ = "update calls set last_seq = $2 where id = $1"
# Events that do not move a call or an assignment (a refusal's story is the last one that did).
NOT_STATE_EVENTS = ("call.noted", "call.lead_changed", "assignment.nudged", "assignment.alarm_handled",
                    "assignment.escalated", "notice.sent", "notice.failed")
# The event that put the call (assignment_id null) or the assignment in the state it is still in: the first of
# its last run of events in that state.
SELECT_STATE_ENTERED = """
select e.type, e.actor_name,
       to_char(e.at at time zone 'Asia/Shanghai', 'YYYY-MM-DD HH24:MI') as at_local
  from events e
 where e.call_id = $1
   and ($2::uuid is null or e.assignment_id = $2)
   and e.type <> all($3::text[])
   and e.seq > coalesce((select max(p.seq)
                           from events p
                          where p.call_id = $1
                            and ($2::uuid is null or p.assignment_id = $2)
                            and p.type <> all($3::text[])
                            and (case when $2::uuid is null then p.call_state else p.assignment_state end)
                                is distinct from $4), 0)
 order by e.seq
 limit 1
"""
SELECT_ASSIGNMENT_CALL_ID = """
select call_id from assignments where id = $1
"""
# ``execute_many``: where each named assignment is, the township's lock, the commands seen, the calls' documents.
SELECT_ASSIGNMENTS_CALLS = "select id, township_id, call_id from assignments where id = any($1::uuid[])"
LOCK_HEAD = "select seq, hash from township_heads where township_id = $1 for update"
SELECT_COMMANDS = """
select command_id, user_id, payload_hash, result from commands where command_id = any($1::uuid[])
"""
SELECT_CALL_DOCS = "select id, doc from calls where id = any($1::uuid[])"
# ``execute_many``'s projection and command rows, one statement each for the whole batch (documents as JSON text).
# The calls' rows, then the moved assignments' rows, whose documents are taken from their call's new one by position
# (``Call.to_dict`` holds each assignment's ``to_dict``): each document is encoded and sent once, as the call's.
# (The calls exist: ``execute_many`` runs no ``create_call``, so an update, not an upsert.)
UPDATE_CALLS_AND_ASSIGNMENTS = f"""
with called as (
    update calls c
       set state = u.state, category = u.category, priority = u.priority, title = u.title, address = u.address,
           updated_at = u.updated_at, closed_at = u.closed_at, last_seq = u.last_seq, doc = u.doc::jsonb
      from unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::timestamptz[],
                  $8::timestamptz[], $9::bigint[], $10::text[])
           as u(id, state, category, priority, title, address, updated_at, closed_at, last_seq, doc)
     where c.id = u.id
    returning c.id, c.township_id, c.doc
)
insert into assignments (id, call_id, township_id, target, state, ack_due, arrive_due, resolve_due,
                         next_due, next_kind, next_level, updated_at, doc)
select a.id, a.call_id, called.township_id, a.target, a.state, a.ack_due, a.arrive_due, a.resolve_due, a.next_due,
       a.next_kind, a.next_level, a.updated_at, called.doc -> 'assignments' -> a.position
  from unnest($11::uuid[], $12::uuid[], $13::text[], $14::text[], $15::timestamptz[], $16::timestamptz[],
              $17::timestamptz[], $18::timestamptz[], $19::text[], $20::int[], $21::timestamptz[], $22::int[])
       as a(id, call_id, target, state, ack_due, arrive_due, resolve_due, next_due, next_kind, next_level,
            updated_at, position)
  join called on called.id = a.call_id
{ON_ASSIGNMENT_CONFLICT}
"""
INSERT_COMMANDS = """
insert into commands (command_id, user_id, kind, payload_hash, township_id, result, created_at)
select u.command_id, u.user_id, u.kind, u.payload_hash, u.township_id, u.result::jsonb, u.created_at
  from unnest($1::uuid[], $2::int[], $3::text[], $4::bytea[], $5::int[], $6::text[], $7::timestamptz[])
       as u(command_id, user_id, kind, payload_hash, township_id, result, created_at)
"""
# The most commands ``execute_many`` writes in one transaction (one township lock held meanwhile).
MANY_MAX = 500


@dataclass(frozen=True)
class Outcome:
    """What a command produced; ``replayed`` when it was a retry answered from the record."""

    result: dict[str, Any]
    replayed: bool
    records: tuple[EventRecord, ...] = ()


@dataclass
class _Planned:
    """One command of an ``execute_many`` batch that ``decide`` accepted: its events, the call after each."""

    index: int
    cmd: Command
    digest: bytes
    events: list[Event]
    steps: list[Call]
    stored: list[EventRecord] = field(default_factory=list)


# Told of a command's events after they committed, with the call after each (metrics); must not raise or wait.
CommitHook = Callable[[Sequence[EventRecord], Sequence[Call]], None]


def payload_hash(cmd: Command) -> bytes:
    if type(cmd) is Escalate:
        text = _escalate_payload(cmd)
        if text is not None:
            return hashlib.sha256(text.encode()).digest()
    doc = cmd.model_dump(mode="json")
    if doc.get("attachments") == []:
        del doc["attachments"]  # as before attachments existed: a retry across an upgrade is the same command
    return hashlib.sha256(json.dumps(doc, sort_keys=True, ensure_ascii=False).encode()).digest()


def _escalate_payload(cmd: Escalate) -> str | None:
    """The text ``payload_hash`` hashes for an escalation (the SLA engine's, thousands per burst), written
    directly: ``json.dumps(cmd.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)`` — ids and the kind
    need no escaping, times are pydantic's (ISO 8601, UTC as ``Z``). None for a time not in UTC (the general
    path then)."""
    times = []
    for t in (cmd.deadline, cmd.due, cmd.fired_at):
        if t is None:
            times.append("null")
            continue
        if t.tzinfo is not UTC:
            return None
        times.append(f'"{t.isoformat()[:-6]}Z"')
    deadline, due, fired_at = times
    return (f'{{"assignment_id": "{cmd.assignment_id}", "command_id": "{cmd.command_id}", "deadline": {deadline}, '
            f'"deadline_kind": "{cmd.deadline_kind.value}", "due": {due}, "fired_at": {fired_at}, '
            f'"kind": "escalate", "level": {cmd.level}}}')


class Store:
    def __init__(self, pool: asyncpg.Pool, cfg: Config | ConfigRef, clock: Clock) -> None:
        self.pool = pool
        # Read through the node's reference: a settings change (any node's) is in effect for the next command.
        self.config = cfg if isinstance(cfg, ConfigRef) else ConfigRef(cfg)
        self.clock = clock
        self._targets: dict[int, frozenset[str]] = {}
        self._codes: dict[int, str] = {}
        self._loaded_at: dict[int, float] = {}
        self._rules_of: tuple[Config, dict[str, Any]] | None = None
        self.on_commit: list[CommitHook] = []

    @property
    def cfg(self) -> Config:
        return self.config.current

    def _rules(self, cfg: Config) -> dict[str, Any]:
        """What ``decide`` needs of the configuration, worked out once per configuration in effect."""
        if self._rules_of is None or self._rules_of[0] is not cfg:
            self._rules_of = (cfg, {
                "categories": cfg.open_categories(),
                "transfer_review": timedelta(seconds=cfg.sla.transfer_review_s),
                "close_reason_sources": frozenset(s.value for s in cfg.lifecycle.close_without_visit_reason),
                "sla_version": cfg.version("sla"),
                "offline_window": timedelta(seconds=cfg.lifecycle.offline_window_s),
            })
        return self._rules_of[1]

    async def forget_reference(self, topic: str) -> None:
        """A township's stations or units changed (``changes`` topic ``reference``): read them again."""
        if topic in ("reference", "*"):
            self._loaded_at.clear()

    async def _township_of(self, conn: Conn, actor: Actor, cmd: Command) -> tuple[int, UUID | None]:
        call_id = command_call_id(cmd)
        if call_id is not None:
            tid = await conn.fetchval(SELECT_CALL_TOWNSHIP, call_id)
            if tid is None:
                raise NotFound(f"no call {call_id}", field="call_id")
            return tid, call_id
        assignment_id = command_assignment_id(cmd)
        if assignment_id is not None:
            row = await conn.fetchrow(SELECT_ASSIGNMENT_CALL, assignment_id)
            if row is None:
                raise NotFound(f"no assignment {assignment_id}", field="assignment_id")
            return row["township_id"], row["call_id"]
        if actor.township_id is None:
            raise Forbidden(f"a {actor.role.value} without a township cannot {cmd.kind}")
        return actor.township_id, None

    async def _context(self, conn: Conn, township_id: int, cmd: Command, now: datetime,
                       last: int | None = None) -> DecideContext:
        """``last``: the call number ``create_call`` drew with the lock (``LOCK_HEAD_COMMAND_AND_NUMBER``) in
        ``numbering_year(now)``; drawn here when not given."""
        if township_id not in self._targets or time.monotonic() - self._loaded_at.get(township_id, 0) > TARGETS_TTL_S:
            rows = await conn.fetch(SELECT_TARGETS, township_id)
            self._targets[township_id] = frozenset(r["target"] for r in rows)
            self._codes[township_id] = await conn.fetchval(SELECT_TOWNSHIP_CODE, township_id)
            self._loaded_at[township_id] = time.monotonic()
        number = None
        if cmd.kind == "create_call":
            # Under the township lock: creations of one township take numbers strictly one after another.
            year = numbering_year(now)
            if last is None:
                last = await conn.fetchval(NEXT_CALL_NUMBER, township_id, year)
            number = format_number(self._codes[township_id], year, last)

        def next_number() -> str:
            if number is None:
                raise InternalError(f"{cmd.kind} asked for a call number; only create_call is given one")
            return number

        cfg = self.cfg
        return DecideContext(
            **self._rules(cfg),
            new_id=new_id, sla=cfg, known_targets=self._targets[township_id],
            township_id=township_id, next_number=next_number, rung_after=cfg.rung_after,
        )

    async def execute(self, actor: Actor, cmd: Command) -> Outcome:
        """Run ``cmd`` once. A retry (same ``command_id`` and payload) gets the original result, also when it
        arrives while the original is still in flight: it waits for the township lock, and a refusal it then
        meets (the twin's effect, or the id's unique row) is answered from the twin's record instead."""
        digest = payload_hash(cmd)
        try:
            return await self._execute(actor, cmd, digest)
        except ClientError as exc:
            twin = await self._recorded(actor, cmd, digest)
            if twin is None:
                if isinstance(exc, IllegalTransition):
                    await self._explain(exc, cmd)
                raise
            return twin
        except Exception as exc:
            if unreachable(exc):
                raise unavailable(exc) from exc
            raise

    async def _explain(self, exc: IllegalTransition, cmd: Command) -> None:
        """Tell a refused command who put the call (or assignment) in its state and when, from the timeline."""
        exc.context = {"command": cmd.kind, **(exc.context or {})}
        state = exc.context.get("state")
        if state is None:
            return
        assignment_id = command_assignment_id(cmd) if exc.context.get("noun") == "assignment" else None
        call_id = command_call_id(cmd)
        try:
            named = command_assignment_id(cmd)
            if call_id is None and named is not None:
                call_id = await self.pool.fetchval(SELECT_ASSIGNMENT_CALL_ID, named)
            if call_id is None:
                return
            row = await self.pool.fetchrow(SELECT_STATE_ENTERED, call_id, assignment_id, list(NOT_STATE_EVENTS), state)
        except Exception as e:
            if unreachable(e):
                return  # the refusal stands without its story
            raise
        if row is not None:
            exc.context.update(event=row["type"], actor=row["actor_name"], at=row["at_local"])

    async def _recorded(self, actor: Actor, cmd: Command, digest: bytes) -> Outcome | None:
        """The committed answer to this ``command_id``, if any (``command_id_reused`` if it was another command)."""
        try:
            row = await self.pool.fetchrow(SELECT_COMMAND, cmd.command_id)
        except Exception as exc:
            if unreachable(exc):
                return None  # the refusal stands; the client retries and is answered then
            raise
        if row is None:
            return None
        if bytes(row["payload_hash"]) != digest or row["user_id"] != actor.user_id:
            raise CommandIdReused(f"command_id {cmd.command_id} was already used for a different command",
                                  field="command_id")
        return Outcome(row["result"], replayed=True)

    async def _execute(self, actor: Actor, cmd: Command, digest: bytes) -> Outcome:
        creating = cmd.kind == "create_call"
        async with self.pool.acquire() as conn, conn.transaction():
            township_id, call_id = await self._township_of(conn, actor, cmd)
            if creating:
                # The year guessed before the lock; the time itself is read under it (below).
                year = numbering_year(self.clock.now())
                locked = await conn.fetchrow(LOCK_HEAD_COMMAND_AND_NUMBER, township_id, cmd.command_id, year)
            else:
                locked = await conn.fetchrow(LOCK_HEAD_AND_COMMAND, township_id, cmd.command_id)
            if locked is None:
                raise NotFound(f"township {township_id} has no event log", field="township_id")
            head = (locked["seq"], bytes(locked["hash"]))
            seen = locked if locked["payload_hash"] is not None else None
            if seen is not None:
                if bytes(seen["payload_hash"]) != digest or seen["user_id"] != actor.user_id:
                    raise CommandIdReused(
                        f"command_id {cmd.command_id} was already used for a different command",
                        field="command_id")
                return Outcome(seen["result"], replayed=True)
            call = None
            if call_id is not None:
                doc = await conn.fetchval(SELECT_CALL_DOC, call_id)
                call = Call.from_dict(doc)
            now = self.clock.now()  # under the township lock: a township's events are in time order
            if creating:
                last = locked["number"]
                if numbering_year(now) != year:  # the wait crossed the new year: give the number back, draw anew
                    await conn.execute(GIVE_BACK_CALL_NUMBER, township_id, year)
                    last = None
                ctx = await self._context(conn, township_id, cmd, now, last)
            else:
                ctx = await self._context(conn, township_id, cmd, now)
            evidence = command_attachments(cmd)
            if evidence:  # locked until commit; checked before decide, bound once the events have their seq
                ctx = dataclasses.replace(ctx, attachments=await attachments.resolve(conn, actor.user_id, evidence))
            events = decide(call, cmd, actor, now, ctx)
            steps: list[Call] = []
            for ev in events:
                call = evolve(call, ev)
                steps.append(call)
            assert call is not None
            # the reporter's name and phone go to ``reporters``, the chain gets their digest (DESIGN.md idea 10)
            records, kept = reporters.set_aside_all(event_record(township_id, actor, cmd.command_id, ev)
                                                    for ev in events)
            for rec in records:
                _check_deliverable(rec)
            stored = eventlog.chain(township_id, head, records)
            result = {
                "command_id": str(cmd.command_id), "call_id": str(call.id), "number": call.number,
                "call_state": call.state.value,
                "events": [{"seq": r.seq, "type": r.type, "assignment_id": _s(r.assignment_id)}
                           for r in stored],
            }
            record = (cmd.command_id, actor.user_id, cmd.kind, digest, result, now)
            facts: list[Facts] = []
            if touches(events):  # the evaluation's facts, in the same transaction as their events
                known = await evaluation_facts.load(conn, call.id) if call_id is not None else {}
                facts = list(evaluation_facts.changed(known, list(zip(steps, events, (r.seq for r in stored),
                                                                      strict=True))).values())
            try:
                await self._finish(conn, township_id, call, events, stored, kept, record, facts)
            except asyncpg.UniqueViolationError as exc:
                if exc.constraint_name != "commands_pkey":
                    raise
                # Same id sent at once under another township's lock: ids are global, so it is a reuse.
                raise CommandIdReused(f"command_id {cmd.command_id} was already used for a different command",
                                      field="command_id") from None
            if evidence:  # after the projection: the row references the call
                carrier = next(r for r in stored if "attachments" in r.body)
                await attachments.bind(conn, evidence, call.id, carrier.seq, carrier.type, carrier.assignment_id)
            # who must be told, in the same transaction as what they are told about (docs/NOTIFICATIONS.md)
            cfg = self.cfg
            if cfg.notify.channels:  # none: only the consoles' WebSocket, and the events are the message
                await outbox.enqueue(conn, cfg, notices_for(events, steps, cfg), [r.seq for r in stored],
                                     call, now, self._codes.get(township_id))
        for hook in self.on_commit:
            try:
                hook(stored, steps)
            except Exception:  # the command committed: its answer stands whatever a hook does
                log.exception("commit hook failed")
        return Outcome(result, replayed=False, records=tuple(stored))

    async def execute_many(self, actor: Actor, cmds: Sequence[Command]) -> list[Outcome | ClientError]:
        """Run assignment commands (the SLA engine's escalations) as ``execute`` would run them one after the
        other, each its own answer, with one transaction per township (and per ``MANY_MAX`` commands) instead of
        one per command: under the township's lock each command is decided against the call as the commands
        before it left it, a refused one leaves no trace and does not stop the others, and every command is
        recorded under its ``command_id`` (a replay is answered from the record). Answers in ``cmds`` order.
        A refusal is not explained from the timeline (``execute`` does that for people)."""
        for cmd in cmds:
            if command_assignment_id(cmd) is None or command_attachments(cmd) or cmd.kind == "create_call":
                raise InternalError(f"execute_many runs assignment commands without evidence, not {cmd.kind}")
        answers: list[Outcome | ClientError | None] = [None] * len(cmds)
        hooks: list[tuple[list[EventRecord], list[Call]]] = []
        try:
            async with self.pool.acquire() as conn:
                ids = list({aid for cmd in cmds if (aid := command_assignment_id(cmd)) is not None})
                where = {r["id"]: (r["township_id"], r["call_id"])
                         for r in await conn.fetch(SELECT_ASSIGNMENTS_CALLS, ids)}
                groups: dict[int, list[int]] = {}
                for i, cmd in enumerate(cmds):
                    aid = command_assignment_id(cmd)
                    if aid not in where:
                        answers[i] = NotFound(f"no assignment {aid}", field="assignment_id")
                    else:
                        groups.setdefault(where[aid][0], []).append(i)
                for township_id, members in groups.items():
                    for k in range(0, len(members), MANY_MAX):
                        part = members[k:k + MANY_MAX]
                        done = await self._execute_group(conn, actor, township_id,
                                                         [(i, cmds[i], where[command_assignment_id(cmds[i])][1])
                                                          for i in part], answers)
                        if done is not None:
                            hooks.append(done)
        except Exception as exc:
            if unreachable(exc):
                raise unavailable(exc) from exc
            raise
        for stored, steps in hooks:
            for hook in self.on_commit:
                try:
                    hook(stored, steps)
                except Exception:  # the commands committed: their answers stand whatever a hook does
                    log.exception("commit hook failed")
        assert all(a is not None for a in answers)
        return [a for a in answers if a is not None]

    async def _execute_group(self, conn: Conn, actor: Actor, township_id: int,
                             members: list[tuple[int, Command, UUID]], answers: list[Outcome | ClientError | None],
                             ) -> tuple[list[EventRecord], list[Call]] | None:
        """One township's commands in one transaction; fills ``answers``; returns what the commit hooks get."""
        async with conn.transaction():
            locked = await conn.fetchrow(LOCK_HEAD, township_id)
            if locked is None:
                for i, _, _ in members:
                    answers[i] = NotFound(f"township {township_id} has no event log", field="township_id")
                return None
            head = (locked["seq"], bytes(locked["hash"]))
            seen = {r["command_id"]: r
                    for r in await conn.fetch(SELECT_COMMANDS, [c.command_id for _, c, _ in members])}
            calls = {r["id"]: Call.from_dict(r["doc"])
                     for r in await conn.fetch(SELECT_CALL_DOCS, list({cid for _, _, cid in members}))}
            now = self.clock.now()
            ctx = await self._context(conn, township_id, members[0][1], now)
            planned: list[_Planned] = []
            taken: set[UUID] = set()
            for i, cmd, call_id in members:
                digest = payload_hash(cmd)
                row = seen.get(cmd.command_id)
                if cmd.command_id in taken or (row is not None and (bytes(row["payload_hash"]) != digest
                                                                     or row["user_id"] != actor.user_id)):
                    answers[i] = CommandIdReused(
                        f"command_id {cmd.command_id} was already used for a different command", field="command_id")
                    continue
                taken.add(cmd.command_id)
                if row is not None:
                    answers[i] = Outcome(row["result"], replayed=True)
                    continue
                try:
                    events, steps = decide_and_fold(calls.get(call_id), cmd, actor, now, ctx)
                except ClientError as exc:
                    answers[i] = exc
                    continue
                calls[call_id] = steps[-1]
                planned.append(_Planned(i, cmd, digest, events, steps))
            if not planned:
                return None
            records, kept = reporters.set_aside_all(event_record(township_id, actor, p.cmd.command_id, ev)
                                                    for p in planned for ev in p.events)
            for rec in records:
                _check_deliverable(rec)
            stored = await eventlog.append_many(conn, township_id, head, records)
            at = 0
            for p in planned:
                p.stored = stored[at:at + len(p.events)]
                at += len(p.events)
            await self._project_many(conn, planned)
            await reporters.save(conn, kept)
            await self._facts_many(conn, planned)
            cfg = self.cfg
            rows = []
            for p in planned:
                call = p.steps[-1]
                if cfg.notify.channels:  # none: no notices worked out (as ``execute``)
                    await outbox.enqueue(conn, cfg, notices_for(p.events, p.steps, cfg), [r.seq for r in p.stored],
                                         call, now, self._codes.get(township_id))
                result = {
                    "command_id": str(p.cmd.command_id), "call_id": str(call.id), "number": call.number,
                    "call_state": call.state.value,
                    "events": [{"seq": r.seq, "type": r.type, "assignment_id": _s(r.assignment_id)}
                               for r in p.stored],
                }
                answers[p.index] = Outcome(result, replayed=False, records=tuple(p.stored))
                rows.append((p.cmd.command_id, actor.user_id, p.cmd.kind, p.digest, township_id, json_text(result),
                             now))
            await conn.execute(INSERT_COMMANDS, *_columns(rows, 7))
        return stored, [step for p in planned for step in p.steps]

    async def _project_many(self, conn: Conn, planned: Sequence[_Planned]) -> None:
        """The projection rows of every call and assignment the batch moved, each as the batch left it: one
        statement (``UPDATE_CALLS_AND_ASSIGNMENTS``), each call's document encoded once and every moved
        assignment's taken from it by position."""
        last: dict[UUID, tuple[Call, int]] = {}
        touched: dict[UUID, set[UUID]] = {}
        for p in planned:
            call = p.steps[-1]
            last[call.id] = (call, p.stored[-1].seq)
            touched.setdefault(call.id, set()).update(ev.assignment_id for ev in p.events
                                                      if ev.assignment_id is not None)
        cfg = self.cfg
        calls: list[list[Any]] = [[] for _ in range(10)]
        moved: list[list[Any]] = [[] for _ in range(12)]
        for call, seq in last.values():
            # call_row's columns but those an update leaves (township_id, number, source, created_at)
            for col, value in zip(calls, (call.id, call.state.value, call.category, call.priority.value, call.title,
                                          call.address, call.updated_at, call.closed_at, seq,
                                          json_text(call.to_dict())), strict=True):
                col.append(value)
            if touched[call.id]:
                position = {aid: i for i, aid in enumerate(call.assignments)}
                for aid in touched[call.id]:
                    a = assignment_row(call, call.assignments[aid], cfg, _IN_CALL_DOC)
                    # township and document: the call's (its document by position there)
                    for col, value in zip(moved, (*a[:2], *a[3:-1], position[aid]), strict=True):
                        col.append(value)
        await conn.execute(UPDATE_CALLS_AND_ASSIGNMENTS, *calls, *moved)

    async def _facts_many(self, conn: Conn, planned: Sequence[_Planned]) -> None:
        """The evaluation's facts of the batch's calls, advanced event by event in log order."""
        per_call: dict[UUID, list[tuple[Call, Event, int]]] = {}
        for p in planned:
            if touches(p.events):
                per_call.setdefault(p.steps[-1].id, []).extend(
                    zip(p.steps, p.events, (r.seq for r in p.stored), strict=True))
        if not per_call:
            return
        known = await evaluation_facts.load_many(conn, list(per_call))
        rows: dict[UUID, Any] = {}
        for call_id, steps in per_call.items():
            rows.update(evaluation_facts.changed(known.get(call_id, {}), steps))
        await evaluation_facts.save_many(conn, rows.values())

    async def record_notice(self, conn: Conn, township_id: int, call_id: UUID, assignment_id: UUID | None,
                            type_: str, body: dict[str, Any]) -> EventRecord:
        """Append a delivery record (``notice.sent`` / ``notice.failed``) to the call's timeline, under the
        township's lock like every event, inside the caller's transaction (the outbox row's new state
        commits with it); it changes no state (``evolve`` passes it through)."""
        locked = await conn.fetchrow(LOCK_HEAD_AND_COMMAND, township_id, None)
        if locked is None:
            raise NotFound(f"township {township_id} has no event log", field="township_id")
        doc = await conn.fetchval(SELECT_CALL_DOC, call_id)
        if doc is None:
            raise NotFound(f"no call {call_id}", field="call_id")
        call = Call.from_dict(doc)
        a = call.assignments.get(assignment_id) if assignment_id is not None else None
        rec = EventRecord(
            township_id=township_id, seq=0, call_id=call_id, assignment_id=assignment_id, type=type_,
            actor_id=None, actor_role=SYSTEM_ACTOR.role.value, actor_name=SYSTEM_ACTOR.name,
            at=max(self.clock.now(), call.updated_at), body=body,
            audience=(a.target,) if a is not None else call.targets(), call_state=call.state.value,
            assignment_state=None if a is None else a.state.value, command_id=None)
        _check_deliverable(rec)
        (stored,) = await eventlog.append(conn, township_id, (locked["seq"], bytes(locked["hash"])), [rec])
        await conn.execute(UPDATE_CALL_LAST_SEQ, call_id, stored.seq)
        return stored

    async def _finish(self, conn: Conn, township_id: int, call: Call, events: list[Event],
                      stored: Sequence[EventRecord], kept: Sequence[tuple[EventRecord, Reporter]],
                      record: tuple[UUID, int | None, str, bytes, dict[str, Any], datetime],
                      facts: Sequence[Facts]) -> None:
        """The chained events (``stored``), the head moved, the projection, the kept reporter, the command's
        ``record`` (command_id, user_id, kind, payload hash, result, at) and the evaluation's changed ``facts``
        — ``FINISH_COMMAND``, one round trip."""
        row = call_row(call, stored[-1].seq)
        touched = {ev.assignment_id for ev in events if ev.assignment_id is not None}
        # each assignment's document is the one in the call's (``Call.to_dict``): sent once, as the call's, and
        # taken from it by its position there
        position = {aid: i for i, aid in enumerate(call.assignments)} if touched else {}
        cfg = self.cfg
        cols: list[list[Any]] = [[] for _ in range(11)]
        for aid in touched:
            a = assignment_row(call, call.assignments[aid], cfg, _IN_CALL_DOC)
            # the call's id and township are the call row's; the document, the call's at that position
            for k, value in enumerate((a[0], *a[3:-1], position[aid])):
                cols[k].append(value)
        reps: list[list[Any]] = [[] for _ in range(5)]
        for rec, rep in kept:
            for k, value in enumerate(reporters.reporter_row(rec, rep)[2:]):  # call and township: the call's
                reps[k].append(value)
        # the documents encoded by orjson (``json_text``): the json module was the largest part of this method
        await conn.execute(FINISH_COMMAND, township_id, stored[-1].seq, stored[-1].hash, *row[:-1],
                           json_text(row[-1]), *cols, *reps, *record[:4], json_text(record[4]), record[5],
                           json_text([evaluation_facts.json_row(f) for f in facts]),
                           json_text([eventlog.json_row(r) for r in stored]))


# ``assignment_row``'s document when ``FINISH_COMMAND`` takes it from the call's instead.
_IN_CALL_DOC: dict[str, Any] = {}


# -- rows, shared with the bulk loader (dispatch/store/bulk.py) so both write the same projections ----------

def event_record(township_id: int, actor: Actor, command_id: UUID | None, ev: Event, seq: int = 0) -> EventRecord:
    """The log row of one event of a command (``append`` numbers it; the hashes are set when it is chained)."""
    return EventRecord(
        township_id=township_id, seq=seq, call_id=ev.call_id, assignment_id=ev.assignment_id,
        type=ev.type, actor_id=actor.user_id, actor_role=actor.role.value, actor_name=actor.name,
        at=ev.at, body=ev.body, audience=ev.audience, call_state=ev.call_state.value,
        assignment_state=None if ev.assignment_state is None else ev.assignment_state.value,
        command_id=command_id,
    )


def call_row(call: Call, last_seq: int) -> tuple[Any, ...]:
    """The ``calls`` row of ``call`` after its event ``last_seq``, in ``CALL_COLUMNS`` order."""
    return (call.id, call.township_id, call.number, call.state.value, call.category, call.priority.value,
            call.source.value, call.title, call.address, call.created_at, call.updated_at, call.closed_at,
            last_seq, call.to_dict())


def assignment_row(call: Call, a: Assignment, cfg: Config, doc: dict[str, Any] | None = None) -> tuple[Any, ...]:
    """The ``assignments`` row of ``a``, with the escalation it waits for next, in ``ASSIGNMENT_COLUMNS`` order;
    ``doc``: ``a.to_dict()`` when the caller has it already."""
    nxt = next_escalation(a, cfg)
    return (a.id, call.id, call.township_id, a.target, a.state.value, a.ack_due, a.arrive_due, a.resolve_due,
            nxt.due if nxt else None, nxt.kind.value if nxt else None, nxt.level if nxt else None,
            a.updated_at, a.to_dict() if doc is None else doc)


def _check_deliverable(rec: EventRecord) -> None:
    """Refuse to commit an event the fan-out could not encode: it would stall every replay that reaches it."""
    try:
        encode_event(rec.township_id, 0, rec.type, str(rec.call_id), _s(rec.assignment_id), to_ms(rec.at),
                     {"id": rec.actor_id, "name": rec.actor_name, "role": rec.actor_role}, rec.call_state or "",
                     rec.assignment_state, rec.body)
    except (OverflowError, TypeError, ValueError) as exc:
        log.error("refused to commit %s on call %s: its frame cannot be encoded (%r)", rec.type, rec.call_id, exc)
        raise InternalError(f"{rec.type} cannot be encoded for delivery: {exc}") from None


def _columns(rows: Sequence[tuple[Any, ...]], width: int) -> list[list[Any]]:
    """Rows as ``width`` column lists: the parameters of an ``unnest`` statement."""
    cols: list[list[Any]] = [[] for _ in range(width)]
    for row in rows:
        for col, value in zip(cols, row, strict=True):
            col.append(value)
    return cols


def _s(value: UUID | None) -> str | None:
    return None if value is None else str(value)
