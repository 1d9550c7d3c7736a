"""The operator console in a real Chromium: intake through the form, live board updates, escalation alarm,
review and close, and a cut connection that resumes without reloading and without duplicates.
Also a unit test of console/shared/conn.js (cursor de-duplication, outbox) against a fake WebSocket."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import pytest

from dispatch.cli.client import HubClient
from tests.conftest import Hub, artifact, browser_login
from tests.helpers import assignment_of, new_call, post

pytestmark = pytest.mark.browser

LIVE = "#conn[data-status=live]"


async def wait_live(page: Any, timeout: float = 15_000) -> None:
    await page.wait_for_selector(LIVE, timeout=timeout)


async def open_calls(hub: Hub) -> list[dict[str, Any]]:
    op = await hub.login("op1.yiqiao")
    async with op:
        res = await op.get("/api/v1/calls", params={"open": "true"})
        res.raise_for_status()
        calls: list[dict[str, Any]] = res.json()["calls"]
        return calls


async def get_call(hub: Hub, call_id: str) -> dict[str, Any]:
    op = await hub.login("op1.yiqiao")
    async with op:
        res = await op.get(f"/api/v1/calls/{call_id}")
        res.raise_for_status()
        data: dict[str, Any] = res.json()
        return data


def shown(number: str) -> str:
    """A yiqiao call number as the consoles show it: YIQIAO-2026-000001 → 义桥-2026-000001."""
    assert number.startswith("YIQIAO-"), number
    return "义桥-" + number.removeprefix("YIQIAO-")


async def test_operator_joint_call_end_to_end(browser: Any, hub: Hub) -> None:
    page = await browser_login(browser, hub, "op1.yiqiao")
    assert page.url.endswith("/operator/")
    await wait_live(page)
    # A marker that only survives if the page is never reloaded or navigated away from.
    await page.evaluate("""() => {
        window.__marker = "kept"; window.__seqs = [];
        window.xianghu.conn.addEventListener("event", (e) => window.__seqs.push([e.detail.township_id, e.detail.seq]));
    }""")
    await page.wait_for_selector("#presence li[data-target=police]")

    # -- 问 → 派: the form, keyboard only after the first click; a bad phone is refused by the field.
    await page.keyboard.press("n")
    await page.wait_for_selector("#create[open]")
    await page.select_option("#c-category", "parking")  # routing pre-selects police + transport
    checked = await page.eval_on_selector_all("#c-targets input:checked", "els => els.map(e => e.value)")
    assert sorted(checked) == ["police", "transport"]
    await page.check("#create input[name=priority][value=urgent]")
    await page.fill("#c-address", "义桥镇幸福路12号")
    await page.fill("#c-description", "晚高峰车辆堵住消防通道")
    await page.fill("#c-reporter", "王小明")
    await page.fill("#c-phone", "12ab")
    await page.press("#c-phone", "Enter")
    err = page.locator('.field-error[data-for="reporter_phone"]')
    await err.wait_for(state="visible")
    # next to the field, in Chinese, without its name
    assert (await err.text_content() or "").startswith("最多 20 位数字")
    assert await page.locator("#create[open]").count() == 1
    await page.screenshot(path=artifact("operator-create-form.png"))
    await page.fill("#c-phone", "13812345678")
    await page.press("#c-phone", "Enter")
    await page.wait_for_selector("#create", state="hidden")

    row = page.locator("#rows .row", has_text="义桥镇幸福路12号")
    await row.wait_for()
    calls = await open_calls(hub)
    assert len(calls) == 1
    call = calls[0]
    assert call["priority"] == "urgent" and call["reporter_phone"] == "13812345678"
    police, transport = assignment_of(call, "police"), assignment_of(call, "transport")
    await row.locator(".chip.st-dispatched").nth(1).wait_for()
    assert "停车秩序" in (await row.text_content() or "")

    # -- a liaison acknowledges one assignment: the board follows live, without a reload.
    # -- a liaison (the Python client on the same WebSocket protocol) comes online and acknowledges.
    liaison_ws = HubClient(hub.url, await hub.token("police1.yiqiao"))
    liaison = await hub.login("police1.yiqiao")
    async with liaison, liaison_ws:
        await page.wait_for_selector("#presence li.on[data-target=police]", timeout=10_000)
        assert "1" in (await page.locator("#presence li[data-target=police] .n").text_content() or "")
        await liaison_ws.command("acknowledge", {"assignment_id": police["id"]})
        await row.locator(f'.chip.st-acknowledged[data-asg="{police["id"]}"]').wait_for()
        assert await page.evaluate("window.__marker") == "kept"
        await page.screenshot(path=artifact("operator-board.png"))

        # -- the other one breaches its acknowledgement deadline on the injected clock: alarm + banner.
        sla = getattr(hub.state, "sla", None)
        if sla is None:
            pytest.skip("the SLA engine (hub.state.sla) is not running yet: cannot fire the escalation")
        hub.clock.advance(121)
        await sla.sweep_now()
        banner = page.locator("#alarms .alarm")
        await banner.first.wait_for(timeout=10_000)
        text = await banner.first.text_content() or ""
        assert shown(call["number"]) in text and "交通运输" in text, text
        await row.locator(f'.chip[data-asg="{transport["id"]}"][data-level="due"]').wait_for()
        assert await row.evaluate("el => el.classList.contains('breach')")
        assert await page.evaluate("window.xianghu.alarm.rings") >= 1
        await page.screenshot(path=artifact("operator-escalation.png"))
        # The banner stays until the operator says they saw it.
        await asyncio.sleep(0.3)
        assert await banner.count() >= 1
        await banner.first.locator("button.ack").click()
        await page.wait_for_selector("#alarms .alarm", state="detached")

        # -- the operator withdraws the breached assignment; the police report; 审 accept; 回 visit; close.
        await row.click()
        await page.wait_for_selector("#detail[open] #timeline li.ev")
        await page.click(f'#detail .asg[data-asg="{transport["id"]}"] button[data-act=withdraw]')
        await page.fill("#action-form textarea[name=reason]", "交警已到场处置，无需交通运输")
        await page.click("#action-submit")
        await page.wait_for_selector(f'#detail .asg.st-withdrawn[data-asg="{transport["id"]}"]')
        await post(liaison, f"/api/v1/assignments/{police['id']}/arrive")
        await post(liaison, f"/api/v1/assignments/{police['id']}/report_result", {"result": "已劝离车辆，通道畅通"})
    await page.wait_for_selector("#detail button[data-act=accept]")
    await page.screenshot(path=artifact("operator-detail-review.png"))
    # Buttons follow the state: no close before the review.
    assert await page.locator("#detail button[data-act=close]").count() == 0
    await page.click("#detail button[data-act=accept]")
    await page.click("#action-submit")
    await page.wait_for_selector("#detail button[data-act=return_visit]")
    await page.click("#detail button[data-act=return_visit]")
    await page.check("#action-form [data-rating] input[name^=satisfaction][value='4']")
    await page.fill("#action-form textarea[name=comment]", "满意")
    await page.click("#action-submit")
    await page.wait_for_selector("#detail button[data-act=close]")
    await page.click("#detail button[data-act=close]")
    await page.click("#action-submit")
    await page.wait_for_selector("#detail .pill.cs", state="attached")
    await page.wait_for_function("() => document.querySelector('#detail-h').textContent.includes('已结案')")
    await page.wait_for_selector(f'#rows .row[data-id="{call["id"]}"]', state="detached")  # gone from the open board
    await page.screenshot(path=artifact("operator-detail-closed.png"))

    # Timeline = the hub's timeline, every event once.
    full = await get_call(hub, call["id"])
    seqs = await page.eval_on_selector_all("#timeline li.ev", "els => els.map(e => Number(e.dataset.seq))")
    assert seqs == [e["seq"] for e in full["timeline"]]
    escalated = [e for e in full["timeline"] if e["type"] == "assignment.escalated"]
    assert escalated and await page.locator("#timeline li.ev-assignment-escalated").count() == len(escalated)
    await page.keyboard.press("Escape")
    await page.wait_for_selector("#detail", state="hidden")

    # -- the connection is cut; meanwhile the township goes on; after the cut the board resumes.
    context = page.context
    await context.set_offline(True)
    await page.wait_for_selector("#conn[data-status=offline]", timeout=10_000)
    op = await hub.login("op1.yiqiao")
    async with op, await hub.login("police1.yiqiao") as liaison2:
        created = await post(op, "/api/v1/calls", new_call(title="断线期间受理", address="义桥镇人民路8号",
                                                            targets=["police", "enforcement"]), expect=201)
        second = await get_call(hub, created["call_id"])
        await post(liaison2, f"/api/v1/assignments/{assignment_of(second, 'police')['id']}/acknowledge")
    await context.set_offline(False)
    await wait_live(page)
    row2 = page.locator(f'#rows .row[data-id="{created["call_id"]}"]')
    await row2.locator(".chip.st-acknowledged").wait_for()
    assert await page.locator(f'#rows .row[data-id="{created["call_id"]}"]').count() == 1
    assert await page.evaluate("window.__marker") == "kept"

    # Every event exactly once, gap-free (an operator sees the whole township log).
    got = await page.evaluate("window.__seqs")
    seq_list = [s for _, s in got]
    assert len(seq_list) == len(set(seq_list)), f"duplicates: {seq_list}"
    assert seq_list == list(range(seq_list[0], seq_list[0] + len(seq_list))), seq_list
    second = await get_call(hub, created["call_id"])
    assert seq_list[-1] == second["timeline"][-1]["seq"]
    await page.screenshot(path=artifact("operator-after-reconnect.png"))

    # A cut from the page itself (socket closed under it) resumes the same way.
    await page.evaluate("window.xianghu.conn._ws.close()")
    await wait_live(page)
    async with await hub.login("police1.yiqiao") as liaison3:
        await post(liaison3, f"/api/v1/assignments/{assignment_of(second, 'police')['id']}/arrive")
    await row2.locator(".chip.st-on_scene").wait_for()
    got = [s for _, s in await page.evaluate("window.__seqs")]
    assert len(got) == len(set(got))
    await context.close()


async def test_operator_rejects_a_transfer_with_a_reason_and_visits_per_department(browser: Any, hub: Hub) -> None:
    """驳回 with a reason from the drawer (the countdown continues, moved by the wait), then a joint call's return
    visit rated per department, the unsatisfied one reopened (重办)."""
    async with await hub.login("op1.yiqiao") as op:
        created = await post(op, "/api/v1/calls", new_call(address="义桥镇驳回路1号"), expect=201)
    call = await get_call(hub, created["call_id"])
    police, transport = assignment_of(call, "police"), assignment_of(call, "transport")
    async with await hub.login("transport1.yiqiao") as tr:
        await post(tr, f"/api/v1/assignments/{transport['id']}/decline", {"reason": "不属交通运输职责"})
    hub.clock.advance(300)  # five minutes waiting for the operator: not the department's

    page = await browser_login(browser, hub, "op1.yiqiao")
    await wait_live(page)
    await page.locator("#rows .row", has_text="义桥镇驳回路1号").click()
    asg = page.locator(f'#detail .asg[data-asg="{transport["id"]}"]')
    await asg.locator(".pill.st-declined").wait_for()
    assert await page.locator(f'#detail .asg[data-asg="{police["id"]}"] .role[data-role=lead]').count() == 1
    assert await asg.locator(".role[data-role=support]").count() == 1
    assert await asg.locator(".dl.review").count() == 1  # the operator's own deadline on the request
    await asg.locator("button[data-act=reject_transfer]").click()
    await page.click("#action-submit")  # no reason: refused next to the field
    await page.locator('#action-form .field-error[data-for="reason"]').filter(has_text="请填写").wait_for()
    await page.fill("#action-form textarea[name=reason]", "停车秩序属交通运输共同职责")
    await page.click("#action-submit")
    await asg.locator(".pill.st-dispatched").wait_for()
    await page.locator("#timeline li.ev-assignment-transfer_rejected", has_text="停车秩序属交通运输共同职责").wait_for()
    after = assignment_of(await get_call(hub, call["id"]), "transport")
    moved = datetime.fromisoformat(after["ack_due"]) - datetime.fromisoformat(transport["ack_due"])
    assert moved == timedelta(seconds=300)

    # 办 by both, 审 accepted; 回 per department from the drawer.
    for target, a in (("police", police), ("transport", transport)):
        async with await hub.login(f"{target}1.yiqiao") as li:
            for kind in ("acknowledge", "arrive"):
                await post(li, f"/api/v1/assignments/{a['id']}/{kind}")
            await post(li, f"/api/v1/assignments/{a['id']}/report_result", {"result": "已处理"})
    await page.click("#detail button[data-act=accept]")
    await page.click("#action-submit")
    await page.click("#detail button[data-act=return_visit]")
    tr_box = page.locator(f'#action-form [data-rating="{transport["id"]}"]')
    await tr_box.locator("input[value=false]").check()
    await tr_box.locator("input[name^=satisfaction][value='1']").check()
    await tr_box.locator("input[name^=comment]").fill("根本没人来过")
    assert await tr_box.locator("input[name=reopen]").is_checked()  # unsatisfied: reopened by default
    po_box = page.locator(f'#action-form [data-rating="{police["id"]}"]')
    await po_box.locator("input[name^=satisfaction][value='5']").check()
    assert await po_box.locator("input[name=reopen]").is_disabled()
    await page.screenshot(path=artifact("operator-visit-per-department.png"))
    await page.click("#action-submit")
    await asg.locator(".tag.reopened").wait_for()
    await asg.locator(".pill.st-on_scene").wait_for()
    await page.locator("#timeline li.ev-call-visited .rating.bad", has_text="根本没人来过").wait_for()
    done = await get_call(hub, call["id"])
    assert done["state"] == "in_progress"
    assert assignment_of(done, "police")["visit"]["satisfaction"] == 5
    reopened = assignment_of(done, "transport")
    assert reopened["reopened"] == 1 and reopened["visit"] == {**reopened["visit"], "resolved": False,
                                                               "satisfaction": 1, "comment": "根本没人来过"}
    await page.context.close()


async def test_operator_wall_display_and_english(browser: Any, hub: Hub) -> None:
    op = await hub.login("op1.yiqiao")
    async with op:
        for i, (cat, targets, prio) in enumerate([("parking", ["police", "transport"], "urgent"),
                                                  ("street_vending", ["enforcement"], "normal"),
                                                  ("flying_wire_charging", ["fire", "enforcement"], "urgent")]):
            await post(op, "/api/v1/calls", new_call(category=cat, targets=targets, priority=prio,
                                                     title=f"测试呼叫{i + 1}", address=f"义桥镇幸福路{i + 1}号"),
                       expect=201)
    page = await browser_login(browser, hub, "op1.yiqiao", viewport={"width": 2560, "height": 1440})
    await wait_live(page)  # the welcome carries the hub's (test) clock: countdowns are right from then on
    await page.wait_for_selector("#rows .row >> nth=2")
    await page.screenshot(path=artifact("operator-wall.png"))
    await page.click("#lang")
    await page.wait_for_selector("#rows .row >> nth=2")
    text = await page.locator("#rows").text_content() or ""
    assert "Parking order" in text and "Police" in text
    await page.screenshot(path=artifact("operator-english.png"))
    # Filter by department.
    await page.select_option("#f-target", "fire")
    await page.wait_for_function("() => document.querySelectorAll('#rows .row').length === 1")
    await page.evaluate("localStorage.setItem('xianghu.lang', 'zh-CN')")
    await page.context.close()


async def closed_call(hub: Hub, **overrides: Any) -> dict[str, Any]:
    """A call taken through to 结案 over REST: police only, accepted, visited, closed."""
    op = await hub.login("op1.yiqiao")
    police = await hub.login("police1.yiqiao")
    async with op, police:
        created = await post(op, "/api/v1/calls", new_call(targets=["police"], **overrides), expect=201)
        aid = assignment_of(await get_call(hub, created["call_id"]), "police")["id"]
        for step, body in (("acknowledge", {}), ("arrive", {}), ("report_result", {"result": "已处理完毕"})):
            await post(police, f"/api/v1/assignments/{aid}/{step}", body)
        await post(op, f"/api/v1/calls/{created['call_id']}/accept")
        await post(op, f"/api/v1/calls/{created['call_id']}/return_visit", {"resolved": True, "satisfaction": 5})
        closed = await post(op, f"/api/v1/calls/{created['call_id']}/close")
        assert closed["call_state"] == "closed"
    return created


async def test_operator_finds_a_closed_call_by_number_and_by_phone(browser: Any, hub: Hub) -> None:
    op = await hub.login("op1.yiqiao")
    async with op:
        earlier = await post(op, "/api/v1/calls", new_call(title="同一来电人上次反映", reporter_phone="13912348888"),
                             expect=201)
        await post(op, f"/api/v1/calls/{earlier['call_id']}/cancel", {"reason": "重复受理"})
        hub.clock.advance(3600)
        await post(op, "/api/v1/calls", new_call(title="别人的来电", reporter_phone="13800001111"), expect=201)
    target = await closed_call(hub, title="昨天的噪音投诉", address="义桥镇和平街3号", reporter_phone="13912348888")
    number = shown(target["number"])
    assert target["number"] == "YIQIAO-2026-000003"  # gap-free, consecutive from 1 this year

    page = await browser_login(browser, hub, "op1.yiqiao")
    await wait_live(page)
    await page.wait_for_selector("#rows .row")
    assert await page.locator(f'#rows .row[data-id="{target["call_id"]}"]').count() == 0  # not on the board

    # -- 历史 from the header: find it by its number as shown on screen (义桥-2026-000003).
    await page.click("#view-history")
    await page.wait_for_selector("#history:not([hidden]) #h-rows tr")
    assert await page.locator(".board-wrap").is_hidden()
    await page.fill("#h-q", number)
    await page.press("#h-q", "Enter")
    await page.wait_for_function("""(n) => { const rows = document.querySelectorAll('#h-rows tr');
        return rows.length === 1 && rows[0].textContent.includes(n); }""", arg=number)
    row = page.locator(f'#h-rows tr[data-id="{target["call_id"]}"]')
    assert "已结案" in (await row.text_content() or "")
    await page.screenshot(path=artifact("operator-history.png"))

    # Opening it shows the drawer read-only, with the whole timeline and the repeat-caller badge.
    await row.click()
    await page.wait_for_selector("#detail[open] #timeline li.ev-call-closed")
    assert number in (await page.locator("#detail-h").text_content() or "")
    assert await page.locator("#detail [data-act]").count() == 0
    badge = page.locator("#detail .repeat")
    assert "此前 1 次" in (await badge.text_content() or "")
    await page.screenshot(path=artifact("operator-history-detail.png"))

    # -- the badge looks the phone up: both calls from that number, the cancelled one included.
    await badge.click()
    await page.wait_for_selector("#detail", state="hidden")
    assert await page.input_value("#h-phone") == "13912348888"
    await page.wait_for_function("() => document.querySelectorAll('#h-rows tr').length === 2")

    # -- by phone as the consoles show it (masked) and by its last four digits, with a state filter.
    await page.click("#h-reset")
    for query in ("139****8888", "8888"):
        await page.fill("#h-phone", query)
        await page.press("#h-phone", "Enter")
        await page.wait_for_function("""(id) => { const rows = [...document.querySelectorAll('#h-rows tr')];
            return rows.length === 2 && rows.some((r) => r.dataset.id === id); }""", arg=target["call_id"])
    await page.select_option("#h-state", "closed")
    await page.click("#history-form button[type=submit]")
    await page.wait_for_function("""(id) => { const rows = [...document.querySelectorAll('#h-rows tr')];
        return rows.length === 1 && rows[0].dataset.id === id; }""", arg=target["call_id"])
    # A date range that ends before the call finds nothing; a query the hub refuses says why.
    await page.fill("#h-until", "2026-11-01")
    await page.click("#history-form button[type=submit]")
    await page.wait_for_selector("#h-empty:not([hidden])")
    await page.fill("#h-until", "")
    await page.fill("#h-phone", "12")
    await page.click("#history-form button[type=submit]")
    await page.wait_for_function("() => document.querySelector('#h-error').textContent.includes('后 4 位')")

    # -- back to the board from the header.
    await page.click("#view-board")
    await page.wait_for_selector(".board-wrap:not([hidden]) #rows .row")
    assert await page.locator("#history").is_hidden()
    await page.context.close()



async def test_history_pages_through_the_township_calls(browser: Any, hub: Hub) -> None:
    op = await hub.login("op1.yiqiao")
    async with op:
        for i in range(52):
            await post(op, "/api/v1/calls", new_call(title=f"第{i + 1}件", targets=[]), expect=201)
            hub.clock.advance(1)
    page = await browser_login(browser, hub, "op1.yiqiao")
    await page.goto(f"{hub.url}/operator/#history")
    await page.wait_for_function("() => document.querySelectorAll('#h-rows tr').length === 50")
    first = await page.eval_on_selector_all("#h-rows tr td.num", "els => els.map(e => e.textContent)")
    assert first[0] == "义桥-2026-000052" and first[-1] == "义桥-2026-000003"  # newest first
    assert await page.is_disabled("#h-prev") and not await page.is_disabled("#h-next")
    await page.click("#h-next")
    await page.wait_for_function("() => document.querySelectorAll('#h-rows tr').length === 2")
    rest = await page.eval_on_selector_all("#h-rows tr td.num", "els => els.map(e => e.textContent)")
    assert rest == ["义桥-2026-000002", "义桥-2026-000001"]
    assert "2" in (await page.text_content("#h-page") or "") and await page.is_disabled("#h-next")
    await page.click("#h-prev")
    await page.wait_for_function("() => document.querySelectorAll('#h-rows tr').length === 50")
    await page.context.close()


CONN_UNIT = r"""
async () => {
  const { encode, decode } = await import("/vendor/msgpack/index.mjs");
  const sockets = [];
  class FakeWS extends EventTarget {
    static OPEN = 1;
    constructor(url, proto) { super(); this.url = url; this.proto = proto; this.readyState = 1; this.sent = [];
      sockets.push(this); }
    send(data) { this.sent.push(decode(data)); }
    close(code = 1006) { this.readyState = 3; setTimeout(() => this.onclose && this.onclose({ code }), 0); }
    push(msg) {
      const u = encode(msg);
      this.onmessage({ data: u.buffer.slice(u.byteOffset, u.byteOffset + u.byteLength) });
    }
  }
  const RealWS = window.WebSocket;
  window.WebSocket = FakeWS;
  const key = "test.conn." + Math.random();
  const { Connection } = await import("/shared/conn.js");
  const out = {};
  const c = new Connection({ storageKey: key, token: "tok" });
  const seen = [], resyncs = [];
  c.addEventListener("event", (e) => seen.push(e.detail.seq));
  c.addEventListener("resync", (e) => resyncs.push(e.detail.reason));
  c.start();
  const ws1 = sockets[0];
  out.url = ws1.url; out.proto = ws1.proto;
  const welcome = { type: "welcome", protocol: 1, server_time: Date.now(),
    user: { id: 7, name: "x", role: "operator" },
    scope: { role: "operator", township_ids: [10], target: null, read_only: false }, heads: [[10, 5]], epoch: "e1",
    limits: { heartbeat_s: 20, max_frame_bytes: 65536, rate_per_s: 20, burst: 40, outbox_frames: 1000 } };
  ws1.push(welcome);
  out.status = c.status;
  out.subscribe1 = ws1.sent[0];
  const ev = (seq) => ({ type: "event", township_id: 10, seq, event_type: "call.noted", call_id: "c",
    assignment_id: null, at: Date.now(), actor: { id: 1, name: "a", role: "operator" }, call_state: "dispatched",
    assignment_state: null, body: {} });
  for (const s of [6, 6, 5, 7, 7]) ws1.push(ev(s));
  ws1.push({ type: "ping", nonce: 3 });
  out.pong = ws1.sent.find((m) => m.type === "pong");
  const p1 = c.command("note", { call_id: "c", text: "a" });
  out.storedBeforeAnswer = JSON.parse(localStorage.getItem(key + ".outbox")).map((x) => x.name);
  const p2 = c.command("note", { call_id: "c", text: "b" });
  out.commandsOnWs1 = ws1.sent.filter((m) => m.type === "command").map((m) => m.args.text);
  ws1.close(1006);
  await new Promise((r) => setTimeout(r, 1200));  // backoff 0.25–0.5 s
  const ws2 = sockets[1];
  ws2.push({ ...welcome, heads: [[10, 8]] });
  out.subscribe2 = ws2.sent[0];
  const resent = ws2.sent.filter((m) => m.type === "command");
  out.resentIds = resent.map((m) => m.command_id);
  out.sameIds = JSON.stringify(resent.map((m) => m.command_id)) ===
    JSON.stringify(JSON.parse(localStorage.getItem(key + ".outbox")).map((x) => x.command_id));
  ws2.push(ev(7)); ws2.push(ev(8));
  ws2.push({ type: "result", command_id: resent[0].command_id, result: { seq: 9 } });
  ws2.push({ type: "error", command_id: resent[1].command_id, code: "validation", message: "text: too long",
             field: "args.text" });
  out.r1 = await p1;
  out.r2 = await p2.then(() => null, (e) => e);
  out.pending = c.pending().map((x) => [x.state, x.error && x.error.code]);
  c.dismiss(resent[1].command_id);
  out.pendingAfterDismiss = c.pending().length;
  out.seen = seen; out.resyncs = resyncs;
  c.stop();
  const again = new Connection({ storageKey: key });
  out.cursorAfterReload = again.cursor(10);
  window.WebSocket = RealWS;
  return out;
}
"""


async def test_conn_js_dedup_and_outbox(browser: Any, hub: Hub) -> None:
    page = await browser_login(browser, hub, "op1.yiqiao")
    await page.goto(f"{hub.url}/login")  # same origin, and no console opening sockets of its own
    out = await page.evaluate(CONN_UNIT)
    assert out["url"].endswith("/ws?token=tok&lang=zh-CN") and out["proto"] == "xianghu.v1"
    assert out["status"] == "live"
    assert out["subscribe1"] == {"type": "subscribe", "cursors": [[10, 5]], "epoch": "e1"}
    assert out["resyncs"] == ["no_cursor"]
    assert out["pong"] == {"type": "pong", "nonce": 3}
    assert out["storedBeforeAnswer"] == ["note"]
    assert out["commandsOnWs1"] == ["a", "b"]  # each once
    assert out["subscribe2"] == {"type": "subscribe", "cursors": [[10, 7]], "epoch": "e1"}
    assert out["sameIds"] and len(out["resentIds"]) == 2
    assert out["seen"] == [6, 7, 8]
    assert out["r1"] == {"seq": 9}
    assert out["r2"] == {"code": "validation", "message": "text: too long", "field": "args.text"}
    assert out["pending"] == [["refused", "validation"]]
    assert out["pendingAfterDismiss"] == 0
    assert out["cursorAfterReload"] == 8
    await page.context.close()


async def test_operator_sees_overdue_and_escalated_work_and_filters_it(browser: Any, hub: Hub) -> None:
    start = hub.clock.now()
    async with await hub.login("op1.yiqiao") as op:
        late = await post(op, "/api/v1/calls", new_call(title="超时的呼叫", targets=["police"]), expect=201)
        await post(op, "/api/v1/calls", new_call(title="按时的呼叫", targets=["market"], priority="normal"), expect=201)
        late_a = assignment_of(await get_call(hub, late["call_id"]), "police")["id"]
    page = await browser_login(browser, hub, "op1.yiqiao")
    await wait_live(page)
    await page.wait_for_selector("#rows .row >> nth=1")
    assert await page.locator("#rows .mark-overdue:visible").count() == 0
    # the urgent call's response deadline (120 s) passes on the hub's clock; level 1 and, at +120 s, level 2
    hub.clock.advance(250)
    assert await hub.state.sla.settled() == 2
    row = page.locator(f'#rows .row[data-id="{late["call_id"]}"]')
    await row.locator('.mark-esc[data-level="2"]').wait_for(timeout=10_000)  # both events have arrived
    assert await row.locator(".mark-esc").inner_text() == "二级督办"
    over = row.locator(".mark-overdue")
    await over.wait_for(state="visible")
    assert (await over.inner_text()).startswith("超时 2分"), await over.inner_text()  # 130 s past, live
    # the filter: only the overdue (and the escalated) call
    await page.select_option("#f-flag", "overdue")
    await page.wait_for_function("() => document.querySelectorAll('#rows .row').length === 1")
    assert "超时的呼叫" in (await page.locator("#rows").inner_text())
    await page.select_option("#f-flag", "escalated")
    await page.wait_for_function("() => document.querySelectorAll('#rows .row').length === 1")
    await page.select_option("#f-flag", "")
    await page.wait_for_function("() => document.querySelectorAll('#rows .row').length === 2")
    # the drawer: the department's overdue time on each escalation (not the hub's delay), and the live marker
    await row.click()
    esc = page.locator("#timeline li.ev-assignment-escalated")
    await esc.nth(1).wait_for()
    texts = [await esc.nth(i).inner_text() for i in range(2)]
    assert "一级督办（超时 2分）" in texts[0] and "二级督办（超时 2分）" in texts[1], texts
    await page.locator(f'#detail .asg[data-asg="{late_a}"] .mark-overdue').wait_for(state="visible")
    await page.screenshot(path=artifact("operator-overdue.png"))
    # the police phone was offline and had acknowledged 5 s before the deadline: both rungs fell due after
    # the acted time, so neither is the department's; the markers go
    async with await hub.login("police1.yiqiao") as police:
        await post(police, f"/api/v1/assignments/{late_a}/acknowledge",
                   {"acted_at": (start + timedelta(seconds=115)).isoformat()})
    ack = page.locator("#timeline li.ev-assignment-acknowledged")
    await ack.wait_for()
    assert "实际" in await ack.inner_text() and "收到" in await ack.inner_text()
    await page.wait_for_function("() => document.querySelectorAll('#timeline .voided').length === 2")
    await page.wait_for_selector("#alarms .alarm", state="detached")  # their alarms go too
    await page.wait_for_selector(f'#detail .asg[data-asg="{late_a}"] .mark-esc', state="detached")
    await page.keyboard.press("Escape")
    await row.locator(".mark-esc").wait_for(state="detached")
    assert not await row.locator(".mark-overdue").is_visible()  # the arrival deadline (1200 s) is still ahead
    await page.context.close()


# -- 值班, the dispatch warning, shared alarms, 催办 and the channels' warning (issue #15) ---------------------

async def live_operator(browser: Any, hub: Hub, username: str) -> Any:
    page = await browser_login(browser, hub, username)
    page.on("pageerror", lambda e: print("PAGEERROR", username, e))
    await wait_live(page)
    return page


async def test_operators_share_an_escalation_alarm_one_takes_it(browser: Any, hub: Hub) -> None:
    async with await hub.login("op1.yiqiao") as op:
        created = await post(op, "/api/v1/calls", new_call(address="义桥镇共享告警路1号"), expect=201)
    call = await get_call(hub, created["call_id"])
    police, transport = assignment_of(call, "police"), assignment_of(call, "transport")
    one = await live_operator(browser, hub, "op1.yiqiao")
    two = await live_operator(browser, hub, "op2.yiqiao")
    for page in (one, two):
        await page.locator(f'#rows .row[data-id="{call["id"]}"]').wait_for()

    # both departments miss the response deadline: both consoles of the township sound and show both alarms
    hub.clock.advance(121)
    assert await hub.state.sla.settled() == 2
    for page in (one, two):
        await page.wait_for_function("() => document.querySelectorAll('#alarms .alarm:not(.handled)').length === 2")
        assert await page.evaluate("window.xianghu.alarm.sounding && window.xianghu.alarm.rings >= 1")

    # op2 takes the transport alarm: it stops on both consoles, each saying who took it; police still sounds
    await two.click(f'#alarms .alarm[data-asg="{transport["id"]}"] button.take')
    for page in (one, two):
        taken = page.locator(f'#alarms .alarm.handled[data-asg="{transport["id"]}"]')
        await taken.wait_for()
        assert "已由 义桥镇操作员2 处理" in await taken.inner_text()
        assert await page.locator(f'#alarms .alarm:not(.handled)[data-asg="{police["id"]}"]').count() == 1
        assert await page.evaluate("window.xianghu.alarm.sounding")
    await one.screenshot(path=artifact("operator-alarm-taken.png"))
    handled = [e for e in (await get_call(hub, call["id"]))["timeline"] if e["type"] == "assignment.alarm_handled"]
    assert [(e["assignment_id"], e["actor"]["name"], e["body"]) for e in handled] == [
        (transport["id"], "义桥镇操作员2", {"deadline_kind": "ack", "level": 1})]

    # the police respond: their alarm has moved on and clears itself everywhere; the sound stops
    async with await hub.login("police1.yiqiao") as liaison:
        await post(liaison, f"/api/v1/assignments/{police['id']}/acknowledge")
    for page in (one, two):
        await page.locator(f'#alarms .alarm[data-asg="{police["id"]}"]').wait_for(state="detached")
        await page.wait_for_function("() => !window.xianghu.alarm.sounding")
    # the taken one goes after a while; the drawer's timeline says who took it
    await one.locator(f'#rows .row[data-id="{call["id"]}"]').click()
    ev = one.locator("#timeline li.ev-assignment-alarm_handled")
    await ev.wait_for()
    assert "义桥镇操作员2" in await ev.inner_text() and "一级督办" in await ev.inner_text()
    await one.context.close()
    await two.context.close()


async def test_a_withdrawn_assignment_and_a_cancelled_call_clear_their_alarms(browser: Any, hub: Hub) -> None:
    async with await hub.login("op1.yiqiao") as op:
        first = await post(op, "/api/v1/calls", new_call(targets=["police"], address="义桥镇撤回路1号"), expect=201)
        second = await post(op, "/api/v1/calls", new_call(targets=["market"], address="义桥镇撤销路2号"), expect=201)
    page = await live_operator(browser, hub, "op1.yiqiao")
    await page.locator(f'#rows .row[data-id="{second["call_id"]}"]').wait_for()
    hub.clock.advance(121)
    assert await hub.state.sla.settled() == 2
    await page.wait_for_function("() => document.querySelectorAll('#alarms .alarm').length === 2")
    police = assignment_of(await get_call(hub, first["call_id"]), "police")
    async with await hub.login("op2.yiqiao") as op2:  # another operator acts on them
        await post(op2, f"/api/v1/assignments/{police['id']}/withdraw", {"reason": "重复派单"})
        await page.wait_for_function("() => document.querySelectorAll('#alarms .alarm').length === 1")
        await post(op2, f"/api/v1/calls/{second['call_id']}/cancel", {"reason": "群众已自行解决"})
    await page.wait_for_selector("#alarms .alarm", state="detached")
    assert not await page.evaluate("window.xianghu.alarm.sounding")
    await page.context.close()


async def test_duty_panel_names_each_departments_liaisons_with_phones(browser: Any, hub: Hub, conn: Any) -> None:
    await conn.execute("update users set phone = '13912340001' where username = 'police1.yiqiao'")
    await conn.execute("update users set phone = null where username = 'police2.yiqiao'")
    page = await live_operator(browser, hub, "op1.yiqiao")
    police = page.locator('#presence li[data-target="police"]')
    people = police.locator("li.person")
    await people.nth(1).wait_for()
    names = [await people.nth(i).locator(".pn").inner_text() for i in range(2)]
    assert names == ["义桥镇公安联络员1", "义桥镇公安联络员2"]  # the team lead first
    assert await people.nth(0).locator(".lead-tag").inner_text() == "带班组长"
    tel = people.nth(0).locator("a.tel")
    assert await tel.inner_text() == "13912340001" and await tel.get_attribute("href") == "tel:13912340001"
    assert await people.nth(1).locator(".tel").count() == 0  # no phone on record
    # police1 opens the liaison page: the department and the person are online
    async with HubClient(hub.url, await hub.token("police1.yiqiao")):
        await police.locator("li.person.on", has_text="义桥镇公安联络员1").wait_for()
        await police.locator(".th .n", has_text="1 人在线").wait_for()  # the count from the presence frame
        assert await police.locator("li.person.off", has_text="义桥镇公安联络员2").count() == 1
        await page.screenshot(path=artifact("operator-duty.png"))
    await police.locator("li.person.off", has_text="义桥镇公安联络员1").wait_for()
    # the names fold away (remembered), the counts stay
    await page.click("#duty-fold")
    await police.locator("li.person").first.wait_for(state="detached")
    await police.locator(".th .n", has_text="无人在线").wait_for()
    await page.reload()
    await wait_live(page)
    assert await page.locator("#presence li.person").count() == 0
    await page.context.close()


async def test_dispatching_to_a_department_with_nobody_online_warns_first(browser: Any, hub: Hub) -> None:
    page = await live_operator(browser, hub, "op1.yiqiao")
    async with HubClient(hub.url, await hub.token("police1.yiqiao")):
        await page.wait_for_selector("#presence li.on[data-target=police]")
        await page.click("#new-call")
        await page.select_option("#c-category", "parking")  # police (online) and transport (nobody)
        warning = page.locator("#c-offline")
        await warning.wait_for(state="visible")
        text = await warning.inner_text()
        assert text.startswith("交通运输 当前无人在线") and "公安" not in text, text
        assert "上线后" in text  # no SMS or push on this hub: said as it is
        await page.screenshot(path=artifact("operator-offline-warning.png"))
        await page.uncheck('#c-targets input[value="transport"]')
        await warning.wait_for(state="hidden")
        await page.check('#c-targets input[value="transport"]')
        await warning.wait_for(state="visible")
        # a warning, not a block
        await page.fill("#c-address", "义桥镇无人在线路1号")
        await page.click("#create-submit")
        await page.wait_for_selector("#create", state="hidden")
        row = page.locator("#rows .row", has_text="义桥镇无人在线路1号")
        await row.wait_for()
        # the drawer's 增派部门 warns the same way
        await row.click()
        await page.click("#detail button[data-act=dispatch]")
        await page.check('#action-form input[name=targets][value="fire"]')
        more = page.locator("#action-form [data-offline]")
        await more.wait_for(state="visible")
        assert (await more.inner_text()).startswith("消防 当前无人在线")
    await page.context.close()


async def test_operator_console_says_when_sms_does_not_go_out(browser: Any, cfg: Any, dsn: str, clock: Any,
                                                               conn: Any) -> None:
    """With the SMS gateway unreachable the console says so at once (a notice.failed event), the drawer's
    timeline shows each delivery in plain words, and the warning ends when the messages go out."""
    from tests.sms_gateway import sms_hub

    for username, phone in (("police1.yiqiao", "13912340001"), ("police2.yiqiao", "13912340002")):
        await conn.execute("update users set phone = $1 where username = $2", phone, username)
    async with sms_hub(cfg, dsn, clock) as (hub, gateway):
        page = await live_operator(browser, hub, "op1.yiqiao")
        # nobody of the police online: told by SMS, the console says so while dispatching
        await page.click("#new-call")
        await page.select_option("#c-category", "parking")
        await page.uncheck('#c-targets input[value="transport"]')
        warning = page.locator("#c-offline")
        await warning.wait_for(state="visible")
        assert await warning.inner_text() == "公安 当前无人在线，将通过短信通知"
        await page.fill("#c-address", "义桥镇短信路1号")
        await page.click("#create-submit")
        row = page.locator("#rows .row", has_text="义桥镇短信路1号")
        await row.wait_for()
        await hub.state.notify.settled()  # the gateway is down: both messages fail once and wait to retry

        banner = page.locator('#notify-status .notify-warn[data-channel="sms"]')
        await banner.wait_for(timeout=10_000)
        text = await banner.inner_text()
        assert "短信通知发送异常" in text and "2 条重试中" in text and "ConnectError" in text, text
        await row.click()
        failed = page.locator("#timeline li.ev-notice-failed")
        await failed.nth(1).wait_for()
        lines = sorted([await failed.nth(i).locator(".det").inner_text() for i in range(2)])
        assert lines[0].startswith("公安 短信 发送失败：ConnectError"), lines
        assert lines[0].endswith("，将重试 · 义桥镇公安联络员1（联络员） 派单"), lines
        await page.screenshot(path=artifact("operator-sms-failing.png"))

        # the gateway is back: the retries go out, the timeline says so, the warning goes
        await gateway.start()
        hub.clock.advance(3)
        assert await hub.state.notify.settled() == 2
        sent = page.locator("#timeline li.ev-notice-sent")
        await sent.nth(1).wait_for()
        lines = sorted([await sent.nth(i).locator(".det").inner_text() for i in range(2)])
        assert lines == ["公安 已通过 短信 通知 义桥镇公安联络员1（联络员） 派单",
                         "公安 已通过 短信 通知 义桥镇公安联络员2（联络员） 派单"], lines
        await banner.wait_for(state="detached", timeout=10_000)
        await page.context.close()
