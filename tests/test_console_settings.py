"""The admin console's 设置 tab (console/admin/settings.js, mounted by admin.js) in real Chromium: an admin
changes the urgent acknowledge deadline and the next dispatch uses it; faults are shown next to the field in
Chinese; weights add up live; a change saved meanwhile by someone else is refused and said so."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.a11y import assert_accessible
from tests.conftest import Hub, artifact, browser_login
from tests.helpers import assignment_of, new_call, post

pytestmark = pytest.mark.browser

ACK = "[data-key='sla.within.urgent.ack']"


async def open_settings(browser: Any, hub: Hub) -> Any:
    page = await browser_login(browser, hub, "admin")
    violations: list[str] = []
    page.on("console", lambda msg: violations.append(msg.text) if "Content Security Policy" in msg.text else None)
    page.violations = violations
    await page.goto(f"{hub.url}/admin/")
    await page.wait_for_selector("body[data-ready='1']")  # the tabs' handlers are attached after /me and the county
    await page.click("#tab-settings")
    await page.wait_for_selector(ACK)
    return page


async def test_an_admin_changes_the_ack_deadline_and_the_next_dispatch_uses_it(hub: Hub, browser: Any) -> None:
    page = await open_settings(browser, hub)
    await assert_accessible(page, "settings tab")
    sla = page.locator("#set-sla")
    assert await sla.locator(".set-version").inner_text() == "配置文件默认值（尚未在此修改）"
    assert await page.locator(ACK).input_value() == "2"  # 120 s in minutes

    await page.fill(ACK, "0")  # refused in the page, next to the field, in Chinese
    await sla.locator("[data-save='sla']").click()
    assert await page.locator(ACK).get_attribute("aria-invalid") == "true"
    note = page.locator(f"#{await page.locator(ACK).get_attribute('aria-describedby')}")
    assert await note.inner_text() == "须为大于 0 的分钟数"

    await page.fill(ACK, "5")
    await page.fill("[data-key='sla.ladder.ack.1.after_s']", "1")  # level 2 one minute after the deadline
    await sla.locator("[data-save='sla']").click()
    await page.wait_for_selector("#set-sla .set-status.ok")
    assert "已保存为版本 1" in await sla.locator(".set-status").inner_text()
    assert (await sla.locator(".set-version").inner_text()).startswith("版本 1 · 系统管理员")
    await page.screenshot(path=artifact("admin-settings-sla.png"), full_page=True)

    async with await hub.login("op1.yiqiao") as op:
        created = await post(op, "/api/v1/calls", new_call(targets=["police"]), expect=201)
        a = assignment_of((await op.get(f"/api/v1/calls/{created['call_id']}")).json(), "police")
    assert datetime.fromisoformat(a["ack_due"]) - hub.clock.now() == timedelta(minutes=5)

    await sla.get_by_role("button", name="历史版本").click()
    await page.wait_for_selector("#set-sla .set-history .set-diff li")
    assert "within.urgent.ack" in await sla.locator(".set-history").inner_text()
    assert "120 → 300" in await sla.locator(".set-history").inner_text()
    await assert_accessible(page, "settings tab after a save, with its history")
    await page.get_by_role("tab", name="管理日志").click()  # the save, in words, with what it changed
    entry = page.locator("#view-log tbody").get_by_text("修改时限与督办").first  # a row, not the filter's option
    await entry.wait_for()
    assert "within.urgent.ack" in await page.locator("#view-log").inner_text()
    assert page.violations == []


async def test_a_server_refusal_is_shown_next_to_its_field_and_a_stale_save_is_refused(
        hub: Hub, browser: Any) -> None:
    page = await open_settings(browser, hub)
    cats = page.locator("#set-categories")
    await cats.get_by_role("button", name="添加类别").click()  # a code the page refuses before sending
    row = cats.locator("tbody tr").last
    await row.locator("input.code").fill("Bad Code")
    await cats.locator("[data-save='categories']").click()
    assert await row.locator("input.code").get_attribute("aria-invalid") == "true"
    assert "代码为" in await row.locator(".field-error").inner_text()
    await assert_accessible(page, "settings tab with a field in error")

    ev = page.locator("#set-evaluation")
    await ev.locator("[data-save='evaluation']").click()  # the hub refuses it (field "evaluation"): in Chinese
    await page.wait_for_selector("#set-evaluation .set-body > .field-error")
    assert (await ev.locator(".set-body > .field-error").inner_text()).startswith("没有修改")

    first = ev.locator("[data-key='evaluation.presets.three_rates.response_rate']")
    await first.fill("20")
    total = ev.locator("tr[data-preset='three_rates'] .set-total")
    assert await total.inner_text() == "90%" and "bad" in (await total.get_attribute("class") or "")
    await first.fill("30")
    assert await total.inner_text() == "100%"

    async with await hub.login("admin") as admin:  # someone else saves the evaluation meanwhile
        now = (await admin.get("/api/v1/admin/settings/evaluation")).json()
        res = await admin.put("/api/v1/admin/settings/evaluation",
                              json={"based_on": now["version"], "value": {**now["value"], "preset": "outcome"}})
        assert res.status_code == 200, res.text
    await ev.locator("select[data-key='evaluation.preset']").select_option("timeliness")
    await ev.locator("[data-save='evaluation']").click()
    status = ev.locator(".set-status")
    await page.wait_for_selector("#set-evaluation .set-status.error")
    assert "该设置已由 系统管理员 于 2026-11-02 16:00 修改（版本 1）" in await status.inner_text()
    await status.get_by_role("button", name="重新加载").click()
    await page.wait_for_selector("#set-evaluation .set-version[data-version='1']")
    assert await ev.locator("select[data-key='evaluation.preset']").input_value() == "outcome"
    await page.screenshot(path=artifact("admin-settings-conflict.png"), full_page=True)
    assert page.violations == []


async def test_the_settings_tab_speaks_english_on_request(hub: Hub, browser: Any) -> None:
    page = await open_settings(browser, hub)
    await page.goto(f"{hub.url}/admin/?lang=en")
    await page.wait_for_selector("body[data-ready='1']")
    await page.click("#tab-settings")
    await page.wait_for_selector(ACK)
    assert await page.locator("#set-sla h2").inner_text() == "Deadlines and escalation"
    assert await page.locator("#set-sla .set-version").inner_text() == (
        "The configuration file's defaults (not changed here yet)")
