"""The supervisor page's evaluation (考核) in real Chromium, on the hand-worked October log of test_evaluation:
the ranking and its formulas, the assignments behind each figure and their timelines, the spreadsheets, the
ECharts charts at 1366×768 and 1920×1080, each role's scope, and the loading / empty / failed states."""

from __future__ import annotations

import asyncio
import io
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from openpyxl import load_workbook

from dispatch.cli.demo import TOWNSHIPS
from tests.conftest import Hub, artifact, browser_login
from tests.test_evaluation import Script, build_log

pytestmark = pytest.mark.browser

# The actions of the operator's and the liaison's consoles, as their buttons read.
ACTION_LABELS = {"派单", "派 单", "增派部门", "转派", "撤回", "审核通过", "退回重办", "回访", "办结归档", "撤销呼叫",
                 "添加备注", "同意转派", "驳回", "设为主办", "响应", "报到", "办结", "申请转派", "结案", "催办",
                 "新建呼叫 (N)"}
DEPARTMENT_NAMES = ("综合执法", "公安", "司法", "市场监管", "自然资源", "交通运输", "消防")
CHARTS = ("chart-box", "chart-score", "chart-cat")
# Every chart's ECharts instance, its series, the names it draws and how many pixels its canvas has painted.
CHART_STATE = """async (ids) => {
  const echarts = await import("/vendor/echarts/echarts.esm.min.mjs");
  const out = {};
  for (const id of ids) {
    const el = document.getElementById(id);
    const chart = echarts.getInstanceByDom(el);
    if (!chart) { out[id] = null; continue; }
    const option = chart.getOption();
    const canvas = el.querySelector("canvas");
    const px = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
    let painted = 0;
    for (let i = 3; i < px.length; i += 4) if (px[i]) painted++;
    const names = [...option.series.map((s) => s.name), ...option.xAxis.flatMap((a) => a.data || [])];
    out[id] = { series: option.series.length, names, painted, width: el.clientWidth };
  }
  return out;
}"""

FITTED = """() => {
  const el = document.getElementById("chart-box");
  return el.clientWidth < 500 && Math.abs(el.querySelector("canvas").width - el.clientWidth) <= 2;
}"""


@pytest.fixture
async def evaluation_log(hub: Hub) -> AsyncIterator[Script]:
    """October 2026 in 义桥镇, worked out by hand in test_evaluation; the hub's clock is on 2 November."""
    script = await build_log(hub)
    yield script
    for c in script.c.values():
        await c.aclose()


async def read_only(page: Any) -> None:
    """No button on the page is an action of the operator's or the liaison's consoles."""
    texts = [t.strip() for t in await page.locator("button:visible").all_inner_texts()]
    assert not [t for t in texts if t in ACTION_LABELS], texts
    assert await page.locator("textarea, input[type=submit]").count() == 0


async def workbook(download: Any) -> Any:
    """The first sheet of a downloaded XLSX file."""
    assert download.suggested_filename.endswith(".xlsx"), download.suggested_filename
    return load_workbook(io.BytesIO(Path(await download.path()).read_bytes())).active


async def evaluation_text(page: Any, charts: dict[str, Any]) -> str:
    """What the evaluation view shows: its text and every name drawn in its charts."""
    drawn = " ".join(str(n) for chart in charts.values() for n in chart["names"])
    return f"{await page.locator('#view-eval').inner_text()} {drawn}"


async def charts_drawn(page: Any) -> dict[str, Any]:
    for panel in ("ch-box", "ch-score", "ch-cat", "ch-top"):
        await page.wait_for_selector(f"[data-panel='{panel}'][data-state='ok']")
    state: dict[str, Any] = await page.evaluate(CHART_STATE, list(CHARTS))
    for chart_id in CHARTS:
        assert state[chart_id] and state[chart_id]["series"] >= 1 and state[chart_id]["painted"] > 1000, state
    return state


async def test_supervisor_ranks_departments_and_drills_down_to_the_calls(hub: Hub, browser: Any,
                                                                         evaluation_log: Script) -> None:
    s = evaluation_log
    async with await hub.login("supervisor") as sup:
        p4 = (await sup.get(f"/api/v1/calls/{s.calls['P4']}")).json()["number"]
        card = (await sup.get("/api/v1/evaluation/scorecards?month=2026-10")).json()
    escalated = sum(n for levels in next(r for r in card["rows"] if r["key"]["target"] == "police")["escalations"]
                    .values() for n in levels.values())
    page = await browser_login(browser, hub, "supervisor")
    methods: list[str] = []
    page.on("request", lambda r: methods.append(r.method))
    errors: list[str] = []  # a script error, or anything the Content-Security-Policy refused
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    police = page.locator("#rank-body tr[data-key='police']")
    await police.wait_for()
    assert "全县 · 2026-10 考核排名" in await page.locator("#ev-title").inner_text()  # last month by default
    assert await page.locator("#ev-month").input_value() == "2026-10"
    names = await page.locator("#rank-body tr.rank-row td.who").all_inner_texts()
    assert sorted(names) == sorted(DEPARTMENT_NAMES)
    # the hand-worked figures: 80.0 = 100 × (0.3 × 1/3 + 0.35 × 1 + 0.35 × 1), fifth of seven
    assert await police.locator("td[data-col='score']").inner_text() == "80.0"
    assert await police.locator("td.rank").inner_text() == "5"
    assert (await police.locator("td[data-col='response']").inner_text()).split() == ["33.3%", "1/3"]
    assert await police.locator("td[data-col='received']").inner_text() == "4"
    assert await police.locator("td[data-col='excluded']").inner_text() == "1"
    # the escalations by level added up (whether P1's arrival a second late got its rung written first is a race)
    assert await police.locator("td[data-col='esc']").inner_text() == str(escalated)
    # the score with its formula and each component
    await police.locator("td[data-col='score'] button").click()
    formula = page.locator("tr.formula[data-formula-for='police']")
    text = await formula.inner_text()
    assert "0.3×响应率 + 0.35×解决率 + 0.35×满意率" in text
    assert [await formula.locator(f"tr[data-rate='{r}'] td").last.inner_text()
            for r in ("response_rate", "resolution_rate", "satisfaction_rate")] == ["10.00", "35.00", "35.00"]
    assert await formula.locator("tfoot .total").inner_text() == "80.0"
    await read_only(page)
    await page.screenshot(path=artifact("supervisor-evaluation-1366.png"))

    # the response rate's reasons: the one never answered (P4, the call cancelled after its deadline)
    await police.locator("td[data-col='response'] button").click()
    await page.wait_for_selector("#drill[data-state='ok']")
    assert "公安 · 响应率" in await page.locator("#drill-title").inner_text()
    await page.click("#drill-tabs [data-figure='response.missed']")
    row = page.locator(f"#drill-body tr[data-call='{s.calls['P4']}']")
    await row.wait_for()
    assert await page.locator("#drill-body tr").count() == 1
    listed = await row.inner_text()
    assert p4.replace("YIQIAO", "义桥") in listed and "未完成" in listed and "呼叫已撤销" in listed, listed
    # the exclusion and its reason (P3 withdrawn before its deadline)
    await police.locator("td[data-col='excluded'] button").click()
    excluded = page.locator(f"#drill-body tr[data-call='{s.calls['P3']}']")
    await excluded.wait_for()
    assert "已撤回" in await excluded.inner_text() and "不计入" in await excluded.inner_text()
    # a row opens the call's timeline in the detail drawer
    await page.click("#drill-tabs [data-figure='excluded']")
    await page.locator(f"#drill-body tr[data-call='{s.calls['P3']}']").click()
    await page.wait_for_selector("#detail .timeline li[data-type='assignment.withdrawn']")
    await read_only(page)
    await page.screenshot(path=artifact("supervisor-drill-1366.png"))
    await page.click("#detail-close")

    # the spreadsheets of the view and of the list
    async with page.expect_download() as got:
        await page.click("#ev-xlsx")
    sheet = await workbook(await got.value)
    cells = [[c.value for c in r] for r in sheet.iter_rows()]
    header = cells[5]
    police_row = next(r for r in cells[6:] if r[1] == "公安")
    assert police_row[header.index("综合得分")] == 80.0 and "全县" in cells[0][0]
    async with page.expect_download() as got:
        await page.click("#drill-xlsx")
    listed_rows = [[c.value for c in r] for r in (await workbook(await got.value)).iter_rows()]
    assert [r[0] for r in listed_rows if isinstance(r[0], str) and r[0].startswith("YIQIAO-")] == [
        (await (await hub.login("supervisor")).get(f"/api/v1/calls/{s.calls['P3']}")).json()["number"]]

    # the charts, drawn offline by the hub's own ECharts, at both desk sizes
    await page.click("#drill-close")
    await police.locator("td[data-col='score'] button").click()
    await formula.wait_for(state="detached")
    state = await charts_drawn(page)
    assert "公安" in state["chart-box"]["names"] and "公安" in state["chart-score"]["names"]
    await page.locator(".charts").scroll_into_view_if_needed()
    await page.screenshot(path=artifact("supervisor-charts-1366.png"))
    await page.set_viewport_size({"width": 1920, "height": 1080})
    await page.wait_for_function(FITTED)  # four charts across at 1920, two at 1366: each redrawn to its new width
    wide = await charts_drawn(page)
    assert wide["chart-box"]["width"] < state["chart-box"]["width"]
    await page.evaluate("() => window.scrollTo(0, 0)")
    await page.screenshot(path=artifact("supervisor-evaluation-1920.png"))
    # the pickers: another weight preset, a date range, the townships ranked; each in the page's address
    await page.select_option("#ev-preset", "outcome")
    await police.locator("td[data-col='score']", has_text="86.7").wait_for()  # 100 × (0.2 × 1/3 + 0.4 + 0.4)
    await page.select_option("#ev-mode", "range")
    await page.fill("#ev-from", "2026-10-31")
    await page.fill("#ev-to", "2026-11-01")
    await page.locator("#ev-title", has_text="2026-10-31 至 2026-11-01").wait_for()
    await page.select_option("#ev-group", "township")
    yiqiao = page.locator("#rank-body tr.rank-row", has_text="义桥镇")
    await yiqiao.wait_for()
    assert await yiqiao.locator("td[data-col='received']").inner_text() == "12"  # ten calls, two on 1 November
    assert "from=2026-10-31&to=2026-11-01" in page.url and "group=township" in page.url and "preset=outcome" in page.url
    assert set(methods) == {"GET"}, methods  # read-only: nothing but reads left the page
    assert errors == []
    latin = set(re.findall(r"[A-Za-z]+", await page.locator("#view-eval").inner_text()))
    assert latin <= {"XLSX", "CSV"}, latin  # no English in the zh-CN page
    await page.context.close()


async def test_township_leader_sees_only_their_township(hub: Hub, browser: Any, evaluation_log: Script) -> None:
    page = await browser_login(browser, hub, "leader.yiqiao")
    assert urlsplit(page.url).path == "/supervisor/"  # the page then writes its view into the query
    await page.locator("#rank-body tr[data-key='police']").wait_for()
    assert await page.locator("#ev-township").is_hidden() and await page.locator("#ev-group").is_hidden()
    assert "义桥镇 · 2026-10 考核排名" in await page.locator("#ev-title").inner_text()
    assert await page.locator("#rank-body tr[data-key='police'] td[data-col='score']").inner_text() == "80.0"
    state = await charts_drawn(page)
    others = [zh for code, zh, _ in TOWNSHIPS if code != "yiqiao"]
    shown = await evaluation_text(page, state)
    assert not [o for o in others if o in shown]
    await read_only(page)
    await page.screenshot(path=artifact("supervisor-leader-1366.png"))
    # another township: the hub answers 403, the page says so plainly and offers the leader's own scope
    zhongdu = await (await hub.login("supervisor")).get("/api/v1/reference")
    zhongdu_id = next(t["id"] for t in zhongdu.json()["townships"] if t["code"] == "zhongdu")
    await page.goto(f"{hub.url}/supervisor/?township_id={zhongdu_id}")
    message = page.locator("#rank-state .bad")
    await message.wait_for()
    assert "无权查看" in await message.inner_text() and "义桥镇" in await message.inner_text()
    assert await page.evaluate(f"() => fetch('/api/v1/evaluation/scorecards?township_id={zhongdu_id}')"
                               ".then((r) => r.status)") == 403
    assert not [o for o in others if o in await page.locator("#view-eval").inner_text()]
    await page.screenshot(path=artifact("supervisor-leader-403.png"))
    await page.click("#rank-state button.mine")
    await page.locator("#rank-body tr[data-key='police']").wait_for()
    await page.context.close()


async def test_department_head_sees_only_their_department(hub: Hub, browser: Any, evaluation_log: Script) -> None:
    page = await browser_login(browser, hub, "head.police", viewport={"width": 1920, "height": 1080})
    assert urlsplit(page.url).path == "/supervisor/"  # the page then writes its view into the query
    yiqiao = page.locator("#rank-body tr.rank-row", has_text="义桥镇")
    await yiqiao.wait_for()  # by township: their department in each
    assert "全县 · 公安 · 2026-10 考核排名" in await page.locator("#ev-title").inner_text()
    assert await page.locator("#rank-body tr.rank-row").count() == len(TOWNSHIPS)
    assert await yiqiao.locator("td[data-col='received']").inner_text() == "4"
    assert await yiqiao.locator("td[data-col='score']").inner_text() == "80.0"
    state = await charts_drawn(page)
    shown = await evaluation_text(page, state)
    assert not [d for d in DEPARTMENT_NAMES if d != "公安" and d in shown]
    await yiqiao.locator("td[data-col='received'] button").click()
    await page.wait_for_selector("#drill[data-state='ok']")
    assert await page.locator("#drill-body tr").count() == 4
    await read_only(page)
    await page.screenshot(path=artifact("supervisor-department-head-1920.png"))
    await page.goto(f"{hub.url}/supervisor/?target=market")
    await page.locator("#rank-state .bad").wait_for()
    assert "无权查看" in await page.locator("#rank-state .bad").inner_text()
    await page.context.close()


async def test_echarts_is_served_by_the_hub_from_its_dist_folder_only(hub: Hub) -> None:
    async with hub.client() as c:
        module = await c.get("/vendor/echarts/echarts.esm.min.mjs")
        outside = await c.get("/node_modules/echarts/package.json")
        sources = await c.get("/vendor/zrender/index.js")
    assert module.status_code == 200 and "javascript" in module.headers["content-type"]
    assert "getInstanceByDom" in module.text
    assert outside.status_code == 404 and sources.status_code == 404


async def test_evaluation_panels_show_loading_empty_and_failed_states(hub: Hub, browser: Any) -> None:
    page = await browser_login(browser, hub, "supervisor")  # no call at all: every panel is empty
    held = asyncio.Event()

    async def hold(route: Any) -> None:
        await held.wait()
        await route.continue_()

    await page.route("**/api/v1/evaluation/trends?*", hold)
    await page.wait_for_selector("[data-panel='rank'][data-state='empty']")
    assert await page.locator("#rank-state").inner_text() == "所选期间没有派单"
    assert await page.locator("#rank-body tr.rank-row").count() == 7  # the seven departments, all zero
    await page.wait_for_selector("[data-panel='ch-cat'][data-state='loading']")
    assert "加载中" in await page.locator("#ch-cat-state").inner_text()
    held.set()
    for panel in ("ch-box", "ch-score", "ch-cat", "ch-top"):
        await page.wait_for_selector(f"[data-panel='{panel}'][data-state='empty']")
    await page.unroute("**/api/v1/evaluation/trends?*")
    # the hub unreachable: the panel says so and offers to retry
    await page.route("**/api/v1/evaluation/scorecards?*", lambda route: route.abort())
    await page.select_option("#ev-preset", "outcome")
    await page.wait_for_selector("[data-panel='rank'][data-state='failed']")
    assert "无法连接到指挥平台" in await page.locator("#rank-state").inner_text()
    await page.screenshot(path=artifact("supervisor-failed-1366.png"))
    await page.unroute("**/api/v1/evaluation/scorecards?*")
    await page.click("#rank-state button.retry")
    await page.wait_for_selector("[data-panel='rank'][data-state='empty']")
    await page.context.close()
