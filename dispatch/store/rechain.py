"""Moving reporters out of chains written before migration 0010 (run by ``xianghu migrate`` and at every
start, after the SQL migrations; a second run finds nothing to do).

For each township whose log still has a name or phone in an event body (``call.created``, and the call snapshot
of ``assignment.dispatched``): verify its chain (a broken
one is left untouched and reported), set each reporter aside into ``reporters`` with a fresh salt, put the
digest in the body, re-chain every event from the first changed one (every later ``prev_hash`` and ``hash``
changes), move the head, verify again, and record old head → new head in the admin log — all in one
transaction per township, so a crash leaves the old chain. Files exported before the move verify against the
old head that the admin log keeps (docs/EXPORT.md).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from dispatch.core.domain import SYSTEM_ACTOR
from dispatch.core.reporter import has_plaintext
from dispatch.store import adminlog, eventlog, reporters
from dispatch.store.eventlog import SELECT_EVENTS_AFTER, EventRecord
from dispatch.store.pool import Conn, binary_jsonb
from protocols.errors import InternalError

log = logging.getLogger(__name__)

BATCH = 5000
# Townships whose log still holds plaintext, with the first such event (where re-chaining starts).
SELECT_PLAIN = """
select township_id, min(seq) as first_seq
  from events
 where (type = 'call.created' and (body ? 'reporter_name' or body ? 'reporter_phone'))
    or (body->'call' ? 'reporter_name' or body->'call' ? 'reporter_phone')
 group by township_id
 order by township_id
"""
LOCK_HEAD = """
select h.seq, h.hash, t.code
  from township_heads h
  join townships t on t.id = h.township_id
 where h.township_id = $1
   for update of h
"""
SELECT_PREV_HASH = "select hash from events where township_id = $1 and seq = $2"
# The log is append-only (a trigger refuses updates); this one rewrite lifts the guard inside its transaction.
LIFT_GUARD = "alter table events disable trigger events_no_update"
RESTORE_GUARD = "alter table events enable trigger events_no_update"
CREATE_RECHAINED = """
create temp table rechained (seq bigint primary key, body jsonb not null, prev_hash bytea not null,
                             hash bytea not null) on commit drop
"""
UPDATE_FROM_RECHAINED = """
update events e
   set body = r.body, prev_hash = r.prev_hash, hash = r.hash
  from rechained r
 where e.township_id = $1 and e.seq = r.seq
"""
UPDATE_HEAD_HASH = "update township_heads set hash = $2 where township_id = $1 and seq = $3"


class ChainBroken(InternalError):
    """A township's chain does not verify: the move leaves it alone (``xianghu verify-log`` says where)."""


@dataclass
class MoveReport:
    moved: dict[str, int] = field(default_factory=dict)  # township code -> reporters moved
    refused: dict[str, str] = field(default_factory=dict)  # township code -> why its chain was left alone


async def move_reporters(conn: Conn, now: datetime) -> MoveReport:
    """Move every township's plaintext reporters out of its chain; idempotent."""
    report = MoveReport()
    for row in await conn.fetch(SELECT_PLAIN):
        tid, first = row["township_id"], row["first_seq"]
        try:
            code, count = await _move_township(conn, tid, first, now)
        except ChainBroken as exc:
            log.error("reporters of township %s left in its chain: %s", tid, exc.message)
            report.refused[str(tid)] = exc.message
            continue
        log.warning("township %s: %d reporters moved out of its chain; chain re-hashed from seq %d (the old "
                    "and new heads are in the admin log)", code, count, first)
        report.moved[code] = count
    return report


async def _move_township(conn: Conn, tid: int, first: int, now: datetime) -> tuple[str, int]:
    async with conn.transaction():
        head = await conn.fetchrow(LOCK_HEAD, tid)
        if head is None:
            raise InternalError(f"township {tid} has events but no head")
        code, old_seq, old_hash = head["code"], head["seq"], bytes(head["hash"])
        before = await eventlog.verify(conn, tid)
        if not before.ok:
            raise ChainBroken(f"township {code}: chain broken at seq {before.seq} ({before.reason}); "
                              "nothing was changed")
        prev = b"" if first == 1 else bytes(await conn.fetchval(SELECT_PREV_HASH, tid, first - 1))
        await conn.execute(CREATE_RECHAINED)
        kept: list[tuple[Any, ...]] = []
        last, count = first - 1, 0
        while True:
            rows = await conn.fetch(SELECT_EVENTS_AFTER, tid, last, BATCH)
            if not rows:
                break
            out = []
            for row in rows:
                rec = EventRecord.from_row(row)
                if has_plaintext(rec.type, rec.body):
                    rec, reporter = reporters.set_aside(rec)
                    if reporter is not None:
                        kept.append(reporters.reporter_row(rec, reporter))
                rec = replace(rec, prev_hash=b"", hash=b"").chained(prev)
                prev, last = rec.hash, rec.seq
                out.append((rec.seq, rec.body, rec.prev_hash, rec.hash))
                count += 1
            async with binary_jsonb(conn):  # COPY is binary only
                await conn.copy_records_to_table("rechained", records=out,
                                                 columns=["seq", "body", "prev_hash", "hash"])
        if last != old_seq:
            raise InternalError(f"township {code}: head at seq {old_seq}, last event {last}")
        await conn.execute(LIFT_GUARD)
        await conn.execute(UPDATE_FROM_RECHAINED, tid)
        await conn.execute(RESTORE_GUARD)
        await conn.execute(UPDATE_HEAD_HASH, tid, prev, old_seq)
        if kept:
            await conn.executemany(reporters.INSERT_REPORTER, kept)
        after = await eventlog.verify(conn, tid)
        if not after.ok:  # rolls the whole township back: the old chain stays
            raise InternalError(f"township {code}: re-chained log does not verify at seq {after.seq} "
                                f"({after.reason})")
        await adminlog.append(
            conn, actor=SYSTEM_ACTOR, action="privacy.rechain", target=f"township:{code}", at=now,
            before={"head_seq": old_seq, "head_hash": old_hash.hex()},
            after={"head_seq": old_seq, "head_hash": prev.hex(), "first_seq_changed": first,
                   "events_rechained": count, "reporters_moved": len(kept)})
    return code, len(kept)
