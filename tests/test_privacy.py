"""Personal data out of the hash chain (DESIGN.md idea 10, issue #17): reporters kept aside with a salted digest
in the chain, the move of chains written before migration 0010, erasure by hand and by retention period."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from dispatch.cli.client import HubClient
from dispatch.core.clock import ManualClock
from dispatch.core.commands import parse_command
from dispatch.core.config import Config
from dispatch.core.domain import Actor, Role
from dispatch.core.lifecycle import DecideContext, decide, evolve
from dispatch.core.records import Call
from dispatch.core.reporter import reporter_digest
from dispatch.store import eventlog, rechain
from dispatch.store.writer import UPSERT_ASSIGNMENT, UPSERT_CALL, assignment_row, call_row, event_record
from tests.conftest import ROOT, Hub, start_hub
from tests.helpers import new_call, post, until

NAME, PHONE = "赵隐私", "13900001111"
OTHER_NAME, OTHER_PHONE = "钱保留", "13700002222"


def run_cli(dsn: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dispatch.cli", *args], env={**os.environ, "DATABASE_URL": dsn},
                          cwd=ROOT, capture_output=True, text=True, timeout=120)


async def township(conn: asyncpg.Connection, code: str) -> int:
    tid: int = await conn.fetchval("select id from townships where code = $1", code)
    return tid


async def rows_mentioning(conn: asyncpg.Connection, table: str, *needles: str) -> int:
    """Rows of ``table`` whose text (every column) contains any of ``needles``."""
    where = " or ".join(f"t::text like '%' || ${i} || '%'" for i in range(1, len(needles) + 1))
    count: int = await conn.fetchval(f"select count(*) from {table} t where {where}", *needles)
    return count


async def create(hub: Hub, **overrides: Any) -> dict[str, Any]:
    async with await hub.login("op1.yiqiao") as op:
        return await post(op, "/api/v1/calls", new_call(**overrides), expect=201)


async def detail(hub: Hub, username: str, call_id: str) -> dict[str, Any]:
    async with await hub.login(username) as client:
        res = await client.get(f"/api/v1/calls/{call_id}")
        assert res.status_code == 200, res.text
        data: dict[str, Any] = res.json()
        return data


def created_body(call: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = next(e["body"] for e in call["timeline"] if e["type"] == "call.created")
    return body


# -- a new call -------------------------------------------------------------------------------------------

async def test_a_new_calls_chain_holds_the_digest_and_never_the_name_or_phone(hub: Hub,
                                                                               conn: asyncpg.Connection) -> None:
    created = await create(hub, reporter_name=NAME, reporter_phone=PHONE)
    call_id = uuid.UUID(created["call_id"])
    assert await rows_mentioning(conn, "events", NAME, PHONE) == 0  # not in call.created, not in the dispatches
    kept = await conn.fetchrow("select * from reporters where call_id = $1", call_id)
    assert (kept["name"], kept["phone"], kept["erased_at"]) == (NAME, PHONE, None)
    assert len(bytes(kept["salt"])) == 16
    body = await conn.fetchval("select body from events where call_id = $1 and type = 'call.created'", call_id)
    assert "reporter_name" not in body and "reporter_phone" not in body
    assert body["reporter_digest"] == reporter_digest(bytes(kept["salt"]), NAME, PHONE).hex() == bytes(
        kept["digest"]).hex()
    assert (await eventlog.verify(conn)).ok


async def test_a_call_without_reporter_chains_a_null_digest(hub: Hub, conn: asyncpg.Connection) -> None:
    created = await create(hub, reporter_name=None, reporter_phone=None)
    call_id = uuid.UUID(created["call_id"])
    body = await conn.fetchval("select body from events where call_id = $1 and type = 'call.created'", call_id)
    assert body["reporter_digest"] is None
    assert await conn.fetchval("select count(*) from reporters where call_id = $1", call_id) == 0
    call = await detail(hub, "op1.yiqiao", created["call_id"])
    assert (call["reporter_name"], call["reporter_phone"]) == (None, None)
    assert (created_body(call)["reporter_name"], created_body(call)["reporter_phone"]) == (None, None)


async def test_operators_still_read_the_reporter_and_everyone_else_the_mask(hub: Hub) -> None:
    created = await create(hub, reporter_name=NAME, reporter_phone=PHONE)
    op = await detail(hub, "op1.yiqiao", created["call_id"])
    assert (op["reporter_name"], op["reporter_phone"]) == (NAME, PHONE)
    assert (created_body(op)["reporter_name"], created_body(op)["reporter_phone"]) == (NAME, PHONE)
    assert created_body(op)["reporter_digest"]
    dispatched = next(e["body"] for e in op["timeline"] if e["type"] == "assignment.dispatched")
    assert dispatched["call"]["reporter_phone"] == PHONE
    sup = await detail(hub, "supervisor", created["call_id"])
    assert (sup["reporter_name"], sup["reporter_phone"]) == ("赵**", "139****1111")
    assert (created_body(sup)["reporter_name"], created_body(sup)["reporter_phone"]) == ("赵**", "139****1111")


async def test_the_websocket_frames_carry_the_reporter_live_and_on_resume(hub: Hub, conn: asyncpg.Connection) -> None:
    tid = await township(conn, "yiqiao")
    op_token, police_token = await hub.token("op1.yiqiao"), await hub.token("police1.yiqiao")
    async with HubClient(hub.url, op_token) as op, HubClient(hub.url, police_token) as police:
        await asyncio.wait_for(op.caught_up.wait(), 5)
        await asyncio.wait_for(police.caught_up.wait(), 5)
        created = await create(hub, reporter_name=NAME, reporter_phone=PHONE)
        live = await op.next_event(predicate=lambda e: e.event_type == "call.created")
        live_police = await police.next_event(predicate=lambda e: e.event_type == "assignment.dispatched")
    assert live.call_id == created["call_id"]
    assert (live.body["reporter_name"], live.body["reporter_phone"]) == (NAME, PHONE)
    assert live.body["reporter_digest"]
    assert (live_police.body["call"]["reporter_name"], live_police.body["call"]["reporter_phone"]) == (
        "赵**", "139****1111")
    async with HubClient(hub.url, op_token, cursors={tid: 0}) as op:  # resume from the start: a replay
        replayed = await op.next_event(predicate=lambda e: e.event_type == "call.created")
        dispatched = await op.next_event(predicate=lambda e: e.event_type == "assignment.dispatched")
    assert (replayed.body["reporter_name"], replayed.body["reporter_phone"]) == (NAME, PHONE)
    assert dispatched.body["call"]["reporter_phone"] == PHONE


# -- chains written before migration 0010 ----------------------------------------------------------------

async def old_style_call(conn: asyncpg.Connection, cfg: Config, tid: int, n: int, name: str | None,
                         phone: str | None, at: datetime) -> uuid.UUID:
    """A call written as the write path wrote it before migration 0010: name and phone in the chained bodies."""
    actor_row = await conn.fetchrow("select id, display_name from users where username = 'op1.yiqiao'")
    actor = Actor(user_id=actor_row["id"], role=Role.OPERATOR, township_id=tid, name=actor_row["display_name"])
    targets = frozenset(r["department"] for r in await conn.fetch(
        "select department from stations where township_id = $1", tid))
    cmd = parse_command("create_call", new_call(reporter_name=name, reporter_phone=phone))
    ctx = DecideContext(new_id=uuid.uuid4, sla=cfg, known_targets=targets, categories=frozenset(cfg.categories),
                        township_id=tid, next_number=lambda: f"OLD-{tid}-{n}")
    async with conn.transaction():
        head = await conn.fetchrow("select seq, hash from township_heads where township_id = $1 for update", tid)
        events = decide(None, cmd, actor, at, ctx)
        call: Call | None = None
        for ev in events:
            call = evolve(call, ev)
        assert call is not None
        stored = await eventlog.append(conn, tid, (head["seq"], bytes(head["hash"])),
                                       [event_record(tid, actor, cmd.command_id, ev) for ev in events])
        await conn.execute(UPSERT_CALL, *call_row(call, stored[-1].seq))
        await conn.executemany(UPSERT_ASSIGNMENT, [assignment_row(call, a, cfg) for a in call.assignments.values()])
    return call.id


async def test_the_move_takes_old_plaintext_out_of_every_chain_and_records_the_heads(
        dsn: str, conn: asyncpg.Connection, cfg: Config) -> None:
    yiqiao, zhongdu = await township(conn, "yiqiao"), await township(conn, "zhongdu")
    at = datetime(2026, 10, 1, 2, 0, tzinfo=UTC)
    first = await old_style_call(conn, cfg, yiqiao, 1, NAME, PHONE, at)
    await old_style_call(conn, cfg, yiqiao, 2, None, None, at + timedelta(minutes=1))
    await old_style_call(conn, cfg, zhongdu, 1, OTHER_NAME, OTHER_PHONE, at + timedelta(minutes=2))
    assert await rows_mentioning(conn, "events", NAME, PHONE, OTHER_NAME, OTHER_PHONE) > 0
    old_heads = {r["township_id"]: (r["seq"], bytes(r["hash"])) for r in await conn.fetch(
        "select * from township_heads where seq > 0")}
    checked = run_cli(dsn, "verify-log")
    assert checked.returncode == 0 and "OK:" in checked.stdout, checked.stderr

    moved = run_cli(dsn, "migrate")  # the SQL migrations are current; the Python step does the move
    assert moved.returncode == 0, moved.stderr
    assert "township yiqiao: 1 reporters moved" in moved.stderr and "township zhongdu: 1 reporters" in moved.stderr

    assert await rows_mentioning(conn, "events", NAME, PHONE, OTHER_NAME, OTHER_PHONE) == 0
    assert not await conn.fetchval("select count(*) from events where body ? 'reporter_name'"
                                   " or body->'call' ? 'reporter_phone'")
    checked = run_cli(dsn, "verify-log")
    assert checked.returncode == 0 and "OK:" in checked.stdout, checked.stderr
    kept = await conn.fetchrow("select * from reporters where call_id = $1", first)
    assert (kept["name"], kept["phone"]) == (NAME, PHONE)
    body = await conn.fetchval("select body from events where call_id = $1 and type = 'call.created'", first)
    assert body["reporter_digest"] == reporter_digest(bytes(kept["salt"]), NAME, PHONE).hex()
    doc = await conn.fetchval("select doc from calls where id = $1", first)
    assert (doc["reporter_name"], doc["reporter_phone"]) == (NAME, PHONE)  # the projection keeps them

    new_heads = {r["township_id"]: (r["seq"], bytes(r["hash"])) for r in await conn.fetch(
        "select * from township_heads where seq > 0")}
    log = {r["target"]: r for r in await conn.fetch("select * from admin_log where action = 'privacy.rechain'")}
    assert set(log) == {"township:yiqiao", "township:zhongdu"}
    for tid, code in ((yiqiao, "yiqiao"), (zhongdu, "zhongdu")):
        entry = log[f"township:{code}"]
        assert entry["before"] == {"head_seq": old_heads[tid][0], "head_hash": old_heads[tid][1].hex()}
        assert entry["after"]["head_hash"] == new_heads[tid][1].hex() != old_heads[tid][1].hex()
        assert entry["after"]["head_seq"] == new_heads[tid][0] == old_heads[tid][0]
        assert entry["actor_name"] == "system"
    assert log["township:yiqiao"]["after"]["reporters_moved"] == 1
    assert log["township:yiqiao"]["after"]["events_rechained"] == old_heads[yiqiao][0]

    again = await rechain.move_reporters(conn, datetime.now(UTC))  # a second run finds nothing
    assert again.moved == {} and again.refused == {}
    assert {r["township_id"]: (r["seq"], bytes(r["hash"])) for r in await conn.fetch(
        "select * from township_heads where seq > 0")} == new_heads
    assert await conn.fetchval("select count(*) from admin_log") == 2


async def test_the_move_leaves_a_broken_chain_untouched_and_says_so(dsn: str, conn: asyncpg.Connection,
                                                                    cfg: Config) -> None:
    yiqiao, zhongdu = await township(conn, "yiqiao"), await township(conn, "zhongdu")
    at = datetime(2026, 10, 1, 2, 0, tzinfo=UTC)
    await old_style_call(conn, cfg, yiqiao, 1, NAME, PHONE, at)
    await old_style_call(conn, cfg, zhongdu, 1, OTHER_NAME, OTHER_PHONE, at)
    await conn.execute("alter table events disable trigger events_no_update")
    await conn.execute("update events set actor_name = 'tampered' where township_id = $1 and seq = 2", zhongdu)
    await conn.execute("alter table events enable trigger events_no_update")
    broken = await conn.fetch("select seq, hash from events where township_id = $1 order by seq", zhongdu)

    moved = run_cli(dsn, "migrate")
    assert moved.returncode != 0
    assert "township yiqiao: 1 reporters moved" in moved.stderr
    assert f"township {zhongdu}: reporters NOT moved" in moved.stderr and "chain broken at seq 2" in moved.stderr
    assert await rows_mentioning(conn, "events", NAME, PHONE) == 0
    assert await rows_mentioning(conn, "events", OTHER_NAME) > 0  # left as it was
    assert await conn.fetch("select seq, hash from events where township_id = $1 order by seq", zhongdu) == broken
    assert await conn.fetchval("select count(*) from reporters where township_id = $1", zhongdu) == 0


# -- erasure -----------------------------------------------------------------------------------------------

async def test_erase_removes_closed_calls_reporters_everywhere_and_keeps_the_chains(
        hub: Hub, conn: asyncpg.Connection) -> None:
    tid = await township(conn, "yiqiao")
    closed = await create(hub, reporter_name=NAME, reporter_phone=PHONE)
    kept_open = await create(hub, reporter_name=OTHER_NAME, reporter_phone=OTHER_PHONE)
    async with await hub.login("op1.yiqiao") as op:
        await post(op, f"/api/v1/calls/{closed['call_id']}/cancel", {"reason": "群众已自行解决"})
    hub.clock.advance(3600)
    again = await create(hub, reporter_name="孙再来", reporter_phone=PHONE)  # open, same phone as the closed call
    assert (await detail(hub, "op1.yiqiao", again["call_id"]))["repeat_calls"] == 1
    cutoff = (hub.clock.now() + timedelta(days=2)).date().isoformat()
    admin_entries = await conn.fetchval("select count(*) from admin_log")

    dry = run_cli(hub.dsn, "erase", "--before", cutoff, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "dry run: would erase the reporters of 1 calls" in dry.stdout and "yiqiao 1" in dry.stdout
    assert await conn.fetchval("select name from reporters where call_id = $1", uuid.UUID(closed["call_id"])) == NAME
    assert await conn.fetchval("select count(*) from admin_log") == admin_entries

    done = run_cli(hub.dsn, "erase", "--before", cutoff)
    assert done.returncode == 0, done.stderr
    assert "erased the reporters of 1 calls" in done.stdout
    checked = run_cli(hub.dsn, "verify-log")
    assert checked.returncode == 0 and "OK:" in checked.stdout, checked.stderr

    # every API answer: detail (and its timeline), list, phone search, repeat callers, the WebSocket replay
    call = await detail(hub, "op1.yiqiao", closed["call_id"])
    assert (call["reporter_name"], call["reporter_phone"], call["repeat_calls"]) == (None, None, None)
    assert (created_body(call)["reporter_name"], created_body(call)["reporter_phone"]) == (None, None)
    dispatched = next(e["body"] for e in call["timeline"] if e["type"] == "assignment.dispatched")
    assert dispatched["call"]["reporter_name"] is None and dispatched["call"]["reporter_phone"] is None
    async with await hub.login("op1.yiqiao") as op:
        listed = (await op.get("/api/v1/calls", params={"limit": 500})).text
        found = (await op.get("/api/v1/calls", params={"phone": PHONE})).json()["calls"]
    assert NAME not in listed
    assert [c["id"] for c in found] == [again["call_id"]]
    assert (await detail(hub, "op1.yiqiao", again["call_id"]))["repeat_calls"] == 0
    async with HubClient(hub.url, await hub.token("op1.yiqiao"), cursors={tid: 0}) as client:
        frames = [await client.next_event() for _ in range(
            await conn.fetchval("select count(*) from events where township_id = $1", tid))]
    assert not [f for f in frames if NAME in repr(f.body)]
    created_frame = next(f for f in frames if f.event_type == "call.created" and f.call_id == closed["call_id"])
    assert created_frame.body["reporter_name"] is None and created_frame.body["reporter_digest"]

    # and from the database: the closed call's row and reporter, every event
    closed_id = uuid.UUID(closed["call_id"])
    assert await rows_mentioning(conn, "events", NAME, PHONE) == 0
    assert await conn.fetchval("select count(*) from calls where doc::text like '%' || $1 || '%'", NAME) == 0
    row = await conn.fetchrow("select doc, reporter_digits from calls where id = $1", closed_id)
    assert (row["doc"]["reporter_name"], row["doc"]["reporter_phone"], row["reporter_digits"]) == (None, None, None)
    erased = await conn.fetchrow("select * from reporters where call_id = $1", closed_id)
    assert (erased["name"], erased["phone"], erased["salt"]) == (None, None, None) and erased["erased_at"]
    assert erased["digest"]  # the chain's digest stays; without the salt it says nothing
    assert await rows_mentioning(conn, "reporters", NAME) == 0
    # open calls untouched
    untouched = await detail(hub, "op1.yiqiao", kept_open["call_id"])
    assert (untouched["reporter_name"], untouched["reporter_phone"]) == (OTHER_NAME, OTHER_PHONE)
    entry = await conn.fetchrow("select * from admin_log where action = 'privacy.erase'")
    assert entry["actor_name"].startswith("cli:") and entry["after"]["calls"] == 1
    assert entry["after"]["townships"] == {"yiqiao": 1}


@pytest.fixture
def retention_cfg(cfg: Config) -> Config:
    return cfg.model_copy(update={"privacy": cfg.privacy.model_copy(update={"retention_days": 30})})


async def test_the_retention_period_erases_once_a_day_on_the_hubs_clock(retention_cfg: Config, dsn: str,
                                                                       clock: ManualClock,
                                                                       conn: asyncpg.Connection) -> None:
    hub, server, task = await start_hub(retention_cfg, dsn, clock)
    try:
        retention = hub.state.retention
        await until(lambda: len(retention.runs) == 1, 5, "the check at start")
        assert retention.runs[0].calls == 0
        closed = await create(hub, reporter_name=NAME, reporter_phone=PHONE)
        kept_open = await create(hub, reporter_name=OTHER_NAME, reporter_phone=OTHER_PHONE)
        async with await hub.login("op1.yiqiao") as op:
            await post(op, f"/api/v1/calls/{closed['call_id']}/cancel", {"reason": "群众已自行解决"})
        clock.advance(86400 * 2)  # a day has passed, but the call was closed only 2 days ago: nothing to erase
        await until(lambda: len(retention.runs) == 2, 5, "the next day's check")
        assert retention.runs[1].calls == 0
        clock.advance(3600)  # within the day: no run
        clock.advance(86400 * 29)
        await until(lambda: len(retention.runs) == 3, 5, "the check 31 days after the closing")
        assert retention.runs[2].calls == 1
        assert len(retention.runs) == 3
        call = await detail(hub, "op1.yiqiao", closed["call_id"])
        assert (call["reporter_name"], call["reporter_phone"]) == (None, None)
        other = await detail(hub, "op1.yiqiao", kept_open["call_id"])
        assert other["reporter_name"] == OTHER_NAME  # still open
        assert (await eventlog.verify(conn)).ok
        entries = await conn.fetch("select * from admin_log where action = 'privacy.erase' order by seq")
        assert [e["after"]["calls"] for e in entries] == [0, 0, 1]
        assert {e["actor_name"] for e in entries} == {"system"}
    finally:
        server.should_exit = True
        await task
