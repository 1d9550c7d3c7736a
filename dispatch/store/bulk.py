"""Bulk loading of a history the lifecycle produced elsewhere (``xianghu seed-demo --history``): COPY, in batches.

What the write path writes for each command, written for many at once: the events chained exactly as
``eventlog.append`` chains them (``EventRecord.chained``, one chain per township, its head moved once at the
end), the ``calls``/``assignments`` projections from the writer's own row functions (one row per call and
assignment, as of its last event), the reporters set aside as the write path sets them aside (their digest
in the chain, ``dispatch.store.reporters``), the evaluation facts from the same fold (``facts.changed``), the call
numbers' counters and the township heads. Nothing goes to ``commands``: no client will ever retry a loaded
command, so there is no answer to keep for one. Nothing goes to ``notifications`` either: whoever had to be
told about a past event was told then; a pending row would have the outbox's sender deliver it now.

Only into a county without any call (the log of a township must be in time order, and a loaded history
ends before anything a client sends): ``bulk_load`` refuses otherwise. One transaction: all or nothing.
Memory stays bounded: rows are copied every ``batch`` events, and a call is kept only while it is open.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from dispatch.core.config import Config
from dispatch.core.domain import Actor
from dispatch.core.numbering import format_number, numbering_year
from dispatch.core.records import Call, Event
from dispatch.core.transitions import CALL_FINAL
from dispatch.evaluation.facts import COLUMNS as FACT_COLUMNS
from dispatch.evaluation.facts import FACTS_VERSION, Facts, touches
from dispatch.store import eventlog, reporters
from dispatch.store import facts as evaluation_facts
from dispatch.store.pool import Conn, binary_jsonb
from dispatch.store.writer import ASSIGNMENT_COLUMNS, CALL_COLUMNS, assignment_row, call_row, event_record
from protocols.errors import Conflict, InternalError

BATCH_EVENTS = 20_000
# Anything a client (or an earlier load) wrote: a history goes only into a county without calls.
SELECT_ANY_CALL = """
select exists (select 1 from events) or exists (select 1 from calls) or exists (select 1 from call_numbers)
"""
LOCK_HEADS = """
select h.township_id, h.seq, h.hash, t.code
  from township_heads h
  join townships t on t.id = h.township_id
   for update of h
"""
UPDATE_HEAD = "update township_heads set seq = $2, hash = $3 where township_id = $1"
INSERT_CALL_NUMBER = "insert into call_numbers (township_id, year, last) values ($1, $2, $3)"


@dataclass
class _Open:
    """A call still open in the load: its latest state, its last event and its assignments' facts."""

    call: Call
    last_seq: int = 0
    facts: dict[UUID, Facts] = field(default_factory=dict)
    reporter: tuple[Any, ...] | None = None  # its ``reporters`` row, copied with the call's (the foreign key)


class BulkLog:
    """Takes each command's events (and the call after each of them) in time order; writes them in batches."""

    def __init__(self, conn: Conn, cfg: Config, heads: dict[int, tuple[int, bytes]], codes: dict[int, str],
                 batch: int = BATCH_EVENTS) -> None:
        self.conn = conn
        self.cfg = cfg
        self.batch = batch
        self.events = 0
        self.calls = 0
        self._heads = heads
        self._codes = codes
        self._numbers: dict[tuple[int, int], int] = {}
        self._open: dict[UUID, _Open] = {}
        self._event_rows: list[tuple[Any, ...]] = []
        self._call_rows: list[tuple[Any, ...]] = []
        self._assignment_rows: list[tuple[Any, ...]] = []
        self._reporter_rows: list[tuple[Any, ...]] = []
        self._fact_rows: list[tuple[Any, ...]] = []

    @property
    def pending(self) -> int:
        """Events waiting to be copied."""
        return len(self._event_rows)

    def add(self, township_id: int, actor: Actor, command_id: UUID | None, events: Sequence[Event],
            calls: Sequence[Call]) -> None:
        """One command's ``events`` with ``calls[i]``, the call after ``events[i]`` (what ``evolve`` gave)."""
        if len(events) != len(calls) or not events:
            raise InternalError("bulk load: every event needs the call after it")
        seq, prev = self._heads[township_id]
        seqs = []
        reporter = None
        for ev in events:
            seq += 1
            if ev.type == "call.created":
                self._number(township_id, ev)
            # as the write path does: the name and phone kept aside, their digest chained
            rec, kept = reporters.set_aside(event_record(township_id, actor, command_id, ev, seq))
            rec = rec.chained(prev)
            if kept is not None:
                reporter = reporters.reporter_row(rec, kept)
            prev = rec.hash
            seqs.append(seq)
            self._event_rows.append(eventlog.row_values(rec))
        self._heads[township_id] = (seq, prev)
        self.events += len(events)
        call = calls[-1]
        state = self._open.get(call.id)
        if state is None:
            state = self._open[call.id] = _Open(call)
            self.calls += 1
        if reporter is not None:
            state.reporter = reporter
        if touches(events):  # as the writer does: the fold advanced by each (call after, event, seq)
            evaluation_facts.changed(state.facts, list(zip(calls, events, seqs, strict=True)))
        state.call, state.last_seq = call, seq
        if call.state in CALL_FINAL:  # nothing changes a closed or cancelled call any more
            self._project(self._open.pop(call.id))

    def _number(self, township_id: int, ev: Event) -> None:
        """Count the township's calls per year; a number out of sequence would leave a gap or a duplicate."""
        year = numbering_year(ev.at)
        n = self._numbers.get((township_id, year), 0) + 1
        expected = format_number(self._codes[township_id], year, n)
        if ev.body.get("number") != expected:
            raise InternalError(f"bulk load: call {ev.call_id} is numbered {ev.body.get('number')}, "
                                f"the next number of its township is {expected}")
        self._numbers[(township_id, year)] = n

    def _project(self, state: _Open) -> None:
        call = state.call
        self._call_rows.append(call_row(call, state.last_seq))
        if state.reporter is not None:
            self._reporter_rows.append(state.reporter)
        self._assignment_rows.extend(assignment_row(call, a, self.cfg) for a in call.assignments.values())
        self._fact_rows.extend(evaluation_facts.row_values(f) for f in state.facts.values())

    def take(self) -> list[tuple[str, tuple[str, ...], list[tuple[Any, ...]]]]:
        """The rows gathered so far, per table (calls before their assignments: the foreign key); ``add`` goes on
        into new lists, so a caller may copy one batch while it gathers the next."""
        batch = [("events", eventlog.INSERT_COLUMNS, self._event_rows), ("calls", CALL_COLUMNS, self._call_rows),
                 ("assignments", ASSIGNMENT_COLUMNS, self._assignment_rows),
                 ("reporters", reporters.REPORTER_COLUMNS, self._reporter_rows),
                 ("assignment_facts", FACT_COLUMNS, self._fact_rows)]
        self._event_rows, self._call_rows, self._assignment_rows, self._fact_rows = [], [], [], []
        self._reporter_rows = []
        return batch

    async def copy(self, batch: list[tuple[str, tuple[str, ...], list[tuple[Any, ...]]]]) -> None:
        """COPY one batch from ``take`` (one at a time: the connection runs one statement at once)."""
        for table, columns, rows in batch:
            if rows:
                await self.conn.copy_records_to_table(table, records=rows, columns=list(columns))

    async def flush(self) -> None:
        """Copy every row gathered so far."""
        await self.copy(self.take())

    async def _finish(self) -> None:
        """The calls still open, the counters of the numbers given, the heads of the chains."""
        for state in self._open.values():
            self._project(state)
        self._open.clear()
        await self.flush()
        await self.conn.executemany(INSERT_CALL_NUMBER, [(tid, year, last)
                                                         for (tid, year), last in sorted(self._numbers.items())])
        await self.conn.executemany(UPDATE_HEAD, [(tid, seq, h) for tid, (seq, h) in sorted(self._heads.items())])
        # Every row of the table is ours and folded by the current rules (the county had no call).
        await self.conn.execute(evaluation_facts.SET_FACTS_VERSION, str(FACTS_VERSION))


@contextlib.asynccontextmanager
async def bulk_load(conn: Conn, cfg: Config, batch: int = BATCH_EVENTS) -> AsyncIterator[BulkLog]:
    """A ``BulkLog`` in one transaction holding every township's lock; committed when the block ends.

    Refuses (``Conflict``) a county that already has calls or events."""
    async with binary_jsonb(conn), conn.transaction():
        rows = await conn.fetch(LOCK_HEADS)
        if await conn.fetchval(SELECT_ANY_CALL):
            raise Conflict("this county already has calls: a history is loaded only before the first call "
                           "(into a county just created)")
        heads = {r["township_id"]: (int(r["seq"]), bytes(r["hash"])) for r in rows}
        log = BulkLog(conn, cfg, heads, {r["township_id"]: r["code"] for r in rows}, batch)
        yield log
        await log._finish()
