"""The WebSocket hub with real sockets: delivery, resume without gaps, scope, bad input, slow consumers."""

from __future__ import annotations

import asyncio
import gc
import os
import socket
import sys
import uuid
import weakref
from typing import Any

import msgpack
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, BytesMessage, Request

from dispatch.cli.client import CommandRefused, HubClient
from dispatch.core.clock import ManualClock
from dispatch.core.config import Config
from dispatch.core.domain import Actor, Role
from dispatch.realtime import wire
from dispatch.realtime.replay import REUSE_S, SharedReads
from dispatch.realtime.socket import Socket
from dispatch.web.app import transport_frame_limit
from protocols.messages import CaughtUp, Event, Ping, Presence, Resync, Welcome, decode
from protocols.session import SUBPROTOCOL
from tests.conftest import ROOT, Hub, start_hub
from tests.helpers import assignment_of, new_call, post, until


async def create_call(hub: Hub, **overrides: object) -> dict[str, object]:
    op = await hub.login("op1.yiqiao")
    async with op:
        return await post(op, "/api/v1/calls", new_call(**overrides), expect=201)


async def test_liaison_receives_a_new_call_live(hub: Hub) -> None:
    token = await hub.token("police1.yiqiao")
    async with HubClient(hub.url, token) as client:
        await asyncio.wait_for(client.caught_up.wait(), 5)
        # The hub's server (server_config) lets frames be written into its connections in batches.
        assert [s.direct for s in hub.state.realtime.sockets] == [True]
        created = await create_call(hub)
        ev = await client.next_event(predicate=lambda e: e.event_type == "assignment.dispatched")
    assert ev.call_id == created["call_id"]
    assert ev.body["call"]["reporter_phone"] == "138****5678"  # masked for liaisons
    assert ev.body["call"]["title"] == "小区门口车辆乱停"


async def test_an_idle_socket_keeps_no_handshake_and_no_finished_task(hub: Hub) -> None:
    """Thousands of idle sockets: each holds only what it still needs (docs/PERFORMANCE.md, "Per socket")."""
    token = await hub.token("police1.yiqiao")
    async with HubClient(hub.url, token) as client:
        await asyncio.wait_for(client.caught_up.wait(), 5)
        [sock] = hub.state.realtime.sockets
        await until(lambda: sock._replay_task is None)  # the replay's task is let go once done
        assert sock._welcome_heads is None
        assert sock._wire is not None and not {"request", "response"} & set(vars(sock._wire))
        created = await create_call(hub)  # and it still works
        ev = await client.next_event(predicate=lambda e: e.event_type == "assignment.dispatched")
    assert ev.call_id == created["call_id"]


def awaited_coroutines(coro: Any) -> list[str]:
    """The coroutines a task is suspended in, outermost first (each one a frame the collector tracks)."""
    names = []
    while coro is not None and hasattr(coro, "cr_await"):
        names.append(coro.__qualname__)
        coro = coro.cr_await
    return names


async def test_an_idle_socket_waits_in_a_few_coroutines_on_slim_server_state(hub: Hub) -> None:
    """/ws goes straight from the app's entry to the endpoint (web.direct), not through the HTTP middleware and
    Starlette's layers (~25 suspended coroutines a socket); the server's queue and flow-control event are the
    slotted ones (realtime.wire: uvicorn's internals, pinned); the request's headers and query are let go."""
    token = await hub.token("police1.yiqiao")
    async with HubClient(hub.url, token) as client:
        await asyncio.wait_for(client.caught_up.wait(), 5)
        [sock] = hub.state.realtime.sockets
        assert sock._main is not None
        chain = awaited_coroutines(sock._main.get_coro())
        assert len(chain) <= 8, chain
        assert "HubApp.__call__" in chain and "Socket._reader" in chain
        conn = sock._wire
        assert conn is not None
        assert isinstance(conn.queue, wire.Inbox) and isinstance(conn.writable, wire.Flag)
        assert conn.scope["headers"] == () and conn.scope["query_string"] == b""
        assert not {"_headers", "_url", "_query_params"} & set(vars(sock.ws))
        created = await create_call(hub)  # and it still works
        ev = await client.next_event(predicate=lambda e: e.event_type == "assignment.dispatched")
    assert ev.call_id == created["call_id"]


async def test_a_closed_socket_is_freed_without_the_collector(hub: Hub) -> None:
    """Sockets come and go all day: a closed one is in no reference cycle of ours (its task, the subscriber's
    bound ``push``; the server connection's scope and its bound ``send``), so it is freed at once, not left for
    a full collection of the garbage collector (with 20,000 sockets a full pass takes over a second)."""
    token = await hub.token("police1.yiqiao")
    gc.collect()
    gc.disable()

    def upgraded() -> list[object]:  # the HTTP protocol that handed this connection to the WebSocket one
        return [o for o in gc.get_objects() if type(o) is wire.UpgradingHttp and all(o is not k for k in keep_alive)]

    keep_alive = [o for o in gc.get_objects() if type(o) is wire.UpgradingHttp]  # HTTP connections still open
    try:
        async with HubClient(hub.url, token) as client:
            await asyncio.wait_for(client.caught_up.wait(), 5)
            [sock] = hub.state.realtime.sockets
            assert sock._wire is not None
            conn = weakref.ref(sock._wire)  # the server's connection: its transport, parser, queue, scope …
            del sock
        await until(lambda: not hub.state.realtime.sockets)
        await until(lambda: conn() is None and Socket not in {type(o) for o in gc.get_objects()} and not upgraded(),
                    timeout=3)
    finally:
        gc.enable()


async def test_operator_sees_full_reporter_and_every_event(hub: Hub) -> None:
    token = await hub.token("op1.yiqiao")
    async with HubClient(hub.url, token) as client:
        await asyncio.wait_for(client.caught_up.wait(), 5)
        await create_call(hub)
        types = [(await client.next_event()).event_type for _ in range(3)]
    assert types[0] == "call.created"
    assert sorted(types[1:]) == ["assignment.dispatched", "assignment.dispatched"]


async def test_other_department_never_sees_the_call(hub: Hub) -> None:
    market = await hub.token("market1.yiqiao")
    police = await hub.token("police1.yiqiao")
    async with HubClient(hub.url, market) as m, HubClient(hub.url, police) as p:
        await asyncio.wait_for(m.caught_up.wait(), 5)
        await asyncio.wait_for(p.caught_up.wait(), 5)
        await create_call(hub)
        await p.next_event(predicate=lambda e: e.event_type == "assignment.dispatched")
        second = await create_call(hub, targets=["market"], category="food_safety")
        first = await m.next_event()
    assert first.call_id == second["call_id"]  # nothing of the police call reached market


async def test_commands_over_the_socket_are_idempotent(hub: Hub) -> None:
    created = await create_call(hub)
    op = await hub.login("op1.yiqiao")
    async with op:
        detail = (await op.get(f"/api/v1/calls/{created['call_id']}")).json()
    aid = assignment_of(detail, "police")["id"]
    token = await hub.token("police1.yiqiao")
    async with HubClient(hub.url, token) as client:
        await asyncio.wait_for(client.connected.wait(), 5)
        command_id = str(uuid.uuid4())
        first = await client.command("acknowledge", {"assignment_id": aid}, command_id=command_id)
        again = await client.command("acknowledge", {"assignment_id": aid}, command_id=command_id)
        with pytest.raises(CommandRefused) as refused:
            await client.command("acknowledge", {"assignment_id": aid})
    assert first["replayed"] is False and again["replayed"] is True
    assert refused.value.error_code == "illegal_transition"
    async with await hub.login("op1.yiqiao") as op2:
        timeline = (await op2.get(f"/api/v1/calls/{created['call_id']}")).json()["timeline"]
    assert [e["type"] for e in timeline].count("assignment.acknowledged") == 1


async def test_liaison_cannot_act_on_another_departments_assignment(hub: Hub) -> None:
    created = await create_call(hub)
    async with await hub.login("op1.yiqiao") as op:
        detail = (await op.get(f"/api/v1/calls/{created['call_id']}")).json()
    aid = assignment_of(detail, "police")["id"]
    token = await hub.token("market1.yiqiao")
    async with HubClient(hub.url, token) as client:
        await asyncio.wait_for(client.connected.wait(), 5)
        with pytest.raises(CommandRefused) as refused:
            await client.command("acknowledge", {"assignment_id": aid})
    # Market has no part in the call: it may not even learn that it exists (the same 404 as REST's).
    assert refused.value.error_code == "not_found"
    token = await hub.token("transport1.yiqiao")
    async with HubClient(hub.url, token) as client:
        await asyncio.wait_for(client.connected.wait(), 5)
        with pytest.raises(CommandRefused) as refused:
            await client.command("acknowledge", {"assignment_id": aid})
    assert refused.value.error_code == "forbidden"  # on the call, but not its assignment


async def test_resume_after_disconnect_in_a_burst_has_no_gap_and_no_duplicate(hub: Hub) -> None:
    token = await hub.token("op1.yiqiao")
    async with HubClient(hub.url, token) as client:
        await asyncio.wait_for(client.caught_up.wait(), 5)
        op = await hub.login("op1.yiqiao")
        async with op:
            seen: list[int] = []

            async def burst() -> None:
                for i in range(30):
                    await post(op, "/api/v1/calls", new_call(title=f"第{i}件"), expect=201)

            task = asyncio.create_task(burst())
            while len(seen) < 20:
                seen.append((await client.next_event()).seq)
            await client.drop()  # cut mid-burst
            await task
            while len(seen) < 90:  # 30 calls × (created + 2 dispatched)
                seen.append((await client.next_event()).seq)
    assert client.connections >= 2
    assert seen == list(range(seen[0], seen[0] + 90))


async def test_resume_from_an_old_cursor_replays_in_order(hub: Hub) -> None:
    for _ in range(5):
        await create_call(hub)
    token = await hub.token("op1.yiqiao")
    yiqiao = hub.state.pool
    tid = await yiqiao.fetchval("select id from townships where code = 'yiqiao'")
    async with HubClient(hub.url, token, cursors={tid: 4}) as client:
        got = [(await client.next_event()).seq for _ in range(11)]
    assert got == list(range(5, 16))


async def test_sockets_resuming_from_the_same_cursor_share_one_read(hub: Hub) -> None:
    """A reconnect storm reads each replay batch once: every socket from the same cursor gets the same events,
    each framed for its own visibility (the operator in full, others masked), and one database read serves all."""
    for _ in range(2):
        await create_call(hub)
    tid = await hub.state.pool.fetchval("select id from townships where code = 'yiqiao'")
    upto = await hub.state.pool.fetchval("select seq from township_heads where township_id = $1", tid)
    now = [0.0]
    reads = SharedReads(hub.state.pool, clock=lambda: now[0])
    batches = await asyncio.gather(*(reads.batch(tid, 1, upto, 500, None) for _ in range(20)))
    assert reads.reads == 1 and all(b is batches[0] for b in batches)
    assert [e.record.seq for e in batches[0]] == list(range(2, upto + 1))
    now[0] += REUSE_S / 2
    assert await reads.batch(tid, 1, upto, 500, None) is batches[0] and reads.reads == 1
    police = [e.record.seq for e in await reads.batch(tid, 1, upto, 500, "police")]  # a liaison's: its own calls
    assert reads.reads == 2 and police == [e.record.seq for e in batches[0] if "police" in e.record.audience]
    now[0] += REUSE_S * 2
    assert await reads.batch(tid, 1, upto, 500, None) is not batches[0] and reads.reads == 3  # read again
    created = next(e for e in batches[0] if e.record.type == "call.created")
    operator = Actor(user_id=1, role=Role.OPERATOR, township_id=tid)
    liaison = Actor(user_id=2, role=Role.LIAISON, township_id=tid, department="police")
    full, masked = decode(created.frame_for(operator)), decode(created.frame_for(liaison))
    assert isinstance(full, Event) and isinstance(masked, Event)
    assert full.body["reporter_phone"] != masked.body["reporter_phone"] and "*" in str(masked.body["reporter_phone"])
    assert created.frame_for(operator) is created.frame_for(operator)  # encoded once per visibility class


async def test_cursor_too_old_or_ahead_gets_resync(hub: Hub) -> None:
    await create_call(hub)
    tid = await hub.state.pool.fetchval("select id from townships where code = 'yiqiao'")
    token = await hub.token("op1.yiqiao")
    async with HubClient(hub.url, token, cursors={tid: 999}) as client:
        msg = await asyncio.wait_for(client.messages.get(), 5)
    assert isinstance(msg, Resync) and msg.reason == "cursor_ahead" and msg.head == 3
    async with await raw(hub, token, subprotocols=[SUBPROTOCOL]) as ws:
        await ws.recv()
        await ws.send(msgpack.packb({"type": "subscribe", "cursors": [[tid, 1]], "epoch": "another-log"}))
        msg = decode(await ws.recv())  # type: ignore[arg-type]
    assert isinstance(msg, Resync) and msg.reason == "epoch_changed"


async def raw(hub: Hub, token: str, **kwargs: object):  # type: ignore[no-untyped-def]
    return connect(hub.ws_url, additional_headers={"Authorization": f"Bearer {token}"}, **kwargs)  # type: ignore[arg-type]


async def test_missing_subprotocol_is_closed_with_4002(hub: Hub) -> None:
    token = await hub.token("op1.yiqiao")
    async with await raw(hub, token) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4002
    assert "xianghu.v1" in closed.value.rcvd.reason


async def test_foreign_origin_is_refused(hub: Hub) -> None:
    token = await hub.token("op1.yiqiao")
    async with await raw(hub, token, subprotocols=[SUBPROTOCOL], origin="https://evil.example") as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008


async def test_no_credentials_is_closed_with_4001(hub: Hub) -> None:
    async with connect(hub.ws_url, subprotocols=[SUBPROTOCOL]) as ws:  # type: ignore[list-item]
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4001


@pytest.mark.parametrize(("frame", "code"), [
    (b"\xc1", "protocol"),
    (msgpack.packb([1, 2]), "protocol"),
    (msgpack.packb({"type": "launch"}), "protocol"),
    (msgpack.packb({"type": "subscribe", "cursors": [["x", 1]]}), "protocol"),
    (msgpack.packb({"type": "command", "command_id": "nope", "name": "acknowledge", "args": {}}), "protocol"),
])
async def test_malformed_frames_get_an_error_and_the_hub_keeps_serving(hub: Hub, frame: bytes, code: str) -> None:
    token = await hub.token("op1.yiqiao")
    async with await raw(hub, token, subprotocols=[SUBPROTOCOL]) as ws:
        assert isinstance(decode(await ws.recv()), Welcome)  # type: ignore[arg-type]
        await ws.send(frame)
        err = decode(await ws.recv())  # type: ignore[arg-type]
        assert err.TYPE == "error" and err.code == code  # type: ignore[attr-defined]
        await ws.send(msgpack.packb({"type": "subscribe", "cursors": []}))
        while True:
            if isinstance(decode(await ws.recv()), CaughtUp):  # type: ignore[arg-type]
                break


async def test_oversize_frame_closes_1009(hub: Hub) -> None:
    token = await hub.token("op1.yiqiao")
    big = msgpack.packb({"type": "ping", "nonce": 1, "pad": "x" * (hub.state.cfg.realtime.max_frame_bytes + 10)})
    async with await raw(hub, token, subprotocols=[SUBPROTOCOL], max_size=None) as ws:
        await ws.recv()
        await ws.send(big)
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009


async def test_a_frame_beyond_the_transport_limit_is_closed_1009_by_the_transport(hub: Hub) -> None:
    """The WebSocket layer drops a frame far beyond the protocol's limit unread: 1009, no ``error`` frame."""
    token = await hub.token("op1.yiqiao")
    limit = transport_frame_limit(hub.state.cfg.realtime.max_frame_bytes)
    async with await raw(hub, token, subprotocols=[SUBPROTOCOL], max_size=None) as ws:
        assert isinstance(decode(await ws.recv()), Welcome)  # type: ignore[arg-type]
        await ws.send(msgpack.packb({"type": "ping", "nonce": 1, "pad": "x" * limit}))
        frames = []
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                frames.append(decode(await ws.recv()))  # type: ignore[arg-type]
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
    assert not [f for f in frames if f.TYPE == "error"]


async def stuck_client(hub: Hub, token: str) -> asyncio.StreamWriter:
    """A real WebSocket peer that subscribes and then never reads again (a phone that froze)."""
    ws = WSConnection(ConnectionType.CLIENT)
    tiny = socket.socket()
    tiny.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    tiny.connect(("127.0.0.1", hub.port))
    reader, writer = await asyncio.open_connection(sock=tiny, limit=4096)
    writer.write(ws.send(Request(host=f"127.0.0.1:{hub.port}", target="/ws", subprotocols=[SUBPROTOCOL],
                                 extra_headers=[(b"authorization", f"Bearer {token}".encode())])))
    ws.receive_data(await reader.read(4096))
    assert any(isinstance(e, AcceptConnection) for e in ws.events())
    writer.write(ws.send(BytesMessage(data=msgpack.packb({"type": "subscribe", "cursors": []}))))
    await writer.drain()
    return writer


async def test_client_that_never_reads_does_not_delay_others(cfg: Config, dsn: str, clock: ManualClock) -> None:
    small = cfg.model_copy(update={"realtime": cfg.realtime.model_copy(update={"outbox_frames": 20})})
    hub, server, task = await start_hub(small, dsn, clock)
    try:
        token = await hub.token("op1.yiqiao")
        stuck = await stuck_client(hub, token)
        try:
            async with HubClient(hub.url, token) as healthy:
                await asyncio.wait_for(healthy.caught_up.wait(), 5)
                got = []
                async with await hub.login("op1.yiqiao") as op:
                    for i in range(250):  # ~36 KB of events per call: more than the kernel buffers hold
                        await post(op, "/api/v1/calls", new_call(description="长" * 4000, title=f"{i}"), expect=201)
                        # Paced by the healthy reader (one call behind at most), so only a socket that stops
                        # reading can fill its outbox, however slow this machine is; were the hub waiting on
                        # the stuck socket, these events would not come.
                        got += [await healthy.next_event(timeout=10) for _ in range(3)]
            assert len({e.seq for e in got}) == 750
            rt = hub.state.realtime
            # counted when the stuck socket's handler has ended
            await until(lambda: rt.closed_too_slow >= 1, what="the stuck socket closed as too slow")
            assert rt.closed_too_slow == 1
        finally:
            stuck.close()  # before the server stops: a peer that never reads must not be what ends the test
    finally:
        server.should_exit = True
        await task


async def test_operator_is_told_which_liaisons_are_online(hub: Hub) -> None:
    op_token = await hub.token("op1.yiqiao")
    async with HubClient(hub.url, op_token) as op:
        await asyncio.wait_for(op.caught_up.wait(), 5)
        async with HubClient(hub.url, await hub.token("police1.yiqiao")) as p:
            await asyncio.wait_for(p.connected.wait(), 5)
            while True:
                msg = await asyncio.wait_for(op.messages.get(), 5)
                if isinstance(msg, Presence) and msg.online.get("police") == 1:
                    break
        while True:
            msg = await asyncio.wait_for(op.messages.get(), 5)
            if isinstance(msg, Presence) and "police" not in msg.online:
                break


async def test_supervisor_subscribes_to_the_whole_county(hub: Hub) -> None:
    token = await hub.token("supervisor")
    async with HubClient(hub.url, token) as sup:
        await asyncio.wait_for(sup.caught_up.wait(), 5)
        assert sup.welcome is not None and len(sup.welcome.scope.township_ids) == 15
        assert sup.welcome.scope.read_only
        created = await create_call(hub)
        ev = await sup.next_event()
        with pytest.raises(CommandRefused):
            await sup.command("close", {"call_id": created["call_id"]})
    assert isinstance(ev, Event) and ev.body["reporter_phone"] == "138****5678"


async def test_listen_command_prints_a_departments_calls_live(hub: Hub) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "dispatch.cli", "listen", "--url", hub.url, "--user", "police1.yiqiao",
        "--password", "xianghu-demo", cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert proc.stdout is not None
        first = await asyncio.wait_for(proc.stdout.readline(), 20)
        assert b"connected as" in first and b"police" in first
        await create_call(hub)
        lines: list[bytes] = []
        while not any(b"assignment.dispatched" in line for line in lines):
            lines.append(await asyncio.wait_for(proc.stdout.readline(), 20))
        assert any("小区门口车辆乱停".encode() in line for line in lines)
    finally:
        proc.terminate()
        await proc.wait()


async def test_logout_closes_the_sessions_open_sockets_with_4010(hub: Hub) -> None:
    token = await hub.token("police1.yiqiao")
    async with await raw(hub, token, subprotocols=[SUBPROTOCOL]) as ws:
        await ws.recv()
        async with hub.client(headers={"Authorization": f"Bearer {token}"}) as c:
            assert (await c.post("/api/v1/logout")).status_code == 200
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                await asyncio.wait_for(ws.recv(), 10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4010


async def test_a_command_on_a_socket_whose_session_ended_is_refused_and_closed(hub: Hub) -> None:
    created = await create_call(hub)
    token = await hub.token("op1.yiqiao")
    async with HubClient(hub.url, token) as client:
        await asyncio.wait_for(client.caught_up.wait(), 5)
        # Revoked behind the hub's back (no NOTIFY): the socket must still not act on it.
        await hub.state.pool.execute("update sessions set revoked_at = now()")
        with pytest.raises((CommandRefused, TimeoutError)):
            await client.command("note", {"call_id": created["call_id"], "text": "不应写入"}, timeout=3)
        await asyncio.sleep(0)  # let the close arrive
    assert client.closed_with is not None and client.closed_with[0] == 4010
    notes = await hub.state.pool.fetchval("select count(*) from events where type = 'call.noted'")
    assert notes == 0


async def test_live_delivery_reaches_exactly_whom_the_replay_does_for_every_kind_of_subscriber(hub: Hub) -> None:
    """The fan-out looks subscribers up by ``policy.listen_key`` (township × whole-township or one target):
    every kind of subscriber, connected live while calls go to different departments and townships, gets
    the same events, in the same order, as a replay of that stretch of the log for the same account."""
    users = ["op1.yiqiao", "op1.baishi", "police1.yiqiao", "market1.yiqiao", "unit1.yiqiao", "leader.yiqiao",
             "supervisor", "head.police", "head.market", "grid.yiqiao"]
    tokens = {u: await hub.token(u) for u in users}
    live = {u: HubClient(hub.url, tokens[u]) for u in users}
    for client in live.values():
        await client.start()
    try:
        for client in live.values():
            await asyncio.wait_for(client.caught_up.wait(), 5)
        before = {u: dict(c.cursors) for u, c in live.items()}
        counts: dict[str, int] = {}
        op_baishi = await hub.login("op1.baishi")
        async with op_baishi:
            await create_call(hub)  # police, transport
            await create_call(hub, targets=["market"], category="food_safety")
            await post(op_baishi, "/api/v1/calls", new_call(targets=["police"], address="白石镇新街5号"), expect=201)
            await create_call(hub, targets=["police", "market"])
        for user in users:
            async with HubClient(hub.url, tokens[user], cursors=before[user]) as again:
                await asyncio.wait_for(again.caught_up.wait(), 5)
                replayed = []
                while not again.messages.empty():
                    msg = again.messages.get_nowait()
                    if isinstance(msg, Event):
                        replayed.append((msg.township_id, msg.seq))
            got = [(e.township_id, e.seq) for e in [await live[user].next_event() for _ in replayed]]
            assert sorted(got) == sorted(replayed), user
            counts[user] = len(replayed)
        # A call is created, then dispatched to each target (the creation is for all its targets).
        assert counts == {"op1.yiqiao": 8, "op1.baishi": 2, "leader.yiqiao": 8, "supervisor": 10,
                          "police1.yiqiao": 4, "market1.yiqiao": 4, "unit1.yiqiao": 0, "head.police": 6,
                          "head.market": 4, "grid.yiqiao": 0}  # a grid worker reads nothing over the stream
    finally:
        for client in live.values():
            await client.close()


async def test_heartbeat_pings_idle_sockets_and_closes_silent_ones_with_4000(cfg: Config, dsn: str,
                                                                           clock: ManualClock) -> None:
    """Only the sockets whose heartbeat is due are visited each second: one that answers its pings stays open
    and is pinged again; one that never answers is pinged once and closed 4000 after 2 × heartbeat_s."""
    quick = cfg.model_copy(update={"realtime": cfg.realtime.model_copy(update={"heartbeat_s": 1.0})})
    hub, server, task = await start_hub(quick, dsn, clock)
    try:
        token = await hub.token("op1.yiqiao")
        subscribe = msgpack.packb({"type": "subscribe", "cursors": []})
        async with await raw(hub, token, subprotocols=[SUBPROTOCOL]) as alive, \
                await raw(hub, token, subprotocols=[SUBPROTOCOL]) as silent:
            await alive.send(subscribe)
            await silent.send(subscribe)

            async def answer(pings: int) -> None:
                while pings:  # pinged again after each answer, and never closed
                    msg = decode(await alive.recv())  # type: ignore[arg-type]
                    if isinstance(msg, Ping):
                        await alive.send(msgpack.packb({"type": "pong", "nonce": msg.nonce}))
                        pings -= 1

            answering = asyncio.create_task(answer(3))
            loop = asyncio.get_running_loop()
            opened = loop.time()
            pings = []
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    if isinstance(decode(await asyncio.wait_for(silent.recv(), 10)), Ping):  # type: ignore[arg-type]
                        pings.append(loop.time() - opened)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4000
            assert len(pings) == 1 and 1.0 <= pings[0] < 3.0
            assert 2.0 <= loop.time() - opened < 5.0
            await asyncio.wait_for(answering, 10)
        assert len(hub.state.realtime.heartbeats) == 0  # both gone: nothing left scheduled
    finally:
        server.should_exit = True
        await task


async def test_the_fan_out_reads_every_township_behind_page_by_page_in_order(cfg: Config, dsn: str,
                                                                             clock: ManualClock) -> None:
    """One read serves every township behind (``SELECT_DELIVERY_AFTER_EACH``); one that is further behind than a
    page is read on until done: each event once, in order per township, and the cursors end at the heads."""
    small = cfg.model_copy(update={"realtime": cfg.realtime.model_copy(update={"replay_batch": 10})})
    hub, server, task = await start_hub(small, dsn, clock)
    try:
        pool = hub.state.pool
        other = await pool.fetchval("select code from townships where code <> 'yiqiao' order by id limit 1")
        for code, calls in (("yiqiao", 5), (other, 2)):
            async with await hub.login(f"op1.{code}") as op:
                for _ in range(calls):
                    await post(op, "/api/v1/calls", new_call(), expect=201)
        heads = {r["township_id"]: r["seq"] for r in await pool.fetch("select township_id, seq from township_heads")}
        fanout = hub.state.realtime.fanout
        await until(lambda: all(fanout.delivered.get(t, 0) == s for t, s in heads.items()))
        seen: list[tuple[int, int]] = []

        async def note(records: list[Any]) -> None:
            seen.extend((r.township_id, r.seq) for r in records)
        fanout.on_records.append(note)
        tids = [await pool.fetchval("select id from townships where code = $1", c) for c in ("yiqiao", other)]
        behind = {tids[0]: heads[tids[0]] - 15, tids[1]: heads[tids[1]] - 6}  # 5 calls' events, more than a page; 2
        fanout.delivered.update(behind)
        await fanout._drain()
        for t, b in behind.items():
            assert [s for tt, s in seen if tt == t] == list(range(b + 1, heads[t] + 1))
        assert {t: fanout.delivered[t] for t in behind} == {t: heads[t] for t in behind}
    finally:
        server.should_exit = True
        await task
