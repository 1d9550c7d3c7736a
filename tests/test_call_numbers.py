"""Call numbers: gap-free per township per year (Asia/Shanghai), assigned under the township lock in the
transaction that creates the call, so refused and failed creations leave no gap."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg
import httpx

from dispatch.cli.client import CommandRefused, HubClient
from dispatch.core.commands import parse_command
from dispatch.core.domain import Actor, Role
from dispatch.core.numbering import format_number, numbering_year
from dispatch.store import pool as db
from tests.conftest import Hub
from tests.helpers import new_call, post

WRITERS = 8
PER_WRITER = 6
FAIL_MARK = "mid-way failure"


def test_number_format_and_year_in_shanghai() -> None:
    assert format_number("yiqiao", 2026, 123) == "YIQIAO-2026-000123"
    assert numbering_year(datetime(2026, 12, 31, 15, 59, 59, tzinfo=UTC)) == 2026
    assert numbering_year(datetime(2026, 12, 31, 16, 0, tzinfo=UTC)) == 2027  # midnight in Shanghai


async def numbers(conn: asyncpg.Connection, code: str) -> list[str]:
    rows = await conn.fetch("select c.number from calls c join townships t on t.id = c.township_id"
                            " where t.code = $1 order by c.number", code)
    return [r["number"] for r in rows]


async def test_numbers_are_gap_free_under_eight_concurrent_writers(hub: Hub, conn: asyncpg.Connection) -> None:
    store = hub.state.store
    finish = store._finish

    async def failing_finish(c: Any, township_id: int, call: Any, *rest: Any) -> None:
        # A failure after the number was taken and the events appended, before the commit.
        if call.title == FAIL_MARK:
            raise RuntimeError("projection failed")
        await finish(c, township_id, call, *rest)

    store._finish = failing_finish
    ops = [await hub.login(f"op{1 + i % 2}.yiqiao") for i in range(WRITERS)]
    liaison = await hub.login("police1.yiqiao")
    tokens = [await hub.token(f"op{1 + i % 2}.yiqiao") for i in range(WRITERS)]
    created: list[str] = []

    async def writer(i: int, op: httpx.AsyncClient, ws: HubClient) -> None:
        for k in range(PER_WRITER):
            step = (i + k) % 6
            if step == 0:  # refused by the lifecycle after the number was drawn
                res = await op.post("/api/v1/calls", json=new_call(category="no-such-category"))
                assert res.status_code == 422, res.text
            elif step == 1:  # fails mid-way inside the transaction
                res = await op.post("/api/v1/calls", json=new_call(title=FAIL_MARK))
                assert res.status_code == 500, res.text
            elif step == 2:  # over the WebSocket; its retry (same command_id) is answered, not numbered again
                body = new_call(title=f"ws {i}-{k}")
                command_id = body.pop("command_id")
                out = await ws.command("create_call", body, command_id=command_id)
                again = await ws.command("create_call", body, command_id=command_id)
                assert again["number"] == out["number"]
                created.append(out["number"])
            elif step == 3:  # refused over the WebSocket
                body = new_call(targets=["nosuchdept"])
                body.pop("command_id")
                try:
                    await ws.command("create_call", body)
                except CommandRefused as exc:
                    assert exc.field == "targets"
                else:
                    raise AssertionError("an unknown target was accepted")
            else:
                out = await post(op, "/api/v1/calls", new_call(title=f"rest {i}-{k}"), expect=201)
                created.append(out["number"])
        # A liaison may not create calls: refused whatever the number.
        res = await liaison.post("/api/v1/calls", json=new_call())
        assert res.status_code in (403, 422), res.text

    clients = [HubClient(hub.url, t) for t in tokens]
    try:
        for c in clients:
            await c.start()
        await asyncio.gather(*(writer(i, ops[i], clients[i]) for i in range(WRITERS)))
    finally:
        for c in clients:
            await c.close()
        for op in ops:
            await op.aclose()
        await liaison.aclose()
        store._finish = finish

    expected = [f"YIQIAO-2026-{n:06d}" for n in range(1, len(created) + 1)]
    assert sorted(created) == expected
    assert await numbers(conn, "yiqiao") == expected
    assert await conn.fetchval("select last from call_numbers c join townships t on t.id = c.township_id"
                               " where t.code = 'yiqiao' and year = 2026") == len(created)


async def test_numbers_restart_each_year_and_per_township(hub: Hub, conn: asyncpg.Connection) -> None:
    yiqiao = await hub.login("op1.yiqiao")
    zhongdu = await hub.login("op1.zhongdu")
    async with yiqiao, zhongdu:
        hub.clock.set(datetime(2026, 12, 31, 15, 59, 58, tzinfo=UTC))  # 23:59:58 on 31 December in Shanghai
        first = await post(yiqiao, "/api/v1/calls", new_call(), expect=201)
        second = await post(yiqiao, "/api/v1/calls", new_call(), expect=201)
        other = await post(zhongdu, "/api/v1/calls", new_call(address="中都街道", targets=["police"]), expect=201)
        hub.clock.advance(2)  # 00:00:00 on 1 January 2027 in Shanghai (still 31 December in UTC)
        refused = await yiqiao.post("/api/v1/calls", json=new_call(category="no-such-category"))
        assert refused.status_code == 422
        new_year = await post(yiqiao, "/api/v1/calls", new_call(), expect=201)
        after = await post(yiqiao, "/api/v1/calls", new_call(), expect=201)
    assert (first["number"], second["number"]) == ("YIQIAO-2026-000001", "YIQIAO-2026-000002")
    assert other["number"] == "ZHONGDU-2026-000001"
    assert new_year["number"] == "YIQIAO-2027-000001"
    assert after["number"] == "YIQIAO-2027-000002"
    # The number is in the log as well as in the projection.
    logged = await conn.fetchval("select body->>'number' from events where call_id = $1 and type = 'call.created'",
                                 new_year["call_id"])
    assert logged == "YIQIAO-2027-000001"


async def _create_behind_the_lock(hub: Hub, conn: asyncpg.Connection, dsn: str, advance_s: float,
                                  holder_writes: bool) -> tuple[dict[str, Any], int]:
    """A creation queued behind another transaction that holds the township's head row while the clock moves
    on by ``advance_s``; the holder writes an event under the lock (the notice sender's path) if asked."""
    store = hub.state.store
    assert store is not None
    uid = await conn.fetchval("select id from users where username = 'op1.yiqiao'")
    tid = await conn.fetchval("select id from townships where code = 'yiqiao'")
    op = Actor(user_id=uid, role=Role.OPERATOR, township_id=tid, name="op1")
    first = await store.execute(op, parse_command("create_call", new_call()))
    holder = await db.connect(dsn)  # with the hub's codecs (record_notice reads the call's document)
    try:
        async with holder.transaction():
            await holder.execute("select 1 from township_heads where township_id = $1 for update", tid)
            task = asyncio.create_task(store.execute(op, parse_command("create_call", new_call())))
            waiting: list[int] = [0]

            async def probe() -> None:
                while not waiting[0]:
                    waiting[0] = await conn.fetchval(
                        "select count(*) from pg_stat_activity where wait_event_type = 'Lock'"
                        " and datname = current_database()")

            await asyncio.wait_for(probe(), 10)  # the creation is queued behind the lock
            hub.clock.advance(advance_s)
            if holder_writes:
                await store.record_notice(holder, tid, UUID(first.result["call_id"]), None, "notice.sent",
                                          {"channel": "sms", "to": "x"})
        out = await task
    finally:
        await holder.close()
    return out.result, tid


async def test_a_creation_takes_its_time_under_the_township_lock(hub: Hub, conn: asyncpg.Connection,
                                                                 dsn: str) -> None:
    """A creation that waited for the lock is stamped when it got it: a township's log stays in time order."""
    await _create_behind_the_lock(hub, conn, dsn, 60, holder_writes=True)
    tid = await conn.fetchval("select id from townships where code = 'yiqiao'")
    rows = await conn.fetch("select seq, type, at from events where township_id = $1 order by seq", tid)
    ats = [r["at"] for r in rows]
    assert ats == sorted(ats), [(r["seq"], r["type"], r["at"].isoformat()) for r in rows[-4:]]


async def test_a_creation_whose_wait_crosses_the_new_year_is_numbered_in_the_new_year(
        hub: Hub, conn: asyncpg.Connection, dsn: str) -> None:
    """The year guessed before the lock is given back when the wait crossed midnight of 31 December (Shanghai):
    the number's year is the year of the call's time, and the old year keeps no gap."""
    hub.clock.set(datetime(2026, 12, 31, 15, 59, 59, tzinfo=UTC))  # 23:59:59 in Shanghai
    result, tid = await _create_behind_the_lock(hub, conn, dsn, 2, holder_writes=False)
    at = await conn.fetchval("select at from events where call_id = $1 and type = 'call.created'",
                             UUID(result["call_id"]))
    assert numbering_year(at) == 2027
    assert result["number"] == "YIQIAO-2027-000001"
    assert await conn.fetchval("select last from call_numbers where township_id = $1 and year = 2026", tid) == 1
    assert await numbers(conn, "yiqiao") == ["YIQIAO-2026-000001", "YIQIAO-2027-000001"]
