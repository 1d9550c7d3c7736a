"""Admin changes reach every node at once (DESIGN.md idea 11): a NOTIFY on ``xianghu_admin`` sent in the
changing transaction makes each node reload what it caches — here, the write path's targets of a township."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from dispatch.core.clock import ManualClock
from dispatch.core.config import Config
from dispatch.store import changes
from dispatch.store.writer import TARGETS_TTL_S
from tests.conftest import start_hub
from tests.helpers import new_call, post


async def test_a_unit_added_on_one_node_is_a_target_on_the_other_within_a_second(
        cfg: Config, dsn: str, clock: ManualClock) -> None:
    (_a, a_server, a_task), (b, b_server, b_task) = await asyncio.gather(start_hub(cfg, dsn, clock),
                                                                        start_hub(cfg, dsn, clock))
    try:
        async with await b.login("op1.yiqiao") as op:
            # node B reads 义桥's targets (and keeps them for TARGETS_TTL_S)
            call_id = (await post(op, "/api/v1/calls", new_call(), expect=201))["call_id"]
            conn = await asyncpg.connect(dsn)
            try:
                async with conn.transaction():  # as an admin change on node A does it
                    unit = await conn.fetchval("insert into units (township_id, name_zh, name_en) select id, "
                                               "'应急分队', 'Emergency squad' from townships where code = 'yiqiao' "
                                               "returning id")
                    await changes.announce(conn, "reference")
            finally:
                await conn.close()
            loop = asyncio.get_running_loop()
            started = loop.time()
            while True:
                res = await op.post(f"/api/v1/calls/{call_id}/dispatch",
                                    json={"command_id": new_call()["command_id"], "targets": [f"unit:{unit}"]})
                if res.status_code == 200:
                    break
                assert res.json()["code"] == "validation" and "unknown target" in res.json()["message"], res.text
                assert loop.time() - started < 1.0, "node B still refuses the new unit after a second"
                await asyncio.sleep(0.02)  # polling another node's state: it has no event to await here
            assert TARGETS_TTL_S > 1.0  # without the notice, B would have refused it for this long
    finally:
        for server in (a_server, b_server):
            server.should_exit = True
        await asyncio.gather(a_task, b_task)


async def test_an_unknown_topic_is_a_programming_error(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        with pytest.raises(ValueError, match="unknown change topic"):
            await changes.announce(conn, "everything")
    finally:
        await conn.close()
