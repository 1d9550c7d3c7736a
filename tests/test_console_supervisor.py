"""The supervisor's read-only county view in real Chromium: the call log (呼叫记录) of every township, filters,
a call's detail with its assignments and timeline, live updates that keep paging and scroll, and nothing to act
with. The evaluation view of the same page: tests/test_console_evaluation.py."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.conftest import Hub, artifact, browser_login
from tests.helpers import assignment_of, new_call, post

pytestmark = pytest.mark.browser

ACTION_WORDS = ("派单", "审核通过", "退回", "撤销", "回访", "响应", "报到", "办结", "转派", "新建", "登记诉求")
PAGE = 50  # console/supervisor/log.js


async def test_supervisor_sees_two_townships_read_only(hub: Hub, browser: Any) -> None:
    yiqiao = await hub.login("op1.yiqiao")
    nanwang = await hub.login("op1.nanwang")
    police = await hub.login("police1.yiqiao")
    async with yiqiao, nanwang, police:
        a = await post(yiqiao, "/api/v1/calls", new_call(title="义桥镇幸福路车辆乱停"), expect=201)
        b = await post(nanwang, "/api/v1/calls", new_call(title="南旺镇集市占道经营", category="street_vending",
                                                          targets=["enforcement"], address="南旺镇大集东街"),
                       expect=201)
        detail = (await yiqiao.get(f"/api/v1/calls/{a['call_id']}")).json()
        await post(police, f"/api/v1/assignments/{assignment_of(detail, 'police')['id']}/acknowledge")

    page = await browser_login(browser, hub, "supervisor")
    assert urlsplit(page.url).path == "/supervisor/"  # the page then writes its view into the query
    await page.wait_for_selector("body[data-ready='1']")
    await page.click("#tab-log")  # the evaluation comes first; the call log is the second tab
    rows = page.locator("#rows tr")
    await page.wait_for_selector(f"#rows tr[data-call='{a['call_id']}']")
    await page.wait_for_selector(f"#rows tr[data-call='{b['call_id']}']")
    text = await page.locator("#rows").inner_text()
    assert "义桥镇" in text and "南旺镇" in text
    assert "公安·已响应" in text  # who was called and how far they got
    assert "义桥-2026-000001" in text and "南旺-2026-000001" in text  # numbered per township, shown in Chinese
    await page.screenshot(path=artifact("supervisor-list.png"))

    # filter by township
    nanwang_id = await page.locator(f"#rows tr[data-call='{b['call_id']}']").get_attribute("data-township")
    await page.select_option("#f-township", nanwang_id)
    await page.wait_for_function(f"() => !document.querySelector(\"#rows tr[data-call='{a['call_id']}']\")")
    assert await rows.count() == 1
    await page.select_option("#f-township", "")
    await page.wait_for_selector(f"#rows tr[data-call='{a['call_id']}']")

    # the detail: assignments and timeline, reporter masked, no action buttons
    await page.locator(f"#rows tr[data-call='{a['call_id']}']").click()
    await page.wait_for_selector("#detail .timeline li[data-type='assignment.acknowledged']")
    detail_text = await page.locator("#detail").inner_text()
    assert "义桥镇幸福路车辆乱停" in detail_text
    assert "138****5678" in detail_text and "13812345678" not in detail_text
    assert await page.locator("#detail .asg-card").count() == 2
    # each step's actual time, deadline and verdict side by side (issue #18 item 3)
    police_card = page.locator("#detail .asg-card", has_text="公安")
    ack = await police_card.locator("table.milestones tr[data-kind=ack] td").all_inner_texts()
    assert ack[0] != "—" and ack[1] != "—" and ack[2] == "✓ 按时", ack
    buttons = await page.locator("#detail button").all_inner_texts()
    assert buttons == ["关闭"], buttons
    page_buttons = await page.locator("button").all_inner_texts()
    assert not [t for t in page_buttons if any(w in t for w in ACTION_WORDS)], page_buttons
    assert await page.locator("textarea, input[type=submit]").count() == 0
    await page.screenshot(path=artifact("supervisor-detail.png"), full_page=True)

    # live: a new event in a township shows up without reloading
    await page.wait_for_selector("#conn[data-status='live']")
    nanwang = await hub.login("op1.nanwang")
    async with nanwang:
        c = await post(nanwang, "/api/v1/calls", new_call(title="南旺镇夜间施工噪音", category="noise",
                                                          targets=["police"]), expect=201)
    await page.wait_for_selector(f"#rows tr[data-call='{c['call_id']}']", timeout=10_000)
    await page.context.close()


async def test_supervisor_reads_overdue_time_and_filters_overdue_and_escalated(hub: Hub, browser: Any) -> None:
    start = hub.clock.now()
    async with await hub.login("op1.yiqiao") as op:
        late = await post(op, "/api/v1/calls", new_call(title="超时的呼叫", targets=["police"]), expect=201)
        fine = await post(op, "/api/v1/calls", new_call(title="按时的呼叫", targets=["market"], priority="normal"),
                          expect=201)
        late_a = assignment_of((await op.get(f"/api/v1/calls/{late['call_id']}")).json(), "police")["id"]
    # the response deadline (120 s) passes; levels 1 and 2 (+120 s) are written 250 s after dispatch
    hub.clock.advance(250)
    assert await hub.state.sla.settled() == 2

    page = await browser_login(browser, hub, "supervisor")
    await page.wait_for_selector("body[data-ready='1']")
    await page.click("#tab-log")
    await page.wait_for_selector("#conn[data-status='live']")  # the welcome brings the hub's clock
    row = page.locator(f"#rows tr[data-call='{late['call_id']}']")
    await row.locator(".mark-overdue").wait_for(state="visible")
    assert (await row.locator(".mark-overdue").inner_text()).startswith("超时 2分")
    assert await row.locator(".mark-esc").inner_text() == "二级督办"
    ok_row = page.locator(f"#rows tr[data-call='{fine['call_id']}']")
    assert await ok_row.locator(".mark-overdue:visible, .mark-esc").count() == 0

    # the filters ask the hub (GET /api/v1/calls?overdue=true / escalated=true)
    await page.select_option("#f-flag", "overdue")
    await page.wait_for_function(f"() => !document.querySelector(\"#rows tr[data-call='{fine['call_id']}']\")")
    assert await page.locator("#rows tr").count() == 1
    await page.select_option("#f-flag", "escalated")
    await page.wait_for_selector(f"#rows tr[data-call='{late['call_id']}']")
    assert await page.locator("#rows tr").count() == 1
    await page.select_option("#f-flag", "")
    await page.wait_for_selector(f"#rows tr[data-call='{fine['call_id']}']")

    # the detail: each escalation with the department's overdue time (130 s), not the hub's delay (10 s)
    await row.click()
    esc = page.locator("#detail .timeline li[data-type='assignment.escalated']")
    await esc.nth(1).wait_for()
    texts = await esc.all_inner_texts()
    assert "响应 一级督办（超时 2分）" in texts[0] and "响应 二级督办（超时 2分）" in texts[1], texts
    assert "0 分钟" not in " ".join(texts)
    marks = page.locator(f"#detail li.asg-card[data-assignment='{late_a}'] .mark-overdue")
    await marks.first.wait_for(state="visible")  # the response clock; arrival and result are not due yet
    assert await page.locator(f"#detail li.asg-card[data-assignment='{late_a}'] .mark-overdue:visible").count() == 1
    await page.screenshot(path=artifact("supervisor-overdue.png"), full_page=True)
    # the operator's 催办 and taking the alarm are on the timeline, in Chinese
    async with await hub.login("op1.yiqiao") as op:
        await post(op, f"/api/v1/assignments/{late_a}/nudge", {"text": "请尽快响应"})
        await post(op, f"/api/v1/assignments/{late_a}/handle_alarm", {"deadline_kind": "ack", "level": 2})
    taken = page.locator("#detail .timeline li[data-type='assignment.alarm_handled']")
    await taken.wait_for(timeout=10_000)
    assert "认领督办" in await taken.inner_text() and "二级督办" in await taken.inner_text()
    nudged = await page.locator("#detail .timeline li[data-type='assignment.nudged']").inner_text()
    assert "催办" in nudged and "请尽快响应" in nudged

    # the phone had acknowledged offline before the deadline: both escalations are voided, the timeline shows
    # the acted and the received time, and the call leaves the escalated filter
    async with await hub.login("police1.yiqiao") as police:
        await post(police, f"/api/v1/assignments/{late_a}/acknowledge",
                   {"acted_at": (start + timedelta(seconds=110)).isoformat()})
    await page.wait_for_selector("#detail .timeline li[data-type='assignment.acknowledged']", timeout=10_000)
    ack = await page.locator("#detail .timeline li[data-type='assignment.acknowledged']").inner_text()
    assert "实际" in ack and "收到" in ack, ack
    assert await page.locator("#detail .timeline .voided").count() == 2
    await row.locator(".mark-esc").wait_for(state="detached")
    await page.screenshot(path=artifact("supervisor-acted.png"), full_page=True)
    await page.select_option("#f-flag", "escalated")
    await page.wait_for_selector("#empty:not([hidden])")
    await page.context.close()


async def test_live_updates_keep_the_log_paging_and_scroll(hub: Hub, browser: Any) -> None:
    async with await hub.login("op1.yiqiao") as op:
        for i in range(PAGE + 2):
            await post(op, "/api/v1/calls", new_call(title=f"第{i}号", targets=["police"]), expect=201)
        page = await browser_login(browser, hub, "supervisor")
        await page.goto(f"{hub.url}/supervisor/?tab=log")
        await page.wait_for_selector("#conn[data-status='live']")
        await page.wait_for_function(f"() => document.querySelectorAll('#rows tr').length === {PAGE}")
        await page.click("#more")
        await page.wait_for_function(f"() => document.querySelectorAll('#rows tr').length === {PAGE + 2}")
        await page.evaluate("() => window.scrollTo(0, document.body.scrollHeight)")
        before = await page.evaluate("() => window.scrollY")
        assert before > 500
        new = await post(op, "/api/v1/calls", new_call(title="新来的呼叫", targets=["police"]), expect=201)
    await page.wait_for_selector(f"#rows tr[data-call='{new['call_id']}']", state="attached", timeout=10_000)
    assert await page.locator("#rows tr").count() == PAGE + 3  # the second page is still there
    assert await page.evaluate("() => window.scrollY") == pytest.approx(before, abs=60)
    await page.context.close()


async def test_an_event_updates_its_row_in_place_and_marks_a_new_call(hub: Hub, browser: Any) -> None:
    async with await hub.login("op1.yiqiao") as op, await hub.login("police1.yiqiao") as police:
        for i in range(PAGE + 2):
            await post(op, "/api/v1/calls", new_call(title=f"第{i}号", targets=["police"]), expect=201)
        page = await browser_login(browser, hub, "supervisor")
        await page.goto(f"{hub.url}/supervisor/?tab=log")
        await page.wait_for_selector("#conn[data-status='live']")
        await page.wait_for_function(f"() => document.querySelectorAll('#rows tr').length === {PAGE}")
        await page.click("#more")
        await page.wait_for_function(f"() => document.querySelectorAll('#rows tr').length === {PAGE + 2}")
        # Tag every row node: a row the event is not about must be the very same node afterwards.
        await page.evaluate("() => document.querySelectorAll('#rows tr').forEach((tr) => { tr.__kept = true; })")
        calls = (await op.get("/api/v1/calls", params={"limit": "1", "offset": "10"})).json()["calls"]
        target = calls[0]
        await post(police, f"/api/v1/assignments/{assignment_of(target, 'police')['id']}/acknowledge")
        row = page.locator(f"#rows tr[data-call='{target['id']}']")
        await row.locator(".part.as-acknowledged").wait_for(timeout=10_000)
        replaced = await page.evaluate("() => [...document.querySelectorAll('#rows tr')].filter((tr) => !tr.__kept)"
                                       ".map((tr) => tr.dataset.call)")
        assert replaced == [target["id"]]  # only its own row was redrawn
        new = await post(op, "/api/v1/calls", new_call(title="新来的呼叫", targets=["police"]), expect=201)
    fresh = page.locator(f"#rows tr.fresh[data-call='{new['call_id']}']")
    await fresh.wait_for(timeout=10_000)
    assert await fresh.locator(".mark-new").inner_text() == "新"
    assert await page.locator("#rows tr").count() == PAGE + 3
    kept = await page.evaluate("() => [...document.querySelectorAll('#rows tr')].filter((tr) => tr.__kept).length")
    assert kept == PAGE + 1  # all but the updated row and the new one are the nodes shown before
    await page.context.close()
