"""Erasing reporters (DESIGN.md idea 10): the name, phone and salt of the reporters of calls closed or cancelled
before a cutoff are cleared — in ``reporters`` and in the ``calls`` projection (whose ``reporter_digits``, the
phone search's column, follows) — while the chained digest stays, so every hash chain still verifies.

Each township's head row is locked first, as the write path locks it: a command on one of those calls waits,
then reads the erased projection, and can never write the name back. Each run is an admin log entry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from dispatch.core.domain import SYSTEM_ACTOR, Actor
from dispatch.store import adminlog
from dispatch.store.pool import Conn

FINAL_STATES = ["closed", "cancelled"]
# The townships with reporters to erase, and how many each.
COUNT_DUE = """
select r.township_id, t.code, count(*) as calls
  from reporters r
  join calls c on c.id = r.call_id
  join townships t on t.id = r.township_id
 where r.erased_at is null
   and c.state = any($1::text[])
   and c.closed_at < $2
 group by r.township_id, t.code
 order by r.township_id
"""
LOCK_TOWNSHIP = "select seq from township_heads where township_id = $1 for update"
ERASE_REPORTERS = """
update reporters r
   set name = null, phone = null, salt = null, erased_at = $4
  from calls c
 where r.township_id = $1
   and c.id = r.call_id
   and r.erased_at is null
   and c.state = any($2::text[])
   and c.closed_at < $3
returning r.call_id
"""
CLEAR_CALLS = """
update calls
   set doc = doc || '{"reporter_name": null, "reporter_phone": null}'::jsonb
 where id = any($1::uuid[])
"""

# What an Open311 client or the hotline said about the person (docs/INTAKE.md) goes with the name and phone.
CLEAR_INTEGRATION_DETAILS = """
update integration_calls
   set details = details - 'email' - 'device_id' - 'account_id'
 where call_id = any($1::uuid[])
"""


@dataclass
class ErasureReport:
    cutoff: datetime
    dry_run: bool
    by_township: dict[str, int] = field(default_factory=dict)  # township code -> calls

    @property
    def calls(self) -> int:
        return sum(self.by_township.values())

    def to_json(self) -> dict[str, Any]:
        return {"cutoff": self.cutoff.astimezone(UTC).isoformat(), "calls": self.calls,
                "townships": dict(sorted(self.by_township.items()))}


async def erase(conn: Conn, *, cutoff: datetime, now: datetime, actor: Actor = SYSTEM_ACTOR,
                dry_run: bool = False) -> ErasureReport:
    """Anonymise the reporters of calls closed or cancelled before ``cutoff``; with ``dry_run`` only count them
    (nothing is written, not even the admin log)."""
    report = ErasureReport(cutoff, dry_run)
    async with conn.transaction():
        due = await conn.fetch(COUNT_DUE, FINAL_STATES, cutoff)
        if dry_run:
            report.by_township = {r["code"]: r["calls"] for r in due}
            return report
        for row in due:
            await conn.execute(LOCK_TOWNSHIP, row["township_id"])
            erased = [r["call_id"] for r in await conn.fetch(ERASE_REPORTERS, row["township_id"], FINAL_STATES,
                                                               cutoff, now)]
            await conn.execute(CLEAR_CALLS, erased)
            await conn.execute(CLEAR_INTEGRATION_DETAILS, erased)
            report.by_township[row["code"]] = len(erased)
        await adminlog.append(conn, actor=actor, action="privacy.erase", target="reporters", at=now,
                              after=report.to_json())
    return report
