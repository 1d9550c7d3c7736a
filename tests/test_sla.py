"""The SLA engine on a real PostgreSQL with a fast-forwarded clock: deadlines escalate up their ladders,
exactly once per level, across restarts and across nodes. Tests advance the clock, then await
``settled()``; nothing sleeps to wait out time."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import pytest

from dispatch.core.clock import ManualClock
from dispatch.core.commands import Escalate
from dispatch.core.config import Config
from dispatch.core.domain import SYSTEM_ACTOR, DeadlineKind
from dispatch.core.lifecycle import evolve
from dispatch.core.sla_policy import next_escalation
from dispatch.store import pool as db
from dispatch.store.eventlog import EventRecord
from dispatch.store.eventlog import verify as db_verify
from dispatch.store.facts import ensure_current, event_of
from dispatch.store.writer import Outcome, Store
from dispatch.timers.engine import SlaEngine
from protocols.errors import IllegalTransition
from tests.conftest import Hub, start_hub
from tests.helpers import assignment_of, new_call, post

# The default ladder for an urgent call: ack at 120 s (+0, +120, +300), arrive at 1200 s (+0, +600),
# resolve at 14400 s (+0, +3600).
ACK, ARRIVE, RESOLVE = 120, 1200, 14400

SELECT_ESCALATIONS = """
select assignment_id, body from events where type = 'assignment.escalated' order by township_id, seq
"""


async def escalations(conn: asyncpg.Connection, aid: str | None = None) -> list[tuple[str, int, int]]:
    """(kind, level, delay_ms) of every escalation event, in log order: the hub's own delay (commit − due)."""
    rows = await conn.fetch(SELECT_ESCALATIONS)
    return [(r["body"]["deadline_kind"], r["body"]["level"], r["body"]["delay_ms"])
            for r in rows if aid is None or str(r["assignment_id"]) == aid]


async def open_call(hub: Hub, target: str = "police") -> tuple[str, str]:
    """An urgent call dispatched to one department now; returns (call id, assignment id)."""
    async with await hub.login("op1.yiqiao") as op:
        created = await post(op, "/api/v1/calls", new_call(targets=[target]), expect=201)
        detail = (await op.get(f"/api/v1/calls/{created['call_id']}")).json()
    return created["call_id"], assignment_of(detail, target)["id"]


async def step(hub: Hub, seconds: float) -> int:
    hub.clock.advance(seconds)
    fired: int = await hub.state.sla.settled()
    return fired


async def stop(server: Any, task: asyncio.Task[None]) -> None:
    server.should_exit = True
    await task


async def records_of(conn: asyncpg.Connection, call_id: str) -> list[EventRecord]:
    rows = await conn.fetch("select * from events where call_id = $1 order by seq", UUID(call_id))
    return [EventRecord.from_row(r) for r in rows]


class FixedClock:
    """A clock that never announces a jump (like the system clock), set by hand."""

    def __init__(self, now: datetime) -> None:
        self.at = now

    def now(self) -> datetime:
        return self.at


# -- the ladders ----------------------------------------------------------------------------------------


async def test_each_kind_escalates_on_time_up_its_ladder_and_stops_at_the_last_rung(
        hub: Hub, conn: asyncpg.Connection) -> None:
    _, aid = await open_call(hub)
    assert await step(hub, ACK - 1) == 0
    assert await step(hub, 1) == 1  # ack deadline: level 1
    assert await step(hub, 119) == 0
    assert await step(hub, 1) == 1  # +120 s: level 2
    assert await step(hub, 180) == 1  # +300 s: level 3, the last ack rung
    assert await step(hub, ARRIVE - 420 - 1) == 0
    assert await step(hub, 1) == 1  # arrive deadline
    assert await step(hub, 600) == 1  # +600 s
    assert await step(hub, RESOLVE - 1800) == 1  # resolve deadline
    assert await step(hub, 3600) == 1  # +3600 s, the last rung of all
    assert await step(hub, 30 * 86400) == 0
    assert await escalations(conn, aid) == [("ack", 1, 0), ("ack", 2, 0), ("ack", 3, 0), ("arrive", 1, 0),
                                            ("arrive", 2, 0), ("resolve", 1, 0), ("resolve", 2, 0)]
    row = await conn.fetchrow("select next_due, next_kind, next_level, doc from assignments where id = $1",
                              UUID(aid))
    assert row["next_due"] is None and row["next_kind"] is None
    assert row["doc"]["levels"] == {"ack": 3, "arrive": 2, "resolve": 2}


async def test_a_long_jump_fires_every_passed_rung_once_in_order_with_its_lateness(
        hub: Hub, conn: asyncpg.Connection) -> None:
    _, aid = await open_call(hub)
    assert await step(hub, 2000) == 5
    late = [(k, lvl, ms) for k, lvl, ms in await escalations(conn, aid)]
    # the hub's delay is measured from when each level fell due, not from the bare deadline
    assert late == [("ack", 1, (2000 - 120) * 1000), ("ack", 2, (2000 - 240) * 1000),
                    ("ack", 3, (2000 - 420) * 1000), ("arrive", 1, (2000 - 1200) * 1000),
                    ("arrive", 2, (2000 - 1800) * 1000)]
    # the department's overdue time (lateness_ms keeps that meaning) is measured from the deadline itself
    bodies = [r["body"] for r in await conn.fetch(SELECT_ESCALATIONS)]
    assert [(b["overdue_ms"], b["lateness_ms"]) for b in bodies] == [((2000 - 120) * 1000,) * 2] * 3 + [
        ((2000 - 1200) * 1000,) * 2] * 2
    assert await step(hub, 0) == 0


async def test_an_acknowledgement_just_before_the_deadline_prevents_the_ack_escalation(
        hub: Hub, conn: asyncpg.Connection) -> None:
    _, aid = await open_call(hub)
    await step(hub, ACK - 1)
    async with await hub.login("police1.yiqiao") as police:
        await post(police, f"/api/v1/assignments/{aid}/acknowledge")
    assert await step(hub, 600) == 0
    assert await step(hub, ARRIVE - ACK - 600 + 1) == 1
    assert await escalations(conn, aid) == [("arrive", 1, 0)]


async def test_an_acknowledgement_just_after_does_not_undo_it_and_the_other_deadlines_run_on(
        hub: Hub, conn: asyncpg.Connection) -> None:
    _, aid = await open_call(hub)
    assert await step(hub, ACK + 1) == 1
    async with await hub.login("police1.yiqiao") as police:
        await post(police, f"/api/v1/assignments/{aid}/acknowledge")
    assert await step(hub, 600) == 0  # no further ack levels once acknowledged
    assert await step(hub, ARRIVE - ACK - 601) == 1
    assert await step(hub, RESOLVE + 3600 - ARRIVE) == 3  # arrive level 2, then resolve levels 1 and 2
    assert await escalations(conn, aid) == [("ack", 1, 1000), ("arrive", 1, 0),
                                            ("arrive", 2, (RESOLVE + 3600 - 1800) * 1000),
                                            ("resolve", 1, 3600 * 1000), ("resolve", 2, 0)]


async def test_a_send_back_restarts_the_result_deadline(hub: Hub, conn: asyncpg.Connection) -> None:
    call_id, aid = await open_call(hub)
    async with await hub.login("police1.yiqiao") as police, await hub.login("op1.yiqiao") as op:
        await post(police, f"/api/v1/assignments/{aid}/acknowledge")
        await post(police, f"/api/v1/assignments/{aid}/arrive")
        assert await step(hub, RESOLVE) == 1
        await post(police, f"/api/v1/assignments/{aid}/report_result", {"result": "已处理"})
        assert await step(hub, 600) == 0  # reported: the result deadline no longer runs
        sent_back_at = hub.clock.now()
        await post(op, f"/api/v1/calls/{call_id}/send_back", {"reason": "请补充照片", "assignment_ids": [aid]})
    row = await conn.fetchrow("select resolve_due, next_due, next_kind, next_level from assignments where id = $1",
                              UUID(aid))
    assert row["resolve_due"] == sent_back_at + timedelta(seconds=RESOLVE)
    assert (row["next_due"], row["next_kind"], row["next_level"]) == (row["resolve_due"], "resolve", 1)
    assert await step(hub, RESOLVE - 1) == 0
    assert await step(hub, 1) == 1  # level 1 again, against the new deadline
    bodies = [r["body"] for r in await conn.fetch(
        "select body from events where type = 'assignment.escalated' and assignment_id = $1 order by seq", UUID(aid))]
    assert [(b["deadline_kind"], b["level"], b["lateness_ms"]) for b in bodies] == [("resolve", 1, 0)] * 2
    assert datetime.fromisoformat(bodies[1]["deadline"]) == row["resolve_due"]


# -- restarts and several nodes -------------------------------------------------------------------------


async def test_deadlines_that_fall_while_the_hub_is_stopped_fire_once_at_the_next_start(
        cfg: Config, dsn: str, clock: ManualClock, conn: asyncpg.Connection) -> None:
    first, server, task = await start_hub(cfg, dsn, clock)
    _, aid = await open_call(first)
    await stop(server, task)
    clock.advance(500)  # every ack level passes while no hub runs

    second, server, task = await start_hub(cfg, dsn, clock)
    try:
        await second.state.sla.drain()  # the start-up sweep alone fires them
        assert second.state.sla.fired_total == 3
    finally:
        await stop(server, task)
    assert await escalations(conn, aid) == [("ack", 1, 380_000), ("ack", 2, 260_000), ("ack", 3, 80_000)]

    third, server, task = await start_hub(cfg, dsn, clock)
    try:
        assert await third.state.sla.settled() == 0
    finally:
        await stop(server, task)
    assert len(await escalations(conn, aid)) == 3


async def test_two_nodes_write_exactly_one_escalation_per_level(
        cfg: Config, dsn: str, clock: ManualClock, conn: asyncpg.Connection) -> None:
    one, server1, task1 = await start_hub(cfg, dsn, clock)
    two, server2, task2 = await start_hub(cfg, dsn, clock)
    try:
        aids = [(await open_call(one, target))[1] for target in ("police", "transport", "market")]
        for seconds in (ACK, 120, 180, 780, 600, 1):
            clock.advance(seconds)  # both nodes see the jump and race for every rung
            await asyncio.gather(one.state.sla.settled(), two.state.sla.settled())
        sla1, sla2 = one.state.sla, two.state.sla
        assert sla1.fired_total + sla2.fired_total == 5 * len(aids)
    finally:
        await stop(server1, task1)
        await stop(server2, task2)
    for aid in aids:
        assert await escalations(conn, aid) == [("ack", 1, 0), ("ack", 2, 0), ("ack", 3, 0), ("arrive", 1, 0),
                                                ("arrive", 2, 0)]


# -- the engine's own contracts -------------------------------------------------------------------------


async def test_start_arms_only_the_horizon_of_100000_open_deadlines(
        hub: Hub, cfg: Config, conn: asyncpg.Connection) -> None:
    call_id, _ = await open_call(hub)
    now = hub.clock.now()
    await conn.execute("""
        insert into assignments (id, call_id, township_id, target, state, ack_due, arrive_due, resolve_due,
                                 next_due, next_kind, next_level, updated_at, doc)
        select gen_random_uuid(), c.id, c.township_id, 'police', 'dispatched', d, d, d, d, 'ack', 1, $2, '{}'
          from calls c, generate_series(1, 100000) g,
               lateral (select $2::timestamptz + g * interval '10 seconds' as d) due
         where c.id = $1
    """, UUID(call_id), now)
    pool = await db.create_pool(hub.dsn, min_size=1, max_size=4)
    clock = FixedClock(now)
    engine = SlaEngine(pool, Store(pool, cfg, clock), cfg, clock)
    try:
        began = time.perf_counter()
        await engine.start()
        elapsed = time.perf_counter() - began
        await engine.drain()
        # 12 synthetic deadlines within 120 s, plus the real call's ack deadline at exactly 120 s
        assert len(engine.armed()) == 13
        assert max(engine.armed().values()) <= now + timedelta(seconds=cfg.sla.horizon_s)
        assert elapsed < 1.0, f"start took {elapsed:.2f} s"
    finally:
        await engine.stop()
        await pool.close()


async def test_an_overdue_deadline_learnt_from_events_fires_through_the_scheduler(
        hub: Hub, cfg: Config, conn: asyncpg.Connection) -> None:
    pool = await db.create_pool(hub.dsn, min_size=1, max_size=4)
    clock = FixedClock(hub.clock.now() + timedelta(seconds=ACK + 5))  # never announces a jump
    engine = SlaEngine(pool, Store(pool, cfg, clock), cfg, clock)
    await engine.start()
    try:
        call_id, aid = await open_call(hub)
        await engine.on_events(await records_of(conn, call_id))
        await engine.drain()  # no sweep: the timer armed in the past runs at once
        assert engine.fired_total == 1
    finally:
        await engine.stop()
        await pool.close()
    assert await escalations(conn, aid) == [("ack", 1, 5000)]


async def test_on_events_arms_a_near_deadline_and_cancels_a_met_one(hub: Hub, conn: asyncpg.Connection) -> None:
    sla = hub.state.sla
    call_id, aid = await open_call(hub)
    await sla.on_events(await records_of(conn, call_id))
    assert sla.armed()[UUID(aid)] == hub.clock.now() + timedelta(seconds=ACK)
    async with await hub.login("police1.yiqiao") as police:
        await post(police, f"/api/v1/assignments/{aid}/acknowledge")
    await sla.on_events(await records_of(conn, call_id))
    assert UUID(aid) not in sla.armed()  # the arrive deadline is beyond the horizon


async def test_rungs_due_together_are_written_in_one_transaction_per_township_each_once(
        hub: Hub, conn: asyncpg.Connection) -> None:
    aids = [(await open_call(hub, target))[1] for target in ("police", "transport", "market", "land")]
    assert await step(hub, ACK) == len(aids)  # ack level 1 of all four at once
    rows = await conn.fetch("select xmin::text as tx, seq from events where type = 'assignment.escalated'"
                            " order by seq")
    assert len(rows) == len(aids)
    assert len({r["tx"] for r in rows}) <= 2  # batched: the timer and the jump's sweep may split them in two
    # The store's batch answers each command on its own: one refused in the middle stops none of the others,
    # each is recorded under its command id, and a repeat is answered from the record.
    # (Written ahead of level 2's time, with the clock standing still: no sweep of the engine races them.)
    store, now = hub.state.sla.store, hub.clock.now()
    cmds = [Escalate(command_id=uuid4(), assignment_id=UUID(aid), deadline_kind=DeadlineKind.ACK,
                     level=3 if i == 1 else 2, deadline=now - timedelta(seconds=ACK), due=now, fired_at=now)
            for i, aid in enumerate(aids)]
    answers = await store.execute_many(SYSTEM_ACTOR, cmds)
    assert isinstance(answers[1], IllegalTransition)
    assert [isinstance(a, Outcome) and not a.replayed for a in answers] == [True, False, True, True]
    batch = await conn.fetch("select xmin::text as tx, seq, assignment_id from events"
                             " where type = 'assignment.escalated' and (body->>'level')::int = 2 order by seq")
    assert len({r["tx"] for r in batch}) == 1
    assert [str(r["assignment_id"]) for r in batch] == [aids[0], aids[2], aids[3]]  # in command order
    again = await store.execute_many(SYSTEM_ACTOR, cmds)
    assert [isinstance(a, Outcome) and a.replayed for a in again] == [True, False, True, True]
    assert await step(hub, 120) == 1  # level 2's time: only the refused one's is still owed
    assert [(k, lvl) for k, lvl, _ in await escalations(conn, aids[1])] == [("ack", 1), ("ack", 2)]
    for aid in aids:
        assert [lvl for _, lvl, _ in await escalations(conn, aid)] == [1, 2]
    report = await db_verify(conn)
    assert report.ok, report


async def test_a_batch_writes_the_same_projections_as_the_log_folds_to(hub: Hub, conn: asyncpg.Connection) -> None:
    """The batch path writes events, calls, assignments and facts with one statement each: what it wrote must be
    what the events fold to (the documents, the SLA claim columns, the facts a rebuild from the log gives)."""
    aids = [(await open_call(hub, target))[1] for target in ("police", "transport", "market")]
    assert await step(hub, ACK + 120) == 2 * len(aids)  # ack levels 1 and 2, a batch per level
    call_ids = [r["call_id"] for r in await conn.fetch("select call_id from assignments where id = any($1::uuid[])",
                                                       [UUID(a) for a in aids])]
    for call_id in set(call_ids):
        events = await conn.fetch("select * from events where call_id = $1 order by seq", call_id)
        call = None
        for rec in events:
            call = evolve(call, event_of(rec))
        assert call is not None
        row = await conn.fetchrow("select state, updated_at, last_seq, doc from calls where id = $1", call_id)
        # the reporter is kept beside the log (its digest is in the chain): join it back as the delivery does
        reporter = await conn.fetchrow("select name, phone from reporters where call_id = $1", call_id)
        want = call.to_dict() | {"reporter_name": reporter["name"], "reporter_phone": reporter["phone"]}
        assert (row["doc"], row["last_seq"]) == (want, events[-1]["seq"])
        for aid, a in call.assignments.items():
            got = await conn.fetchrow("select state, next_due, next_kind, next_level, doc from assignments"
                                      " where id = $1", aid)
            nxt = next_escalation(a, hub.state.config.current)
            assert (got["doc"], got["state"]) == (a.to_dict(), a.state.value)
            assert (got["next_due"], got["next_kind"], got["next_level"]) == (
                (nxt.due, nxt.kind.value, nxt.level) if nxt else (None, None, None))
    facts_sql = "select * from assignment_facts where assignment_id = any($1::uuid[]) order by assignment_id"
    written = [dict(r) for r in await conn.fetch(facts_sql, [UUID(a) for a in aids])]
    assert [r["esc_ack"] for r in written] and all(len(r["esc_ack"]) == 2 for r in written)
    await conn.execute("update meta set value = 'stale' where key = 'facts_version'")
    assert await ensure_current(conn)
    assert [dict(r) for r in await conn.fetch(facts_sql, [UUID(a) for a in aids])] == written


async def test_a_failing_escalation_is_logged_and_retried_by_the_next_sweep(
        hub: Hub, conn: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    _, aid = await open_call(hub)
    sla = hub.state.sla
    real = sla.store.execute
    broken = True

    async def flaky(*args: Any) -> Any:
        if broken:
            raise RuntimeError("database hiccup")
        return await real(*args)

    monkeypatch.setattr(sla.store, "execute", flaky)
    with caplog.at_level(logging.ERROR, logger="dispatch.timers.engine"):
        hub.clock.advance(ACK)
        await sla.drain()  # the sweep triggered by the jump fails on this assignment
    assert "database hiccup" in caplog.text
    assert await escalations(conn, aid) == []
    broken = False
    await sla.settled()  # the sweep (or a timer armed by the fan-out meanwhile) retries it
    assert await escalations(conn, aid) == [("ack", 1, 0)]


async def test_reference_lists_the_escalation_ladder(hub: Hub, cfg: Config) -> None:
    async with await hub.login("op1.yiqiao") as op:
        ladder = (await op.get("/api/v1/reference")).json()["sla"]["ladder"]
    assert ladder["ack"][1] == {"level": 2, "after_s": 120, "notify": ["team_lead", "operators"]}
    assert {k: len(v) for k, v in ladder.items()} == {k.value: len(v) for k, v in cfg.sla.ladder.items()}
