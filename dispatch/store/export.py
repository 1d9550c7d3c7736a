"""One township's raw event log for a period, as the lines of an exported file (docs/EXPORT.md).

The REST endpoint and ``xianghu export-log`` both read through here. A file is the contiguous ``seq`` range
from the first event at or after the period's start to the last event before its end, so the chain inside it
verifies even where ``at`` steps back across a boundary (times come from the hub's clock, ``seq`` from the
township's lock). The range is fixed before the first line is read, and events are append-only, so what a
long export returns does not change while it streams; it is read in batches by ``seq``, never held whole.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from dispatch.evaluation.period import Period
from dispatch.store.eventlog import EVENT_COLUMNS, EventRecord
from dispatch.store.logfile import encode_line
from dispatch.store.pool import Conn, Pool
from protocols.errors import InternalError

BATCH = 5000

SELECT_TOWNSHIP_BY_ID = "select id, code from townships where id = $1"
SELECT_TOWNSHIP_BY_CODE = "select id, code from townships where code = $1"
# Walk the primary key (township_id, seq) from either end and stop at the first event inside the period.
SELECT_FIRST_SEQ_FROM = """
select seq
  from events
 where township_id = $1 and at >= $2
 order by seq
 limit 1
"""
SELECT_LAST_SEQ_BEFORE = """
select seq
  from events
 where township_id = $1 and at < $2
 order by seq desc
 limit 1
"""
SELECT_EVENTS_BETWEEN = f"""
select {EVENT_COLUMNS}
  from events
 where township_id = $1 and seq > $2 and seq <= $3
 order by seq
 limit $4
"""


@dataclass(frozen=True, slots=True)
class Township:
    id: int
    code: str


@dataclass(frozen=True, slots=True)
class ExportRange:
    """The events of ``township`` an export of ``period`` holds: ``first_seq``..``last_seq`` inclusive."""

    township: Township
    period: Period
    first_seq: int
    last_seq: int

    @property
    def count(self) -> int:
        return max(0, self.last_seq - self.first_seq + 1)

    @property
    def filename(self) -> str:
        return f"xianghu-{self.township.code}-{self.period.first.isoformat()}-{self.period.last.isoformat()}.jsonl"


async def fetch_township(conn: Conn | Pool, *, township_id: int | None = None, code: str | None = None
                         ) -> Township | None:
    """The township with this id or this code, or None."""
    if township_id is not None:
        row = await conn.fetchrow(SELECT_TOWNSHIP_BY_ID, township_id)
    else:
        row = await conn.fetchrow(SELECT_TOWNSHIP_BY_CODE, code)
    return None if row is None else Township(row["id"], row["code"])


async def fetch_range(conn: Conn | Pool, township: Township, period: Period) -> ExportRange:
    """The contiguous ``seq`` range of ``township``'s events in ``period`` (empty: ``count`` is 0)."""
    first = await conn.fetchval(SELECT_FIRST_SEQ_FROM, township.id, period.start)
    last = await conn.fetchval(SELECT_LAST_SEQ_BEFORE, township.id, period.end)
    if first is None or last is None or last < first:
        return ExportRange(township, period, 1, 0)
    return ExportRange(township, period, first, last)


async def iter_lines(db: Conn | Pool, rng: ExportRange, batch: int = BATCH) -> AsyncIterator[bytes]:
    """The file's bytes, one chunk of lines per batch. With a pool each batch borrows a connection only
    for its query, so a slow reader of the stream holds none while it catches up."""
    after = rng.first_seq - 1
    while after < rng.last_seq:
        rows = await db.fetch(SELECT_EVENTS_BETWEEN, rng.township.id, after, rng.last_seq, batch)
        if not rows:
            # Only a log edited behind the append-only guard ends early; say so rather than end the file short.
            raise InternalError(f"the event log of township {rng.township.code} ends at seq {after}, "
                                f"before the exported range's last seq {rng.last_seq}")
        records = [EventRecord.from_row(row) for row in rows]
        after = records[-1].seq
        yield b"".join(encode_line(rec) for rec in records)
