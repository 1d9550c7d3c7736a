"""The admin log's core (DESIGN.md idea 11, issue #17): one hash-chained county-wide log of admin changes, written
by the CLI's account commands, verified by ``xianghu verify-log``, read by admins over REST."""

from __future__ import annotations

import itertools
import os
import re
import subprocess
import sys
from datetime import UTC, datetime

import asyncpg
import httpx

from dispatch.core.domain import SYSTEM_ACTOR
from dispatch.store import adminlog
from dispatch.web.app import VERSION
from dispatch.web.openapi import openapi_document
from tests.conftest import ROOT, Hub

SECRET = "Secret-Passw0rd-1"
PATH = "/api/v1/admin/log"


def run_cli(dsn: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dispatch.cli", *args], env={**os.environ, "DATABASE_URL": dsn},
                          cwd=ROOT, capture_output=True, text=True, timeout=120)


async def test_account_commands_are_logged_before_and_after_without_secrets(dsn: str,
                                                                            conn: asyncpg.Connection) -> None:
    for args in (("user", "add", "newop.yiqiao", "--name", "新操作员", "--role", "operator", "--township", "yiqiao",
                  "--phone", "13911112222", "--password", SECRET),
                 ("user", "passwd", "newop.yiqiao", "--password", SECRET + "x"),
                 ("user", "disable", "newop.yiqiao")):
        done = run_cli(dsn, *args)
        assert done.returncode == 0, done.stderr
    entries = await conn.fetch("select * from admin_log order by seq")
    assert [(e["seq"], e["action"], e["target"]) for e in entries] == [
        (1, "user.add", "user:newop.yiqiao"), (2, "user.passwd", "user:newop.yiqiao"),
        (3, "user.disable", "user:newop.yiqiao")]
    added, passwd, disabled = entries
    assert added["before"] is None
    assert added["after"]["role"] == "operator" and added["after"]["display_name"] == "新操作员"
    assert added["after"]["has_phone"] is True and added["after"]["disabled"] is False
    assert passwd["after"] == {"password": "new", "sessions": "revoked"}
    assert disabled["before"]["disabled"] is False and disabled["after"]["disabled"] is True
    assert all(e["actor_name"].startswith("cli:") and e["actor_id"] is None for e in entries)
    password_hash = await conn.fetchval("select password_hash from users where username = 'newop.yiqiao'")
    text = "".join(str(dict(e)) for e in entries)
    for secret in (SECRET, password_hash, "13911112222"):
        assert secret not in text
    assert not await conn.fetchval("select count(*) from admin_log t where t::text like '%' || $1 || '%'", SECRET)
    checked = run_cli(dsn, "verify-log")
    assert checked.returncode == 0, checked.stderr
    assert "admin log: 3 entries, chain intact" in checked.stdout


async def test_a_failed_account_command_logs_nothing(dsn: str, conn: asyncpg.Connection) -> None:
    done = run_cli(dsn, "user", "disable", "nobody-here")
    assert done.returncode != 0
    assert await conn.fetchval("select count(*) from admin_log") == 0


async def test_entries_are_chained_and_a_changed_row_is_named_by_verify_log(dsn: str,
                                                                            conn: asyncpg.Connection) -> None:
    at = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
    entries = [await adminlog.append(conn, actor=SYSTEM_ACTOR, action="township.update", target=f"thing:{i}", at=at,
                                     before={"n": i}, after={"n": i + 1, "名": "值"}) for i in range(4)]
    assert [e.seq for e in entries] == [1, 2, 3, 4]
    assert entries[0].prev_hash == b"" and all(b.prev_hash == a.hash for a, b in itertools.pairwise(entries))
    assert (await adminlog.verify(conn)).ok
    await conn.execute("alter table admin_log disable trigger admin_log_no_update")
    await conn.execute("""update admin_log set after = '{"n": 99}' where seq = 3""")
    await conn.execute("alter table admin_log enable trigger admin_log_no_update")
    report = await adminlog.verify(conn)
    assert (report.ok, report.seq, report.count) == (False, 3, 2)
    checked = run_cli(dsn, "verify-log")
    assert checked.returncode == 1
    assert "BROKEN: admin log, entry seq 3: hash does not match the entry's content" in checked.stderr


async def test_the_log_refuses_updates_and_deletes(conn: asyncpg.Connection) -> None:
    await adminlog.append(conn, actor=SYSTEM_ACTOR, action="township.update", target="thing", at=datetime.now(UTC))
    for sql in ("update admin_log set target = 'x'", "delete from admin_log", "truncate admin_log"):
        try:
            await conn.execute(sql)
        except asyncpg.RaiseError as exc:
            assert "append-only" in str(exc)
        else:
            raise AssertionError(f"{sql} was allowed")


async def test_only_admins_read_the_log_newest_first_and_paged(hub: Hub, conn: asyncpg.Connection) -> None:
    at = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
    for i in range(5):
        await adminlog.append(conn, actor=SYSTEM_ACTOR, action="user.add" if i % 2 else "privacy.erase",
                              target=f"t{i}", at=at, after={"i": i})
    async with await hub.login("admin") as admin:
        page = (await admin.get(PATH, params={"limit": 2, "offset": 1})).json()
        adds = (await admin.get(PATH, params={"action": "user.add"})).json()
        bad = await admin.get(PATH, params={"limit": 0})
        unknown = await admin.get(PATH, params={"action": "user.delete"})
    assert page["total"] == 5 and [e["seq"] for e in page["entries"]] == [4, 3]
    assert page["entries"][0]["after"] == {"i": 3} and len(page["entries"][0]["hash"]) == 64
    assert [e["seq"] for e in adds["entries"]] == [4, 2] and adds["total"] == 2
    assert bad.status_code == 422 and bad.json()["field"] == "limit"
    assert unknown.status_code == 422 and unknown.json()["field"] == "action"
    assert "user.delete" in unknown.json()["message"] and "user.passwd" in unknown.json()["message"]
    for username in ("supervisor", "op1.yiqiao", "police1.yiqiao", "leader.yiqiao", "head.police"):
        async with await hub.login(username) as other:
            res = await other.get(PATH)
        assert res.status_code == 403, (username, res.text)
    async with httpx.AsyncClient(base_url=hub.url) as anonymous:
        assert (await anonymous.get(PATH)).status_code == 401


def test_the_admin_log_is_in_the_openapi_document() -> None:
    doc = openapi_document(VERSION)
    op = doc["paths"][PATH]["get"]
    assert "AdminLogOut" in str(op["responses"]["200"])


async def test_an_unknown_action_is_refused_and_writes_nothing(conn: asyncpg.Connection) -> None:
    before = await conn.fetchval("select count(*) from admin_log")
    try:
        await adminlog.append(conn, actor=SYSTEM_ACTOR, action="user.delete", target="t", at=datetime.now(UTC))
    except ValueError as exc:
        assert "user.delete" in str(exc)
    else:
        raise AssertionError("an action outside the catalogue was logged")
    assert await conn.fetchval("select count(*) from admin_log") == before


def test_the_admin_console_lists_every_action_in_both_languages() -> None:
    """The console's filter and its words follow the hub's catalogue: an action added later is never missing."""
    js = (ROOT / "console/admin/admin.js").read_text(encoding="utf-8")
    listed = re.search(r"const ACTIONS = \[(.*?)\];", js, re.S)
    assert listed is not None
    assert tuple(re.findall(r'"([a-z_.]+)"', listed.group(1))) == adminlog.ACTIONS
    strings = (ROOT / "console/admin/strings.js").read_text(encoding="utf-8")
    for action in adminlog.ACTIONS:
        assert strings.count(f'"act.{action}":') == 2, action  # zh-CN and English


def test_the_log_filter_offers_the_catalogue_in_the_openapi_document() -> None:
    doc = openapi_document(VERSION)
    params = {p["name"]: p for p in doc["paths"][PATH]["get"]["parameters"]}
    assert "privacy.rechain" in str(params["action"]["schema"])
