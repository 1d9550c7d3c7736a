import asyncpg

from dispatch.cli.demo import SAMPLE_CALLS, TOWNSHIPS, seed_demo, seed_sample_calls
from dispatch.store import eventlog
from tests.conftest import Hub


async def test_demo_county_has_every_department_in_every_township(conn: asyncpg.Connection) -> None:
    assert await conn.fetchval("select count(*) from townships") == len(TOWNSHIPS)
    assert await conn.fetchval("select count(*) from stations") == len(TOWNSHIPS) * 7
    per_target = await conn.fetch("""select township_id, department, count(*), bool_or(team_lead) as lead
                                       from users where role = 'liaison' and department is not null
                                      group by 1, 2""")
    assert len(per_target) == len(TOWNSHIPS) * 7
    assert all(r["count"] >= 2 and r["lead"] for r in per_target)
    assert await seed_demo(conn) is False  # idempotent


async def test_sample_calls_reach_their_steps_with_an_intact_log(hub: Hub, conn: asyncpg.Connection) -> None:
    assert await seed_sample_calls(hub.state.store, conn) == len(SAMPLE_CALLS)
    states = [r["state"] for r in await conn.fetch("select state from calls order by number")]
    assert states == ["closed", "review", "in_progress", "dispatched"]
    assert (await eventlog.verify(conn)).ok
