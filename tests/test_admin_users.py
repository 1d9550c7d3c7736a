"""Accounts administered over REST and the CLI (issue #17): every role, changes in words, disable and enable,
password resets, the bulk import with its per-row report, and integrations in the admin log."""

from __future__ import annotations

import base64
import io
from typing import Any

import asyncpg
import httpx
from openpyxl import Workbook, load_workbook

from dispatch.core import roster
from dispatch.store import adminlog
from tests.conftest import Hub
from tests.test_admin_log import run_cli

USERS = "/api/v1/admin/users"
IMPORT = USERS + "/import"
PASSWORD = "Good-Passw0rd"


async def _add(admin: httpx.AsyncClient, expect: int = 201, **body: Any) -> dict[str, Any]:
    res = await admin.post(USERS, json=body)
    assert res.status_code == expect, res.text
    data: dict[str, Any] = res.json()
    return data


async def test_an_admin_adds_every_role_and_wrong_places_are_refused_naming_the_field(
        hub: Hub, conn: asyncpg.Connection) -> None:
    unit = await conn.fetchval("select u.id from units u join townships t on t.id = u.township_id "
                               "where t.code = 'yiqiao' and u.name_zh = '镇执法中队'")
    async with await hub.login("admin") as admin:
        for body in (
            {"username": "op9.yiqiao", "role": "operator", "township": "yiqiao"},
            {"username": "police9.yiqiao", "role": "liaison", "township": "yiqiao", "department": "police",
             "team_lead": True, "phone": "13900001111"},
            {"username": "unit9.yiqiao", "role": "liaison", "township": "yiqiao", "unit": "镇执法中队"},
            {"username": "sup9", "role": "supervisor"},
            {"username": "sup9.yiqiao", "role": "supervisor", "township": "yiqiao"},
            {"username": "admin9", "role": "admin"},
            {"username": "leader9.yiqiao", "role": "leader", "township": "yiqiao"},
            {"username": "head9.fire", "role": "department_head", "department": "fire"},
            {"username": "grid9.yiqiao", "role": "grid_worker", "township": "yiqiao", "grid": "第2网格"},
        ):
            await _add(admin, **body, display_name="新账号", password=PASSWORD)
        assert (await admin.get(f"{USERS}/unit9.yiqiao")).json()["unit_id"] == unit
        assert (await admin.get(f"{USERS}/grid9.yiqiao")).json()["grid_name"] == "第2网格"
        generated = await _add(admin, username="op8.yiqiao", display_name="生成密码", role="operator",
                               township="yiqiao")
        assert len(generated["password"]) == 12
        for body, field, words in (
            ({"role": "liaison", "township": "yiqiao", "department": "police", "unit": str(unit)}, "department",
             "exactly one of a department or a township unit"),
            ({"role": "operator"}, "township", "a operator needs a township"),
            ({"role": "operator", "township": "yiqiao", "grid": "第1网格"}, "grid", "only grid workers"),
            ({"role": "department_head", "department": "police", "township": "yiqiao"}, "township", "county-wide"),
            ({"role": "liaison", "township": "yiqiao", "unit": "不存在"}, "unit", "no unit '不存在' in yiqiao"),
            ({"role": "leader", "township": "nowhere"}, "township", "no township 'nowhere'"),
        ):
            res = await admin.post(USERS, json={"username": "bad.user", "display_name": "x", **body})
            assert res.status_code == 422 and res.json()["field"] == field, (body, res.text)
            assert words in res.json()["message"], res.text
        dup = await admin.post(USERS, json={"username": "op1.yiqiao", "display_name": "x", "role": "operator",
                                            "township": "yiqiao"})
        assert dup.status_code == 409 and dup.json()["field"] == "username"
    async with await hub.login("op8.yiqiao", generated["password"]) as op:
        assert (await op.get("/api/v1/me")).json()["role"] == "operator"
    entries = await conn.fetch("select action, target, after from admin_log order by seq")
    assert [e["action"] for e in entries] == ["user.add"] * 10
    assert entries[1]["after"]["team_lead"] is True and entries[1]["after"]["has_phone"] is True
    text = str([dict(e) for e in entries])
    assert PASSWORD not in text and generated["password"] not in text and "13900001111" not in text


async def test_list_filters_and_pages(hub: Hub) -> None:
    async with await hub.login("admin") as admin:
        page = (await admin.get(USERS, params={"role": "liaison", "township": "yiqiao", "department": "police"})).json()
        assert [u["username"] for u in page["users"]] == ["police1.yiqiao", "police2.yiqiao"]
        assert page["users"][0]["team_lead"] is True
        found = (await admin.get(USERS, params={"q": "leader.yiq"})).json()
        assert [u["username"] for u in found["users"]] == ["leader.yiqiao"]
        first = (await admin.get(USERS, params={"township": "yiqiao", "limit": 5})).json()
        second = (await admin.get(USERS, params={"township": "yiqiao", "limit": 5, "offset": 5})).json()
        assert first["total"] == second["total"] > 10
        assert not {u["username"] for u in first["users"]} & {u["username"] for u in second["users"]}
        bad = await admin.get(USERS, params={"role": "wizard"})
        assert bad.status_code == 422 and bad.json()["field"] == "role"


async def test_a_new_role_logs_the_account_out_and_the_change_is_logged(hub: Hub, conn: asyncpg.Connection) -> None:
    async with await hub.login("op2.yiqiao") as old:
        async with await hub.login("admin") as admin:
            res = await admin.patch(f"{USERS}/op2.yiqiao", json={"display_name": "改名值班员", "phone": "13911110000"})
            assert res.status_code == 200 and res.json()["display_name"] == "改名值班员"
            assert (await old.get("/api/v1/me")).status_code == 200  # a name is no reason to log out
            res = await admin.patch(f"{USERS}/op2.yiqiao", json={"role": "liaison", "department": "fire"})
            assert res.status_code == 200, res.text
            assert (res.json()["role"], res.json()["department"], res.json()["township"]) == ("liaison", "fire",
                                                                                             "yiqiao")
            refused = await admin.patch(f"{USERS}/op2.yiqiao", json={"grid": "第1网格"})
            assert refused.status_code == 422 and refused.json()["field"] == "grid"
            # to a department head: the township goes by itself, the department stays
            res = await admin.patch(f"{USERS}/police2.yiqiao", json={"role": "department_head"})
            assert res.status_code == 200 and res.json()["township"] is None, res.text
        assert (await old.get("/api/v1/me")).status_code == 401
    entries = await conn.fetch("select action, before, after from admin_log order by seq")
    assert [e["action"] for e in entries] == ["user.update"] * 3
    named, moved = entries[0], entries[1]
    assert named["before"]["display_name"] == "值班员2" or named["before"]["display_name"].endswith("操作员2")
    assert named["after"]["display_name"] == "改名值班员" and "sessions" not in named["after"]
    assert (moved["before"]["role"], moved["after"]["role"], moved["after"]["department"]) == (
        "operator", "liaison", "fire")
    assert moved["after"]["sessions"] == "revoked"


async def test_disable_enable_and_password_reset(hub: Hub, conn: asyncpg.Connection) -> None:
    async with await hub.login("police2.yiqiao") as police, await hub.login("admin") as admin:
        assert (await admin.post(f"{USERS}/police2.yiqiao/disable")).status_code == 200
        assert (await police.get("/api/v1/me")).status_code == 401
        again = await admin.post(f"{USERS}/police2.yiqiao/disable")
        assert again.status_code == 409
        self_off = await admin.post(f"{USERS}/admin/disable")
        assert self_off.status_code == 409 and "your own" in self_off.json()["message"]
        assert (await admin.post(f"{USERS}/police2.yiqiao/enable")).status_code == 200
        new = (await admin.post(f"{USERS}/police2.yiqiao/password", json={})).json()["password"]
        assert new and len(new) == 12
        short = await admin.post(f"{USERS}/police2.yiqiao/password", json={"password": "short"})
        assert short.status_code == 422 and short.json()["field"] == "password"
    async with hub.client() as anon:
        old = await anon.post("/api/v1/login", json={"username": "police2.yiqiao", "password": "xianghu-demo",
                                                    "client": "token"})
        assert old.status_code == 401
    async with await hub.login("police2.yiqiao", new) as police:
        assert (await police.get("/api/v1/me")).status_code == 200
    entries = await conn.fetch("select action, after from admin_log order by seq")
    assert [e["action"] for e in entries] == ["user.disable", "user.enable", "user.passwd"]
    assert entries[2]["after"] == {"password": "generated", "sessions": "revoked"}
    assert new not in str([dict(e) for e in entries])


# -- the bulk import -----------------------------------------------------------------------------------------

def sheet_rows(n: int = 40) -> list[list[Any]]:
    """``n`` accounts of a new township's kind in 义桥镇: operators, liaisons, unit liaisons, grid workers."""
    rows: list[list[Any]] = []
    for i in range(1, n + 1):
        kind = i % 4
        if kind == 0:
            rows.append([f"imp{i}.yiqiao", f"值班员{i}", "值班员", "yiqiao", "", "", "", f"1390000{i:04d}", "否", ""])
        elif kind == 1:
            lead = "是" if i == 1 else ""
            rows.append([f"imp{i}.yiqiao", f"联络员{i}", "liaison", "yiqiao", "police", "", "", "", lead, ""])
        elif kind == 2:
            password = f"pw-{i:04d}-xyz"
            rows.append([f"imp{i}.yiqiao", f"力量{i}", "联络员", "yiqiao", "", "网格员队伍", "", "", "", password])
        else:
            phone = 13900005555  # typed as a number in the sheet
            rows.append([f"imp{i}.yiqiao", f"网格员{i}", "grid_worker", "yiqiao", "", "", "第3网格", phone, "", ""])
    return rows


def xlsx(rows: list[list[Any]]) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append([f"{zh} {en}" for _k, zh, en in roster.COLUMNS])
    for row in rows:
        sheet.append(row)
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()


XLSX = {"Content-Type": roster.XLSX_MEDIA}


async def test_a_sheet_with_bad_rows_reports_each_and_imports_nothing(hub: Hub, conn: asyncpg.Connection) -> None:
    rows = sheet_rows()
    rows[4][2] = "wizard"                       # sheet row 6: no such role
    rows[9][3] = "nowhere"                      # row 11: unknown township
    rows[14][0] = rows[13][0]                   # row 16: the username of row 15 again
    rows[19][0] = "op1.yiqiao"                  # row 21: exists already
    rows[24][7] = "phone?"                      # row 26: phone format
    rows[29][4] = "police"                      # row 31: a unit liaison with a department too
    rows[34][6] = "第99网格"                    # row 36: unknown grid
    rows[38][8] = "maybe"                       # row 40: team lead neither yes nor no
    before = await conn.fetchval("select count(*) from users")
    async with await hub.login("admin") as admin:
        res = await admin.post(IMPORT, params={"dry_run": "1"}, content=xlsx(rows), headers=XLSX)
        assert res.status_code == 200, res.text
        report = res.json()
        assert report["ok"] is False and report["dry_run"] is True and report["created"] == 0
        got = {(p["row"], p["field"]) for p in report["problems"]}
        assert got == {(6, "role"), (11, "township"), (16, "username"), (21, "username"), (26, "phone"),
                       (31, "department"), (36, "grid"), (40, "team_lead")}, report["problems"]
        assert report["error_rows"] == 8 and len(report["rows"]) == 40
        assert [r["row"] for r in report["rows"] if not r["ok"]] == [6, 11, 16, 21, 26, 31, 36, 40]
        by_row = {p["row"]: p["message"] for p in report["problems"]}
        assert "also on row 15" in by_row[16] and "already exists" in by_row[21]
        committed = await admin.post(IMPORT, content=xlsx(rows), headers=XLSX)
        assert committed.status_code == 422 and committed.json()["field"] == "file"
        assert committed.json()["report"]["error_rows"] == 8
    assert await conn.fetchval("select count(*) from users") == before
    assert await conn.fetchval("select count(*) from admin_log") == 0


async def test_a_good_sheet_imports_40_accounts_that_can_log_in(hub: Hub, conn: asyncpg.Connection) -> None:
    rows = sheet_rows()
    async with await hub.login("admin") as admin:
        template = await admin.get(IMPORT + "/template.xlsx")
        assert template.status_code == 200
        header = [c.value for c in load_workbook(io.BytesIO(template.content)).worksheets[0][1]]
        assert header[0] == "用户名 username" and header[-1] == "初始密码 password"
        preview = (await admin.post(IMPORT, params={"dry_run": "1"}, content=xlsx(rows), headers=XLSX)).json()
        assert preview["ok"] is True and preview["problems"] == []
        # argon2 takes about half a second an account on a small machine: 40 take a while
        res = await admin.post(IMPORT, content=xlsx(rows), headers=XLSX, timeout=120)
        assert res.status_code == 200, res.text
        done = res.json()
        assert done["created"] == 40 and len(done["passwords"]) == 30  # 10 rows gave their own
        handout = load_workbook(io.BytesIO(base64.b64decode(done["passwords_xlsx"]))).worksheets[0]
        assert handout.max_row == 31
    passwords = {p["username"]: p["password"] for p in done["passwords"]}
    passwords.update({r[0]: r[9] for r in rows if r[9]})
    assert len(passwords) == 40
    for username, password in passwords.items():
        async with await hub.login(username, password) as user:
            assert (await user.get("/api/v1/me")).json()["username"] == username
    unit = await conn.fetchval("select unit_id from users where username = 'imp2.yiqiao'")
    assert await conn.fetchval("select name_zh from units where id = $1", unit) == "网格员队伍"
    assert await conn.fetchval("select team_lead from users where username = 'imp1.yiqiao'") is True
    entries = await conn.fetch("select action, after from admin_log order by seq")
    assert len(entries) == 40 and {e["action"] for e in entries} == {"user.add"}
    assert all(e["after"]["via"] == "import" for e in entries)
    assert not any(p in str([dict(e) for e in entries]) for p in passwords.values())
    assert (await adminlog.verify(conn)).ok


async def test_csv_with_a_bom_or_in_gb18030_reads_the_same(hub: Hub) -> None:
    header = ",".join(f"{zh}" for _k, zh, _en in roster.COLUMNS)
    body = header + "\n" + "csv1.yiqiao,张三,值班员,yiqiao,,,,,,\n" + "csv2.yiqiao,李四,督查,,,,,,,\n"
    async with await hub.login("admin") as admin:
        for data in ("\ufeff" + body).encode("utf-8"), body.encode("gb18030"):
            res = await admin.post(IMPORT, params={"dry_run": "true"}, content=data,
                                   headers={"Content-Type": "text/csv"})
            report = res.json()
            assert report["ok"] is True, report
            assert [(r["username"], r["name"]) for r in report["rows"]] == [("csv1.yiqiao", "张三"),
                                                                          ("csv2.yiqiao", "李四")]
        junk = await admin.post(IMPORT, content=b"PK\x03\x04 not a zip", headers=XLSX)
        assert junk.status_code == 422 and junk.json()["field"] == "file"


async def test_the_cli_lists_changes_enables_and_imports(dsn: str, conn: asyncpg.Connection, tmp_path: Any) -> None:
    listed = run_cli(dsn, "user", "list", "--township", "yiqiao", "--department", "police")
    assert listed.returncode == 0 and listed.stdout.splitlines()[0].startswith("police1.yiqiao\tliaison\tyiqiao")
    for args in (("user", "set", "op2.yiqiao", "--role", "liaison", "--unit", "物业服务站"),
                 ("user", "disable", "op2.yiqiao"), ("user", "enable", "op2.yiqiao")):
        done = run_cli(dsn, *args)
        assert done.returncode == 0, done.stderr
    assert await conn.fetchval("select u.name_zh from users s join units u on u.id = s.unit_id "
                               "where s.username = 'op2.yiqiao'") == "物业服务站"
    bad = sheet_rows(4)
    bad[1][2] = "wizard"
    path = tmp_path / "bad.xlsx"
    path.write_bytes(xlsx(bad))
    done = run_cli(dsn, "user", "import", str(path))
    assert done.returncode != 0 and "row 3: role: no role 'wizard'" in done.stderr
    good = tmp_path / "good.xlsx"
    good.write_bytes(xlsx(sheet_rows(4)))
    assert run_cli(dsn, "user", "import", str(good), "--dry-run").returncode == 0
    done = run_cli(dsn, "user", "import", str(good))
    assert done.returncode == 0 and "imported 4 accounts" in done.stdout, done.stderr
    handout = load_workbook(tmp_path / "good-passwords.xlsx").worksheets[0]
    assert handout.max_row == 4  # the header and three generated passwords
    actions = [r["action"] for r in await conn.fetch("select action from admin_log order by seq")]
    assert actions == ["user.update", "user.disable", "user.enable"] + ["user.add"] * 4


async def test_integrations_are_logged_without_their_credentials(hub: Hub, conn: asyncpg.Connection) -> None:
    async with await hub.login("admin") as admin:
        res = await admin.post("/api/v1/admin/integrations", json={"kind": "hotline", "name": "hotline12345",
                                                                   "display_name": "12345热线"})
        assert res.status_code == 201
        secret, iid = res.json()["secret"], res.json()["integration"]["id"]
        rotated = (await admin.post(f"/api/v1/admin/integrations/{iid}/rotate")).json()["secret"]
        assert (await admin.post(f"/api/v1/admin/integrations/{iid}/disable")).status_code == 200
        assert (await admin.post(f"/api/v1/admin/integrations/{iid}/enable")).status_code == 200
    entries = await conn.fetch("select action, target, before, after from admin_log order by seq")
    assert [(e["action"], e["target"]) for e in entries] == [
        ("integration.add", "integration:hotline12345"), ("integration.rotate", "integration:hotline12345"),
        ("integration.disable", "integration:hotline12345"), ("integration.enable", "integration:hotline12345")]
    assert entries[0]["after"]["display_name"] == "12345热线"
    assert entries[2]["before"] == {"enabled": True} and entries[2]["after"] == {"enabled": False}
    text = str([dict(e) for e in entries])
    assert secret not in text and rotated not in text
