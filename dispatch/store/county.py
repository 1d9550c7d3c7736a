"""The county's reference data as an administrator changes it (issue #17): townships, grids, the stations of the
seven departments, township units ("N").

Every change is one transaction: validate → change → the admin log (who, what, before → after) → the
``reference`` notice, so the write path's targets reload on every node (``dispatch/store/changes.py``).
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

import asyncpg

from dispatch.core import geography
from dispatch.core.domain import DEPARTMENTS, Actor, unit_target
from dispatch.core.transitions import ASSIGNMENT_FINAL
from dispatch.store import adminlog, changes
from dispatch.store.pool import Conn
from protocols.errors import Conflict, NotFound, ValidationFailed

CODE_PATTERN = re.compile(r"^[a-z][a-z0-9_-]{1,31}$")
MAX_NAME = 50
FINAL_STATES = sorted(s.value for s in ASSIGNMENT_FINAL)

SELECT_TOWNSHIPS = """
select t.id, t.code, t.name_zh, t.name_en, t.boundary,
       coalesce((select array_agg(s.department order by s.department)
                   from stations s where s.township_id = t.id), '{}')                    as stations,
       (select count(*) from users u where u.township_id = t.id and not u.disabled)      as users
  from townships t
 order by t.id
"""
SELECT_GRIDS = """
select id, township_id, name, boundary from grids order by township_id, id
"""
SELECT_UNITS = """
select id, township_id, name_zh, name_en, retired_at from units order by township_id, id
"""
SELECT_TOWNSHIP = "select id, code, name_zh, name_en, boundary from townships where code = $1"
INSERT_TOWNSHIP = """
insert into townships (code, name_zh, name_en, boundary) values ($1, $2, $3, $4) returning id
"""
INSERT_HEAD = "insert into township_heads (township_id) values ($1)"
UPDATE_TOWNSHIP = """
update townships set name_zh = $2, name_en = $3, boundary = $4 where id = $1
"""
SELECT_GRID = """
select g.id, g.township_id, t.code, g.name, g.boundary
  from grids g join townships t on t.id = g.township_id
 where g.id = $1
"""
INSERT_GRID = "insert into grids (township_id, name, boundary) values ($1, $2, $3) returning id"
UPDATE_GRID = "update grids set name = $2, boundary = $3 where id = $1"
SELECT_STATION = "select 1 from stations where township_id = $1 and department = $2"
INSERT_STATION = "insert into stations (township_id, department) values ($1, $2)"
DELETE_STATION = "delete from stations where township_id = $1 and department = $2"
SELECT_UNIT = """
select u.id, u.township_id, t.code, u.name_zh, u.name_en, u.retired_at
  from units u join townships t on t.id = u.township_id
 where u.id = $1
"""
INSERT_UNIT = "insert into units (township_id, name_zh, name_en) values ($1, $2, $3) returning id"
UPDATE_UNIT = "update units set name_zh = $2, name_en = $3 where id = $1"
RETIRE_UNIT = "update units set retired_at = $2 where id = $1"
COUNT_OPEN_ASSIGNMENTS = """
select count(*)
  from assignments
 where township_id = $1
   and target = $2
   and state <> all($3::text[])
"""
SELECT_DEPARTMENTS = "select code from departments"


def _name(value: str, field: str) -> str:
    value = value.strip()
    if not value or len(value) > MAX_NAME:
        raise ValidationFailed(f"{field}: 1-{MAX_NAME} characters", field=field)
    return value


def _boundary(doc: dict[str, Any] | None, field: str = "boundary") -> dict[str, Any] | None:
    """A boundary to store, after checking it is a GeoJSON Polygon or MultiPolygon."""
    if doc is None:
        return None
    try:
        geography.parse_boundary(doc, field)
    except ValueError as exc:
        raise ValidationFailed(str(exc), field=field) from None
    return doc


def _doc(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


async def _log(conn: Conn, actor: Actor, now: datetime, action: str, target: str,
               before: dict[str, Any] | None, after: dict[str, Any] | None) -> None:
    await adminlog.append(conn, actor=actor, action=action, target=target, at=now, before=before, after=after)
    await changes.announce(conn, "reference")


def _shape(boundary: Any) -> str | None:
    """What the log says of a boundary: its kind and size, not thousands of coordinates."""
    doc = _doc(boundary)
    if not isinstance(doc, dict):
        return None
    return f"{doc.get('type')} ({_positions(doc.get('coordinates'))} points)"


def _positions(value: Any) -> int:
    if isinstance(value, list) and value and all(isinstance(c, int | float) for c in value):
        return 1
    return sum(_positions(v) for v in value) if isinstance(value, list) else 0


# -- reading --------------------------------------------------------------------------------------------------

async def county(conn: Conn) -> list[dict[str, Any]]:
    """Every township with its stations, grids and units (retired ones too), for the admin console."""
    grids: dict[int, list[dict[str, Any]]] = {}
    for g in await conn.fetch(SELECT_GRIDS):
        grids.setdefault(g["township_id"], []).append(
            {"id": g["id"], "name": g["name"], "boundary": _doc(g["boundary"])})
    units: dict[int, list[dict[str, Any]]] = {}
    for u in await conn.fetch(SELECT_UNITS):
        units.setdefault(u["township_id"], []).append(
            {"id": u["id"], "target": unit_target(u["id"]), "name_zh": u["name_zh"], "name_en": u["name_en"],
             "retired_at": u["retired_at"].isoformat() if u["retired_at"] else None})
    return [{"id": t["id"], "code": t["code"], "name_zh": t["name_zh"], "name_en": t["name_en"],
             "boundary": _doc(t["boundary"]), "stations": list(t["stations"]), "users": t["users"],
             "grids": grids.get(t["id"], []), "units": units.get(t["id"], [])}
            for t in await conn.fetch(SELECT_TOWNSHIPS)]


async def township(conn: Conn, code: str, field: str = "township") -> asyncpg.Record:
    row: asyncpg.Record | None = await conn.fetchrow(SELECT_TOWNSHIP, code)
    if row is None:
        raise NotFound(f"{field}: no township {code!r}", field=field)
    return row


async def _department(conn: Conn, code: str) -> str:
    known = {r["code"] for r in await conn.fetch(SELECT_DEPARTMENTS)}
    if code not in known:
        raise ValidationFailed(f"department: no department {code!r} (one of {', '.join(sorted(known))})",
                               field="department")
    return code


# -- townships ------------------------------------------------------------------------------------------------

async def add_township(conn: Conn, *, actor: Actor, now: datetime, code: str, name_zh: str, name_en: str,
                       boundary: dict[str, Any] | None = None, stations: list[str] | None = None) -> int:
    """A new township with its event-log head and its stations (default: all seven departments)."""
    if not CODE_PATTERN.match(code):
        raise ValidationFailed("code: 2-32 of a-z 0-9 _ -, starting with a letter", field="code")
    zh, en = _name(name_zh, "name_zh"), _name(name_en, "name_en")
    shape = _boundary(boundary)
    wanted = list(DEPARTMENTS) if stations is None else list(dict.fromkeys(stations))
    async with conn.transaction():
        for dep in wanted:
            await _department(conn, dep)
        try:
            tid: int = await conn.fetchval(INSERT_TOWNSHIP, code, zh, en, shape)
        except asyncpg.UniqueViolationError:
            raise Conflict(f"code: a township {code!r} exists", field="code") from None
        await conn.execute(INSERT_HEAD, tid)
        for dep in wanted:
            await conn.execute(INSERT_STATION, tid, dep)
        await _log(conn, actor, now, "township.add", f"township:{code}", None,
                   {"code": code, "name_zh": zh, "name_en": en, "boundary": _shape(shape), "stations": wanted})
    return tid


async def update_township(conn: Conn, *, actor: Actor, now: datetime, code: str, name_zh: str | None = None,
                          name_en: str | None = None, boundary: dict[str, Any] | None = None,
                          set_boundary: bool = False) -> None:
    """Rename a township and/or set (or, with ``set_boundary`` and no boundary, clear) its boundary."""
    async with conn.transaction():
        row = await township(conn, code)
        zh = row["name_zh"] if name_zh is None else _name(name_zh, "name_zh")
        en = row["name_en"] if name_en is None else _name(name_en, "name_en")
        shape = _boundary(boundary) if set_boundary else row["boundary"]
        before = {"name_zh": row["name_zh"], "name_en": row["name_en"], "boundary": _shape(row["boundary"])}
        after = {"name_zh": zh, "name_en": en, "boundary": _shape(shape)}
        if before == after and not set_boundary:
            return
        await conn.execute(UPDATE_TOWNSHIP, row["id"], zh, en, shape)
        await _log(conn, actor, now, "township.update", f"township:{code}", before, after)


# -- grids ----------------------------------------------------------------------------------------------------

async def add_grid(conn: Conn, *, actor: Actor, now: datetime, township_code: str, name: str,
                   boundary: dict[str, Any] | None = None) -> int:
    grid_name = _name(name, "name")
    shape = _boundary(boundary)
    async with conn.transaction():
        t = await township(conn, township_code)
        try:
            gid: int = await conn.fetchval(INSERT_GRID, t["id"], grid_name, shape)
        except asyncpg.UniqueViolationError:
            raise Conflict(f"name: {township_code} has a grid {grid_name!r}", field="name") from None
        await _log(conn, actor, now, "grid.add", f"grid:{gid}", None,
                   {"township": township_code, "name": grid_name, "boundary": _shape(shape)})
    return gid


async def update_grid(conn: Conn, *, actor: Actor, now: datetime, grid_id: int, name: str | None = None,
                      boundary: dict[str, Any] | None = None, set_boundary: bool = False) -> None:
    async with conn.transaction():
        row = await conn.fetchrow(SELECT_GRID, grid_id)
        if row is None:
            raise NotFound(f"no grid {grid_id}", field="grid")
        new_name = row["name"] if name is None else _name(name, "name")
        shape = _boundary(boundary) if set_boundary else row["boundary"]
        before = {"township": row["code"], "name": row["name"], "boundary": _shape(row["boundary"])}
        after = {"township": row["code"], "name": new_name, "boundary": _shape(shape)}
        if before == after and not set_boundary:
            return
        try:
            await conn.execute(UPDATE_GRID, grid_id, new_name, shape)
        except asyncpg.UniqueViolationError:
            raise Conflict(f"name: {row['code']} has a grid {new_name!r}", field="name") from None
        await _log(conn, actor, now, "grid.update", f"grid:{grid_id}", before, after)


# -- stations -------------------------------------------------------------------------------------------------

async def add_station(conn: Conn, *, actor: Actor, now: datetime, township_code: str, department: str) -> None:
    async with conn.transaction():
        t = await township(conn, township_code)
        await _department(conn, department)
        if await conn.fetchval(SELECT_STATION, t["id"], department):
            raise Conflict(f"department: {department} is already stationed in {township_code}", field="department")
        await conn.execute(INSERT_STATION, t["id"], department)
        await _log(conn, actor, now, "station.add", f"station:{township_code}/{department}",
                   {"stationed": False}, {"stationed": True})


async def remove_station(conn: Conn, *, actor: Actor, now: datetime, township_code: str, department: str) -> None:
    """Refused while the department has open assignments in the township (it says how many)."""
    async with conn.transaction():
        t = await township(conn, township_code)
        if not await conn.fetchval(SELECT_STATION, t["id"], department):
            raise NotFound(f"department: {department} is not stationed in {township_code}", field="department")
        open_count: int = await conn.fetchval(COUNT_OPEN_ASSIGNMENTS, t["id"], department, FINAL_STATES)
        if open_count:
            raise Conflict(f"department: {department} has {open_count} open assignment(s) in {township_code}; "
                           "they must be finished or withdrawn first", field="department")
        await conn.execute(DELETE_STATION, t["id"], department)
        await _log(conn, actor, now, "station.remove", f"station:{township_code}/{department}",
                   {"stationed": True}, {"stationed": False})


# -- township units ("N") -------------------------------------------------------------------------------------

async def add_unit(conn: Conn, *, actor: Actor, now: datetime, township_code: str, name_zh: str,
                   name_en: str) -> int:
    zh, en = _name(name_zh, "name_zh"), _name(name_en, "name_en")
    async with conn.transaction():
        t = await township(conn, township_code)
        try:
            uid: int = await conn.fetchval(INSERT_UNIT, t["id"], zh, en)
        except asyncpg.UniqueViolationError:
            raise Conflict(f"name_zh: {township_code} has a unit {zh!r}", field="name_zh") from None
        await _log(conn, actor, now, "unit.add", unit_target(uid), None,
                   {"township": township_code, "name_zh": zh, "name_en": en})
    return uid


async def _unit(conn: Conn, unit_id: int) -> asyncpg.Record:
    row: asyncpg.Record | None = await conn.fetchrow(SELECT_UNIT, unit_id)
    if row is None:
        raise NotFound(f"unit: no unit {unit_id}", field="unit")
    return row


async def update_unit(conn: Conn, *, actor: Actor, now: datetime, unit_id: int, name_zh: str | None = None,
                      name_en: str | None = None) -> None:
    async with conn.transaction():
        row = await _unit(conn, unit_id)
        zh = row["name_zh"] if name_zh is None else _name(name_zh, "name_zh")
        en = row["name_en"] if name_en is None else _name(name_en, "name_en")
        before = {"name_zh": row["name_zh"], "name_en": row["name_en"]}
        after = {"name_zh": zh, "name_en": en}
        if before == after:
            return
        try:
            await conn.execute(UPDATE_UNIT, unit_id, zh, en)
        except asyncpg.UniqueViolationError:
            raise Conflict(f"name_zh: {row['code']} has a unit {zh!r}", field="name_zh") from None
        await _log(conn, actor, now, "unit.update", unit_target(unit_id), before, after)


async def retire_unit(conn: Conn, *, actor: Actor, now: datetime, unit_id: int) -> None:
    """No longer a target; refused while the unit has open assignments (it says how many)."""
    async with conn.transaction():
        row = await _unit(conn, unit_id)
        if row["retired_at"] is not None:
            raise Conflict(f"unit: {row['name_zh']} is already retired", field="unit")
        open_count: int = await conn.fetchval(COUNT_OPEN_ASSIGNMENTS, row["township_id"], unit_target(unit_id),
                                              FINAL_STATES)
        if open_count:
            raise Conflict(f"unit: {row['name_zh']} has {open_count} open assignment(s); they must be finished "
                           "or withdrawn first", field="unit")
        await conn.execute(RETIRE_UNIT, unit_id, now)
        await _log(conn, actor, now, "unit.retire", unit_target(unit_id),
                   {"township": row["code"], "name_zh": row["name_zh"], "retired": False},
                   {"township": row["code"], "name_zh": row["name_zh"], "retired": True})
