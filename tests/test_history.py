"""``xianghu seed-demo --history``: a simulated month of the demo county, bulk-loaded, is what the write path
would have written (chains, projections, facts), time-ordered, deterministic, and loaded only before any call."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from uuid import UUID

import asyncpg
import pytest

from dispatch.cli import seeding
from dispatch.cli.history.county import months_before
from dispatch.cli.history.scenery import WORSE
from dispatch.cli.history.seed import Figures, seed_history
from dispatch.core.config import Config
from dispatch.core.domain import DEPARTMENTS
from dispatch.core.lifecycle import evolve
from dispatch.core.records import Call
from dispatch.core.reporter import reporter_digest
from dispatch.evaluation import scorecard
from dispatch.evaluation.facts import COLUMNS
from dispatch.store import eventlog
from dispatch.store import facts as evaluation_facts
from dispatch.store.eventlog import DELIVERY_COLUMNS, DELIVERY_FROM
from dispatch.store.writer import ASSIGNMENT_COLUMNS, CALL_COLUMNS, assignment_row, call_row
from protocols.errors import Conflict
from tests.conftest import ROOT

END = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
SCALE = 0.2  # about 20 calls a day county-wide: a month in a few seconds


@pytest.fixture
async def month(conn: asyncpg.Connection, cfg: Config) -> Figures:
    return await seed_history(conn, cfg, 1, end=END, scale=SCALE, seed=7)


async def test_every_township_has_a_time_ordered_intact_log(conn: asyncpg.Connection, month: Figures) -> None:
    assert month.events > 5000 and month.calls > 400
    assert (await eventlog.verify(conn)) == eventlog.VerifyReport(True, month.events)
    rows = await conn.fetch("select township_id, seq, at from events order by township_id, seq")
    by_township: dict[int, list[asyncpg.Record]] = defaultdict(list)
    for r in rows:
        by_township[r["township_id"]].append(r)
    assert set(by_township) == {r["id"] for r in await conn.fetch("select id from townships")}
    for events in by_township.values():
        assert [r["seq"] for r in events] == list(range(1, len(events) + 1))
        assert all(a["at"] <= b["at"] for a, b in itertools.pairwise(events))
        assert month.start <= events[0]["at"] and events[-1]["at"] <= END
    numbers = await conn.fetch("select township_id, year, last from call_numbers")
    counts = await conn.fetch("select township_id, count(*) from calls group by 1")
    assert {(r["township_id"], r["last"]) for r in numbers} == {(r["township_id"], r["count"]) for r in counts}


async def test_facts_are_what_a_rebuild_from_the_log_gives(conn: asyncpg.Connection, month: Figures) -> None:
    select = f"select {', '.join(COLUMNS)} from assignment_facts order by assignment_id"
    loaded = [dict(r) for r in await conn.fetch(select)]
    assert len(loaded) == await conn.fetchval("select count(*) from assignments")
    await conn.execute("update meta set value = '0' where key = 'facts_version'")
    assert await evaluation_facts.ensure_current(conn) == len(loaded)
    assert [dict(r) for r in await conn.fetch(select)] == loaded


async def test_projections_are_the_replayed_events(conn: asyncpg.Connection, cfg: Config, month: Figures) -> None:
    calls: dict[UUID, Call] = {}
    last_seq: dict[UUID, int] = {}
    # the events as delivered: call.created with its reporter joined back from `reporters` (not in the chain)
    replay = (f"select {DELIVERY_COLUMNS} from {DELIVERY_FROM}"
              " where e.call_id is not null order by e.call_id, e.seq")
    for row in await conn.fetch(replay):
        calls[row["call_id"]] = evolve(calls.get(row["call_id"]), evaluation_facts.event_of(row))
        last_seq[row["call_id"]] = row["seq"]
    stored = {r["id"]: tuple(r) for r in await conn.fetch(f"select {', '.join(CALL_COLUMNS)} from calls")}
    assert stored == {cid: call_row(call, last_seq[cid]) for cid, call in calls.items()}
    stored = {r["id"]: tuple(r) for r in await conn.fetch(f"select {', '.join(ASSIGNMENT_COLUMNS)} from assignments")}
    assert stored == {a.id: assignment_row(call, a, cfg) for call in calls.values() for a in call.assignments.values()}


async def test_the_engine_owes_nothing_before_the_end_and_recent_calls_are_open(conn: asyncpg.Connection,
                                                                                 month: Figures) -> None:
    # every rung due before the end was fired at its due time, as the SLA engine fires it
    assert await conn.fetchval("select count(*) from assignments where next_due <= $1", END) == 0
    assert await conn.fetchval("""select count(*) from events where type = 'assignment.escalated'
                                    and (body->>'delay_ms')::bigint <> 0""") == 0
    assert await conn.fetchval("select count(*) from events where type = 'assignment.escalated'") > 100
    assert await conn.fetchval("select count(*) from notifications") == 0  # nobody is told now about then
    ages = sorted(END - r["created_at"] for r in await conn.fetch(
        "select created_at from calls where state not in ('closed', 'cancelled')"))
    # the last days' calls are still being worked on; a few late ones (a slow department) linger longer
    assert ages and ages[len(ages) // 2] < timedelta(days=2) and ages[-1] < timedelta(days=20)
    overdue = await conn.fetchval("""select count(*) from assignments
                                      where state in ('dispatched', 'acknowledged', 'on_scene')
                                        and least(ack_due, arrive_due, resolve_due) < $1""", END)
    assert overdue > 0


async def test_one_department_is_visibly_worse(conn: asyncpg.Connection, month: Figures) -> None:
    on_time: dict[str, list[bool]] = defaultdict(list)
    for row in await conn.fetch(f"select {', '.join(COLUMNS)} from assignment_facts"):
        verdict = scorecard.verdict(row, "response", END)
        if verdict in (scorecard.ON_TIME, scorecard.LATE, scorecard.MISSED):
            on_time[row["target"]].append(verdict == scorecard.ON_TIME)
    share = {dep: sum(v) / len(v) for dep, v in on_time.items() if dep in DEPARTMENTS}
    assert set(share) == set(DEPARTMENTS)
    assert all(share[WORSE] < s for dep, s in share.items() if dep != WORSE), share


DIGEST = """
import asyncio, hashlib, json, sys
from datetime import datetime, timedelta
from dispatch.cli.history.county import County
from dispatch.cli.history.seed import townships
from dispatch.core.config import load_config
from dispatch.store import pool as db

async def main(dsn, seed, start):
    conn = await db.connect(dsn)
    towns = await townships(conn)
    await conn.close()
    start = datetime.fromisoformat(start)
    county = County(load_config(), towns, start, start + timedelta(days=5), seed=int(seed), scale=0.2)
    digest = hashlib.sha256()
    for s in county.run():
        digest.update(json.dumps([s.township_id, s.actor.user_id, str(s.command_id),
                                  [e.to_dict() for e in s.events]], sort_keys=True).encode())
    print(county.commands, digest.hexdigest())

asyncio.run(main(*sys.argv[1:]))
"""


def test_the_same_seed_gives_the_same_history(dsn: str) -> None:
    """Also across processes with other string hashes (no set of strings decides anything)."""
    def history(seed: int, hash_seed: str) -> str:
        res = subprocess.run([sys.executable, "-c", DIGEST, dsn, str(seed), months_before(END, 1).isoformat()],
                             cwd=ROOT, capture_output=True, text=True, timeout=120,
                             env={**os.environ, "PYTHONHASHSEED": hash_seed})
        assert res.returncode == 0, res.stderr
        assert int(res.stdout.split()[0]) > 100
        return res.stdout

    first = history(3, "1")
    assert history(3, "2") == first
    assert history(4, "1") != first


async def test_refused_on_a_county_with_calls(conn: asyncpg.Connection, dsn: str, cfg: Config,
                                              month: Figures) -> None:
    heads = await conn.fetch("select * from township_heads order by township_id")
    with pytest.raises(Conflict, match="already has calls"):
        await seed_history(conn, cfg, 1, end=END, scale=SCALE, seed=7)
    done = await seeding.seed(dsn, cfg, seeding.HistoryPlan(1, SCALE, 7, END))
    assert done == seeding.Seeded(created=False, history=None, history_skipped=True)
    assert await conn.fetch("select * from township_heads order by township_id") == heads


def test_seed_demo_history_from_the_command_line(dsn: str) -> None:
    res = subprocess.run([sys.executable, "-m", "dispatch.cli", "seed-demo", "--history", "1", "--scale", "0.05",
                          "--seed", "5", "--history-end", "2026-05-01T20:00:00+08:00"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120, env={**os.environ, "DATABASE_URL": dsn})
    assert res.returncode == 0, res.stderr
    assert "demo county already present" in res.stdout
    assert "history: " in res.stdout and " events, " in res.stdout and "from 2026-04-01 12:00 to 2026-05-01 12:00" \
        in res.stdout
    bad = subprocess.run([sys.executable, "-m", "dispatch.cli", "seed-demo", "--history", "25"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60, env={**os.environ, "DATABASE_URL": dsn})
    assert bad.returncode == 2 and "--history" in bad.stderr


async def test_reporters_are_kept_out_of_the_chain_as_the_write_path_keeps_them(conn: asyncpg.Connection,
                                                                                month: Figures) -> None:
    assert not await conn.fetchval("select count(*) from events where body ? 'reporter_name' or body ? 'reporter_phone'"
                                   " or body->'call' ? 'reporter_name' or body->'call' ? 'reporter_phone'")
    rows = await conn.fetch("""
        select r.name, r.phone, r.salt, r.digest, e.body->>'reporter_digest' as chained, c.doc
          from reporters r
          join events e on e.call_id = r.call_id and e.type = 'call.created'
          join calls c on c.id = r.call_id""")
    assert len(rows) > 50
    assert len(rows) == await conn.fetchval("select count(*) from events where type = 'call.created'"
                                            " and body->>'reporter_digest' is not null")
    for r in rows:
        digest = reporter_digest(bytes(r["salt"]), r["name"], r["phone"])
        assert digest.hex() == r["chained"] == bytes(r["digest"]).hex()
        assert (r["doc"]["reporter_name"], r["doc"]["reporter_phone"]) == (r["name"], r["phone"])
    assert (await eventlog.verify(conn)).ok
