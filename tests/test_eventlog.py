"""The event log on a real PostgreSQL: ordering without gaps, exactly-once effects, tamper evidence."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid

import asyncpg

from dispatch.core.commands import parse_command
from dispatch.core.domain import Actor, Role
from dispatch.store import eventlog
from protocols.errors import NotFound
from tests.conftest import ROOT, Hub
from tests.helpers import assignment_of, new_call, post


async def township(conn: asyncpg.Connection, code: str = "yiqiao") -> int:
    tid: int = await conn.fetchval("select id from townships where code = $1", code)
    return tid


async def test_two_liaisons_acknowledging_at_once_make_one_acknowledgement(hub: Hub, conn: asyncpg.Connection) -> None:
    async with await hub.login("op1.yiqiao") as op:
        created = await post(op, "/api/v1/calls", new_call(), expect=201)
        detail = (await op.get(f"/api/v1/calls/{created['call_id']}")).json()
    aid = assignment_of(detail, "police")["id"]
    a, b = await hub.login("police1.yiqiao"), await hub.login("police2.yiqiao")
    async with a, b:
        results = await asyncio.gather(*(c.post(f"/api/v1/assignments/{aid}/acknowledge",
                                                json={"command_id": str(uuid.uuid4())}) for c in (a, b)))
    assert sorted(r.status_code for r in results) == [200, 409]
    count = await conn.fetchval(
        "select count(*) from events where assignment_id = $1 and type = 'assignment.acknowledged'", uuid.UUID(aid))
    assert count == 1


async def test_concurrent_writers_leave_no_gap_and_commit_in_sequence_order(hub: Hub, conn: asyncpg.Connection) -> None:
    store = hub.state.store
    tid = await township(conn)
    actor = Actor(user_id=await conn.fetchval("select id from users where username = 'op1.yiqiao'"),
                  role=Role.OPERATOR, township_id=tid, name="op")

    async def writer(n: int) -> None:
        for i in range(15):
            body = {k: v for k, v in new_call(title=f"w{n}-{i}").items()}
            await store.execute(actor, parse_command("create_call", body))

    observed: list[tuple[int, int]] = []
    done = asyncio.Event()

    async def observer() -> None:
        # What any reader sees at any moment must be a gap-free prefix of the sequence: a higher seq is
        # never visible before a lower one has committed (the property resuming clients rely on).
        while not done.is_set():
            row = await conn.fetchrow("select count(*), coalesce(max(seq), 0) from events where township_id = $1", tid)
            observed.append((row[0], row[1]))
            await asyncio.sleep(0)

    watcher = asyncio.create_task(observer())
    await asyncio.gather(*(writer(n) for n in range(8)))
    done.set()
    await watcher
    seqs = [r["seq"] for r in await conn.fetch("select seq from events where township_id = $1 order by seq", tid)]
    assert seqs == list(range(1, 8 * 15 * 3 + 1))  # 8 writers × 15 calls × 3 events, no gap
    assert len(observed) > 10
    assert all(count == top for count, top in observed), [o for o in observed if o[0] != o[1]][:5]
    assert await conn.fetchval("select seq from township_heads where township_id = $1", tid) == len(seqs)


async def test_verify_log_passes_on_a_clean_log_and_names_a_tampered_row(hub: Hub, conn: asyncpg.Connection) -> None:
    async with await hub.login("op1.yiqiao") as op:
        for _ in range(3):
            await post(op, "/api/v1/calls", new_call(), expect=201)
    report = await eventlog.verify(conn)
    assert report.ok and report.count == 9
    tid = await township(conn)
    # A superuser bypassing the append-only guard rewrites history.
    await conn.execute("set session_replication_role = replica")
    await conn.execute("""update events set body = jsonb_set(body, '{title}', '"改过的"')
                          where township_id = $1 and seq = 4""", tid)
    await conn.execute("set session_replication_role = origin")
    report = await eventlog.verify(conn)
    assert not report.ok
    assert (report.township_id, report.seq) == (tid, 4)
    assert "hash" in report.reason


async def test_verify_log_command_reports_ok_and_broken(hub: Hub, conn: asyncpg.Connection) -> None:
    async with await hub.login("op1.yiqiao") as op:
        await post(op, "/api/v1/calls", new_call(), expect=201)
    env = {**os.environ, "DATABASE_URL": hub.dsn}
    ok = subprocess.run([sys.executable, "-m", "dispatch.cli", "verify-log"], env=env, cwd=ROOT,
                        capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and "OK: 3 events" in ok.stdout
    await conn.execute("set session_replication_role = replica")
    await conn.execute("delete from events where seq = 2 and township_id = $1", await township(conn))
    await conn.execute("set session_replication_role = origin")
    broken = subprocess.run([sys.executable, "-m", "dispatch.cli", "verify-log", "--township", "yiqiao"], env=env,
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert broken.returncode == 1
    assert "seq 2" in broken.stderr and "gap" in broken.stderr


async def test_chain_hash_covers_every_field() -> None:
    from datetime import UTC, datetime

    rec = eventlog.EventRecord(township_id=1, seq=1, call_id=uuid.uuid4(), assignment_id=None, type="call.created",
                               actor_id=1, actor_role="operator", actor_name="x", at=datetime.now(UTC),
                               body={"a": 1}, audience=("police",), call_state="dispatched", assignment_state=None,
                               command_id=None)
    base = rec.chained(b"").hash
    from dataclasses import replace
    for change in ({"body": {"a": 2}}, {"audience": ("fire",)}, {"actor_name": "y"}, {"seq": 2}, {"type": "x"}):
        assert replace(rec, **change).chained(b"").hash != base  # type: ignore[arg-type]
    assert rec.chained(b"\x01").hash != base


async def test_a_command_in_a_township_without_a_head_writes_nothing(hub: Hub, conn: asyncpg.Connection) -> None:
    # The per-row keys to townships are gone (migration 0013): the township's head row, taken as the lock, is
    # what keeps rows of a township that has no log out; the head keeps its key to townships.
    tid = await conn.fetchval("insert into townships (code, name_zh, name_en) values ('nohead', '无头镇', 'Nohead')"
                              " returning id")
    actor = Actor(user_id=await conn.fetchval("select id from users where username = 'op1.yiqiao'"),
                  role=Role.OPERATOR, township_id=tid, name="op")
    before = await conn.fetchval("select last from call_numbers where township_id = $1", tid)
    try:
        await hub.state.store.execute(actor, parse_command("create_call", new_call()))
    except NotFound as exc:
        assert exc.field == "township_id"
    else:
        raise AssertionError("a command was written in a township without an event log")
    for table in ("events", "calls", "assignments", "assignment_facts", "reporters", "commands"):
        assert await conn.fetchval(f"select count(*) from {table} where township_id = $1", tid) == 0, table
    assert await conn.fetchval("select last from call_numbers where township_id = $1", tid) == before is None
    try:
        await conn.execute("insert into township_heads (township_id) values ($1)", tid + 1000)
    except asyncpg.ForeignKeyViolationError:
        pass
    else:
        raise AssertionError("a head was written for a township that does not exist")


async def test_create_call_writes_every_projection_with_its_events(hub: Hub, conn: asyncpg.Connection) -> None:
    # FINISH_COMMAND: the head, the call, its assignments, the reporter, the facts and the command, in one statement.
    async with await hub.login("op1.yiqiao") as op:
        body = new_call(targets=["police", "fire"])
        out = await post(op, "/api/v1/calls", body, expect=201)
        again = (await op.post("/api/v1/calls", json=body)).json()
    assert again["replayed"] and again["number"] == out["number"]
    call_id = uuid.UUID(out["call_id"])
    tid = await township(conn)
    head = await conn.fetchrow("select seq, hash from township_heads where township_id = $1", tid)
    last = await conn.fetchrow("select seq, hash from events where township_id = $1 order by seq desc limit 1", tid)
    assert (head["seq"], bytes(head["hash"])) == (last["seq"], bytes(last["hash"])) == (out["events"][-1]["seq"],
                                                                                           bytes(last["hash"]))
    assert await conn.fetchval("select last_seq from calls where id = $1", call_id) == head["seq"]
    targets = sorted(r["target"] for r in await conn.fetch(
        "select target from assignments where call_id = $1 and township_id = $2", call_id, tid))
    assert targets == ["fire", "police"]
    # each assignment's document is its own (taken from the call's by position), also after a later command
    async with await hub.login("police1.yiqiao") as police:
        detail = (await police.get(f"/api/v1/calls/{call_id}")).json()
        await post(police, f"/api/v1/assignments/{assignment_of(detail, 'police')['id']}/acknowledge", {})
    for r in await conn.fetch("select id, target, state, doc from assignments where call_id = $1", call_id):
        assert (r["doc"]["id"], r["doc"]["target"], r["doc"]["state"]) == (str(r["id"]), r["target"], r["state"])
    assert {r["target"]: r["state"] for r in await conn.fetch(
        "select target, state from assignments where call_id = $1", call_id)}["police"] != "dispatched"
    facts = await conn.fetch("select target, esc_ack, dispatched_at, last_seq from assignment_facts where call_id = $1",
                             call_id)
    assert sorted(f["target"] for f in facts) == ["fire", "police"]
    assert all(f["esc_ack"] == [] and f["dispatched_at"] is not None and f["last_seq"] > 0 for f in facts)
    assert await conn.fetchval("select count(*) from reporters where call_id = $1 and township_id = $2",
                               call_id, tid) == 1
    assert await conn.fetchval("select result->>'number' from commands where command_id = $1",
                               uuid.UUID(body["command_id"])) == out["number"]
    assert (await eventlog.verify(conn, tid)).ok
