"""The login page in real Chromium: `next` never leaves the site (issue #12 item 7), and every console
runs under the Content-Security-Policy without a single violation (item 9)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlsplit

import pytest

from dispatch.cli.demo import DEMO_PASSWORD
from tests.conftest import Hub

pytestmark = pytest.mark.browser


async def login_page(browser: Any, hub: Hub, query: str = "") -> tuple[Any, Any, list[str]]:
    context = await browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai")
    page = await context.new_page()
    violations: list[str] = []
    page.on("console", lambda msg: violations.append(msg.text) if "Content Security Policy" in msg.text else None)
    await page.goto(f"{hub.url}/login{query}")
    return context, page, violations


async def submit(page: Any, username: str) -> None:
    await page.fill("#username", username)
    await page.fill("#password", DEMO_PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(lambda url: "/login" not in url)


@pytest.mark.parametrize("bad", ["/\\127.0.0.2/x", "/\t/127.0.0.2/x", "//127.0.0.2/x", "/\\/127.0.0.2",
                                 "https://127.0.0.2/x", "/\n/127.0.0.2", "/\r\\127.0.0.2", "javascript:alert(1)",
                                 "\\\\127.0.0.2"])
async def test_next_never_leaves_the_site(hub: Hub, browser: Any, bad: str) -> None:
    context, page, _ = await login_page(browser, hub, "?next=" + quote(bad, safe=""))
    try:
        await submit(page, "op1.yiqiao")
        parts = urlsplit(page.url)
        assert f"{parts.scheme}://{parts.netloc}" == hub.url, page.url
        assert parts.path == "/operator/"
    finally:
        await context.close()


async def test_next_on_the_site_is_followed(hub: Hub, browser: Any) -> None:
    context, page, _ = await login_page(browser, hub, "?next=" + quote("/supervisor/?township=1#x", safe=""))
    try:
        await submit(page, "supervisor")
        assert page.url == f"{hub.url}/supervisor/?township=1#x"
    finally:
        await context.close()


@pytest.mark.parametrize(("username", "landing"), [
    ("op1.yiqiao", "/operator/"), ("police1.yiqiao", "/liaison/"), ("supervisor", "/supervisor/"),
])
async def test_consoles_run_under_the_content_security_policy(hub: Hub, browser: Any, username: str,
                                                              landing: str) -> None:
    context, page, violations = await login_page(browser, hub)
    try:
        await submit(page, username)
        assert page.url == hub.url + landing
        # Live means the WebSocket is open: connect-src 'self' allows ws: of the same host.
        await page.wait_for_selector("[data-status=live]", timeout=15_000)
    finally:
        await context.close()
    assert violations == []
