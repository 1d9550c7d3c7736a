"""Trend queries over calls (the monthly "big data" analysis): categories and places per month."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from dispatch.store.pool import Conn

# $1 start, $2 end, $3 township (null: all), $4 target (null: any): calls created in [start, end).
_CALLS_IN_SCOPE = """
  from calls c
 where c.created_at >= $1 and c.created_at < $2
   and ($3::integer is null or c.township_id = $3)
   and ($4::text is null or exists (select 1 from assignments a where a.call_id = c.id and a.target = $4))
"""
CATEGORY_MONTHS = f"""
select to_char(c.created_at at time zone 'Asia/Shanghai', 'YYYY-MM') as month, c.category, count(*) as n
{_CALLS_IN_SCOPE}
 group by 1, 2
"""
TOWNSHIP_MONTHS = f"""
select to_char(c.created_at at time zone 'Asia/Shanghai', 'YYYY-MM') as month, c.township_id, count(*) as n
{_CALLS_IN_SCOPE}
 group by 1, 2
"""
# Grids and places of the calls of [start, end) ($5: how many), with the count of the same length before.
TOP_GRIDS = """
select g.id as grid_id, g.township_id, g.name, count(*) as n
  from calls c
  join grids g on g.id = (c.doc->>'grid_id')::bigint
 where c.created_at >= $1 and c.created_at < $2
   and ($3::integer is null or c.township_id = $3)
   and ($4::text is null or exists (select 1 from assignments a where a.call_id = c.id and a.target = $4))
 group by 1, 2, 3
 order by n desc, g.id
 limit $5
"""
GRID_COUNTS = f"""
select (c.doc->>'grid_id')::bigint as grid_id, count(*) as n
{_CALLS_IN_SCOPE}
   and (c.doc->>'grid_id')::bigint = any($5::bigint[])
 group by 1
"""
TOP_PLACES = f"""
select c.township_id, c.address, count(*) as n
{_CALLS_IN_SCOPE}
   and c.address <> ''
 group by 1, 2
 order by n desc, c.address
 limit $5
"""


async def category_months(conn: Conn, start: datetime, end: datetime, township_id: int | None,
                          target: str | None) -> list[dict[str, Any]]:
    return [dict(r.items()) for r in await conn.fetch(CATEGORY_MONTHS, start, end, township_id, target)]


async def township_months(conn: Conn, start: datetime, end: datetime, township_id: int | None,
                          target: str | None) -> list[dict[str, Any]]:
    return [dict(r.items()) for r in await conn.fetch(TOWNSHIP_MONTHS, start, end, township_id, target)]


async def top_grids(conn: Conn, start: datetime, end: datetime, township_id: int | None, target: str | None,
                    limit: int) -> list[dict[str, Any]]:
    return [dict(r.items()) for r in await conn.fetch(TOP_GRIDS, start, end, township_id, target, limit)]


async def grid_counts(conn: Conn, start: datetime, end: datetime, township_id: int | None, target: str | None,
                      grid_ids: list[int]) -> dict[int, int]:
    rows = await conn.fetch(GRID_COUNTS, start, end, township_id, target, grid_ids)
    return {r["grid_id"]: r["n"] for r in rows}


async def top_places(conn: Conn, start: datetime, end: datetime, township_id: int | None, target: str | None,
                     limit: int) -> list[dict[str, Any]]:
    return [dict(r.items()) for r in await conn.fetch(TOP_PLACES, start, end, township_id, target, limit)]
