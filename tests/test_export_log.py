"""Exporting a township's raw event log as JSON Lines, and verifying an exported file offline (issue #14):
the period's contiguous seq range at 00:00 Asia/Shanghai, every column as hashed, who may export, and
``xianghu verify-log --file`` naming the line that breaks the chain."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from uuid import UUID

import asyncpg
import httpx
import pytest

from dispatch.cli.demo import DEMO_PASSWORD
from dispatch.core.clock import ManualClock
from dispatch.core.domain import Role
from dispatch.evaluation.period import MAX_RANGE_DAYS, date_range
from dispatch.store import export as export_store
from dispatch.store import logfile
from dispatch.store.accounts import add_user
from dispatch.store.eventlog import EventRecord
from dispatch.web.app import VERSION
from dispatch.web.openapi import openapi_document
from dispatch.web.schemas import ExportedEventOut
from protocols.errors import InternalError
from tests.conftest import ROOT, Hub
from tests.helpers import assignment_of, new_call, post

MIDNIGHT = datetime(2026, 11, 2, 16, 0, tzinfo=UTC)  # 00:00 on 3 November in Asia/Shanghai
TICK = timedelta(microseconds=1)
PATH = "/api/v1/export/events.jsonl"


@pytest.fixture
def clock() -> ManualClock:
    # 23:50 on 2 November in Asia/Shanghai: the seeded events straddle midnight within minutes, well inside
    # every deadline of a low-priority call, so no escalation is written behind the test's back.
    return ManualClock(MIDNIGHT - timedelta(minutes=10))


@dataclass
class Seeded:
    yiqiao: int
    zhongdu: int
    call_id: str


async def township(conn: asyncpg.Connection, code: str) -> int:
    tid: int = await conn.fetchval("select id from townships where code = $1", code)
    return tid


async def seed(hub: Hub, conn: asyncpg.Connection) -> Seeded:
    """Calls and actions in 义桥 (A) and 中都 (B) on both sides of midnight, Asia/Shanghai."""
    op_a, op_b, police = (await hub.login("op1.yiqiao"), await hub.login("op1.zhongdu"),
                          await hub.login("police1.yiqiao"))
    async with op_a, op_b, police:
        created = await post(op_a, "/api/v1/calls", new_call(priority="low"), expect=201)
        call_id = created["call_id"]
        await post(op_b, "/api/v1/calls", new_call(priority="low", address="中都街道"), expect=201)
        hub.clock.advance(60)
        detail = (await op_a.get(f"/api/v1/calls/{call_id}")).json()
        aid = assignment_of(detail, "police")["id"]
        await post(police, f"/api/v1/assignments/{aid}/acknowledge")
        await post(op_a, f"/api/v1/calls/{call_id}/note", {"text": "已联系派出所"})
        hub.clock.set(MIDNIGHT - TICK)  # the last instant of 2 November
        await post(op_a, f"/api/v1/calls/{call_id}/note", {"text": "午夜前最后一条"})
        hub.clock.set(MIDNIGHT)  # the first instant of 3 November
        await post(op_a, f"/api/v1/calls/{call_id}/note", {"text": "午夜第一条"})
        await post(police, f"/api/v1/assignments/{aid}/arrive")
        hub.clock.advance(60)
        await post(op_a, "/api/v1/calls", new_call(priority="low", title="第二起"), expect=201)
        await post(op_b, "/api/v1/calls", new_call(priority="low", address="中都街道", title="第二起"), expect=201)
    return Seeded(await township(conn, "yiqiao"), await township(conn, "zhongdu"), call_id)


async def events_of(conn: asyncpg.Connection, tid: int) -> list[EventRecord]:
    rows = await conn.fetch("select * from events where township_id = $1 order by seq", tid)
    return [EventRecord.from_row(r) for r in rows]


async def export(client: httpx.AsyncClient, township_id: int | str, first: str, last: str) -> httpx.Response:
    return await client.get(PATH, params={"township_id": township_id, "from": first, "to": last})


def lines_of(res: httpx.Response) -> list[bytes]:
    assert res.status_code == 200, res.text
    assert res.content.endswith(b"\n") or res.content == b""
    return res.content.splitlines(keepends=True)


def run_cli(*args: str, dsn: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": dsn} if dsn else {**os.environ, "DATABASE_URL": "postgresql://nowhere.invalid/x"}
    return subprocess.run([sys.executable, "-m", "dispatch.cli", *args], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=60)


# -- the file --------------------------------------------------------------------------------------

async def test_a_day_is_its_contiguous_seq_range_with_every_column_as_stored(hub: Hub,
                                                                            conn: asyncpg.Connection) -> None:
    s = await seed(hub, conn)
    stored = await events_of(conn, s.yiqiao)
    day2 = [r for r in stored if r.at < MIDNIGHT]
    day3 = [r for r in stored if r.at >= MIDNIGHT]
    assert day2 and day3 and stored == day2 + day3  # the seeding straddles midnight
    async with await hub.login("supervisor") as sup:
        res2 = await export(sup, s.yiqiao, "2026-11-02", "2026-11-02")
        res3 = await export(sup, s.yiqiao, "2026-11-03", "2026-11-03")
        both = await export(sup, s.yiqiao, "2026-11-01", "2026-11-03")
        before = await export(sup, s.yiqiao, "2026-10-01", "2026-11-01")
    assert res2.headers["content-type"].split(";")[0] == "application/x-ndjson"
    assert res2.headers["content-disposition"] == 'attachment; filename="xianghu-yiqiao-2026-11-02-2026-11-02.jsonl"'
    lines2, lines3 = lines_of(res2), lines_of(res3)
    # Count, seq range and bytes are the database's, each line exactly the stored row with both hashes.
    assert lines2 == [logfile.encode_line(r) for r in day2]
    assert lines3 == [logfile.encode_line(r) for r in day3]
    assert lines_of(both) == [logfile.encode_line(r) for r in stored]
    assert lines_of(before) == []
    docs = [json.loads(line) for line in lines2 + lines3]
    assert [d["seq"] for d in docs] == list(range(1, len(stored) + 1))
    for doc in docs:
        assert list(doc) == sorted(logfile.FIELDS)  # every column, keys sorted
        ExportedEventOut.model_validate(doc)
        assert doc["township_id"] == s.yiqiao
    # The boundary is 00:00 Asia/Shanghai: the last microsecond of the 2nd ends one file, midnight opens the next.
    assert docs[len(lines2) - 1]["at"] == "2026-11-02T15:59:59.999999Z"
    assert docs[len(lines2)]["at"] == "2026-11-02T16:00:00.000000Z"
    assert docs[len(lines2)]["prev_hash"] == docs[len(lines2) - 1]["hash"]
    assert docs[0]["prev_hash"] == "" and all(len(d["hash"]) == 64 for d in docs)
    # Raw, UTF-8, not escaped; the reporter's name and phone are not in the chain, only their salted digest.
    assert "小区门口车辆乱停".encode() in res2.content
    assert "13812345678" not in res2.text and "王小明" not in res2.text
    created = next(d for d in docs if d["type"] == "call.created")
    assert len(created["body"]["reporter_digest"]) == 64
    notes = [d["body"]["text"] for d in docs if d["type"] == "call.noted"]
    assert notes == ["已联系派出所", "午夜前最后一条", "午夜第一条"]


async def test_the_file_is_contiguous_even_when_at_steps_back(hub: Hub, conn: asyncpg.Connection) -> None:
    s = await seed(hub, conn)
    # A clock set back: a later seq carries an earlier time (on a new call: a call's own times never go back).
    hub.clock.set(MIDNIGHT - timedelta(seconds=1))
    async with await hub.login("op1.yiqiao") as op:
        late = await post(op, "/api/v1/calls", new_call(priority="low", title="补录"), expect=201)
    late_seq = late["events"][-1]["seq"]
    async with await hub.login("supervisor") as sup:
        file2 = lines_of(await export(sup, s.yiqiao, "2026-11-02", "2026-11-02"))
        file3 = lines_of(await export(sup, s.yiqiao, "2026-11-03", "2026-11-03"))
    day2, day3 = [json.loads(line) for line in file2], [json.loads(line) for line in file3]
    # From the first event at or after the start to the last one before the end, by seq: 2 November now runs
    # through the events of 3 November up to the backdated call, and both files verify.
    assert [d["seq"] for d in day2] == list(range(1, late_seq + 1))
    assert any(d["at"] >= "2026-11-02T16:00:00" for d in day2)
    assert day3[0]["at"] == "2026-11-02T16:00:00.000000Z" and day3[-1]["seq"] == late_seq
    assert logfile.verify_lines(file2).ok and logfile.verify_lines(file3).ok


async def test_batches_join_into_the_same_file_and_a_log_cut_short_is_an_error(hub: Hub,
                                                                               conn: asyncpg.Connection) -> None:
    s = await seed(hub, conn)
    found = await export_store.fetch_township(conn, code="yiqiao")
    assert found is not None and found.id == s.yiqiao
    rng = await export_store.fetch_range(conn, found, date_range(date(2026, 11, 2), date(2026, 11, 3)))
    whole = [chunk async for chunk in export_store.iter_lines(conn, rng)]
    small = [chunk async for chunk in export_store.iter_lines(conn, rng, batch=2)]
    assert len(whole) == 1 and len(small) == (rng.count + 1) // 2
    assert b"".join(small) == whole[0] and whole[0].count(b"\n") == rng.count
    # A superuser deletes the newest event behind the append-only guard after the range was fixed: the export
    # fails loudly (the HTTP stream is aborted) instead of ending the file short.
    await conn.execute("set session_replication_role = replica")
    await conn.execute("delete from events where township_id = $1 and seq = $2", s.yiqiao, rng.last_seq)
    await conn.execute("set session_replication_role = origin")
    with pytest.raises(InternalError, match=f"ends at seq {rng.last_seq - 1}"):
        async for _ in export_store.iter_lines(conn, rng, batch=2):
            pass


# -- offline verification ---------------------------------------------------------------------------

async def test_export_log_and_verify_log_file(hub: Hub, conn: asyncpg.Connection, tmp_path: Path) -> None:
    s = await seed(hub, conn)
    async with await hub.login("admin") as admin:
        served = await export(admin, s.yiqiao, "2026-11-02", "2026-11-03")
    out = tmp_path / "yiqiao.jsonl"
    made = run_cli("export-log", "--township", "yiqiao", "--from", "2026-11-02", "--to", "2026-11-03",
                   "--out", str(out), dsn=hub.dsn)
    assert made.returncode == 0, made.stderr
    total = len(await events_of(conn, s.yiqiao))
    assert f"exported {total} events of yiqiao (seq 1..{total})" in made.stderr
    assert out.read_bytes() == served.content  # the CLI and the endpoint write the same file
    assert not (tmp_path / "yiqiao.jsonl.part").exists()
    to_stdout = subprocess.run([sys.executable, "-m", "dispatch.cli", "export-log", "--township", "yiqiao",
                                "--from", "2026-11-02", "--to", "2026-11-03"], cwd=ROOT, capture_output=True,
                               env={**os.environ, "DATABASE_URL": hub.dsn}, timeout=60)
    assert to_stdout.returncode == 0 and to_stdout.stdout == served.content

    ok = run_cli("verify-log", "--file", str(out))  # no database: DATABASE_URL points nowhere
    assert ok.returncode == 0, ok.stderr
    head = await conn.fetchrow("select seq, hash from township_heads where township_id = $1", s.yiqiao)
    assert f"township {s.yiqiao}, seq 1..{total}, {total} events" in ok.stdout
    assert "first prev_hash (empty" in ok.stdout
    assert f"last hash       {bytes(head['hash']).hex()}" in ok.stdout  # comparable with the hub's chain

    lines = out.read_bytes().splitlines(keepends=True)
    edited = json.loads(lines[2])
    edited["actor_name"] += "x"
    tampered = tmp_path / "tampered.jsonl"
    tampered.write_bytes(b"".join([*lines[:2], logfile.canonical_json(edited) + b"\n", *lines[3:]]))
    bad = run_cli("verify-log", "--file", str(tampered))
    assert bad.returncode == 1
    assert "line 3 (seq 3): hash does not match the line's content" in bad.stderr

    gap = tmp_path / "gap.jsonl"
    gap.write_bytes(b"".join(lines[:3] + lines[4:]))
    missing = run_cli("verify-log", "--file", str(gap))
    assert missing.returncode == 1
    assert "line 4 (seq 5): sequence gap: expected seq 4, found 5" in missing.stderr

    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    nothing = run_cli("verify-log", "--file", str(empty))
    assert nothing.returncode == 1 and "holds no event" in nothing.stderr

    both = run_cli("verify-log", "--file", str(out), "--township", "yiqiao")
    assert both.returncode == 2 and "exclusive" in both.stderr


async def test_export_log_command_refuses_bad_arguments(hub: Hub, tmp_path: Path) -> None:
    out = tmp_path / "x.jsonl"
    unknown = run_cli("export-log", "--township", "nowhere", "--from", "2026-11-02", "--to", "2026-11-02",
                      "--out", str(out), dsn=hub.dsn)
    assert unknown.returncode == 2 and "unknown township 'nowhere'" in unknown.stderr
    assert not out.exists() and not (tmp_path / "x.jsonl.part").exists()
    backwards = run_cli("export-log", "--township", "yiqiao", "--from", "2026-11-03", "--to", "2026-11-02",
                        dsn=hub.dsn)
    assert backwards.returncode == 2 and "is before from" in backwards.stderr
    bad_date = run_cli("export-log", "--township", "yiqiao", "--from", "2026-11-31", "--to", "2026-12-01",
                       dsn=hub.dsn)
    assert bad_date.returncode == 2 and "--from" in bad_date.stderr


def test_a_line_is_the_canonical_encoding_plus_both_hashes() -> None:
    rec = EventRecord(township_id=3, seq=1, call_id=UUID(int=1), assignment_id=None, type="call.created",
                      actor_id=7, actor_role="operator", actor_name="操作员", at=datetime(2026, 11, 2, 16, tzinfo=UTC),
                      body={"title": "飞线充电", "n": [1, None, True], "z": {"b": 1, "a": "\n\""}},
                      audience=("police", "unit:4"), call_state="intake", assignment_state=None,
                      command_id=UUID(int=2)).chained(b"")
    line = logfile.encode_line(rec)
    assert logfile.decode_line(line) == rec
    # What docs/EXPORT.md promises: remove the two hash members and what is left is the hashed bytes.
    stripped = line.replace(f',"hash":"{rec.hash.hex()}"'.encode(), b"").replace(b',"prev_hash":""', b"")
    assert stripped == rec.canonical() + b"\n"
    assert '"actor_name":"操作员"'.encode() in line
    nxt = replace(rec, seq=2, body={"text": "x"}).chained(rec.hash)
    assert logfile.verify_lines([line, logfile.encode_line(nxt)]) == logfile.FileReport(
        True, 2, 3, 1, 2, b"", nxt.hash)


@pytest.mark.parametrize(("change", "reason"), [
    ({"hash": "AB" * 32}, "hash: expected 64 lowercase hex digits"),
    ({"prev_hash": "ab"}, "prev_hash: expected 64 lowercase hex digits"),
    ({"at": "2026-11-02T16:00:00Z"}, "at: expected UTC time"),
    ({"at": "2026-11-02T16:00:00.000000+00:00"}, "at: expected UTC time"),
    ({"seq": True}, "seq: expected an integer"),
    ({"township_id": "3"}, "township_id: expected an integer"),
    ({"call_id": "ABCDEF00-0000-4000-8000-000000000001"}, "call_id: expected a UUID in lowercase"),
    ({"audience": "police"}, "audience: expected an array of strings"),
    ({"body": []}, "body: expected an object"),
    ({"extra": 1}, "unknown field(s): extra"),
])
def test_a_line_is_read_strictly(change: dict[str, object], reason: str) -> None:
    rec = EventRecord(township_id=3, seq=1, call_id=UUID(int=1), assignment_id=None, type="call.created",
                      actor_id=None, actor_role="system", actor_name="system", at=datetime(2026, 11, 2, tzinfo=UTC),
                      body={}, audience=(), call_state=None, assignment_state=None, command_id=None).chained(b"")
    doc = {**json.loads(logfile.encode_line(rec)), **change}
    with pytest.raises(logfile.LineError) as err:
        logfile.decode_line(json.dumps(doc))
    assert err.value.reason.startswith(reason)


def test_lines_that_are_not_events_of_one_chain_are_named() -> None:
    base = EventRecord(township_id=3, seq=1, call_id=None, assignment_id=None, type="t", actor_id=None,
                       actor_role="system", actor_name="system", at=datetime(2026, 11, 2, tzinfo=UTC), body={},
                       audience=(), call_state=None, assignment_state=None, command_id=None)
    one = base.chained(b"")
    two = replace(base, seq=2).chained(one.hash)
    line1, line2 = logfile.encode_line(one), logfile.encode_line(two)
    other = logfile.encode_line(replace(base, township_id=4, seq=2).chained(one.hash))
    cases = {  # reason: (lines, the line named)
        "missing field(s): hash": ([line1.replace(f',"hash":"{one.hash.hex()}"'.encode(), b"")], 1),
        "duplicate key": ([line1.replace(b'{"actor_id"', b'{"seq":1,"actor_id"')], 1),
        "not valid JSON": ([line1, line2[:-5]], 2),
        "not UTF-8": ([b"\xff" + line1], 1),
        "empty line": ([line1, b"\n", line2], 2),
        "township_id 4 differs from 3": ([line1, other], 2),
        "prev_hash does not match the previous line's hash": (
            [line1, logfile.encode_line(replace(two, prev_hash=two.hash))], 2),
        "the township's first event (seq 1) must have an empty prev_hash": (
            [logfile.encode_line(base.chained(two.hash))], 1),
        "prev_hash is empty": ([logfile.encode_line(replace(base, seq=2).chained(b""))], 1),
    }
    for reason, (lines, number) in cases.items():
        report = logfile.verify_lines(lines)
        assert not report.ok and reason in report.reason and report.line == number, (reason, report)


# -- who may export ---------------------------------------------------------------------------------

async def test_who_may_export_which_township(hub: Hub, conn: asyncpg.Connection) -> None:
    s = await seed(hub, conn)
    # The demo county has leader.yiqiao (township leader) and head.police (department head); add a supervisor
    # attached to 中都.
    await add_user(conn, username="sup.zhongdu", display_name="中都督查", password=DEMO_PASSWORD,
                   role=Role.SUPERVISOR, township_id=s.zhongdu)
    roles = dict(await conn.fetch("select username, role from users where username = any($1::text[])",
                                  ["leader.yiqiao", "head.police"]))
    assert roles == {"leader.yiqiao": "leader", "head.police": "department_head"}
    missing = 2**31 - 1

    async def status(username: str | None, tid: int) -> tuple[int, str | None]:
        client = hub.client() if username is None else await hub.login(username)
        async with client:
            res = await export(client, tid, "2026-11-02", "2026-11-03")
        return res.status_code, None if res.status_code == 200 else res.json()["code"]

    assert await status("supervisor", s.yiqiao) == (200, None)
    assert await status("supervisor", s.zhongdu) == (200, None)
    assert await status("admin", s.zhongdu) == (200, None)
    assert await status("admin", missing) == (404, "not_found")
    assert await status("leader.yiqiao", s.yiqiao) == (200, None)
    assert await status("leader.yiqiao", s.zhongdu) == (404, "not_found")
    assert await status("leader.yiqiao", missing) == (404, "not_found")  # the same answer: existence unconfirmed
    assert await status("sup.zhongdu", s.zhongdu) == (200, None)
    assert await status("sup.zhongdu", s.yiqiao) == (404, "not_found")
    assert await status("head.police", s.yiqiao) == (403, "forbidden")
    assert await status("police1.yiqiao", s.yiqiao) == (403, "forbidden")
    assert await status("op1.yiqiao", s.yiqiao) == (403, "forbidden")
    assert await status(None, s.yiqiao) == (401, "unauthenticated")
    async with await hub.login("leader.yiqiao") as leader:
        own = lines_of(await export(leader, s.yiqiao, "2026-11-02", "2026-11-03"))
    assert len(own) == len(await events_of(conn, s.yiqiao))  # the leader's file is the whole raw log


async def test_bad_queries_name_the_field(hub: Hub) -> None:
    too_far = (datetime(2026, 1, 1) + timedelta(days=MAX_RANGE_DAYS)).date().isoformat()
    cases = [
        ({"from": "2026-11-02", "to": "2026-11-02"}, "township_id"),
        ({"township_id": "x", "from": "2026-11-02", "to": "2026-11-02"}, "township_id"),
        ({"township_id": 1, "to": "2026-11-02"}, "from"),
        ({"township_id": 1, "from": "2026-11-02"}, "to"),
        ({"township_id": 1, "from": "2026-13-01", "to": "2026-12-01"}, "from"),
        ({"township_id": 1, "from": "2026-11-2", "to": "2026-12-01"}, "from"),
        ({"township_id": 1, "from": "1793606400", "to": "2026-12-01"}, "from"),
        ({"township_id": 1, "from": "2026-11-02", "to": "2026-11-02T00:00:00"}, "to"),
        ({"township_id": 1, "from": "2026-11-02", "to": "2026-11-01"}, "to"),
        ({"township_id": 1, "from": "2026-01-01", "to": too_far}, "to"),
        ({"township_id": 1, "from": "2026-11-02", "to": "2026-11-02", "format": "csv"}, "format"),
    ]
    async with await hub.login("supervisor") as sup:
        for params, field in cases:
            res = await sup.get(PATH, params=params)
            assert res.status_code == 422, (params, res.text)
            assert res.json()["code"] == "validation" and res.json()["field"] == field, (params, res.json())


def test_the_export_is_in_the_openapi_document() -> None:
    op = openapi_document(VERSION)["paths"][PATH]["get"]
    assert [p["name"] for p in op["parameters"]] == ["township_id", "from", "to"]
    assert all(p["required"] for p in op["parameters"])
    assert op["parameters"][1]["schema"]["format"] == "date"
    ok = op["responses"]["200"]
    assert set(ok["content"]) == {"application/x-ndjson"}
    assert ok["content"]["application/x-ndjson"]["x-item-schema"] == {"$ref": "#/components/schemas/ExportedEventOut"}
    assert "Content-Disposition" in ok["headers"]
    assert {"401", "403", "404", "422", "503"} <= set(op["responses"])
