"""Four distinct states on every console in a real Chromium (issue #18 item 2): loading, empty, failed with a retry
(the database really stopped: the hub reaches PostgreSQL through a proxy the test cuts, and answers 503) and
reconnecting. A first load never says 已断开, and a failed load never looks like an empty list under 实时.
Screenshots of each state at 1366×768, 1920×1080 and a 360×740 phone go to test-artifacts/."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from dispatch.core.clock import ManualClock
from dispatch.core.config import Config
from tests.a11y import assert_accessible
from tests.conftest import Hub, artifact, browser_login, start_hub
from tests.helpers import new_call, post
from tests.test_sla_outage import CuttableProxy

pytestmark = pytest.mark.browser

SIZES = {"1366": {"width": 1366, "height": 768}, "1920": {"width": 1920, "height": 1080},
         "phone": {"width": 360, "height": 740}}
UNAVAILABLE = "数据库暂时不可用"


@pytest.fixture
async def outage(dsn: str) -> AsyncIterator[CuttableProxy]:
    proxy = CuttableProxy(dsn)
    await proxy.restore()
    yield proxy
    if proxy._server is not None:
        await proxy.cut()


@pytest.fixture
async def hub_via_proxy(cfg: Config, outage: CuttableProxy, clock: ManualClock) -> AsyncIterator[Hub]:
    """A hub whose only way to PostgreSQL is the proxy: cutting it is the database stopping, for this hub alone."""
    handle, server, task = await start_hub(cfg, outage.dsn, clock)
    try:
        yield handle
    finally:
        server.should_exit = True
        await task


async def shots(page: Any, name: str, sizes: tuple[str, ...] = ("1366", "1920", "phone")) -> None:
    """A screenshot of the state at each size, and axe-core's check of it there (WCAG 2.1 AA, issue #18 item 6)."""
    for size in sizes:
        await page.set_viewport_size(SIZES[size])
        await page.screenshot(path=artifact(f"{name}-{size}.png"))
        await assert_accessible(page, f"{name} at {size}")
    await page.set_viewport_size(SIZES["1366"])


async def hold(page: Any, pattern: str) -> asyncio.Event:
    """Hold the page's requests matching `pattern` (they reach the real hub once released): a slow first load."""
    released = asyncio.Event()

    async def handler(route: Any) -> None:
        await released.wait()
        await route.continue_()

    await page.route(pattern, handler)
    return released


async def test_operator_board_states(browser: Any, hub_via_proxy: Hub, outage: CuttableProxy) -> None:
    hub = hub_via_proxy
    page = await browser_login(browser, hub, "op1.yiqiao")
    await page.wait_for_selector("#conn[data-status=live]")
    # -- loading: a slow first load is 正在加载… under 连接中…, never 已断开 and never "no calls"
    released = await hold(page, "**/api/v1/calls?open=true*")
    await page.reload()
    await page.wait_for_selector("#board-state[data-state=loading]")
    assert await page.locator("#conn").inner_text() == "连接中…"
    assert await page.locator("#rows").is_hidden()
    await shots(page, "operator-state-loading")
    released.set()
    # -- empty
    await page.wait_for_selector("#board-state[data-state=empty]")
    assert await page.locator("#board-state").inner_text() == "暂无在办呼叫"
    await page.wait_for_selector("#conn[data-status=live]")
    await shots(page, "operator-state-empty")
    await page.unroute("**/api/v1/calls?open=true*")
    async with await hub.login("op1.yiqiao") as op:
        await post(op, "/api/v1/calls", new_call(title="停库前的呼叫"), expect=201)
    await page.wait_for_selector("#board-state[data-state=ok]", state="attached")

    # -- failed: the database stops; a reload cannot load anything: said so, with 重试
    await outage.cut()
    await page.reload()
    state = page.locator("#board-state[data-state=failed]")
    await state.wait_for(timeout=15_000)
    text = await state.inner_text()
    assert "加载失败" in text and UNAVAILABLE in text, text
    assert await page.locator("#rows").is_hidden()  # not an empty board
    assert await page.locator("#conn").get_attribute("data-status") != "live"
    await shots(page, "operator-state-failed")
    # -- the database is back: 重试 loads the board
    await outage.restore()
    await page.click("#board-state button.ls-retry")
    await page.locator("#rows .row", has_text="停库前的呼叫").wait_for(timeout=15_000)
    await page.wait_for_selector("#board-state[data-state=ok]", state="attached")
    await page.wait_for_selector("#conn[data-status=live]", timeout=15_000)

    # -- a failed reload keeps the board, dated, under the failure (the socket still live)
    await outage.cut()
    await page.evaluate("() => window.xianghu.state.retryLoad()")
    await state.wait_for(timeout=15_000)
    assert "上次加载" in await state.inner_text()
    assert await page.locator("#rows .row", has_text="停库前的呼叫").is_visible()
    await outage.restore()
    await page.click("#board-state button.ls-retry")
    await page.wait_for_selector("#board-state[data-state=ok]", state="attached", timeout=15_000)

    # -- reconnecting: the network drops after a load
    await page.context.set_offline(True)
    await page.wait_for_selector("#board-state[data-state=stale]")
    assert "正在重连" in await page.locator("#board-state").inner_text()
    assert await page.locator("#conn").inner_text() == "已断开，正在重连"
    await shots(page, "operator-state-reconnecting")
    await page.context.set_offline(False)
    await page.wait_for_selector("#board-state[data-state=ok]", state="attached", timeout=15_000)


async def test_supervisor_log_states(browser: Any, hub_via_proxy: Hub, outage: CuttableProxy) -> None:
    hub = hub_via_proxy
    page = await browser_login(browser, hub, "supervisor")
    released = await hold(page, "**/api/v1/calls?*")
    await page.goto(f"{hub.url}/supervisor/?tab=log")
    await page.wait_for_selector("[data-panel=log] #log-state.state-loading")
    assert await page.locator("#conn-text").inner_text() != "离线"
    await shots(page, "supervisor-state-loading")
    released.set()
    await page.wait_for_selector("#empty:not([hidden])")
    await shots(page, "supervisor-state-empty")
    await page.unroute("**/api/v1/calls?*")
    await page.wait_for_selector("#conn[data-status=live]")

    await outage.cut()
    await page.click("#filters button[type=submit]")
    failed = page.locator("[data-panel=log][data-state=failed] #log-state")
    await failed.wait_for(timeout=15_000)
    assert UNAVAILABLE in await failed.inner_text()
    await shots(page, "supervisor-state-failed")
    await outage.restore()
    await page.click("#log-state button.retry")
    await page.wait_for_selector("#empty:not([hidden])", timeout=15_000)

    await page.context.set_offline(True)
    await page.wait_for_selector("#log-conn[data-state=stale]")
    await shots(page, "supervisor-state-reconnecting")
    await page.context.set_offline(False)
    await page.wait_for_selector("#log-conn[data-state=ok]", state="attached", timeout=15_000)


async def test_liaison_list_states(browser: Any, hub_via_proxy: Hub, outage: CuttableProxy) -> None:
    hub = hub_via_proxy
    page = await browser_login(browser, hub, "police1.yiqiao", viewport=SIZES["phone"])
    released = await hold(page, "**/api/v1/calls?*")
    await page.reload()
    await page.wait_for_selector("#list-state[data-state=loading]")
    assert await page.locator("#active-empty").is_hidden()
    await shots(page, "liaison-state-loading")
    released.set()
    await page.wait_for_selector("#active-empty:not([hidden])")
    await shots(page, "liaison-state-empty")
    await page.unroute("**/api/v1/calls?*")
    await page.wait_for_selector("#conn[data-status=live]")

    await outage.cut()
    await page.reload()
    failed = page.locator("#list-state[data-state=failed]")
    await failed.wait_for(timeout=15_000)
    assert UNAVAILABLE in await failed.inner_text()
    assert await page.locator("#active-empty").is_hidden()  # not "nothing to do"
    await shots(page, "liaison-state-failed")
    async with page.expect_request("**/api/v1/calls?*"):  # 重试 asks the hub again (still down: still failed)
        await page.click("#list-state button.ls-retry")
    await failed.wait_for(timeout=15_000)
    await outage.restore()
    async with await hub.login("op1.yiqiao") as op:
        await post(op, "/api/v1/calls", new_call(title="恢复后的派单", targets=["police"]), expect=201)
    # back: the list comes by itself once the socket is live again (caught up), or by 重试, whichever is first
    await page.evaluate("() => document.querySelector('#list-state button.ls-retry')?.click()")
    await page.locator("#active .card", has_text="恢复后的派单").first.wait_for(timeout=20_000)
    await page.wait_for_selector("#list-state[data-state=ok]", state="attached")

    await page.context.set_offline(True)
    await page.wait_for_selector("#offline-banner:not([hidden])")
    await shots(page, "liaison-state-reconnecting", ("phone",))
    await page.context.set_offline(False)


async def test_grid_reports_states(browser: Any, hub_via_proxy: Hub, outage: CuttableProxy) -> None:
    hub = hub_via_proxy
    page = await browser_login(browser, hub, "grid.yiqiao", viewport=SIZES["phone"])
    released = await hold(page, "**/api/v1/reports/mine")
    await page.reload()
    await page.wait_for_selector("#reports-state[data-state=loading]")
    assert await page.locator("#reports-empty").is_hidden()
    await shots(page, "grid-state-loading")
    released.set()
    await page.wait_for_selector("#reports-empty:not([hidden])")
    await shots(page, "grid-state-empty")
    await page.unroute("**/api/v1/reports/mine")

    await outage.cut()
    await page.click("#refresh")
    failed = page.locator("#reports-state[data-state=failed]")
    await failed.wait_for(timeout=15_000)
    assert UNAVAILABLE in await failed.inner_text()
    assert await page.locator("#reports-empty").is_hidden()
    await shots(page, "grid-state-failed")
    await outage.restore()
    await page.click("#reports-state button.ls-retry")
    await page.wait_for_selector("#reports-empty:not([hidden])", timeout=15_000)
    await page.wait_for_selector("#reports-state[data-state=ok]", state="attached")

    await page.context.set_offline(True)
    await page.wait_for_selector("#offline-banner:not([hidden])")
    await shots(page, "grid-state-reconnecting", ("phone",))
    await page.context.set_offline(False)
