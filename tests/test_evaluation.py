"""The evaluation (考核) on a hand-built log whose answers are worked out by hand below: deadlines met to the
second and missed by a second, a withdrawal and a cancellation on either side of a deadline, transfer requests
approved, approved as "not our remit" and rejected, an offline acknowledgement that voids its escalations,
a send-back and a 重办, and a month boundary at 00:00 Asia/Shanghai. The same log, exported and folded
offline, gives the same facts and the same scorecards."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from openpyxl import load_workbook

from dispatch.core.records import Event
from dispatch.core.transitions import AssignmentState, CallState
from dispatch.evaluation import facts as F
from dispatch.evaluation import scorecard as S
from dispatch.store import facts as facts_store
from dispatch.store.logfile import decode_line, verify_lines
from dispatch.web.schemas import DrillDownOut, ScorecardsOut, ScoreTrendOut, TrendsOut
from tests.conftest import Hub
from tests.helpers import assignment_of, new_call, post

# 2026-10-31 23:00 in Asia/Shanghai; urgent deadlines: respond 120 s, on scene 1200 s, result 14400 s.
T = datetime(2026, 10, 31, 15, 0, tzinfo=UTC)
OCT = "month=2026-10"


class Script:
    """Drive the hub through a timeline; every action at an exact hub time."""

    def __init__(self, hub: Hub, clients: dict[str, httpx.AsyncClient]) -> None:
        self.hub, self.c = hub, clients
        self.calls: dict[str, str] = {}
        self.assignments: dict[str, str] = {}

    async def at(self, seconds: float, settle: bool = False) -> None:
        self.hub.clock.set(T + timedelta(seconds=seconds))
        if settle:
            await self.hub.state.sla.settled()

    async def create(self, name: str, target: str, **extra: Any) -> None:
        res = await post(self.c["op"], "/api/v1/calls", new_call(targets=[target], **extra), expect=201)
        self.calls[name] = res["call_id"]
        detail = (await self.c["op"].get(f"/api/v1/calls/{res['call_id']}")).json()
        self.assignments[name] = assignment_of(detail, target)["id"]

    async def liaison(self, who: str, name: str, verb: str, body: dict[str, Any] | None = None) -> None:
        await post(self.c[who], f"/api/v1/assignments/{self.assignments[name]}/{verb}", body or {})

    async def op_assignment(self, name: str, verb: str, body: dict[str, Any]) -> dict[str, Any]:
        return await post(self.c["op"], f"/api/v1/assignments/{self.assignments[name]}/{verb}", body)

    async def op_call(self, name: str, verb: str, body: dict[str, Any] | None = None) -> None:
        await post(self.c["op"], f"/api/v1/calls/{self.calls[name]}/{verb}", body or {})


async def build_log(hub: Hub) -> Script:
    names = ["op1.yiqiao", *(f"{d}1.yiqiao" for d in ("police", "market", "transport", "enforcement", "justice",
                                                       "fire"))]
    clients = {("op" if n.startswith("op") else n.split("1.")[0]): await hub.login(n) for n in names}
    s = Script(hub, clients)
    await s.at(0)
    await s.create("P1", "police")
    await s.at(10)
    await s.create("P2", "police")
    await s.at(20)
    await s.create("P3", "police")
    await s.at(30)
    await s.create("P4", "police")
    await s.at(40)
    await s.create("M1", "market")
    await s.at(50)
    await s.create("M2", "market")
    await s.at(55)
    await s.create("M3", "market")
    await s.at(60)
    await s.op_assignment("P3", "withdraw", {"reason": "重复呼叫"})  # before its deadline (T+140): excluded
    await s.at(70)
    for name in ("M1", "M2", "M3"):
        await s.liaison("market", name, "decline", {"reason": "非本部门职责", "suggested_target": "transport"})
    await s.at(100)
    await s.op_assignment("M2", "reroute", {"target": "transport", "reason": "属交通运输", "not_our_remit": True})
    detail = (await clients["op"].get(f"/api/v1/calls/{s.calls['M2']}")).json()
    s.assignments["T1"] = assignment_of(detail, "transport")["id"]
    await s.at(110)
    await s.op_assignment("M3", "reroute", {"target": "enforcement", "reason": "同意转派"})
    detail = (await clients["op"].get(f"/api/v1/calls/{s.calls['M3']}")).json()
    s.assignments["E1"] = assignment_of(detail, "enforcement")["id"]
    await s.at(120)
    await s.liaison("police", "P1", "acknowledge")  # exactly at its deadline: on time
    await s.at(131, settle=True)  # P2's level 1 (T+130) is written
    await s.liaison("police", "P2", "acknowledge")  # a second late
    await s.at(140)
    await s.op_assignment("M1", "reject_transfer", {"reason": "属市场监管职责"})  # 70 s of review: ack due T+230
    await s.at(200)
    await s.op_assignment("P2", "withdraw", {"reason": "已由其他力量处置"})
    await s.at(220)
    await s.liaison("market", "M1", "acknowledge")
    await s.at(400, settle=True)  # P4: levels 1-2; T1: levels 1-2; E1: levels 1-2
    # E1's phone was offline: it acknowledged at T+225, before its deadline (T+230); both levels are void
    await s.liaison("enforcement", "E1", "acknowledge", {"acted_at": (T + timedelta(seconds=225)).isoformat()})
    await s.op_call("P4", "cancel", {"reason": "报警人撤回"})  # after its response deadline: missed
    await s.at(1201, settle=True)  # the arrival rung (T+1200) is written before P1 arrives: no race
    await s.liaison("police", "P1", "arrive")  # a second after its deadline: late
    await s.at(1300)
    await s.liaison("police", "P1", "report_result", {"result": "已劝离"})
    await s.op_call("P1", "accept")
    await s.op_call("P1", "return_visit", {"resolved": True, "satisfaction": 5})
    await s.op_call("P1", "close")
    await s.at(2000)
    await s.create("J1", "justice")
    for t, verb in ((2060, "acknowledge"), (2100, "arrive"), (2200, "report_result")):
        await s.at(t)
        await s.liaison("justice", "J1", verb, {"result": "已调解"} if verb == "report_result" else {})
    await s.at(2300)
    await s.op_call("J1", "send_back", {"reason": "材料不全", "assignment_ids": [s.assignments["J1"]]})
    await s.at(2400)
    await s.liaison("justice", "J1", "report_result", {"result": "已补充"})
    await s.at(2500)
    await s.op_call("J1", "accept")
    await s.at(2600)
    await s.op_call("J1", "return_visit", {"resolved": False, "satisfaction": 2})  # 重办
    await s.at(2700)
    await s.liaison("justice", "J1", "report_result", {"result": "已再次调解"})
    await s.at(2800)
    await s.op_call("J1", "accept")
    await s.at(2900)
    await s.op_call("J1", "return_visit", {"resolved": True, "satisfaction": 5})
    await s.op_call("J1", "close")
    # the month boundary: 23:59:59 on 31 October is October's, 00:00:00 on 1 November is November's
    await s.at(3599)
    await s.create("B1", "fire")
    await s.at(3600)
    grid = await (await asyncpg.connect(hub.dsn)).fetchval(
        "select min(id) from grids where township_id = 10")
    await s.create("B2", "fire", grid_id=grid)
    await s.at(3659)
    await s.liaison("fire", "B1", "acknowledge")
    # figures are asked on 2 November; every clock still running by then has missed its deadline
    hub.clock.set(datetime(2026, 11, 2, tzinfo=UTC))
    await hub.state.sla.settled()
    return s


def rows_by_target(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["key"]["target"]: r for r in result["rows"]}


async def get(client: httpx.AsyncClient, path: str, expect: int = 200) -> Any:
    res = await client.get(path)
    assert res.status_code == expect, res.text
    return res.json() if res.headers.get("content-type", "").startswith("application/json") else res


@pytest.fixture
async def logged(hub: Hub) -> Script:
    script = await build_log(hub)
    yield script
    for c in script.c.values():
        await c.aclose()


async def test_scorecards_match_the_hand_worked_figures(hub: Hub, logged: Script) -> None:
    async with await hub.login("supervisor") as sup:
        result = await get(sup, f"/api/v1/evaluation/scorecards?{OCT}&township_id=10")
    assert result["period"]["start"] == "2026-09-30T16:00:00+00:00" and result["preset"] == "three_rates"
    ScorecardsOut.model_validate(result)  # the OpenAPI document's shape
    rows = rows_by_target(result)
    police = rows["police"]
    assert police["received"] == 4
    assert {k: police["response"][k] for k in ("on_time", "late", "missed", "excluded", "pending", "due")} == \
        {"on_time": 1, "late": 1, "missed": 1, "excluded": 1, "pending": 0, "due": 3}
    assert police["response"]["rate"] == pytest.approx(1 / 3)
    assert (police["response"]["p50_ms"], police["response"]["p90_ms"]) == (120_000, 121_000)
    assert {k: police["arrive"][k] for k in ("late", "excluded", "due")} == {"late": 1, "excluded": 3, "due": 1}
    assert police["result"]["on_time"] == 1 and police["result"]["due"] == 1
    assert police["escalations"]["ack"] == {"1": 2, "2": 1} and police["escalations"]["arrive"] == {"1": 1}
    assert police["visits"] == {"visited": 1, "resolved": 1, "satisfied": 1}
    assert police["score"]["value"] == 80.0  # 100 × (0.3 × 1/3 + 0.35 × 1 + 0.35 × 1)
    market = rows["market"]
    assert (market["response"]["on_time"], market["response"]["excluded"], market["response"]["due"]) == (2, 1, 2)
    assert (market["response"]["p50_ms"], market["response"]["p90_ms"]) == (15_000, 110_000)  # 110 s = 180 − 70
    assert market["transfers"] == {"approved": 2, "rejected": 1, "not_our_remit": 1}
    assert (market["arrive"]["missed"], market["arrive"]["excluded"]) == (1, 2)
    assert market["score"]["value"] == 100.0  # nobody visited: the response rate carries the whole weight
    assert [c["effective_weight"] for c in market["score"]["components"]] == [1.0, 0.0, 0.0]
    transport, enforcement = rows["transport"], rows["enforcement"]
    assert transport["response"]["missed"] == 1 and transport["escalations"]["ack"] == {"1": 1, "2": 1, "3": 1}
    assert enforcement["response"]["on_time"] == 1 and enforcement["escalations"]["ack"] == {}
    justice = rows["justice"]
    assert (justice["send_backs"], justice["reopened"], justice["result"]["on_time"]) == (1, 1, 1)
    assert justice["visits"] == {"visited": 1, "resolved": 1, "satisfied": 1}
    assert rows["fire"]["received"] == 1 and rows["fire"]["response"]["on_time"] == 1  # B1 only: B2 is November's
    assert {t: rows[t]["rank"] for t in rows if not t.startswith("unit:")} == {
        "market": 1, "enforcement": 1, "justice": 1, "fire": 1, "police": 5, "transport": 6, "land": None}
    assert police["previous"]["score"] is None and police["change"] == {"score": None, "rank": None}
    async with await hub.login("supervisor") as sup:
        november = rows_by_target(await get(sup, "/api/v1/evaluation/scorecards?month=2026-11&township_id=10"))
    assert november["fire"]["received"] == 1 and november["fire"]["response"]["missed"] == 1
    assert november["fire"]["previous"]["score"] == 100.0 and november["fire"]["change"]["score"] == -100.0


async def test_every_figure_drills_down_to_its_assignments(hub: Hub, logged: Script) -> None:
    s = logged
    async with await hub.login("head.police") as head:
        base = f"/api/v1/evaluation/assignments?{OCT}&township_id=10&figure="
        missed = DrillDownOut.model_validate(await get(head, base + "response.missed")).model_dump()
        assert [a["assignment_id"] for a in missed["assignments"]] == [s.assignments["P4"]]
        excluded = await get(head, base + "excluded")
        assert [(a["assignment_id"], a["ended"]["how"]) for a in excluded["assignments"]] == \
            [(s.assignments["P3"], "withdrawn")]
        late = (await get(head, base + "response.late"))["assignments"][0]
        assert late["clocks"]["response"]["ms"] == 121_000 and late["clocks"]["response"]["verdict"] == "late"
        timeline = await get(head, f"/api/v1/calls/{late['call_id']}")  # each opens its timeline
        assert any(e["type"] == "assignment.escalated" for e in timeline["timeline"])
        bad = await head.get(base + "everything")
        assert bad.status_code == 422 and bad.json()["field"] == "figure"
    async with await hub.login("supervisor") as sup:
        remit = await get(sup, f"/api/v1/evaluation/assignments?{OCT}&target=market&figure=transfers.not_our_remit")
        assert [a["assignment_id"] for a in remit["assignments"]] == [s.assignments["M2"]]
        voided = await get(sup, f"/api/v1/evaluation/assignments?{OCT}&target=enforcement&figure=escalations.ack")
        assert voided["total"] == 0


async def test_each_role_sees_only_its_scope(hub: Hub, logged: Script) -> None:
    async with await hub.login("leader.yiqiao") as leader:
        mine = await get(leader, f"/api/v1/evaluation/scorecards?{OCT}")
        assert mine["scope"]["township_id"] == 10 and rows_by_target(mine)["police"]["received"] == 4
        other = await leader.get(f"/api/v1/evaluation/scorecards?{OCT}&township_id=1")
        assert other.status_code == 403 and other.json()["field"] == "township_id"
        assert (await leader.get(f"/api/v1/evaluation/scorecards.xlsx?{OCT}&township_id=1")).status_code == 403
        assert (await leader.post("/api/v1/calls", json=new_call())).status_code == 403  # read-only
    async with await hub.login("head.police") as head:
        own = await get(head, f"/api/v1/evaluation/scorecards?{OCT}&group=township")
        assert own["scope"]["target"] == "police"
        assert {r["key"]["township_id"]: r["received"] for r in own["rows"] if r["received"]} == {10: 4}
        assert (await head.get(f"/api/v1/evaluation/scorecards?{OCT}&target=market")).status_code == 403
        ack = (await head.post(f"/api/v1/assignments/{logged.assignments['T1']}/acknowledge", json={}))
        assert ack.status_code == 403
    for username in ("op1.yiqiao", "police1.yiqiao"):
        async with await hub.login(username) as other_role:
            assert (await other_role.get(f"/api/v1/evaluation/scorecards?{OCT}")).status_code == 403


async def test_exports_read_back(hub: Hub, logged: Script) -> None:
    async with await hub.login("leader.yiqiao") as leader:
        res = await get(leader, f"/api/v1/evaluation/scorecards.xlsx?{OCT}")
        assert "attachment" in res.headers["content-disposition"]
        sheet = load_workbook(io.BytesIO(res.content)).active
        cells = [[c.value for c in row] for row in sheet.iter_rows()]
        assert "派驻部门考核评分表" in cells[0][0] and "义桥镇" in cells[0][0]
        assert "2026-10" in cells[1][0] and "综合得分 = 100 × (0.3×响应率 + 0.35×解决率 + 0.35×满意率)" in cells[2][0]
        assert cells[3][0].startswith("生成时间：")
        header = cells[5]
        police = next(r for r in cells[6:] if r[1] == "公安")
        assert police[header.index("综合得分")] == 80.0 and police[header.index("排名")] == 5
        assert police[header.index("响应率%")] == 33.3
        text = (await get(leader, f"/api/v1/evaluation/scorecards.csv?{OCT}&lang=en")).content.decode("utf-8-sig")
        table = list(csv.DictReader(io.StringIO(text)))
        assert {r["department / unit"]: r["composite score"] for r in table}["Police"] == "80.0"
        drill = await get(leader, f"/api/v1/evaluation/assignments.xlsx?{OCT}&target=police&figure=received")
        listed = [[c.value for c in row] for row in load_workbook(io.BytesIO(drill.content)).active.iter_rows()]
        assert sum(1 for r in listed if isinstance(r[0], str) and r[0].startswith("YIQIAO-")) == 4


async def export_log(hub: Hub) -> list[tuple[int, Event]]:
    """The township's raw log as a supervisor downloads it (JSON Lines), read back as events."""
    async with await hub.login("supervisor") as sup:
        res = await sup.get("/api/v1/export/events.jsonl?township_id=10&from=2026-10-01&to=2026-11-30")
    assert res.status_code == 200, res.text
    assert verify_lines(res.content.splitlines()).ok
    out = []
    for line in res.content.splitlines():
        r = decode_line(line)
        if r.call_id is None:
            continue
        out.append((r.seq, Event(type=r.type, call_id=r.call_id, assignment_id=r.assignment_id, at=r.at, body=r.body,
                                 audience=r.audience, call_state=CallState(r.call_state),
                                 assignment_state=None if r.assignment_state is None
                                 else AssignmentState(r.assignment_state))))
    return out


async def test_the_log_folded_offline_gives_the_same_facts_and_scorecards(hub: Hub, logged: Script,
                                                                          conn: asyncpg.Connection) -> None:
    stored = {r["assignment_id"]: F.Facts.from_row(dict(r.items()))
              for r in await conn.fetch("select * from assignment_facts")}
    folded = F.fold(await export_log(hub))
    assert folded == stored
    as_of = hub.clock.now()
    rows = [S.scoring_row(f.to_row()) for f in folded.values()
            if f.dispatched_at < datetime(2026, 10, 31, 16, tzinfo=UTC)]
    offline = {k: S.card(t, {"response_rate": 0.3, "resolution_rate": 0.35, "satisfaction_rate": 0.35})
               for k, t in S.tally(rows, as_of, lambda r: r["target"]).items()}
    async with await hub.login("supervisor") as sup:
        online = rows_by_target(await get(sup, f"/api/v1/evaluation/scorecards?{OCT}&township_id=10"))
    for target, card in offline.items():
        assert online[target]["score"] == card["score"] and online[target]["response"] == card["response"]
    # the projection rebuilt from the log (as after a change of the rules) is the same, row for row
    await conn.execute("update meta set value = '0' where key = 'facts_version'")
    assert await facts_store.ensure_current(conn) == len(stored)
    rebuilt = {r["assignment_id"]: F.Facts.from_row(dict(r.items()))
               for r in await conn.fetch("select * from assignment_facts")}
    assert rebuilt == stored


async def test_trends_and_score_trend(hub: Hub, logged: Script) -> None:
    async with await hub.login("supervisor") as sup:
        trends = await get(sup, "/api/v1/evaluation/trends?month=2026-11&months=3&township_id=10")
        TrendsOut.model_validate(trends)
        assert trends["months"] == ["2026-09", "2026-10", "2026-11"]
        parking = next(c for c in trends["categories"] if c["code"] == "parking")
        assert parking["counts"] == [0, 9, 1] and parking["change"] == -8
        assert trends["places"][0]["count"] == 1  # the last month's places: B2 only
        assert [(g["name"], g["count"], g["previous"]) for g in trends["grids"]] == [("第1网格", 1, 0)]
        score = await get(sup, "/api/v1/evaluation/score-trend?month=2026-11&months=2&township_id=10")
        ScoreTrendOut.model_validate(score)
        police = next(s for s in score["series"] if s["target"] == "police")
        assert police["scores"] == [80.0, None]
        assert (await sup.get("/api/v1/evaluation/trends?months=25")).status_code == 422
        bad = await sup.get("/api/v1/evaluation/scorecards?month=2026-13")
        assert bad.status_code == 422 and bad.json()["field"] == "month"
        both = await sup.get("/api/v1/evaluation/scorecards?month=2026-10&from=2026-10-01&to=2026-10-31")
        assert both.status_code == 422
        ranged = await get(sup, "/api/v1/evaluation/scorecards?from=2026-10-01&to=2026-10-31&township_id=10")
        assert ranged["period"]["month"] == "2026-10"
