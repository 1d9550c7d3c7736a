"""The ``assignment_facts`` projection: loaded and saved by the write path in the command's transaction,
rebuilt from the log when the fold's rules change, and read by period for the scorecards."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
import orjson

from dispatch.core.records import Call, Event
from dispatch.core.transitions import AssignmentState, CallState
from dispatch.evaluation.facts import COLUMNS, FACTS_VERSION, Facts, advance
from dispatch.evaluation.scorecard import SCORING_COLUMNS, SCORING_TIMES
from dispatch.store.pool import Conn

log = logging.getLogger(__name__)

SELECT_CALL_FACTS = f"select {', '.join(COLUMNS)} from assignment_facts where call_id = $1"
SELECT_CALLS_FACTS = f"select {', '.join(COLUMNS)} from assignment_facts where call_id = any($1::uuid[])"
UPSERT_FACTS = f"""
insert into assignment_facts ({', '.join(COLUMNS)})
values ({', '.join(f'${i}' for i in range(1, len(COLUMNS) + 1))})
on conflict (assignment_id) do update
   set {', '.join(f'{c} = excluded.{c}' for c in COLUMNS if c != 'assignment_id')}
"""
# The same upsert as a CTE over a jsonb array of rows (``json_row``), for a statement that writes more (the write
# path's ``FINISH_COMMAND``): the escalation arrays differ in length, which an ``unnest`` of arrays cannot carry.
UPSERT_FACTS_JSON_CTE = f"""
    insert into assignment_facts ({', '.join(COLUMNS)})
    select {', '.join(COLUMNS)} from jsonb_populate_recordset(null::assignment_facts, ${{rows}}::jsonb)
    on conflict (assignment_id) do update
       set {', '.join(f'{c} = excluded.{c}' for c in COLUMNS if c != 'assignment_id')}
"""
# ``save_many``: a batch's rows in one statement, passed as one JSON array of objects keyed by column (a batch of
# escalations moves hundreds of assignments: one execution instead of one each).
UPSERT_FACTS_JSON = UPSERT_FACTS_JSON_CTE.format(rows="1::text")
# The facts of the assignments dispatched in [start, end), optionally of one township and/or target.
SELECT_PERIOD_FACTS = f"""
select {', '.join(COLUMNS)}
  from assignment_facts
 where dispatched_at >= $1 and dispatched_at < $2
   and ($3::integer is null or township_id = $3)
   and ($4::text is null or target = $4)
"""
# The same, in the form the scorecards read (``scorecard.SCORING_COLUMNS``): times as integer µs since 1970,
# which asyncpg reads several times faster than timestamps.
SELECT_PERIOD_SCORING = f"""
select {', '.join(f"(extract(epoch from {c}) * 1000000)::bigint as {c}" if c in SCORING_TIMES else c
                  for c in SCORING_COLUMNS)}
  from assignment_facts
 where dispatched_at >= $1 and dispatched_at < $2
   and ($3::integer is null or township_id = $3)
   and ($4::text is null or target = $4)
"""
SELECT_FACTS_VERSION = "select value from meta where key = 'facts_version'"
SET_FACTS_VERSION = """
insert into meta (key, value) values ('facts_version', $1)
on conflict (key) do update set value = excluded.value
"""
DELETE_ALL_FACTS = "delete from assignment_facts"
# Every event with a call, call by call in the call's own order (its township's seq): the rebuild's input.
SELECT_EVENTS_BY_CALL = """
select seq, call_id, assignment_id, type, at, body, audience, call_state, assignment_state
  from events
 where call_id is not null
 order by call_id, seq
"""
REBUILD_LOCK = "select pg_advisory_xact_lock(7420190002)"


def row_values(f: Facts) -> tuple[Any, ...]:
    """One ``assignment_facts`` row in ``COLUMNS`` order (the upsert's parameters, the bulk loader's COPY)."""
    row = f.to_row()
    return tuple(row[c] for c in COLUMNS)


def json_row(f: Facts) -> dict[str, Any]:
    """One ``assignment_facts`` row as a JSON object (``UPSERT_FACTS_JSON_CTE``): times in ISO-8601 with their
    offset and microseconds, ids as text — the same values once PostgreSQL reads them."""
    return {c: (v.isoformat() if isinstance(v, datetime) else str(v) if isinstance(v, UUID) else v)
            for c, v in f.to_row().items()}


async def load(conn: Conn, call_id: UUID) -> dict[UUID, Facts]:
    return {r["assignment_id"]: Facts.from_row(dict(r.items())) for r in await conn.fetch(SELECT_CALL_FACTS, call_id)}


async def load_many(conn: Conn, call_ids: Sequence[UUID]) -> dict[UUID, dict[UUID, Facts]]:
    """``load`` of several calls in one round trip: call id -> its assignments' facts."""
    out: dict[UUID, dict[UUID, Facts]] = {}
    for r in await conn.fetch(SELECT_CALLS_FACTS, list(call_ids)):
        out.setdefault(r["call_id"], {})[r["assignment_id"]] = Facts.from_row(dict(r.items()))
    return out


async def save(conn: Conn, facts: Iterable[Facts]) -> None:
    rows = [row_values(f) for f in facts]
    if rows:
        await conn.executemany(UPSERT_FACTS, rows)


async def save_many(conn: Conn, facts: Iterable[Facts]) -> None:
    """``save`` for a batch (``Store.execute_many``): the same rows, written by one statement."""
    rows = list(facts)
    if rows:
        # orjson writes the dataclasses as objects keyed by field (``COLUMNS``), times in ISO 8601 with their
        # offset and microseconds, ids and tuples as ``json_row`` does: the same values, without a dict per row
        await conn.execute(UPSERT_FACTS_JSON, orjson.dumps(rows, default=_id_text).decode())


def _id_text(value: Any) -> str:
    """An id orjson does not write itself: asyncpg's ``UUID`` (a subclass), in facts loaded from their rows."""
    if isinstance(value, UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def event_of(row: asyncpg.Record | dict[str, Any]) -> Event:
    return Event(type=row["type"], call_id=row["call_id"], assignment_id=row["assignment_id"], at=row["at"],
                 body=row["body"], audience=tuple(row["audience"]), call_state=CallState(row["call_state"]),
                 assignment_state=None if row["assignment_state"] is None
                 else AssignmentState(row["assignment_state"]))


async def period_rows(conn: Conn, start: datetime, end: datetime, township_id: int | None = None,
                      target: str | None = None) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(SELECT_PERIOD_FACTS, start, end, township_id, target)
    return rows


async def period_scoring_rows(conn: Conn, start: datetime, end: datetime, township_id: int | None = None,
                              target: str | None = None) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(SELECT_PERIOD_SCORING, start, end, township_id, target)
    return rows


async def ensure_current(conn: Conn, batch: int = 2000) -> int | None:
    """Rebuild every row from the log if the rows were folded by other rules (or never); return how many
    assignments were rebuilt, or None when the rows were current. One transaction: readers see old or new."""
    from dispatch.core.lifecycle import evolve

    if await conn.fetchval(SELECT_FACTS_VERSION) == str(FACTS_VERSION):
        return None
    async with conn.transaction():
        await conn.execute(REBUILD_LOCK)
        if await conn.fetchval(SELECT_FACTS_VERSION) == str(FACTS_VERSION):
            return None
        await conn.execute(DELETE_ALL_FACTS)
        count = 0
        call: Call | None = None
        facts: dict[UUID, Facts] = {}
        pending: list[Facts] = []

        async def flush() -> None:
            nonlocal pending
            await save(conn, pending)
            pending = []

        async for row in conn.cursor(SELECT_EVENTS_BY_CALL, prefetch=batch):
            event = event_of(row)
            if call is not None and call.id != event.call_id:
                pending.extend(facts.values())
                count += len(facts)
                call, facts = None, {}
                if len(pending) >= batch:
                    await flush()
            call = evolve(call, event)
            facts.update(advance(facts, call, event, row["seq"]))
        pending.extend(facts.values())
        count += len(facts)
        await flush()
        await conn.execute(SET_FACTS_VERSION, str(FACTS_VERSION))
    log.info("evaluation facts rebuilt from the log: %d assignments (rules version %d)", count, FACTS_VERSION)
    return count


def changed(facts: dict[UUID, Facts], call_after: Sequence[tuple[Call, Event, int]]) -> dict[UUID, Facts]:
    """Advance ``facts`` by each (call after the event, event, seq); return the rows to write."""
    out: dict[UUID, Facts] = {}
    for call, event, seq in call_after:
        step = advance(facts, call, event, seq)
        facts.update(step)
        out.update(step)
    return out
