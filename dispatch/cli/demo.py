"""The demo county: Wenshang-like, 15 townships with the "7" stationed in each, units, grids and accounts."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from dispatch.core.domain import DEPARTMENTS, Role
from dispatch.core.geography import rectangle
from dispatch.store import accounts as auth
from dispatch.store.pool import Conn

if TYPE_CHECKING:
    from dispatch.store.writer import Store

DEMO_PASSWORD = "xianghu-demo"

TOWNSHIPS: tuple[tuple[str, str, str], ...] = (
    ("zhongdu", "中都街道", "Zhongdu Subdistrict"),
    ("wenshang", "汶上街道", "Wenshang Subdistrict"),
    ("nanzhan", "南站镇", "Nanzhan Town"),
    ("nanwang", "南旺镇", "Nanwang Town"),
    ("ciqiu", "次丘镇", "Ciqiu Town"),
    ("yinsi", "寅寺镇", "Yinsi Town"),
    ("guolou", "郭楼镇", "Guolou Town"),
    ("kangyi", "康驿镇", "Kangyi Town"),
    ("yuanzhuang", "苑庄镇", "Yuanzhuang Town"),
    ("yiqiao", "义桥镇", "Yiqiao Town"),
    ("baishi", "白石镇", "Baishi Town"),
    ("juntun", "军屯乡", "Juntun Township"),
    ("yangdian", "杨店镇", "Yangdian Town"),
    ("guocang", "郭仓镇", "Guocang Town"),
    ("liulou", "刘楼镇", "Liulou Town"),
)
UNITS: tuple[tuple[str, str], ...] = (
    ("镇执法中队", "Town enforcement brigade"),
    ("网格员队伍", "Grid workers"),
    ("物业服务站", "Property service station"),
)
GRIDS_PER_TOWNSHIP = 6
# Boundaries (docs/INTAKE.md): the county's box around Wenshang split into 5 × 3 township rectangles, listed
# west to east from the south row up, each split into 3 × 2 grid cells (第1网格 at its south-west corner).
# A stand-in for the real map: the intake matches reports to townships with it.
COUNTY_BOX = (116.3, 35.6, 116.8, 35.9)  # west, south, east, north
TOWNSHIP_COLUMNS, TOWNSHIP_ROWS = 5, 3
GRID_COLUMNS, GRID_ROWS = 3, 2

INSERT_TOWNSHIP = "insert into townships (code, name_zh, name_en) values ($1, $2, $3) returning id"
INSERT_STATION = "insert into stations (township_id, department) values ($1, $2)"
INSERT_UNIT = "insert into units (township_id, name_zh, name_en) values ($1, $2, $3) returning id"
INSERT_GRID = "insert into grids (township_id, name) values ($1, $2) returning id"
SET_TOWNSHIP_BOUNDARY = "update townships set boundary = $2 where code = $1 and boundary is null"
SET_GRID_BOUNDARY = """
update grids g set boundary = $3
  from townships t
 where t.id = g.township_id and t.code = $1 and g.name = $2 and g.boundary is null
"""
INSERT_HEAD = "insert into township_heads (township_id) values ($1)"
SELECT_SEEDED = "select value from meta where key = 'demo_seeded'"
MARK_SEEDED = "insert into meta (key, value) values ('demo_seeded', now()::text)"
DEMO_PHONES = """
update users set phone = '1390537' || lpad(id::text, 4, '0')
 where role in ('liaison', 'department_head', 'leader', 'operator') and phone is null
"""


def township_box(index: int) -> tuple[float, float, float, float]:
    """The demo township ``index``'s rectangle (west, south, east, north)."""
    west, south, east, north = COUNTY_BOX
    width, height = (east - west) / TOWNSHIP_COLUMNS, (north - south) / TOWNSHIP_ROWS
    col, row = index % TOWNSHIP_COLUMNS, index // TOWNSHIP_COLUMNS
    return west + col * width, south + row * height, west + (col + 1) * width, south + (row + 1) * height


def grid_box(index: int, grid: int) -> tuple[float, float, float, float]:
    """The rectangle of grid ``grid`` (1-based) of demo township ``index``."""
    west, south, east, north = township_box(index)
    width, height = (east - west) / GRID_COLUMNS, (north - south) / GRID_ROWS
    col, row = (grid - 1) % GRID_COLUMNS, (grid - 1) // GRID_COLUMNS
    return west + col * width, south + row * height, west + (col + 1) * width, south + (row + 1) * height


async def set_demo_boundaries(conn: Conn) -> None:
    """Give the demo county's townships and grids their rectangles where they have no boundary yet (also a
    demo county seeded before boundaries existed)."""
    for index, (code, _zh, _en) in enumerate(TOWNSHIPS):
        await conn.execute(SET_TOWNSHIP_BOUNDARY, code, rectangle(*township_box(index)))
        for g in range(1, GRIDS_PER_TOWNSHIP + 1):
            await conn.execute(SET_GRID_BOUNDARY, code, f"第{g}网格", rectangle(*grid_box(index, g)))


def demo_logins() -> list[tuple[str, str]]:
    """The accounts a visitor needs to try each console (username, what it is)."""
    return [
        ("op1.yiqiao", "义桥镇指挥中心 操作员 operator"),
        ("police1.yiqiao", "义桥镇 公安 联络员 (team lead) liaison"),
        ("enforcement2.yiqiao", "义桥镇 综合执法 联络员 liaison"),
        ("supervisor", "县级督查 county supervisor"),
        ("leader.yiqiao", "义桥镇领导 township leader (考核)"),
        ("grid.yiqiao", "义桥镇 网格员 grid worker (上报)"),
        ("head.police", "县公安局 部门负责人 department head"),
        ("admin", "管理员 admin"),
    ]


async def add_township(conn: Conn, code: str, name_zh: str, name_en: str,
                       password_hash: str) -> int:
    """One township with the seven stationed departments, its units, grids and accounts."""
    tid: int = await conn.fetchval(INSERT_TOWNSHIP, code, name_zh, name_en)
    await conn.execute(INSERT_HEAD, tid)
    for n in (1, 2):
        await auth.add_user(conn, username=f"op{n}.{code}", display_name=f"{name_zh}操作员{n}",
                            password="", password_hash=password_hash, role=Role.OPERATOR, township_id=tid)
    # Department names come from the configuration (synced into `departments` before seeding).
    dep_names = {r["code"]: r["name_zh"] for r in await conn.fetch("select code, name_zh from departments")}
    for dep in DEPARTMENTS:
        await conn.execute(INSERT_STATION, tid, dep)
        for n in (1, 2):
            await auth.add_user(conn, username=f"{dep}{n}.{code}",
                                display_name=f"{name_zh}{dep_names.get(dep, dep)}联络员{n}",
                                password="", password_hash=password_hash, role=Role.LIAISON,
                                township_id=tid, department=dep, team_lead=(n == 1))
    for i, (uzh, uen) in enumerate(UNITS, start=1):
        uid: int = await conn.fetchval(INSERT_UNIT, tid, uzh, uen)
        await auth.add_user(conn, username=f"unit{i}.{code}", display_name=f"{name_zh}{uzh}联络员",
                            password="", password_hash=password_hash, role=Role.LIAISON,
                            township_id=tid, unit_id=uid, team_lead=True)
    grids = [await conn.fetchval(INSERT_GRID, tid, f"第{g}网格") for g in range(1, GRIDS_PER_TOWNSHIP + 1)]
    # 网格员: one per township, in its first grid (reports from the phone page /grid/)
    await auth.add_user(conn, username=f"grid.{code}", display_name=f"{name_zh}第1网格网格员", password="",
                        password_hash=password_hash, role=Role.GRID_WORKER, township_id=tid, grid_id=grids[0])
    await auth.add_user(conn, username=f"leader.{code}", display_name=f"{name_zh}领导", password="",
                        password_hash=password_hash, role=Role.LEADER, township_id=tid)
    return tid


async def seed_demo(conn: Conn) -> bool:
    """Create the demo county once; return False when it was already there."""
    async with conn.transaction():
        await conn.execute("select pg_advisory_xact_lock(7420190002)")
        if await conn.fetchval(SELECT_SEEDED) is not None:
            await set_demo_boundaries(conn)
            return False
        # One argon2 hash for every demo account: they share the published demo password anyway,
        # and hashing 300 times would add ~15 s to the first start.
        password_hash = auth.hash_password(DEMO_PASSWORD)
        for code, zh, en in TOWNSHIPS:
            await add_township(conn, code, zh, en, password_hash)
        await auth.add_user(conn, username="supervisor", display_name="县指挥中心督查", password="",
                            password_hash=password_hash, role=Role.SUPERVISOR)
        await auth.add_user(conn, username="admin", display_name="系统管理员", password="",
                            password_hash=password_hash, role=Role.ADMIN)
        dep_names = {r["code"]: r["name_zh"] for r in await conn.fetch("select code, name_zh from departments")}
        for dep in DEPARTMENTS:
            await auth.add_user(conn, username=f"head.{dep}", display_name=f"县{dep_names.get(dep, dep)}负责人",
                                password="", password_hash=password_hash, role=Role.DEPARTMENT_HEAD, department=dep)
        # Demo phone numbers (1390537xxxx), so the demo SMS gateway shows whose phone rang.
        await conn.execute(DEMO_PHONES)
        await set_demo_boundaries(conn)
        await conn.execute(MARK_SEEDED)
    return True


SAMPLE_CALLS: tuple[dict[str, object], ...] = (
    {"source": "grid", "category": "street_vending", "title": "早市摊位占用人行道", "priority": "normal",
     "description": "义桥镇早市东口三个摊位占道经营，行人只能走机动车道。", "address": "义桥镇早市东口",
     "targets": ["enforcement"],
     "steps": ["acknowledge", "arrive", "report_result", "accept", "return_visit", "close"]},
    {"source": "hotline_12345", "category": "flying_wire_charging", "title": "居民楼飞线充电", "priority": "urgent",
     "description": "3号楼二单元有电动车从窗口拉线充电，存在火灾隐患。", "address": "义桥镇幸福小区3号楼",
     "reporter_name": "李红梅", "reporter_phone": "13905371234", "targets": ["fire", "enforcement"],
     "steps": ["acknowledge", "arrive", "report_result"]},
    {"source": "mini_program", "category": "neighbour_dispute", "title": "邻里因排水发生纠纷", "priority": "normal",
     "description": "两户因院内排水沟问题多次争吵，需调解。", "address": "义桥镇后李村",
     "reporter_name": "王建国", "reporter_phone": "13562781199", "targets": ["justice", "police"],
     "steps": ["acknowledge"]},
    {"source": "patrol", "category": "road_spillage", "title": "渣土车道路遗撒", "priority": "low",
     "description": "国道旁约200米路段有渣土遗撒。", "address": "义桥镇G105国道东侧",
     "targets": ["transport"], "steps": ["decline"]},
)


async def seed_sample_calls(store: Store, conn: Conn) -> int:
    """A few calls in 义桥镇 at different steps, so the consoles are not empty on a first visit."""
    from dispatch.core.commands import parse_command
    from dispatch.core.domain import Actor

    async def actor(username: str) -> Actor:
        row = await conn.fetchrow(SELECT_ACTOR, username)
        assert row is not None, username
        return auth.actor_from_row(row)

    op = await actor("op1.yiqiao")
    done = 0
    for sample in SAMPLE_CALLS:
        body = {k: v for k, v in sample.items() if k != "steps"}
        outcome = await store.execute(op, parse_command("create_call", {"command_id": str(uuid.uuid4()), **body}))
        call_id = outcome.result["call_id"]
        assignments = await conn.fetch(SELECT_ASSIGNMENTS, uuid.UUID(call_id))
        for step in sample["steps"]:  # type: ignore[attr-defined]
            if step in ("accept", "return_visit", "close"):
                args: dict[str, object] = {"call_id": call_id}
                if step == "return_visit":
                    args.update(resolved=True, satisfaction=5, comment="摊位已规范，满意")
                await store.execute(op, parse_command(step, {"command_id": str(uuid.uuid4()), **args}))
                continue
            for a in assignments:
                liaison = await actor(f"{a['target']}1.yiqiao")
                args = {"assignment_id": str(a["id"])}
                if step == "report_result":
                    args["result"] = "已到现场处置完毕"
                if step == "decline":
                    args.update(reason="该路段属公路部门养护范围，建议转综合执法", suggested_target="enforcement")
                await store.execute(liaison, parse_command(step, {"command_id": str(uuid.uuid4()), **args}))
        done += 1
    return done


SELECT_ACTOR = """
select id, role, township_id, department, unit_id, team_lead, display_name, grid_id from users where username = $1
"""
SELECT_ASSIGNMENTS = "select id, target from assignments where call_id = $1 order by target"
