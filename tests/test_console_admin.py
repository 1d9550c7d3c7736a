"""The admin console (/admin/) in real Chromium, as a new county administrator uses it (issue #17): add a township
with its grids, stations and a unit, import its accounts from a sheet (a bad one first, then a good one), and see
it all in 管理日志 with the chain verified; under the Content-Security-Policy, screenshots in test-artifacts/."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from tests.a11y import assert_accessible
from tests.conftest import Hub, artifact, browser_login
from tests.test_admin_users import xlsx

pytestmark = pytest.mark.browser


def township_sheet(n: int = 40) -> list[list[Any]]:
    """The new township's accounts: operators, police liaisons, the new unit's liaisons, grid workers."""
    rows: list[list[Any]] = []
    for i in range(1, n + 1):
        kind = i % 4
        if kind == 0:
            rows.append([f"op{i}.xinhe", f"值班员{i}", "值班员", "xinhe", "", "", "", "", "", f"xinhe-pw-{i:03d}"])
        elif kind == 1:
            rows.append([f"police{i}.xinhe", f"公安联络员{i}", "联络员", "xinhe", "police", "", "", "", "否", ""])
        elif kind == 2:
            rows.append([f"squad{i}.xinhe", f"应急分队{i}", "联络员", "xinhe", "", "应急分队", "", "", "", ""])
        else:
            rows.append([f"grid{i}.xinhe", f"网格员{i}", "网格员", "xinhe", "", "", "东街网格", "", "", ""])
    return rows


def section(page: Any, heading: str) -> Any:
    return page.locator("section.panel").filter(has=page.get_by_role("heading", name=heading, exact=True))


async def test_a_new_administrator_sets_up_a_township_and_sees_it_in_the_admin_log(
        hub: Hub, browser: Any, conn: asyncpg.Connection, tmp_path: Any) -> None:
    violations: list[str] = []
    page = await browser_login(browser, hub, "admin")
    page.on("console", lambda msg: violations.append(msg.text) if "Content Security Policy" in msg.text else None)
    page.on("dialog", lambda dialog: dialog.accept())
    assert page.url.startswith(f"{hub.url}/admin/")
    await page.wait_for_selector("#view-county table.grid")

    # 镇街与网格: the township, then its grids
    add = section(page, "新增镇街")
    await add.get_by_label("代码").fill("xinhe")
    await add.get_by_label("中文名称").fill("新河镇")
    await add.get_by_label("英文名称").fill("Xinhe Town")
    await add.get_by_role("button", name="新增镇街").click()
    detail = section(page, "新河镇（xinhe）")
    await detail.wait_for()
    for name in ("东街网格", "西街网格"):
        await detail.get_by_label("网格名称").fill(name)
        await detail.get_by_role("button", name="新增网格").click()
        await page.locator("#view-county td", has_text=name).wait_for()
    # a wrong boundary is refused, naming the field
    await detail.locator("textarea[name=boundary]").first.fill('{"type": "Polygon", "coordinates": [[[1, 2]]]}')
    await detail.get_by_role("button", name="保存").click()
    await detail.locator(".form-error", has_text="边界").wait_for()  # the field named in Chinese
    assert await detail.locator("textarea[name=boundary][aria-invalid=true]").count() == 1
    await page.screenshot(path=artifact("admin-county.png"), full_page=True)
    await assert_accessible(page, "admin console, townships with a field error")

    # 部门与力量: the township's own unit; the stations it has
    await page.get_by_role("tab", name="部门与力量").click()
    await page.locator("#view-forces select[name=township]").select_option("xinhe")
    units = section(page, "新河镇 · 镇属力量")
    await units.get_by_label("中文名称").first.fill("应急分队")
    await units.get_by_label("英文名称").first.fill("Emergency squad")
    await units.get_by_role("button", name="新增镇属力量").click()
    await units.locator("td", has_text="应急分队").wait_for()
    stations = section(page, "新河镇 · 派驻部门")
    assert await stations.get_by_role("button", name="撤销派驻").count() == 7
    await page.screenshot(path=artifact("admin-forces.png"), full_page=True)
    await assert_accessible(page, "admin console, stations and units")

    # 账号: a sheet with a bad row is reported row by row; the good sheet imports 40 accounts
    await page.get_by_role("tab", name="账号").click()
    importer = section(page, "批量导入账号")
    bad = township_sheet()
    bad[6][2] = "wizard"  # sheet row 8
    bad_file = tmp_path / "bad.xlsx"
    bad_file.write_bytes(xlsx(bad))
    await importer.get_by_label("表格文件（XLSX 或 CSV）").set_input_files(str(bad_file))
    await importer.get_by_role("button", name="预览").click()
    await importer.locator("tr.bad td", has_text="role: no role 'wizard'").wait_for()
    assert await importer.locator("tr.bad").count() == 1
    assert await importer.get_by_role("button", name="导入").is_disabled()
    await page.screenshot(path=artifact("admin-import-errors.png"), full_page=True)
    await assert_accessible(page, "admin console, accounts with an import report")
    good_file = tmp_path / "xinhe.xlsx"
    good_file.write_bytes(xlsx(township_sheet()))
    await importer.get_by_label("表格文件（XLSX 或 CSV）").set_input_files(str(good_file))
    await importer.get_by_role("button", name="预览").click()
    await importer.get_by_text("40 行全部正确，可以导入。").wait_for()
    await importer.get_by_role("button", name="导入").click()
    await importer.get_by_text("已导入 40 个账号。").wait_for(timeout=120_000)  # argon2, 40 times
    assert await importer.get_by_role("link", name="下载初始密码表（只提供这一次）").count() == 1
    await page.screenshot(path=artifact("admin-import-done.png"), full_page=True)
    assert await conn.fetchval("select count(*) from users u join townships t on t.id = u.township_id "
                               "where t.code = 'xinhe'") == 40

    # 设置: the settings module is mounted (its sections; tests/test_console_settings.py tries it). A locator
    # waits without evaluating a string in the page, which the Content-Security-Policy forbids.
    await page.get_by_role("tab", name="设置").click()
    await page.locator("#view-settings #set-sla .set-version").wait_for()

    # 管理日志: every change, verified
    await page.get_by_role("tab", name="管理日志").click()
    await page.locator("#log-verified", has_text="哈希链校验通过").wait_for()
    log = page.locator("#view-log tbody")
    for action, words in (("township.add", "新增镇街"), ("grid.add", "新增网格"), ("unit.add", "新增镇属力量"),
                          ("user.add", "新增账号")):
        assert await log.locator(f"td[title='{action}']", has_text=words).count() >= 1, action
    await page.locator("#view-log select[name=action]").select_option("unit.add")
    await page.get_by_role("button", name="查询").click()
    await page.locator("#view-log .pager", has_text="共 1 条").wait_for()
    assert await log.locator("tr").count() == 1
    assert await log.locator("td ins", has_text="应急分队").count() == 1  # the unit's name in the after column
    await page.screenshot(path=artifact("admin-log.png"), full_page=True)
    await assert_accessible(page, "admin console, the admin log")
    assert violations == []


async def test_the_console_speaks_english_and_refuses_other_roles(hub: Hub, browser: Any) -> None:
    page = await browser_login(browser, hub, "supervisor")
    await page.goto(f"{hub.url}/admin/?lang=en")
    await page.get_by_text("Administration is for administrators only.").wait_for()
    admin = await browser_login(browser, hub, "admin")
    await admin.goto(f"{hub.url}/admin/?lang=en&tab=users")
    await admin.locator("#view-users td", has_text="op1.zhongdu").wait_for()
    assert await admin.get_by_role("tab", name="Accounts").get_attribute("aria-selected") == "true"
    assert await admin.locator("#view-users").get_by_role("button", name="Add an account").count() == 1
