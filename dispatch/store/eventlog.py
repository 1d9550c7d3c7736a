"""The event log: canonical encoding and hash chain (pure), append under the township lock, verification.

Why a per-township lock and not a global serial: a lower ``bigserial`` can commit after a higher one, so
a client resuming "after id N" could skip it. Assigning ``seq`` while holding the township's head row
makes events of a township visible strictly in sequence order, and lets the same lock chain the hashes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg

from dispatch.core.reporter import canonical_json
from dispatch.store.pool import Conn, json_text

NOTIFY_CHANNEL = "xianghu_events"

# Move the head and wake every node (NOTIFY is delivered at commit, in commit order): one round trip.
UPDATE_HEAD_AND_NOTIFY = """
with moved as (update township_heads set seq = $2, hash = $3 where township_id = $1 returning township_id)
select pg_notify('xianghu_events', $1::text || ':' || $2::text) from moved
"""
INSERT_COLUMNS = ("township_id", "seq", "call_id", "assignment_id", "type", "actor_id", "actor_role", "actor_name",
                  "at", "body", "audience", "call_state", "assignment_state", "command_id", "prev_hash", "hash")
INSERT_EVENT = """
insert into events (township_id, seq, call_id, assignment_id, type, actor_id, actor_role, actor_name,
                    at, body, audience, call_state, assignment_state, command_id, prev_hash, hash)
values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
"""
# The same insert as a CTE over a jsonb array of rows (``json_row``), for a statement that writes more (the write
# path's ``FINISH_COMMAND``): each event's audience is an array of its own length, which ``unnest`` cannot carry.
INSERT_EVENTS_JSON_CTE = f"""
    insert into events ({', '.join(INSERT_COLUMNS)})
    select {', '.join(INSERT_COLUMNS)} from jsonb_populate_recordset(null::events, ${{rows}}::jsonb)
"""
# ``append_many``: a batch's events in one statement (``body`` as JSON text, ``audience`` as a JSON array).
INSERT_EVENTS = """
insert into events (township_id, seq, call_id, assignment_id, type, actor_id, actor_role, actor_name,
                    at, body, audience, call_state, assignment_state, command_id, prev_hash, hash)
select $1, u.seq, u.call_id, u.assignment_id, u.type, u.actor_id, u.actor_role, u.actor_name, u.at, u.body::jsonb,
       array(select a.t from jsonb_array_elements_text(u.audience::jsonb) with ordinality as a(t, i) order by a.i),
       u.call_state, u.assignment_state, u.command_id,
       u.prev_hash, u.hash
  from unnest($2::bigint[], $3::uuid[], $4::uuid[], $5::text[], $6::int[], $7::text[], $8::text[],
              $9::timestamptz[], $10::text[], $11::text[], $12::text[], $13::text[], $14::uuid[], $15::bytea[],
              $16::bytea[])
       as u(seq, call_id, assignment_id, type, actor_id, actor_role, actor_name, at, body, audience, call_state,
            assignment_state, command_id, prev_hash, hash)
"""
SELECT_HEADS = "select township_id, seq from township_heads order by township_id"
# Every column of an event row, in EventRecord order (fan-out, replay and verification read them all).
EVENT_COLUMNS = """township_id, seq, call_id, assignment_id, type, actor_id, actor_role, actor_name, at, body,
       audience, call_state, assignment_state, command_id, prev_hash, hash"""
SELECT_EVENTS_AFTER = f"""
select {EVENT_COLUMNS}
  from events
 where township_id = $1 and seq > $2
 order by seq
 limit $3
"""
# An event as clients get it (fan-out, replay, the REST timeline), in EventRecord order: a ``call.created`` body,
# and the call snapshot of a dispatch (``body.call``), with the reporter's name and phone joined back from
# ``reporters`` (null once erased). Never chained: the chain holds only their digest (DESIGN.md idea 10).
DELIVERY_COLUMNS = """e.township_id, e.seq, e.call_id, e.assignment_id, e.type, e.actor_id, e.actor_role, e.actor_name,
       e.at, case when e.type = 'call.created'
                  then e.body || jsonb_build_object('reporter_name', r.name, 'reporter_phone', r.phone)
                  when jsonb_typeof(e.body->'call') = 'object'
                  then jsonb_set(e.body, '{call}', (e.body->'call')
                                 || jsonb_build_object('reporter_name', r.name, 'reporter_phone', r.phone))
                  else e.body end as body,
       e.audience, e.call_state, e.assignment_state, e.command_id, e.prev_hash, e.hash"""
DELIVERY_FROM = "events e left join reporters r on r.call_id = e.call_id"
# The fan-out's page for several townships in one round trip: up to $3 events after each township's cursor
# ($1 townships, $2 their last delivered seqs), by township then seq.
SELECT_DELIVERY_AFTER_EACH = f"""
select d.*
  from unnest($1::integer[], $2::bigint[]) as w(township_id, after)
 cross join lateral (select {DELIVERY_COLUMNS}
                       from {DELIVERY_FROM}
                      where e.township_id = w.township_id and e.seq > w.after
                      order by e.seq
                      limit $3) d
 order by d.township_id, d.seq
"""
SELECT_TOWNSHIPS = "select id, code from townships order by id"
# The one form of an event's time, in the hash and in exported files (docs/EXPORT.md).
AT_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


@dataclass(frozen=True, slots=True)
class EventRecord:
    """One row of the log, as stored and as hashed."""

    township_id: int
    seq: int
    call_id: UUID | None
    assignment_id: UUID | None
    type: str
    actor_id: int | None
    actor_role: str
    actor_name: str
    at: datetime
    body: dict[str, Any]
    audience: tuple[str, ...]
    call_state: str | None
    assignment_state: str | None
    command_id: UUID | None
    prev_hash: bytes = b""
    hash: bytes = b""

    def canonical_doc(self) -> dict[str, Any]:
        """The fields the hash covers, as JSON values (every column but ``prev_hash`` and ``hash``)."""
        return {
            "township_id": self.township_id, "seq": self.seq,
            "call_id": _s(self.call_id), "assignment_id": _s(self.assignment_id), "type": self.type,
            "actor_id": self.actor_id, "actor_role": self.actor_role, "actor_name": self.actor_name,
            "at": self.at.astimezone(UTC).strftime(AT_FORMAT), "body": self.body,
            "audience": list(self.audience), "call_state": self.call_state,
            "assignment_state": self.assignment_state, "command_id": _s(self.command_id),
        }

    def canonical(self) -> bytes:
        """The bytes the hash covers: sorted-key compact JSON, times as UTC ISO-8601 with microseconds."""
        return canonical_json(self.canonical_doc())

    def chained(self, prev_hash: bytes) -> EventRecord:
        digest = hashlib.sha256(prev_hash + self.canonical()).digest()
        return _replace(self, prev_hash=prev_hash, hash=digest)

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> EventRecord:
        return cls(
            township_id=row["township_id"], seq=row["seq"], call_id=row["call_id"],
            assignment_id=row["assignment_id"], type=row["type"], actor_id=row["actor_id"],
            actor_role=row["actor_role"], actor_name=row["actor_name"], at=row["at"], body=row["body"],
            audience=tuple(row["audience"]), call_state=row["call_state"],
            assignment_state=row["assignment_state"], command_id=row["command_id"],
            prev_hash=bytes(row["prev_hash"]), hash=bytes(row["hash"]),
        )


def row_values(r: EventRecord) -> tuple[Any, ...]:
    """An ``events`` row in ``INSERT_COLUMNS`` order (``append``'s parameters, the bulk loader's COPY)."""
    return (r.township_id, r.seq, r.call_id, r.assignment_id, r.type, r.actor_id, r.actor_role, r.actor_name,
            r.at, r.body, list(r.audience), r.call_state, r.assignment_state, r.command_id, r.prev_hash, r.hash)


def json_row(r: EventRecord) -> dict[str, Any]:
    """An ``events`` row as a JSON object (``INSERT_EVENTS_JSON_CTE``), the same values once PostgreSQL reads
    them: the time in ISO-8601 with its offset and microseconds, ids as text, the hashes in bytea's hex form."""
    return {"township_id": r.township_id, "seq": r.seq, "call_id": _s(r.call_id), "assignment_id": _s(r.assignment_id),
            "type": r.type, "actor_id": r.actor_id, "actor_role": r.actor_role, "actor_name": r.actor_name,
            "at": r.at.isoformat(), "body": r.body, "audience": list(r.audience), "call_state": r.call_state,
            "assignment_state": r.assignment_state, "command_id": _s(r.command_id),
            "prev_hash": "\\x" + r.prev_hash.hex(), "hash": "\\x" + r.hash.hex()}


def _s(value: UUID | None) -> str | None:
    return None if value is None else str(value)


def _replace(rec: EventRecord, **changes: Any) -> EventRecord:
    return replace(rec, **changes)


def chain(township_id: int, head: tuple[int, bytes], records: Sequence[EventRecord]) -> list[EventRecord]:
    """Number and chain ``records`` (their seq is ignored) after ``head`` = (seq, hash)."""
    seq, prev = head
    out: list[EventRecord] = []
    for rec in records:
        seq += 1
        # ``_replace(rec, township_id=…, seq=…).chained(prev)`` in one copy instead of two: the same bytes hashed
        doc = rec.canonical_doc()
        doc["township_id"], doc["seq"] = township_id, seq
        digest = hashlib.sha256(prev + canonical_json(doc)).digest()
        # ``_replace(rec, township_id=…, seq=…, prev_hash=…, hash=…)``, by one constructor call (faster)
        out.append(EventRecord(township_id, seq, rec.call_id, rec.assignment_id, rec.type, rec.actor_id,
                               rec.actor_role, rec.actor_name, rec.at, rec.body, rec.audience, rec.call_state,
                               rec.assignment_state, rec.command_id, prev, digest))
        prev = digest
    return out


async def append(conn: Conn, township_id: int, head: tuple[int, bytes],
                 records: Sequence[EventRecord]) -> list[EventRecord]:
    """Number, chain and insert ``records`` (their seq is ignored) after ``head`` = (seq, hash), which the
    caller read while taking the township's lock (``select … for update`` on its ``township_heads`` row); the
    head is moved and every node notified. (The write path chains with ``chain`` and writes its events in the
    statement that finishes the command.)"""
    out = chain(township_id, head, records)
    await conn.executemany(INSERT_EVENT, [row_values(r) for r in out])
    seq, last = (out[-1].seq, out[-1].hash) if out else head
    await conn.execute(UPDATE_HEAD_AND_NOTIFY, township_id, seq, last)
    return out


async def append_many(conn: Conn, township_id: int, head: tuple[int, bytes],
                      records: Sequence[EventRecord]) -> list[EventRecord]:
    """``append`` for a batch (the SLA engine's escalations): the same numbering and chain, the rows inserted by
    one statement instead of one execution each."""
    out = chain(township_id, head, records)
    cols: list[list[Any]] = [[] for _ in range(15)]
    for r in out:
        for col, value in zip(cols, (r.seq, r.call_id, r.assignment_id, r.type, r.actor_id, r.actor_role,
                                     r.actor_name, r.at, json_text(r.body), json_text(r.audience), r.call_state,
                                     r.assignment_state, r.command_id, r.prev_hash, r.hash), strict=True):
            col.append(value)
    await conn.execute(INSERT_EVENTS, township_id, *cols)
    seq, last = (out[-1].seq, out[-1].hash) if out else head
    await conn.execute(UPDATE_HEAD_AND_NOTIFY, township_id, seq, last)
    return out


@dataclass(frozen=True)
class VerifyReport:
    ok: bool
    count: int
    township_id: int | None = None
    seq: int | None = None
    reason: str = ""


async def verify(conn: Conn, township_id: int | None = None, batch: int = 5000) -> VerifyReport:
    """Recompute every chain (or one township's); report the first broken link."""
    townships = [r["id"] for r in await conn.fetch(SELECT_TOWNSHIPS)]
    if township_id is not None:
        townships = [t for t in townships if t == township_id]
    count = 0
    for tid in townships:
        prev, last = b"", 0
        while True:
            rows = await conn.fetch(SELECT_EVENTS_AFTER, tid, last, batch)
            if not rows:
                break
            for row in rows:
                rec = EventRecord.from_row(row)
                if rec.seq != last + 1:
                    return VerifyReport(False, count, tid, last + 1,
                                        f"sequence gap: expected {last + 1}, found {rec.seq}")
                if rec.prev_hash != prev:
                    return VerifyReport(False, count, tid, rec.seq, "prev_hash does not match the previous event")
                if rec.chained(prev).hash != rec.hash:
                    return VerifyReport(False, count, tid, rec.seq, "hash does not match the event's content")
                prev, last = rec.hash, rec.seq
                count += 1
        head = await conn.fetchrow("select seq, hash from township_heads where township_id = $1", tid)
        if head is not None and (head["seq"] != last or bytes(head["hash"]) != prev):
            return VerifyReport(False, count, tid, head["seq"], "township head does not match the last event")
    return VerifyReport(True, count)
