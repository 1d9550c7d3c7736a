"""What ``/metrics`` reads from the database at scrape time: small grouped counts over indexed columns, never
the event log (docs/OPERATIONS.md)."""

from __future__ import annotations

from dataclasses import dataclass

from dispatch.store.pool import Conn

# Grouped on the projection's (township_id, state, …) index first, then named by township code.
SELECT_CALLS_BY_STATE = """
select t.code as township, c.state, c.calls
  from (select township_id, state, count(*) as calls
          from calls
         group by township_id, state) c
  join townships t on t.id = c.township_id
"""
SELECT_TOWNSHIP_CODES = "select code from townships order by code"
# Only the messages still to go (the partial index `notifications_pending`): sent, failed and obsolete rows
# are history, which grows for ever and is on each call's timeline.
SELECT_OUTBOX_DEPTH = """
select channel,
       case when attempts = 0 then 'queued' else 'retrying' end as status,
       count(*) as messages
  from notifications
 where state = 'pending'
 group by 1, 2
"""


@dataclass(frozen=True)
class Counts:
    """One scrape's database figures."""

    townships: tuple[str, ...]
    calls: dict[tuple[str, str], int]  # (township code, call state) → calls
    outbox: dict[tuple[str, str], int]  # (channel, status) → pending messages


async def fetch_counts(conn: Conn) -> Counts:
    townships = tuple(r["code"] for r in await conn.fetch(SELECT_TOWNSHIP_CODES))
    calls = {(r["township"], r["state"]): r["calls"] for r in await conn.fetch(SELECT_CALLS_BY_STATE)}
    outbox = {(r["channel"], r["status"]): r["messages"] for r in await conn.fetch(SELECT_OUTBOX_DEPTH)}
    return Counts(townships, calls, outbox)
