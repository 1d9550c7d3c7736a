"""WCAG 2.1 AA with axe-core on every console page and state: 0 serious or critical violations."""

from __future__ import annotations

from typing import Any

import pytest

from tests.a11y import assert_accessible
from tests.conftest import Hub, browser_login
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
