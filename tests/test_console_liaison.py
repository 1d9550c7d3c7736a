"""The liaison mobile page in real Chromium on a phone-sized screen: a call pushed by the operator reaches
the department's liaison (and only that department), one tap acknowledges, actions taken offline are
sent once and in order when the phone is back online, and a decline reaches the operator as a transfer
request."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.conftest import Hub, artifact, browser_login
from tests.helpers import assignment_of, new_call, post

pytestmark = pytest.mark.browser

PHONE = {"width": 360, "height": 740}
SCENE = {"latitude": 35.7254, "longitude": 116.4897}
# Records what the page asked the phone to do (sound, vibration, notification) so the test can see it.
SPY = """
window.__xianghuAlerts = [];
navigator.vibrate = (pattern) => { window.__xianghuAlerts.push({ kind: "vibrate", pattern }); return true; };
"""


async def open_liaison(browser: Any, hub: Hub, username: str, **context_args: Any) -> Any:
    page = await browser_login(browser, hub, username, viewport=PHONE, **context_args)
    await page.context.add_init_script(SPY)
    page.on("console", lambda m: print("CONSOLE", username, m.type, m.text))
    page.on("pageerror", lambda e: print("PAGEERROR", username, e))
    await page.reload()
    await page.wait_for_selector("body[data-ready='1']")
    await page.wait_for_selector("#conn[data-status='live']")
    return page


# Chrome's autoplay policy as on a phone: an AudioContext made before the person touched the page is
# suspended, and resume() does nothing, until a tap (headless Chromium lets it run).
AUTOPLAY_NEEDS_A_TAP = """
(() => {
  let tapped = false;  // a real tap on this document (Chrome keeps userActivation across a same-origin reload)
  const tap = (e) => { if (e.isTrusted) tapped = true; };
  for (const type of ["pointerdown", "keydown"]) addEventListener(type, tap, true);
  const Real = window.AudioContext;
  window.AudioContext = class extends Real {
    get state() { return tapped ? super.state : "suspended"; }
    resume() { return tapped ? super.resume() : Promise.resolve(); }
  };
})();
"""


def card(page: Any, title: str) -> Any:
    return page.locator("#active .card", has_text=title)


async def test_liaison_receives_acknowledges_and_works_offline(hub: Hub, browser: Any) -> None:
    page = await open_liaison(browser, hub, "police1.yiqiao", permissions=["geolocation", "notifications"],
                              geolocation=SCENE)
    context = page.context
    other = await open_liaison(browser, hub, "market1.yiqiao")
    op = await hub.login("op1.yiqiao")
    async with op:
        await page.screenshot(path=artifact("liaison-empty.png"))
        title = "幸福路消防通道被占用"
        created = await post(op, "/api/v1/calls", new_call(title=title, targets=["police", "transport"]), expect=201)
        call_id = created["call_id"]
        detail = (await op.get(f"/api/v1/calls/{call_id}")).json()
        police_a = assignment_of(detail, "police")["id"]

        # pushed over the WebSocket: on top, with the time left to acknowledge in large type, ringing
        item = card(page, title)
        await item.wait_for(timeout=10_000)
        assert await item.get_attribute("data-state") == "dispatched"
        assert "义桥-2026-000001" in await item.inner_text()  # the number as every console shows it
        assert await item.locator(".role[data-role=lead]").inner_text() == "主办"  # the first target leads
        countdown = await item.locator(".due.large .due-time").inner_text()
        assert re.fullmatch(r"0[01]:\d\d|02:00", countdown), countdown
        assert await page.locator("#ringing").is_visible()
        alerts = await page.evaluate("window.__xianghuAlerts")
        kinds = {a["kind"] for a in alerts}
        assert {"sound", "vibrate"} <= kinds, alerts
        # a system notification through the service worker (notification permission granted to the page)
        await page.wait_for_function("() => window.__xianghuAlerts.some((a) => a.kind === 'notification')")
        shown = await page.evaluate("""async () => {
            const reg = await navigator.serviceWorker.getRegistration('/liaison/');
            return (await reg.getNotifications()).map((n) => [n.title, n.body, n.tag]);
        }""")
        # tagged like the hub's Web Push message about the same dispatch (sw.js), so one replaces the other
        assert any(tag == f"{call_id}:dispatched" and title in body for _t, body, tag in shown), shown
        await page.screenshot(path=artifact("liaison-new-call.png"))

        # one tap: 响应
        await item.locator("button[data-act='acknowledge']").click()
        await page.wait_for_selector("#pending", state="hidden")
        await page.wait_for_function(
            "() => document.querySelector(\"#active .card\").dataset.state === 'acknowledged'")
        assert not await page.locator("#ringing").is_visible()
        a = assignment_of((await op.get(f"/api/v1/calls/{call_id}")).json(), "police")
        assert a["state"] == "acknowledged"

        # offline: 报到 (with the location the liaison allowed) and 办结 wait on the phone
        await context.set_offline(True)
        await page.wait_for_selector("#conn[data-status='offline']")
        assert await page.locator("#offline-banner").is_visible()
        await item.locator("button[data-act='arrive']").click()
        await page.wait_for_selector("#pending-list li[data-name='arrive'][data-state='pending']")
        await item.locator("button[data-act='report_result']").click()
        await page.locator("#report-sheet .chip").first.click()
        await page.fill("#report-text", "已劝离占道车辆，消防通道恢复畅通")
        await page.screenshot(path=artifact("liaison-report-sheet.png"))
        await page.locator("#report-sheet button[type=submit]").click()
        await page.wait_for_selector("#pending-list li[data-name='report_result'][data-state='pending']")
        assert await page.locator("#pending-list li").count() == 2
        assert await item.get_attribute("data-state") == "reported"  # what the phone will have done
        await page.screenshot(path=artifact("liaison-offline-pending.png"))
        a = assignment_of((await op.get(f"/api/v1/calls/{call_id}")).json(), "police")
        assert a["state"] == "acknowledged"  # nothing reached the township yet

        # the phone reloads while still offline: the installed shell and the queued actions survive
        await page.reload()
        await page.wait_for_selector("body[data-ready='1']")
        assert await page.locator("#pending-list li").count() == 2
        assert await card(page, title).count() == 1

        # five minutes pass on the hub's clock before the signal comes back
        tapped = hub.clock.now()
        hub.clock.advance(300)
        # back online: each action reaches the township exactly once, in order
        await context.set_offline(False)
        await page.wait_for_selector("#conn[data-status='live']", timeout=15_000)
        await page.wait_for_selector("#pending", state="hidden", timeout=15_000)
        await page.wait_for_function(
            "() => document.querySelector(\"#active .card\").dataset.state === 'reported'")
        detail = (await op.get(f"/api/v1/calls/{call_id}")).json()
        mine = [e for e in detail["timeline"] if e["assignment_id"] == police_a]
        done = [e["type"] for e in mine if e["type"] in
                ("assignment.acknowledged", "assignment.arrived", "assignment.reported")]
        assert done == ["assignment.acknowledged", "assignment.arrived", "assignment.reported"], done
        arrived = next(e for e in mine if e["type"] == "assignment.arrived")
        assert arrived["body"]["lat"] == pytest.approx(SCENE["latitude"])
        # stamped at the tap on the hub's clock (the phone corrects its own by the welcome's server_time):
        # the clocks count from the taps, not from the reconnection five minutes later
        reported = next(e for e in mine if e["type"] == "assignment.reported")
        received = tapped + timedelta(seconds=300)
        for e in (arrived, reported):
            acted = datetime.fromisoformat(e["body"]["acted_at"])
            assert tapped <= acted < tapped + timedelta(seconds=120), e["body"]
            assert datetime.fromisoformat(e["body"]["received_at"]) == received
            assert "acted_at_adjusted" not in e["body"]
        assert reported["body"]["acted_at"] >= arrived["body"]["acted_at"]
        police_now = assignment_of(detail, "police")
        assert police_now["on_scene_at"] == arrived["body"]["acted_at"]
        assert police_now["reported_at"] == reported["body"]["acted_at"]
        assert assignment_of(detail, "police")["result"] == "已劝离占道车辆，消防通道恢复畅通"

        # the detail with its timeline, the reporter's phone masked for the liaison
        await card(page, title).locator(".card-title").click()
        await page.wait_for_selector("#detail .timeline li[data-type='assignment.reported']")
        text = await page.locator("#detail").inner_text()
        assert "138****5678" in text and "13812345678" not in text
        assert "义桥镇幸福路12号" in text
        await page.screenshot(path=artifact("liaison-detail.png"), full_page=True)

        # another department never sees it, neither pushed nor over REST
        assert await other.locator("#active .card").count() == 0
        assert title not in await other.locator("body").inner_text()
        market = await hub.login("market1.yiqiao")
        async with market:
            assert (await market.get(f"/api/v1/calls/{call_id}")).status_code == 404
            listed = (await market.get("/api/v1/calls")).json()["calls"]
            assert call_id not in {c["id"] for c in listed}
        await other.screenshot(path=artifact("liaison-other-department.png"))
    await context.close()
    await other.context.close()


async def test_liaison_declines_and_sees_a_refused_action(hub: Hub, browser: Any) -> None:
    page = await open_liaison(browser, hub, "market1.yiqiao")
    op = await hub.login("op1.yiqiao")
    async with op:
        title = "超市销售过期食品"
        created = await post(op, "/api/v1/calls", new_call(title=title, category="food_safety", targets=["market"],
                                                            priority="normal"), expect=201)
        call_id = created["call_id"]
        item = card(page, title)
        await item.wait_for(timeout=10_000)

        # 转: a reason (quick chip) and a suggested department
        await item.locator("button[data-act='decline']").click()
        await page.locator("#decline-sheet .chip").first.click()
        await page.select_option("#decline-target", "enforcement")
        await page.screenshot(path=artifact("liaison-decline-sheet.png"))
        await page.locator("#decline-sheet button[type=submit]").click()
        await page.wait_for_function(
            "() => document.querySelector(\"#active .card\").dataset.state === 'declined'")
        await page.wait_for_selector("#pending", state="hidden")
        a = assignment_of((await op.get(f"/api/v1/calls/{call_id}")).json(), "market")
        assert a["state"] == "declined"  # the operator sees a transfer request
        assert a["decline_reason"] == "不属于本部门职责"
        assert a["suggested_target"] == "enforcement"

        # the operator rejects the request (驳回): the card is back to acknowledge, its countdown running on
        await post(op, f"/api/v1/assignments/{a['id']}/reject_transfer", {"reason": "过期食品属市场监管"})
        await page.wait_for_function(
            "() => document.querySelector(\"#active .card\").dataset.state === 'dispatched'")
        rejected = page.locator(".li-alert[data-kind=rejected]")  # loudly, with the reason, until dismissed
        await rejected.wait_for()
        assert "理由：过期食品属市场监管" in await rejected.inner_text()
        assert "义桥镇操作员1" in await rejected.inner_text()
        await rejected.locator("button").click()
        await rejected.wait_for(state="detached")
        await item.locator(".due.large .due-time").wait_for()
        async with await hub.login("market1.yiqiao") as market:
            await post(market, f"/api/v1/assignments/{a['id']}/decline", {"reason": "不属于本部门职责"})
        await page.wait_for_function(
            "() => document.querySelector(\"#active .card\").dataset.state === 'declined'")

        # the operator re-routes it: it leaves the liaison's open list
        await post(op, f"/api/v1/assignments/{a['id']}/reroute", {"target": "enforcement", "reason": "占道属综合执法"})
        await page.wait_for_function(
            "() => !document.querySelector('#active .card')")

        # a new call acknowledged offline while the operator cancels it: refused on reconnect, with the reason
        second = "农贸市场无证经营"
        created = await post(op, "/api/v1/calls", new_call(title=second, category="food_safety", targets=["market"]),
                             expect=201)
        item = card(page, second)
        await item.wait_for(timeout=10_000)
        await page.context.set_offline(True)
        await page.wait_for_selector("#conn[data-status='offline']")
        await item.locator("button[data-act='acknowledge']").click()
        await page.wait_for_selector("#pending-list li[data-state='pending']")
        await post(op, f"/api/v1/calls/{created['call_id']}/cancel", {"reason": "重复诉求"})
        await page.context.set_offline(False)
        refused = page.locator("#pending-list li[data-state='refused']")
        await refused.wait_for(timeout=15_000)
        cancelled = page.locator(".li-alert[data-kind=cancelled]")  # the cancellation, missed offline, with its reason
        await cancelled.wait_for()
        assert "呼叫已撤销" in await cancelled.inner_text() and "理由：重复诉求" in await cancelled.inner_text()
        # the hub's own words: what was refused, who cancelled the call and when, the state it is in
        told = await refused.inner_text()
        assert "不能响应：该呼叫已由 " in told and "撤销（当前状态：已撤销）" in told
        await page.screenshot(path=artifact("liaison-refused.png"))
        await refused.locator("button").click()
        await page.wait_for_selector("#pending", state="hidden")
    await page.context.close()


async def test_liaison_card_shows_overdue_and_escalation(hub: Hub, browser: Any) -> None:
    page = await open_liaison(browser, hub, "police1.yiqiao")
    async with await hub.login("op1.yiqiao") as op:
        await post(op, "/api/v1/calls", new_call(title="超时未响应的呼叫", targets=["police"]), expect=201)
    item = card(page, "超时未响应的呼叫")
    await item.wait_for(timeout=10_000)
    assert not await item.locator(".mark-overdue").is_visible()
    hub.clock.advance(250)  # the response deadline (120 s) passed 130 s ago; levels 1 and 2 are written
    assert await hub.state.sla.settled() == 2
    await item.locator('.mark-esc[data-level="2"]').wait_for(timeout=10_000)
    assert await item.locator(".mark-esc").inner_text() == "二级督办"
    await item.locator(".mark-overdue").wait_for(state="visible")
    assert (await item.locator(".mark-overdue").inner_text()).startswith("超时 2分")
    # each rung re-alerts the liaison loudly, with its level, until the clock stops
    loud = page.locator(".li-alert[data-kind=escalated]")
    await loud.nth(1).wait_for()
    assert [await loud.nth(i).locator(".li-alert-title").inner_text() for i in range(2)] == [
        "⚠ 超时督办 · 二级督办", "⚠ 超时督办 · 一级督办"]  # newest first
    alerts = await page.evaluate("window.__xianghuAlerts")
    assert [a["what"] for a in alerts if a["kind"] == "loud"] == ["escalated", "escalated"]
    assert sum(a["kind"] == "sound" for a in alerts) >= 3 and any(a["kind"] == "vibrate" for a in alerts)
    await page.screenshot(path=artifact("liaison-escalated.png"))
    await item.locator("button[data-act='acknowledge']").click()  # 响应: the response clock stops, so do they
    await loud.first.wait_for(state="detached")
    await item.locator(".card-title").click()
    esc = page.locator("#detail .timeline li[data-type='assignment.escalated']")
    await esc.nth(1).wait_for()
    texts = " ".join(await esc.all_inner_texts())
    assert "响应时限超时 2分，一级督办" in texts and "响应时限超时 2分，二级督办" in texts, texts
    await page.context.close()


async def test_operators_nudge_reaches_the_liaison_loudly(hub: Hub, browser: Any) -> None:
    liaison = await open_liaison(browser, hub, "police1.yiqiao")
    async with await hub.login("op1.yiqiao") as op:
        created = await post(op, "/api/v1/calls", new_call(title="催办测试的呼叫", targets=["police"]), expect=201)
    police = assignment_of(await call_doc(hub, created["call_id"]), "police")
    item = card(liaison, "催办测试的呼叫")
    await item.wait_for(timeout=10_000)
    await item.locator("button[data-act='acknowledge']").click()
    await liaison.wait_for_function("() => document.querySelector('#active .card').dataset.state === 'acknowledged'")

    # 催办 from the operator's drawer, with a message
    operator = await browser_login(browser, hub, "op1.yiqiao")
    await operator.wait_for_selector("#conn[data-status=live]")
    await operator.locator("#rows .row", has_text="催办测试的呼叫").click()
    await operator.click(f'#detail .asg[data-asg="{police["id"]}"] button[data-act=nudge]')
    await operator.fill("#action-form textarea[name=text]", "居民再次来电，请立即到场")
    await operator.click("#action-submit")
    nudged = operator.locator("#timeline li.ev-assignment-nudged")
    await nudged.wait_for()
    assert "居民再次来电，请立即到场" in await nudged.inner_text()
    timeline = (await call_doc(hub, created["call_id"]))["timeline"]
    assert [(e["body"]["text"], e["actor"]["name"]) for e in timeline if e["type"] == "assignment.nudged"] == [
        ("居民再次来电，请立即到场", "义桥镇操作员1")]

    # the liaison hears it, with the operator's words
    loud = liaison.locator(".li-alert[data-kind=nudged]")
    await loud.wait_for(timeout=10_000)
    text = await loud.inner_text()
    assert "指挥中心催办" in text and "居民再次来电，请立即到场" in text and "义桥镇操作员1" in text, text
    assert any(a["kind"] == "loud" and a["what"] == "nudged" for a in await liaison.evaluate("window.__xianghuAlerts"))
    await liaison.screenshot(path=artifact("liaison-nudged.png"))
    await loud.locator("button").click()
    await loud.wait_for(state="detached")
    await liaison.context.close()
    await operator.context.close()


async def test_a_send_back_reaches_a_closed_page_and_survives_a_reload(hub: Hub, browser: Any) -> None:
    page = await open_liaison(browser, hub, "police1.yiqiao")
    async with await hub.login("op1.yiqiao") as op, await hub.login("police1.yiqiao") as police:
        created = await post(op, "/api/v1/calls", new_call(title="退回重办的呼叫", targets=["police"]), expect=201)
        await card(page, "退回重办的呼叫").wait_for(timeout=10_000)
        aid = assignment_of(await call_doc(hub, created["call_id"]), "police")["id"]
        for step, body in (("acknowledge", {}), ("arrive", {}), ("report_result", {"result": "已处理"})):
            await post(police, f"/api/v1/assignments/{aid}/{step}", body)
        await page.wait_for_function("() => document.querySelector('#active .card').dataset.state === 'reported'")
        # the page is closed when the operator sends the result back
        await page.goto("about:blank")
        await post(op, f"/api/v1/calls/{created['call_id']}/send_back",
                   {"assignment_ids": [aid], "reason": "现场照片缺失，请补拍后重新办结"})
    await page.goto(f"{hub.url}/liaison/")
    await page.wait_for_selector("body[data-ready='1']")
    loud = page.locator(".li-alert[data-kind=sent_back]")
    await loud.wait_for(timeout=10_000)
    assert "理由：现场照片缺失，请补拍后重新办结" in await loud.inner_text()

    # a reload (the phone restarted the app) in a browser that allows sound only after a tap: still there,
    # and a tap brings the sound back
    await page.context.add_init_script(AUTOPLAY_NEEDS_A_TAP)
    await page.reload()
    await page.wait_for_selector("body[data-ready='1']")
    await loud.wait_for()
    assert "现场照片缺失" in await loud.inner_text()
    replayed = [a for a in await page.evaluate("window.__xianghuAlerts") if a.get("replayed")]
    assert [a["what"] for a in replayed] == ["sent_back"]
    resume = page.locator("#li-alerts-resume")
    await resume.wait_for()
    assert await resume.inner_text() == "点击恢复提醒音"
    assert not await page.evaluate("window.xianghu.alerts.audioReady")
    await page.screenshot(path=artifact("liaison-sent-back-after-reload.png"))
    sounds = sum(a["kind"] == "sound" for a in await page.evaluate("window.__xianghuAlerts"))
    await resume.click()
    await resume.wait_for(state="detached")
    assert await page.evaluate("window.xianghu.alerts.audioReady")
    assert sum(a["kind"] == "sound" for a in await page.evaluate("window.__xianghuAlerts")) > sounds
    await loud.locator("button").click()
    await loud.wait_for(state="detached")
    await page.reload()
    await page.wait_for_selector("body[data-ready='1']")
    await page.wait_for_selector("#active .card")
    assert await page.locator(".li-alert").count() == 0  # dismissed stays dismissed
    await page.context.close()


async def call_doc(hub: Hub, call_id: str) -> dict[str, Any]:
    async with await hub.login("op1.yiqiao") as op:
        res = await op.get(f"/api/v1/calls/{call_id}")
        res.raise_for_status()
        doc: dict[str, Any] = res.json()
        return doc
