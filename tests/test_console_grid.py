"""The grid worker's phone page (网格员) in real Chromium: a report with a photo taken on the phone reaches the
operator console live (the new intake call and its photo), and the worker sees its status change once the
operator dispatches it. Also the liaison's photo at 办结, shown in the operator's drawer."""

from __future__ import annotations

import hashlib
import io
from typing import Any

import pytest
from PIL import Image

from tests.conftest import Hub, artifact, browser_login
from tests.helpers import assignment_of, post

pytestmark = pytest.mark.browser

PHONE = {"width": 360, "height": 740}
SCENE = {"latitude": 35.7254, "longitude": 116.4897}


def jpeg(color: str = "orange") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (1200, 900), color).save(out, format="JPEG")
    return out.getvalue()


def logged(page: Any, who: str) -> None:
    page.on("console", lambda m: print("CONSOLE", who, m.type, m.text))
    page.on("pageerror", lambda e: print("PAGEERROR", who, e))


async def test_a_grid_workers_photo_report_reaches_the_operator_live(hub: Hub, browser: Any) -> None:
    operator = await browser_login(browser, hub, "op1.yiqiao")
    logged(operator, "op")
    await operator.wait_for_selector("#conn[data-status=live]", timeout=15_000)

    phone = await browser_login(browser, hub, "grid.yiqiao", viewport=PHONE, permissions=["geolocation"],
                                geolocation=SCENE)
    logged(phone, "grid")
    assert phone.url.endswith("/grid/")  # the login lands a grid worker on their page
    await phone.wait_for_selector("body[data-ready='1']")
    await phone.select_option("#category", "street_vending")
    await phone.fill("#title", "菜市场路口占道经营")
    await phone.fill("#address", "义桥镇菜市场南口")
    await phone.click("#locate")
    await phone.wait_for_selector("#loc:has-text('35.7254')")
    photo = jpeg()
    await phone.set_input_files(".photo-input", files=[{"name": "scene.jpg", "mimeType": "image/jpeg",
                                                        "buffer": photo}])
    await phone.wait_for_selector(".photo-list img")
    await phone.click("#submit")
    card = phone.locator("#reports .card", has_text="菜市场路口占道经营")
    await card.wait_for()
    assert await card.get_attribute("data-state") == "intake"
    assert "待派单" in (await card.locator(".report-state").text_content() or "")
    await card.locator(".evidence img").wait_for()
    await phone.screenshot(path=artifact("grid-report.png"), full_page=True)

    # The operator's board shows the new intake call live; its drawer shows the photo, which opens in full.
    row = operator.locator("#rows .row", has_text="菜市场路口占道经营")
    await row.wait_for(timeout=10_000)
    await row.click()
    img = operator.locator("#detail[open] .evidence img")
    await img.wait_for()
    assert await img.evaluate("(el) => el.complete && el.naturalWidth === 320")
    href = await operator.locator("#detail .evidence a").get_attribute("href")
    res = await operator.request.get(f"{hub.url}{href}")
    assert res.status == 200 and hashlib.sha256(await res.body()).digest() == hashlib.sha256(photo).digest()
    await operator.screenshot(path=artifact("grid-report-operator.png"))

    # Server side: filed under the worker's grid, with the phone's location, no department called yet.
    async with await hub.login("op1.yiqiao") as op:
        calls = (await op.get("/api/v1/calls", params={"q": "菜市场路口占道经营"})).json()["calls"]
        assert len(calls) == 1 and calls[0]["source"] == "grid" and calls[0]["assignments"] == []
        async with hub.state.pool.acquire() as conn:
            grid_id = await conn.fetchval("select grid_id from users where username = 'grid.yiqiao'")
        assert calls[0]["grid_id"] == grid_id and calls[0]["lat"] == pytest.approx(35.7254)
        await post(op, f"/api/v1/calls/{calls[0]['id']}/dispatch", {"targets": ["enforcement"]})

    # The worker sees the new status (on refresh or the page's own poll).
    await phone.click("#refresh")
    await phone.locator("#reports .card[data-state=dispatched]", has_text="菜市场路口占道经营").wait_for()
    assert "已派单" in (await card.locator(".report-state").text_content() or "")


async def test_a_liaison_attaches_a_photo_to_the_result(hub: Hub, browser: Any) -> None:
    async with await hub.login("op1.yiqiao") as op, await hub.login("police1.yiqiao") as police:
        created = await post(op, "/api/v1/calls", {
            "source": "patrol", "category": "parking", "title": "消防通道被占", "address": "义桥镇幸福小区",
            "targets": ["police"]}, expect=201)
        detail = (await op.get(f"/api/v1/calls/{created['call_id']}")).json()
        asg = assignment_of(detail, "police")
        await post(police, f"/api/v1/assignments/{asg['id']}/acknowledge")
        await post(police, f"/api/v1/assignments/{asg['id']}/arrive")
    page = await browser_login(browser, hub, "police1.yiqiao", viewport=PHONE)
    logged(page, "police")
    await page.wait_for_selector("body[data-ready='1']")
    await page.wait_for_selector("#conn[data-status='live']")
    await page.goto(f"{hub.url}/liaison/#/call/{created['call_id']}")
    await page.wait_for_selector("body[data-ready='1']")
    await page.click(f"section.mine[data-assignment='{asg['id']}'] button[data-act=report_result]")
    await page.wait_for_selector("#report-sheet[open]")
    await page.fill("#report-text", "车辆已挪走")
    photo = jpeg("blue")
    await page.set_input_files("#report-sheet .photo-input", files=[{"name": "done.jpg", "mimeType": "image/jpeg",
                                                                       "buffer": photo}])
    await page.wait_for_selector("#report-sheet .photo-list img")
    await page.click("#report-form button[type=submit]")
    await page.wait_for_selector("#report-sheet", state="hidden")
    await page.locator("#detail .evidence img").wait_for(timeout=10_000)
    async with await hub.login("op1.yiqiao") as op:
        detail = (await op.get(f"/api/v1/calls/{created['call_id']}")).json()
    assert [(a["step"], a["sha256"]) for a in detail["attachments"]] == [
        ("report_result", hashlib.sha256(photo).hexdigest())]
    reported = [e for e in detail["timeline"] if e["type"] == "assignment.reported"]
    assert reported[0]["body"]["attachments"][0]["sha256"] == hashlib.sha256(photo).hexdigest()
