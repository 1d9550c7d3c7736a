"""County administration of the reference data (issue #17): townships, grids, stations and units through REST and
the CLI, each logged in the admin log (before → after) and in effect on every node at once."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from typing import Any

import asyncpg
import httpx

from dispatch.core.clock import ManualClock
from dispatch.core.config import Config
from dispatch.core.geography import rectangle
from dispatch.store import adminlog
from dispatch.web.routing import REGISTRY
from tests.conftest import Hub, start_hub
from tests.helpers import cid, new_call, post
from tests.test_admin_log import run_cli

NON_ADMINS = ("op1.yiqiao", "police1.yiqiao", "supervisor", "leader.yiqiao", "head.police", "grid.yiqiao")
PARAMS = {"code": "yiqiao", "grid_id": "1", "unit_id": "1", "username": "op2.yiqiao", "department": "police",
          "integration_id": str(uuid.uuid4())}


def _admin_routes() -> list[tuple[str, str]]:
    out = []
    for ep in REGISTRY:
        if ep.path.startswith("/api/v1/admin/"):
            path = re.sub(r"{(\w+)(?::\w+)?}", lambda m: PARAMS[m.group(1)], ep.path)
            out.append((ep.method, path))
    return out


async def _send(client: httpx.AsyncClient, method: str, path: str) -> httpx.Response:
    return await client.request(method, path, json={} if method in ("POST", "PATCH") else None)


async def test_every_admin_endpoint_is_for_admins_only(hub: Hub) -> None:
    routes = _admin_routes()
    assert len(routes) >= 20 and ("DELETE", "/api/v1/admin/townships/yiqiao/stations/police") in routes
    async with hub.client() as anon:
        for method, path in routes:
            assert (await _send(anon, method, path)).status_code == 401, f"{method} {path}"
    for username in NON_ADMINS:
        async with await hub.login(username) as client:
            for method, path in routes:
                res = await _send(client, method, path)
                assert res.status_code == 403, f"{username} {method} {path}: {res.status_code} {res.text}"
    async with await hub.login("admin") as admin:
        for method, path in routes:
            if method == "GET":
                res = await admin.get(path)
                assert res.status_code in (200, 404), f"{method} {path}: {res.text}"


async def _log(conn: asyncpg.Connection) -> list[dict[str, Any]]:
    return [dict(r) for r in await conn.fetch("select action, target, actor_name, before, after from admin_log "
                                              "order by seq")]


async def test_a_township_with_grids_stations_and_units_is_logged_and_dispatchable(
        hub: Hub, conn: asyncpg.Connection) -> None:
    box = rectangle(116.9, 35.6, 117.0, 35.7)
    async with await hub.login("admin") as admin:
        res = await admin.post("/api/v1/admin/townships", json={
            "code": "xinhe", "name_zh": "新河镇", "name_en": "Xinhe Town", "boundary": box,
            "stations": ["police", "fire"]})
        assert res.status_code == 201, res.text
        dup = await admin.post("/api/v1/admin/townships", json={"code": "xinhe", "name_zh": "x", "name_en": "x"})
        assert dup.status_code == 409 and dup.json()["field"] == "code"
        bad = await admin.post("/api/v1/admin/townships", json={
            "code": "badland", "name_zh": "坏", "name_en": "Bad",
            "boundary": {"type": "Polygon", "coordinates": [[[1, 2]]]}})
        assert bad.status_code == 422 and bad.json()["field"] == "boundary", bad.text
        grid = await admin.post("/api/v1/admin/townships/xinhe/grids", json={"name": "第1网格", "boundary": box})
        assert grid.status_code == 201
        gid = grid.json()["id"]
        assert (await admin.patch(f"/api/v1/admin/grids/{gid}", json={"name": "东街网格"})).status_code == 200
        assert (await admin.post("/api/v1/admin/townships/xinhe/stations",
                                 json={"department": "justice"})).status_code == 201
        unit = await admin.post("/api/v1/admin/townships/xinhe/units",
                                json={"name_zh": "应急分队", "name_en": "Emergency squad"})
        uid = unit.json()["id"]
        assert (await admin.patch("/api/v1/admin/townships/xinhe", json={"name_zh": "新河街道"})).status_code == 200
        leader = await admin.post("/api/v1/admin/users", json={
            "username": "op1.xinhe", "display_name": "新河值班员", "role": "operator", "township": "xinhe",
            "password": "xinhe-password-1"})
        assert leader.status_code == 201, leader.text
        county = (await admin.get("/api/v1/admin/county")).json()["townships"]
        xinhe = next(t for t in county if t["code"] == "xinhe")
        assert xinhe["name_zh"] == "新河街道" and xinhe["stations"] == ["fire", "justice", "police"]
        assert [g["name"] for g in xinhe["grids"]] == ["东街网格"]
        assert [u["target"] for u in xinhe["units"]] == [f"unit:{uid}"]
    # an operator of the new township dispatches to its stations and its unit at once
    async with await hub.login("op1.xinhe", "xinhe-password-1") as op:
        created = await post(op, "/api/v1/calls", new_call(address="新河镇", targets=["justice", f"unit:{uid}"]),
                             expect=201)
        assert created["call_id"]
        refused = await op.post("/api/v1/calls", json=new_call(targets=["market"]))
        assert refused.status_code == 422 and "unknown target" in refused.json()["message"]
    log = await _log(conn)
    assert [e["action"] for e in log] == ["township.add", "grid.add", "grid.update", "station.add", "unit.add",
                                          "township.update", "user.add"]
    assert log[0]["after"]["stations"] == ["police", "fire"] and log[0]["after"]["boundary"] == "Polygon (5 points)"
    assert log[2]["before"]["name"] == "第1网格" and log[2]["after"]["name"] == "东街网格"
    assert log[5]["before"]["name_zh"] == "新河镇" and log[5]["after"]["name_zh"] == "新河街道"
    assert all(e["actor_name"] == "系统管理员" for e in log)
    assert (await adminlog.verify(conn)).ok


async def test_a_station_or_unit_with_open_assignments_cannot_go(hub: Hub, conn: asyncpg.Connection) -> None:
    unit = await conn.fetchval("select u.id from units u join townships t on t.id = u.township_id "
                               "where t.code = 'yiqiao' order by u.id limit 1")
    async with await hub.login("op1.yiqiao") as op:
        await post(op, "/api/v1/calls", new_call(targets=["police", f"unit:{unit}"]), expect=201)
        await post(op, "/api/v1/calls", new_call(targets=["police"]), expect=201)
    async with await hub.login("admin") as admin:
        res = await admin.delete("/api/v1/admin/townships/yiqiao/stations/police")
        assert res.status_code == 409 and res.json()["field"] == "department"
        assert "police has 2 open assignment(s) in yiqiao" in res.json()["message"], res.text
        res = await admin.post(f"/api/v1/admin/units/{unit}/retire")
        assert res.status_code == 409 and "1 open assignment" in res.json()["message"]
        # a department without work there goes, and is a target no more
        assert (await admin.delete("/api/v1/admin/townships/yiqiao/stations/land")).status_code == 200
        missing = await admin.delete("/api/v1/admin/townships/yiqiao/stations/land")
        assert missing.status_code == 404
        other = await conn.fetchval("select u.id from units u join townships t on t.id = u.township_id "
                                    "where t.code = 'yiqiao' order by u.id desc limit 1")
        assert (await admin.post(f"/api/v1/admin/units/{other}/retire")).status_code == 200
    async with await hub.login("op1.yiqiao") as op:
        for target in ("land", f"unit:{other}"):
            res = await op.post("/api/v1/calls", json=new_call(targets=[target]))
            assert res.status_code == 422 and "unknown target" in res.json()["message"], target
    actions = [e["action"] for e in await _log(conn)]
    assert actions == ["station.remove", "unit.retire"]  # refusals log nothing


async def test_a_station_added_on_node_a_is_dispatchable_on_node_b_within_a_second(
        cfg: Config, dsn: str, clock: ManualClock) -> None:
    (a, a_server, a_task), (b, b_server, b_task) = await asyncio.gather(start_hub(cfg, dsn, clock),
                                                                        start_hub(cfg, dsn, clock))
    try:
        async with await a.login("admin") as admin:
            assert (await admin.delete("/api/v1/admin/townships/yiqiao/stations/land")).status_code == 200
        async with await b.login("op1.yiqiao") as op:
            call_id = (await post(op, "/api/v1/calls", new_call(), expect=201))["call_id"]
            dispatch = f"/api/v1/calls/{call_id}/dispatch"
            refused = await op.post(dispatch, json={"command_id": cid(), "targets": ["land"]})
            assert refused.status_code == 422  # B knows land is gone (and caches that)
            async with await a.login("admin") as admin:
                res = await admin.post("/api/v1/admin/townships/yiqiao/stations", json={"department": "land"})
                assert res.status_code == 201
            loop = asyncio.get_running_loop()
            started = loop.time()
            while True:
                res = await op.post(dispatch, json={"command_id": cid(), "targets": ["land"]})
                if res.status_code == 200:
                    break
                assert "unknown target" in res.json()["message"], res.text
                assert loop.time() - started < 1.0, "node B still refuses the new station after a second"
                await asyncio.sleep(0.02)  # polling another node's state: it has no event to await here
    finally:
        for server in (a_server, b_server):
            server.should_exit = True
        await asyncio.gather(a_task, b_task)


async def test_the_cli_manages_reference_data_through_the_same_log(dsn: str, conn: asyncpg.Connection,
                                                                   tmp_path: Any) -> None:
    shape = tmp_path / "xinhe.geojson"
    shape.write_text(json.dumps({"type": "Feature", "geometry": rectangle(117.0, 35.6, 117.1, 35.7)}))
    for args in (("township", "add", "xinhe", "--name-zh", "新河镇", "--name-en", "Xinhe Town",
                  "--boundary", str(shape), "--station", "police"),
                 ("grid", "add", "xinhe", "第1网格"),
                 ("station", "add", "xinhe", "fire"),
                 ("unit", "add", "xinhe", "--name-zh", "应急分队", "--name-en", "Emergency squad")):
        done = run_cli(dsn, *args)
        assert done.returncode == 0, done.stderr
    uid = await conn.fetchval("select id from units where name_zh = '应急分队'")
    done = run_cli(dsn, "user", "add", "squad.xinhe", "--name", "应急分队联络员", "--role", "liaison",
                   "--township", "xinhe", "--unit", "应急分队", "--password", "squad-password-1")
    assert done.returncode == 0, done.stderr
    assert await conn.fetchval("select unit_id from users where username = 'squad.xinhe'") == uid
    listed = run_cli(dsn, "township", "list")
    assert "xinhe\t新河镇" in listed.stdout and "fire,police" in listed.stdout
    bad = run_cli(dsn, "station", "add", "xinhe", "nowhere")
    assert bad.returncode != 0 and "no department 'nowhere'" in bad.stderr
    log = await _log(conn)
    assert [e["action"] for e in log] == ["township.add", "grid.add", "station.add", "unit.add", "user.add"]
    assert all(e["actor_name"].startswith("cli:") for e in log)
    assert log[-1]["after"]["unit_id"] == uid
    assert run_cli(dsn, "verify-log").returncode == 0
