"""Settings in the database (issue #17): categories, the SLA policy and the evaluation weights change through
REST or the CLI, are validated like the file, logged before → after, in effect on every node within a second,
and apply to new deadlines only (a clock keeps the ladder it was started under)."""

from __future__ import annotations

import asyncio
import copy
import json
import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import pytest

from dispatch.core.clock import ManualClock
from dispatch.core.config import Config
from dispatch.web.openapi import openapi_document
from tests.conftest import ROOT, Hub, start_hub
from tests.helpers import assignment_of, new_call, post

PATH = "/api/v1/admin/settings"


def run_cli(dsn: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dispatch.cli", *args], env={**os.environ, "DATABASE_URL": dsn},
                          cwd=ROOT, capture_output=True, text=True, timeout=120)


async def section(client: httpx.AsyncClient, name: str) -> dict[str, Any]:
    res = await client.get(f"{PATH}/{name}")
    assert res.status_code == 200, res.text
    data: dict[str, Any] = res.json()
    return data


async def put(client: httpx.AsyncClient, name: str, value: dict[str, Any], based_on: int,
              expect: int = 200) -> dict[str, Any]:
    res = await client.put(f"{PATH}/{name}", json={"based_on": based_on, "value": value})
    assert res.status_code == expect, res.text
    data: dict[str, Any] = res.json()
    return data


async def change_sla(client: httpx.AsyncClient, edit: Any) -> dict[str, Any]:
    now = await section(client, "sla")
    value = copy.deepcopy(now["value"])
    edit(value)
    return await put(client, "sla", value, now["version"])


async def dispatched(op: httpx.AsyncClient, target: str = "police", **call: Any) -> dict[str, Any]:
    created = await post(op, "/api/v1/calls", new_call(targets=[target], **call), expect=201)
    detail = (await op.get(f"/api/v1/calls/{created['call_id']}")).json()
    return assignment_of(detail, target)


async def escalations(conn: asyncpg.Connection, aid: str) -> list[tuple[str, int]]:
    rows = await conn.fetch("select body from events where type = 'assignment.escalated' and assignment_id = $1 "
                            "order by seq", UUID(aid))
    return [(r["body"]["deadline_kind"], r["body"]["level"]) for r in rows]


async def step(hub: Hub, seconds: float) -> None:
    hub.clock.advance(seconds)
    await hub.state.sla.settled()


# -- validation ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "edit", "field"), [
    ("sla", lambda v: v["within"]["urgent"].update(ack=-5), "sla.within.urgent.ack"),
    ("sla", lambda v: v["within"]["urgent"].update(ack=5000), "sla.within.urgent"),  # after arrive
    ("sla", lambda v: v["within"].pop("low"), "sla.within.low"),
    ("sla", lambda v: v["ladder"]["ack"].reverse(), "sla.ladder.ack"),
    ("sla", lambda v: v["ladder"]["ack"][0].update(notify=["nobody"]), "sla.ladder.ack.0.notify.0"),
    ("sla", lambda v: v["ladder"]["ack"][0].update(repeat_every_s=1), "sla.ladder.ack.0.repeat_every_s"),
    ("sla", lambda v: v.update(department={"army": {"urgent": {"ack": 60}}}), "sla.department.army"),
    ("sla", lambda v: v.update(sweep_s=1), "sla.sweep_s"),  # the timers' own keys stay in the file
    ("categories", lambda v: v["parking"].update(route=["army"]), "categories.parking.route"),
    ("categories", lambda v: v["parking"].update(zh=""), "categories.parking.zh"),
    ("categories", lambda v: v.update({"Bad Code": {"zh": "坏", "en": "Bad", "route": ["police"]}}),
     "categories.Bad Code"),
    ("evaluation", lambda v: v["presets"]["three_rates"].update(response_rate=0.2),
     "evaluation.presets.three_rates"),
    ("evaluation", lambda v: v.update(preset="nope"), "evaluation.preset"),
])
async def test_an_invalid_change_is_refused_naming_the_key_and_changes_nothing(
        hub: Hub, conn: asyncpg.Connection, name: str, edit: Any, field: str) -> None:
    async with await hub.login("admin") as admin:
        before = await section(admin, name)
        value = copy.deepcopy(before["value"])
        edit(value)
        res = await admin.put(f"{PATH}/{name}", json={"based_on": before["version"], "value": value})
        assert res.status_code == 422, res.text
        assert res.json()["code"] == "validation"
        assert res.json()["field"] == field, res.json()
        assert await section(admin, name) == before
    assert await conn.fetchval("select count(*) from settings") == 0
    assert await conn.fetchval("select count(*) from admin_log") == 0


async def test_a_refusal_reads_in_chinese_by_default_naming_the_setting(hub: Hub) -> None:
    async with await hub.login("admin", lang=None) as admin:
        now = await section(admin, "sla")
        value = copy.deepcopy(now["value"])
        value["within"]["urgent"]["ack"] = 0
        res = await admin.put(f"{PATH}/sla", json={"based_on": 0, "value": value})
        assert res.json()["message"] == "响应时限：必须大于 0"
        value["within"]["urgent"]["ack"] = 5000
        res = await admin.put(f"{PATH}/sla", json={"based_on": 0, "value": value})
        assert res.json()["message"] == "时限：须满足 响应时限 ≤ 到场时限 ≤ 办结时限"
        res = await admin.put(f"{PATH}/sla", json={"based_on": 0, "value": value}, headers={"Accept-Language": "en"})
        assert res.json()["message"] == "sla.within.urgent: deadlines must satisfy ack <= arrive <= resolve"


async def test_saving_the_value_in_effect_is_refused_as_no_change(hub: Hub, conn: asyncpg.Connection) -> None:
    async with await hub.login("admin") as admin:
        now = await section(admin, "evaluation")
        res = await admin.put(f"{PATH}/evaluation", json={"based_on": 0, "value": now["value"]})
        assert res.status_code == 422 and res.json()["field"] == "evaluation", res.text
    assert await conn.fetchval("select count(*) from settings") == 0


# -- authorization, conflicts, the log ----------------------------------------------------------------------


@pytest.mark.parametrize("username", ["op1.yiqiao", "supervisor", "police1.yiqiao"])
async def test_only_admins_read_or_change_settings(hub: Hub, username: str) -> None:
    async with hub.client() as anon:
        assert (await anon.get(f"{PATH}/sla")).status_code == 401
    async with await hub.login(username) as other:
        assert (await other.get(f"{PATH}/sla")).status_code == 403
        assert (await other.get(f"{PATH}/sla/history")).status_code == 403
        res = await other.put(f"{PATH}/evaluation", json={"based_on": 0, "value": {"preset": "outcome"}})
        assert res.status_code == 403
    async with await hub.login("admin") as admin:
        assert (await admin.get(f"{PATH}/nothing")).status_code == 404


async def test_a_change_based_on_a_stale_version_is_refused_naming_who_and_when(
        hub: Hub, conn: asyncpg.Connection) -> None:
    async with await hub.login("admin") as admin:
        now = await section(admin, "evaluation")
        assert now["version"] == 0 and now["source"] == "file"
        saved = await put(admin, "evaluation", {**now["value"], "preset": "outcome"}, 0)
        assert saved["version"] == 1 and saved["changed_by"] == "系统管理员" and saved["source"] == "database"
        res = await admin.put(f"{PATH}/evaluation", json={"based_on": 0, "value": {**now["value"],
                                                                                     "preset": "timeliness"}})
        assert res.status_code == 409, res.text
        err = res.json()
        assert err["code"] == "conflict" and err["field"] == "based_on"
        assert err["message"].startswith("evaluation was changed by 系统管理员 at 2026-11-02T16:00:00+08:00 "
                                          "(version 1)")  # the clock's 08:00 UTC, in the county's time
        res = await admin.put(f"{PATH}/evaluation", json={"based_on": 0, "value": now["value"]},
                              headers={"Accept-Language": "zh-CN"})
        assert res.json()["message"] == ("该设置已由 系统管理员 于 2026-11-02 16:00 修改（版本 1），"
                                         "本次修改基于版本 0：请重新加载后再修改")
        assert (await section(admin, "evaluation"))["value"]["preset"] == "outcome"
    assert await conn.fetchval("select count(*) from settings") == 1


async def test_the_admin_log_records_the_change_before_and_after_and_verifies(
        hub: Hub, conn: asyncpg.Connection) -> None:
    async with await hub.login("admin") as admin:
        await change_sla(admin, lambda v: v["within"]["urgent"].update(ack=300))
        history = (await admin.get(f"{PATH}/sla/history")).json()["versions"]
    (entry,) = await conn.fetch("select * from admin_log")
    assert (entry["action"], entry["target"], entry["actor_name"]) == ("settings.sla", "settings:sla", "系统管理员")
    assert entry["before"] == {"version": 0, "within.urgent.ack": 120.0}
    assert entry["after"] == {"version": 1, "within.urgent.ack": 300.0}
    assert [(v["version"], v["before"], v["after"]) for v in history] == [
        (1, {"within.urgent.ack": 120.0}, {"within.urgent.ack": 300.0})]
    checked = run_cli(hub.dsn, "verify-log")
    assert checked.returncode == 0, checked.stderr
    assert "admin log: 1 entries, chain intact" in checked.stdout


# -- every node, new deadlines only -------------------------------------------------------------------------


async def test_a_change_on_node_a_is_in_effect_on_node_b_within_a_second(
        cfg: Config, dsn: str, clock: ManualClock) -> None:
    (a, a_server, a_task), (b, b_server, b_task) = await asyncio.gather(start_hub(cfg, dsn, clock),
                                                                        start_hub(cfg, dsn, clock))
    try:
        async with await a.login("admin") as admin, await b.login("op1.yiqiao") as op:
            before = await dispatched(op)  # node B under the file's policy
            assert datetime.fromisoformat(before["ack_due"]) - clock.now() == timedelta(seconds=120)
            cats = await section(admin, "categories")
            value = {**cats["value"], "stray_dogs": {"zh": "流浪犬", "en": "Stray dogs", "route": ["enforcement"]}}
            await put(admin, "categories", value, cats["version"])
            await change_sla(admin, lambda v: v["within"]["urgent"].update(ack=300))
            loop = asyncio.get_running_loop()
            started = loop.time()
            while True:
                res = await op.post("/api/v1/calls", json=new_call(category="stray_dogs", targets=["police"]))
                if res.status_code == 201:
                    break
                assert res.json()["field"] == "category", res.text
                assert loop.time() - started < 1.0, "node B still refuses the new category after a second"
                await asyncio.sleep(0.02)  # polling another node's state: it has no event to await here
            while b.state.cfg.version("sla") != 1:
                assert loop.time() - started < 1.0, "node B still has the old SLA policy after a second"
                await asyncio.sleep(0.02)
            after = await dispatched(op)
            assert datetime.fromisoformat(after["ack_due"]) - clock.now() == timedelta(seconds=300)
            assert (await op.get("/api/v1/reference")).json()["categories"][-1]["code"] == "stray_dogs"
    finally:
        for server in (a_server, b_server):
            server.should_exit = True
        await asyncio.gather(a_task, b_task)


async def test_an_assignment_escalates_by_the_ladder_it_was_dispatched_under(
        hub: Hub, conn: asyncpg.Connection) -> None:
    async with await hub.login("admin") as admin, await hub.login("op1.yiqiao") as op:
        old = await dispatched(op)  # ack ladder of the file: +0, +120, +300
        # the second ack rung at +30 s instead of +120 s, the third at +60 s
        await change_sla(admin, lambda v: v["ladder"]["ack"][1:] and (
            v["ladder"]["ack"][1].update(after_s=30), v["ladder"]["ack"][2].update(after_s=60)))
        assert hub.state.cfg.version("sla") == 1
        # the deadline itself did not move for the open assignment; a new one gets the same deadline
        new = await dispatched(op)
        await step(hub, 120)  # both ack deadlines (dispatched at the same instant)
        assert await escalations(conn, old["id"]) == [("ack", 1)]
        assert await escalations(conn, new["id"]) == [("ack", 1)]
        await step(hub, 30)
        assert await escalations(conn, new["id"]) == [("ack", 1), ("ack", 2)]  # the new ladder
        assert await escalations(conn, old["id"]) == [("ack", 1)]  # the old one: level 2 at +120
        await step(hub, 30)
        assert await escalations(conn, new["id"]) == [("ack", 1), ("ack", 2), ("ack", 3)]
        await step(hub, 59)
        assert await escalations(conn, old["id"]) == [("ack", 1)]
        await step(hub, 1)
        assert await escalations(conn, old["id"]) == [("ack", 1), ("ack", 2)]
        await step(hub, 180)
        assert await escalations(conn, old["id"]) == [("ack", 1), ("ack", 2), ("ack", 3)]
    docs = {r["id"]: r["doc"] for r in await conn.fetch("select id, doc from assignments")}
    assert "sla_versions" not in docs[UUID(old["id"])]
    assert docs[UUID(new["id"])]["sla_versions"] == {"ack": 1, "arrive": 1, "resolve": 1}


async def test_a_clock_started_after_a_change_takes_the_new_version_the_running_ones_keep_theirs(
        hub: Hub, conn: asyncpg.Connection) -> None:
    async with await hub.login("admin") as admin, await hub.login("op1.yiqiao") as op, \
            await hub.login("police1.yiqiao") as police:
        old = await dispatched(op)
        await change_sla(admin, lambda v: v.update(transfer_review_s=600))
        hub.clock.advance(60)
        await post(police, f"/api/v1/assignments/{old['id']}/decline", {"reason": "不属于公安职责"})
    body = await conn.fetchval("select body from events where assignment_id = $1 and type = 'assignment.declined'",
                               UUID(old["id"]))
    assert body["sla_version"] == 1 and body["review_due"].startswith("2026-11-02T08:11:00")  # +600 s
    doc = await conn.fetchval("select doc from assignments where id = $1", UUID(old["id"]))
    assert doc["sla_versions"] == {"review": 1}  # its own clocks stay on the file's version


async def test_a_new_hub_keeps_the_old_ladder_for_clocks_started_under_it(
        cfg: Config, dsn: str, clock: ManualClock, conn: asyncpg.Connection) -> None:
    first, server, task = await start_hub(cfg, dsn, clock)
    try:
        async with await first.login("admin") as admin, await first.login("op1.yiqiao") as op:
            old = await dispatched(op)
            await change_sla(admin, lambda v: v["ladder"]["ack"][1].update(after_s=30))
    finally:
        server.should_exit = True
        await task
    second, server, task = await start_hub(cfg, dsn, clock)  # a restart: the versions come from the database
    try:
        await step(second, 150)
        assert await escalations(conn, old["id"]) == [("ack", 1)]  # not at +30 s: the file's +120 s
        await step(second, 90)
        assert await escalations(conn, old["id"]) == [("ack", 1), ("ack", 2)]
    finally:
        server.should_exit = True
        await task


async def test_new_evaluation_weights_are_used_by_the_next_scorecard(hub: Hub) -> None:
    async with await hub.login("admin") as admin, await hub.login("supervisor") as sv:
        before = (await sv.get("/api/v1/evaluation/scorecards")).json()
        assert before["preset"] == "three_rates"
        now = await section(admin, "evaluation")
        value = {"preset": "fast", "presets": {**now["value"]["presets"], "fast": {"response_rate": 0.5,
                                                                                   "arrive_rate": 0.5}}}
        await put(admin, "evaluation", value, now["version"])
        after = (await sv.get("/api/v1/evaluation/scorecards")).json()
    assert after["preset"] == "fast" and "fast" in after["presets"]
    assert after["weights"] == {"response_rate": 0.5, "arrive_rate": 0.5, "result_rate": 0.0,
                                "resolution_rate": 0.0, "satisfaction_rate": 0.0}


# -- categories ---------------------------------------------------------------------------------------------


async def test_a_category_in_use_is_retired_not_removed_and_new_calls_cannot_use_it(
        hub: Hub, conn: asyncpg.Connection) -> None:
    async with await hub.login("admin") as admin, await hub.login("op1.yiqiao") as op:
        await post(op, "/api/v1/calls", new_call(category="parking"), expect=201)
        cats = await section(admin, "categories")
        assert "parking" in cats["in_use"] and "noise" not in cats["in_use"]
        value = {k: v for k, v in cats["value"].items() if k not in ("parking", "noise")}
        saved = await put(admin, "categories", value, cats["version"])
        assert saved["value"]["parking"]["retired"] is True  # kept for the calls that name it
        assert "noise" not in saved["value"]  # unused: removed
        res = await op.post("/api/v1/calls", json=new_call(category="parking"))
        assert res.status_code == 422 and res.json()["field"] == "category", res.text
        listed = {c["code"]: c for c in (await op.get("/api/v1/reference")).json()["categories"]}
        assert listed["parking"]["retired"] is True and "noise" not in listed
    rows = dict(await conn.fetch("select code, retired from categories where code in ('parking', 'noise')"))
    assert rows == {"parking": True}
    (entry,) = await conn.fetch("select before, after from admin_log")
    assert entry["before"]["parking.retired"] is False and entry["after"]["parking.retired"] is True
    assert entry["before"]["noise.zh"] == "噪音扰民" and entry["after"]["noise.zh"] is None


# -- CLI and OpenAPI ----------------------------------------------------------------------------------------


async def test_the_cli_shows_sets_and_lists_the_history(dsn: str, conn: asyncpg.Connection, tmp_path: Path) -> None:
    shown = run_cli(dsn, "settings", "show", "sla")
    assert shown.returncode == 0, shown.stderr
    value = json.loads(shown.stdout)["value"]
    assert json.loads(shown.stdout)["version"] == 0
    toml = tmp_path / "sla.toml"
    ladder = "".join(f'[[sla.ladder.{k}]]\nafter_s = 0\nnotify = ["liaisons"]\n' for k in value["ladder"])
    within = "".join(f"[sla.within.{p}]\nack = {w['ack']}\narrive = {w['arrive']}\nresolve = {w['resolve']}\n"
                     for p, w in value["within"].items())
    toml.write_text("[sla]\ntransfer_review_s = 900\n" + within.replace("ack = 120.0", "ack = 90") + ladder,
                    encoding="utf-8")
    done = run_cli(dsn, "settings", "set", "sla", str(toml))
    assert done.returncode == 0, done.stderr
    assert "version 1 saved" in done.stdout
    stored = await conn.fetchval("select value from settings where section = 'sla' and version = 1")
    assert stored["within"]["urgent"]["ack"] == 90 and stored["transfer_review_s"] == 900
    assert await conn.fetchval("select actor_name from admin_log") == await conn.fetchval(
        "select actor_name from settings")
    history = run_cli(dsn, "settings", "history", "sla")
    assert "version 1" in history.stdout and "within.urgent.ack: 120.0 → 90.0" in history.stdout
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"preset": "nope", "presets": {"a": {"response_rate": 1}}}), encoding="utf-8")
    refused = run_cli(dsn, "settings", "set", "evaluation", str(bad))
    assert refused.returncode == 2 and "evaluation.preset" in refused.stderr
    stale = run_cli(dsn, "settings", "set", "sla", str(toml), "--based-on", "0")
    assert stale.returncode == 2 and "version 1" in stale.stderr
    assert await conn.fetchval("select count(*) from settings") == 1


def test_the_settings_endpoints_are_in_the_openapi_document() -> None:
    paths = openapi_document("test")["paths"]
    for name in ("categories", "sla", "evaluation"):
        assert set(paths[f"{PATH}/{name}"]) == {"get", "put"}
        assert set(paths[f"{PATH}/{name}/history"]) == {"get"}
