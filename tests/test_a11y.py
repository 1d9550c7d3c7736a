"""WCAG 2.1 AA with axe-core on every console page and state: 0 serious or critical violations."""

from __future__ import annotations

from typing import Any

import pytest

from dispatch.core.clock import ManualClock
from dispatch.core.config import Config
from dispatch.web.demo_sms import with_demo_sms
from tests.a11y import assert_accessible
from tests.conftest import Hub, browser_login, free_port, start_hub
from tests.helpers import assignment_of, new_call, post

pytestmark = pytest.mark.browser
PHONE = {"width": 360, "height": 740}


async def test_login_page_is_accessible(hub: Hub, browser: Any) -> None:
    context = await browser.new_context(locale="zh-CN")
    try:
        page = await context.new_page()
        await page.goto(f"{hub.url}/login")
        await page.wait_for_selector("#username")
        await assert_accessible(page, "login")
        await page.click("button[type=submit]")  # empty: the form's own messages
        await assert_accessible(page, "login, empty submit")
    finally:
        await context.close()


async def test_operator_console_is_accessible(hub: Hub, browser: Any) -> None:
    async with await hub.login("op1.yiqiao") as op:
        created = await post(op, "/api/v1/calls", new_call(), expect=201)
    page = await browser_login(browser, hub, "op1.yiqiao")
    await page.wait_for_selector("#conn[data-status=live]", timeout=15_000)
    row = page.locator(f"#board .row[data-id='{created['call_id']}']")
    await row.wait_for(timeout=10_000)
    await assert_accessible(page, "operator board")
    await page.keyboard.press("n")
    await page.wait_for_selector("#create[open]")
    await assert_accessible(page, "operator new-call form")
    await page.click("#create button[type=submit]")  # nothing filled: the form names what is missing
    await assert_accessible(page, "operator new-call form with errors")
    await page.keyboard.press("Escape")
    await page.wait_for_selector("#create", state="hidden")
    await row.click()
    await page.wait_for_selector("#detail[open] #timeline li.ev")
    await assert_accessible(page, "operator drawer")
    await page.keyboard.press("Escape")
    await page.goto(f"{hub.url}/operator/#history")
    await page.wait_for_selector("#history-form", state="visible")
    await assert_accessible(page, "operator history")


async def test_liaison_page_is_accessible(hub: Hub, browser: Any) -> None:
    async with await hub.login("op1.yiqiao") as op:
        created = await post(op, "/api/v1/calls", new_call(title="无障碍检查的呼叫"), expect=201)
        detail = (await op.get(f"/api/v1/calls/{created['call_id']}")).json()
    police_a = assignment_of(detail, "police")["id"]
    async with await hub.login("police1.yiqiao") as police:
        await post(police, f"/api/v1/assignments/{police_a}/acknowledge")
    page = await browser_login(browser, hub, "police1.yiqiao", viewport=PHONE)
    await page.wait_for_selector("body[data-ready='1']")
    await page.wait_for_selector("#conn[data-status='live']")
    card = page.locator("#active .card", has_text="无障碍检查的呼叫")
    await card.wait_for()
    await assert_accessible(page, "liaison list")
    await card.locator("button[data-act='arrive']").click()
    await card.locator("button[data-act='report_result']").wait_for()
    await card.locator("button[data-act='report_result']").click()
    await page.wait_for_selector("#report-sheet[open]")
    await assert_accessible(page, "liaison report sheet")
    await page.keyboard.press("Escape")
    await card.locator(".card-title").click()
    await page.wait_for_selector("#detail .timeline li")
    await assert_accessible(page, "liaison detail")

    # 转: the decline sheet of another department's fresh assignment
    page = await browser_login(browser, hub, "transport1.yiqiao", viewport=PHONE)
    await page.wait_for_selector("body[data-ready='1']")
    card = page.locator("#active .card", has_text="无障碍检查的呼叫")
    await card.locator("button[data-act='decline']").click()
    await page.wait_for_selector("#decline-sheet[open]")
    await assert_accessible(page, "liaison decline sheet")


async def test_the_english_consoles_are_accessible(hub: Hub, browser: Any) -> None:
    async with await hub.login("op1.yiqiao") as op:
        await post(op, "/api/v1/calls", new_call(), expect=201)
    for user, viewport, ready in (("op1.yiqiao", None, "#rows .row"), ("police1.yiqiao", PHONE, "#active .card"),
                                  ("supervisor", None, "body[data-ready='1']"),
                                  ("grid.yiqiao", PHONE, "body[data-ready='1']"), ("admin", None, "#who")):
        page = await browser_login(browser, hub, user, viewport=viewport)
        await page.evaluate("localStorage.setItem('xianghu.lang', 'en')")
        await page.reload()
        await page.wait_for_selector(ready)
        assert await page.evaluate("document.documentElement.lang") == "en"
        await assert_accessible(page, f"{user}'s console in English")


async def test_the_demo_phones_page_is_accessible(cfg: Config, dsn: str, clock: ManualClock, browser: Any) -> None:
    port = free_port()
    hub, server, task = await start_hub(with_demo_sms(cfg, port), dsn, clock, port=port, demo=True)
    try:
        async with await hub.login("op1.yiqiao") as op:
            await post(op, "/api/v1/calls", new_call(targets=["police"], title="演示短信"), expect=201)
        await hub.state.notify.settled()
        context = await browser.new_context(viewport={"width": 1366, "height": 768})
        try:
            page = await context.new_page()
            await page.goto(f"{hub.url}/demo/phones/")
            await page.get_by_text("演示短信").first.wait_for()
            await assert_accessible(page, "demo phones")
        finally:
            await context.close()
    finally:
        server.should_exit = True
        await task


async def test_supervisor_page_is_accessible(hub: Hub, browser: Any) -> None:
    async with await hub.login("op1.yiqiao") as op:
        created = await post(op, "/api/v1/calls", new_call(), expect=201)
    page = await browser_login(browser, hub, "supervisor")
    await page.wait_for_selector("body[data-ready='1']")
    await assert_accessible(page, "supervisor evaluation")
    await page.click("#tab-log")
    await page.wait_for_selector(f"#rows tr[data-call='{created['call_id']}']")
    await assert_accessible(page, "supervisor call log")
    await page.locator(f"#rows tr[data-call='{created['call_id']}']").click()
    await page.wait_for_selector("#detail .timeline li")
    await assert_accessible(page, "supervisor call detail")


async def test_grid_page_is_accessible(hub: Hub, browser: Any) -> None:
    page = await browser_login(browser, hub, "grid.yiqiao", viewport=PHONE)
    await page.wait_for_selector("body[data-ready='1']")
    await assert_accessible(page, "grid report form")


async def test_a_field_error_goes_as_soon_as_the_field_is_fixed(hub: Hub, browser: Any) -> None:
    """No stale 请填写此项: the message next to a field, and its aria-invalid, go when the field is changed."""
    page = await browser_login(browser, hub, "op1.yiqiao")
    await page.wait_for_selector("#conn[data-status='live']")
    await page.keyboard.press("n")
    await page.wait_for_selector("#create[open]")
    await page.fill("#c-title", "门口堆放杂物")
    await page.locator("#create-form button[type=submit]").click()
    error = page.locator('.field-error[data-for="category"]')
    await error.wait_for(state="visible")
    assert await error.inner_text() == "请填写此项"
    assert await page.get_attribute("#c-category", "aria-invalid") == "true"
    await assert_accessible(page, "operator new-call form, a required field missing")
    await page.select_option("#c-category", "parking")
    assert await error.inner_text() == ""
    assert await page.get_attribute("#c-category", "aria-invalid") is None
