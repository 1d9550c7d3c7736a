"""Reference data that follows the configuration: departments and categories (upserted at start, from the
configuration in effect: the file with the settings stored in the database)."""

from __future__ import annotations

from dispatch.core.config import Config
from dispatch.store.pool import Conn

UPSERT_DEPARTMENT = """
insert into departments (code, name_zh, name_en) values ($1, $2, $3)
on conflict (code) do update set name_zh = excluded.name_zh, name_en = excluded.name_en
"""
UPSERT_CATEGORY = """
insert into categories (code, name_zh, name_en, retired) values ($1, $2, $3, $4)
on conflict (code) do update
   set name_zh = excluded.name_zh, name_en = excluded.name_en, retired = excluded.retired
"""
SELECT_TOWNSHIP_TARGETS = """
select t.id, t.code, t.name_zh, t.name_en,
       coalesce((select array_agg(s.department order by s.department)
                   from stations s where s.township_id = t.id), '{}') as departments,
       coalesce((select json_agg(json_build_object('id', u.id, 'name_zh', u.name_zh, 'name_en', u.name_en)
                                 order by u.id)
                   from units u where u.township_id = t.id and u.retired_at is null), '[]') as units
  from townships t
 order by t.id
"""


async def sync_reference(conn: Conn, cfg: Config) -> None:
    async with conn.transaction():
        for code, names in cfg.departments.items():
            await conn.execute(UPSERT_DEPARTMENT, code, names.zh, names.en)
        for code, cat in cfg.categories.items():
            await conn.execute(UPSERT_CATEGORY, code, cat.zh, cat.en, cat.retired)
