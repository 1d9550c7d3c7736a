"""A township's duty roster: its targets (the stationed departments, then its own units) and their liaisons."""

from __future__ import annotations

from dataclasses import dataclass

from dispatch.core.domain import DEPARTMENTS
from dispatch.store.pool import Conn

SELECT_TOWNSHIP = "select id from townships where id = $1"
# Departments in the configuration's order (DEPARTMENTS), then the township's units in the order they were made.
SELECT_TARGETS = """
select s.department         as target,
       'department'         as kind,
       d.name_zh,
       d.name_en
  from stations s
  join departments d on d.code = s.department
 where s.township_id = $1
union all
select 'unit:' || u.id      as target,
       'unit'               as kind,
       u.name_zh,
       u.name_en
  from units u
 where u.township_id = $1
   and u.retired_at is null
"""
# Team leads first, then by account; disabled accounts are off duty.
SELECT_LIAISONS = """
select u.id,
       u.display_name,
       u.team_lead,
       u.phone,
       coalesce(u.department, 'unit:' || u.unit_id) as target
  from users u
 where u.role = 'liaison'
   and u.township_id = $1
   and not u.disabled
 order by target, u.team_lead desc, u.id
"""


@dataclass(frozen=True, slots=True)
class Liaison:
    user_id: int
    name: str
    team_lead: bool
    phone: str | None


@dataclass(frozen=True, slots=True)
class DutyTarget:
    target: str  # a department code or ``unit:<id>``
    kind: str  # "department" | "unit"
    name_zh: str
    name_en: str
    liaisons: tuple[Liaison, ...]


def _order(target: str, kind: str) -> tuple[int, int, str]:
    if kind == "department":
        return (0, DEPARTMENTS.index(target) if target in DEPARTMENTS else len(DEPARTMENTS), target)
    return (1, int(target.removeprefix("unit:")), target)


async def fetch_roster(conn: Conn, township_id: int) -> list[DutyTarget] | None:
    """Every target of the township with its liaisons, in the consoles' order; None for no such township."""
    if await conn.fetchval(SELECT_TOWNSHIP, township_id) is None:
        return None
    by_target: dict[str, list[Liaison]] = {}
    for r in await conn.fetch(SELECT_LIAISONS, township_id):
        by_target.setdefault(r["target"], []).append(
            Liaison(r["id"], r["display_name"], r["team_lead"], r["phone"]))
    targets = await conn.fetch(SELECT_TARGETS, township_id)
    return [DutyTarget(r["target"], r["kind"], r["name_zh"], r["name_en"], tuple(by_target.get(r["target"], ())))
            for r in sorted(targets, key=lambda r: _order(r["target"], r["kind"]))]
