"""The operator console's urgency, deadlines and offline intake in a real Chromium (issue #18 items 1, 3, 7, 8):
calls needing the operator in their own lane, the rest by risk with the urgent call in view at 1366×768 and its
countdown growing louder; actual time, deadline and overdue side by side in the drawer; a call created offline
queued as 待发送 and sent once; another role refused politely with no 新建呼叫."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import Hub, artifact, browser_login
from tests.helpers import assignment_of, new_call, post

pytestmark = pytest.mark.browser

LIVE = "#conn[data-status=live]"


async def note(op: httpx.AsyncClient, call_id: str) -> None:
    """An event at the hub's (advanced) clock: the page's clock follows the hub's by the events it receives."""
    await post(op, f"/api/v1/calls/{call_id}/note", {"text": "记录"})


async def until_level(page: Any, call_id: str, level: str) -> None:
    await page.wait_for_function(
        f"""() => document.querySelector('#rows-risk .row[data-id="{call_id}"] .chip')?.dataset.level === '{level}'""")


async def chip_level(page: Any, call_id: str) -> str:
    level: str = await page.locator(f'#rows-risk .row[data-id="{call_id}"] .chip').first.get_attribute("data-level")
    return level


async def test_urgent_call_leads_the_risk_lane_in_view_and_grows_louder(browser: Any, hub: Hub) -> None:
    op = await hub.login("op1.yiqiao")
    transport = await hub.login("transport1.yiqiao")
    async with op, transport:
        # Four calls waiting for the operator (待派单, 申请转派), low priority among them: the action lane.
        waiting = [await post(op, "/api/v1/calls", new_call(title=f"待派单{i}", priority="low", targets=[]), expect=201)
                   for i in range(3)]
        declined = await post(op, "/api/v1/calls", new_call(title="申请转派的呼叫", priority="normal",
                                                             targets=["transport"]), expect=201)
        doc = (await op.get(f"/api/v1/calls/{declined['call_id']}")).json()
        await post(transport, f"/api/v1/assignments/{assignment_of(doc, 'transport')['id']}/decline",
                   {"reason": "不属于本部门", "suggested_target": "enforcement"})
        # Five calls counting down with plenty of time (normal: 10 min to respond), created first ...
        calm = [await post(op, "/api/v1/calls", new_call(title=f"一般呼叫{i}", priority="normal",
                                                         address=f"义桥镇平安路{i}号", targets=["police"]),
                           expect=201) for i in range(5)]
        hub.clock.advance(30)
        # ... then the urgent one: 2 minutes to respond, 1m30s left once the clock moves on by 30 s.
        urgent = await post(op, "/api/v1/calls", new_call(title="燃气泄漏", priority="urgent",
                                                           address="义桥镇紧急路1号", targets=["police"]), expect=201)
        hub.clock.advance(30)

        page = await browser_login(browser, hub, "op1.yiqiao", viewport={"width": 1366, "height": 768})
        await page.wait_for_selector(LIVE)
        await page.wait_for_selector(f'#rows-risk .row[data-id="{urgent["call_id"]}"]')
        action_ids = await page.eval_on_selector_all("#rows-action .row", "els => els.map(e => e.dataset.id)")
        risk_ids = await page.eval_on_selector_all("#rows-risk .row", "els => els.map(e => e.dataset.id)")
        assert sorted(action_ids) == sorted([c["call_id"] for c in waiting] + [declined["call_id"]])
        assert risk_ids[0] == urgent["call_id"], risk_ids  # the least time left, weighted by priority
        assert set(risk_ids[1:]) == {c["call_id"] for c in calm}
        # In view at 1366×768 without scrolling, below four operator-action calls; the action lane's heading too.
        box = await page.locator(f'#rows-risk .row[data-id="{urgent["call_id"]}"]').bounding_box()
        assert box is not None and box["y"] >= 0 and box["y"] + box["height"] <= 768, box
        head = await page.locator("#lane-action-h").bounding_box()
        assert head is not None and 0 <= head["y"] < box["y"]
        assert await page.locator("#n-action").inner_text() == "4"
        await page.screenshot(path=artifact("operator-urgency-1366.png"))

        # Calm at 1m30s left: no amber from the first second.
        assert await chip_level(page, urgent["call_id"]) == "ok"
        timer = page.locator(f'#rows-risk .row[data-id="{urgent["call_id"]}"] .chip time')
        assert (await timer.inner_text()).startswith("剩 1分")
        # Half the window left: a warning, with a shape as well as a colour.
        hub.clock.advance(35)
        await note(op, waiting[0]["call_id"])
        await until_level(page, urgent["call_id"], "near")
        assert (await timer.inner_text()).startswith("▲ 剩")
        # The last 30 s: critical, and it says so in words.
        hub.clock.advance(30)
        await note(op, waiting[0]["call_id"])
        await until_level(page, urgent["call_id"], "critical")
        assert "即将超时" in await timer.inner_text() and (await timer.inner_text()).startswith("‼")
        assert await page.locator(f'#rows-risk .row.critical[data-id="{urgent["call_id"]}"]').count() == 1
        await page.screenshot(path=artifact("operator-urgency-critical-1366.png"))
        # Breached: overdue, still first.
        hub.clock.advance(30)
        await note(op, waiting[0]["call_id"])
        await until_level(page, urgent["call_id"], "due")
        assert (await timer.inner_text()).startswith("✖ 超时")
        first = await page.eval_on_selector("#rows-risk .row", "el => el.dataset.id")
        assert first == urgent["call_id"]


async def test_drawer_shows_actual_time_deadline_and_overdue_side_by_side(browser: Any, hub: Hub) -> None:
    op = await hub.login("op1.yiqiao")
    police = await hub.login("police1.yiqiao")
    async with op, police:
        created = await post(op, "/api/v1/calls", new_call(targets=["police", "transport"]), expect=201)
        doc = (await op.get(f"/api/v1/calls/{created['call_id']}")).json()
        pa = assignment_of(doc, "police")
        hub.clock.advance(200)  # urgent: 120 s to respond; police responds 80 s late
        await post(police, f"/api/v1/assignments/{pa['id']}/acknowledge")
        hub.clock.advance(60)
        await post(police, f"/api/v1/assignments/{pa['id']}/arrive")  # on scene within its 20 minutes

    page = await browser_login(browser, hub, "op1.yiqiao")
    await page.wait_for_selector(LIVE)
    await page.locator(f'#rows .row[data-id="{created["call_id"]}"]').click()
    table = page.locator(f'#detail table.milestones[data-assignment="{pa["id"]}"]')
    await table.wait_for()
    headers = await table.locator("thead th").all_inner_texts()
    assert headers == ["环节", "实际时间", "时限", "是否超时"]
    ack = table.locator("tr[data-kind=ack]")
    cells = await ack.locator("th, td").all_inner_texts()
    assert cells[0].startswith("响应")  # (with ↑1 once the first rung is recorded)
    assert cells[1] == "2026-11-02 16:03:20"  # actual: 08:00 UTC + 200 s, in Asia/Shanghai
    assert cells[2] == "2026-11-02 16:02:00"  # the deadline: two minutes after dispatch
    assert cells[3] == "✖ 超时 1分"  # 80 s late
    arrive = await table.locator("tr[data-kind=arrive] td").all_inner_texts()
    assert arrive == ["2026-11-02 16:04:20", "2026-11-02 16:20:00", "✓ 按时"]
    resolve = await table.locator("tr[data-kind=resolve] td").all_inner_texts()
    assert resolve[0] == "—" and resolve[1] == "2026-11-02 20:00:00" and resolve[2].startswith("剩 ")
    # transport never responded: its clock runs and it is overdue, live
    ta = assignment_of(doc, "transport")
    t_table = page.locator(f'#detail table.milestones[data-assignment="{ta["id"]}"]')
    t_ack = await t_table.locator("tr[data-kind=ack] td").all_inner_texts()
    assert t_ack[0] == "—" and t_ack[1] == "2026-11-02 16:02:00" and t_ack[2].startswith("✖ 超时 ")
    # the dispatch entry in the timeline names its times as deadlines
    assert "响应时限" in await page.locator("#timeline .ev-assignment-dispatched").first.inner_text()
    await page.screenshot(path=artifact("operator-drawer-deadlines-1366.png"))


async def test_a_call_created_offline_is_queued_shown_pending_and_sent_once(browser: Any, hub: Hub) -> None:
    page = await browser_login(browser, hub, "op1.yiqiao")
    await page.wait_for_selector(LIVE)
    await page.wait_for_selector("#board-state[data-state=empty]")
    await page.context.set_offline(True)
    await page.wait_for_selector("#conn[data-status=offline]")
    await page.wait_for_selector("#board-state[data-state=stale]")  # reconnecting, said on the board too
    await page.keyboard.press("n")
    await page.wait_for_selector("#create[open]")
    await page.select_option("#c-category", "parking")
    await page.fill("#c-address", "义桥镇离线路8号")
    await page.fill("#c-description", "断网时登记的呼叫")
    await page.press("#c-address", "Enter")
    await page.wait_for_selector("#create", state="hidden")  # queued: the form closes, nothing is lost
    pending = page.locator("#rows-action .row.pending-row", has_text="义桥镇离线路8号")
    await pending.wait_for()
    assert "待发送" in await pending.inner_text()
    assert await page.locator("#pending").inner_text() == "1 条指令待发送"
    command_id = await pending.get_attribute("data-command")
    stored = await page.evaluate("() => JSON.parse(localStorage.getItem('xianghu.operator.outbox'))")
    assert [c["command_id"] for c in stored] == [command_id] and stored[0]["name"] == "create_call"
    await page.screenshot(path=artifact("operator-offline-pending-1366.png"))
    async with await hub.login("op1.yiqiao") as op:
        assert (await op.get("/api/v1/calls", params={"open": "true"})).json()["calls"] == []

        await page.context.set_offline(False)
        row = page.locator("#rows .row[data-id]", has_text="义桥镇离线路8号")
        await row.wait_for(timeout=15_000)
        await page.wait_for_selector("#rows .pending-row", state="detached")
        await page.wait_for_selector("#pending", state="hidden")
        assert await page.evaluate("() => JSON.parse(localStorage.getItem('xianghu.operator.outbox'))") == []
        # Exactly once: one call, and a reload (the same browser) does not send it again.
        await page.reload()
        await page.wait_for_selector(LIVE)
        await row.wait_for()
        calls = (await op.get("/api/v1/calls", params={"open": "true"})).json()["calls"]
        assert [c["address"] for c in calls] == ["义桥镇离线路8号"]
        assert await page.locator("#rows .row[data-id]").count() == 1


@pytest.mark.parametrize(("username", "landing"), [("supervisor", "/supervisor/"), ("police1.yiqiao", "/liaison/")])
async def test_another_role_on_the_operator_page_is_refused_politely(browser: Any, hub: Hub, username: str,
                                                                     landing: str) -> None:
    page = await browser_login(browser, hub, username)
    await page.goto(f"{hub.url}/operator/")
    await page.wait_for_selector("#not-operator:not([hidden])")
    assert await page.locator("#new-call").is_hidden()
    assert await page.locator(".op-main").is_hidden()
    assert await page.locator("#not-operator-link").get_attribute("href") == landing
    await page.keyboard.press("n")  # the new-call hotkey does nothing either
    assert await page.locator("#create[open]").count() == 0
    if username == "supervisor":
        await page.screenshot(path=artifact("operator-refuses-supervisor-1366.png"))
    await page.click("#not-operator-link")
    await page.wait_for_url(f"**{landing}**")
