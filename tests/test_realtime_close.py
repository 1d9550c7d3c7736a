"""A socket the hub closes while its peer reads slowly or not at all (docs/PROTOCOL.md "Closing"): the client
gets a prefix of its events and never a gap, the close frame with its code even when the transport is paused by
flow control, and a peer that stopped reading is released. Driven by a raw client with a tiny receive buffer,
so the hub's transport really pauses."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import msgpack
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, BytesMessage, CloseConnection, Request

from dispatch.core.clock import ManualClock
from dispatch.core.config import Config
from protocols.messages import Event, decode
from protocols.session import SUBPROTOCOL
from tests.conftest import Hub, start_hub
from tests.helpers import new_call, post, until

LONG = "长" * 4000  # about 12 KB an event: a few fill a 4 KB receive buffer and the hub's send buffer


@dataclass
class SlowClient:
    """A WebSocket client that reads only when told to."""

    ws: WSConnection
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    async def read_to_the_end(self) -> tuple[list[int], int | None]:
        """Read everything until the close frame (or EOF): the events' seqs and the close code."""
        seqs: list[int] = []
        buf = b""
        while True:
            data = await asyncio.wait_for(self.reader.read(65536), 10)
            if not data:
                return seqs, None
            self.ws.receive_data(data)
            for ev in self.ws.events():
                if isinstance(ev, BytesMessage):
                    buf += bytes(ev.data)
                    if ev.message_finished:
                        msg, buf = decode(buf), b""
                        if isinstance(msg, Event):
                            seqs.append(msg.seq)
                elif isinstance(ev, CloseConnection):
                    return seqs, ev.code


@asynccontextmanager
async def slow_client(hub: Hub, token: str) -> AsyncIterator[SlowClient]:
    ws = WSConnection(ConnectionType.CLIENT)
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.connect(("127.0.0.1", hub.port))
    reader, writer = await asyncio.open_connection(sock=raw, limit=4096)
    try:
        writer.write(ws.send(Request(host=f"127.0.0.1:{hub.port}", target="/ws", subprotocols=[SUBPROTOCOL],
                                     extra_headers=[(b"authorization", f"Bearer {token}".encode())])))
        ws.receive_data(await reader.read(4096))
        assert any(isinstance(e, AcceptConnection) for e in ws.events())
        writer.write(ws.send(BytesMessage(data=msgpack.packb({"type": "subscribe", "cursors": []}))))
        await writer.drain()
        yield SlowClient(ws, reader, writer)
    finally:
        writer.close()


async def _live_socket(hub: Hub) -> object:
    rt = hub.state.realtime
    await until(lambda: any(s.sub is not None and s.sub.live for s in rt.sockets), what="live")
    return next(iter(rt.sockets))


async def test_a_close_while_the_transport_is_paused_leaves_no_gap(hub: Hub) -> None:
    """Frames held by a writer waiting for the transport, and those queued behind them, are dropped together
    when the hub closes the socket (here 4010, its session logged out): the client's events have no hole."""
    token = await hub.token("op1.yiqiao")
    async with slow_client(hub, token) as client:
        sock = await _live_socket(hub)
        async with await hub.login("op1.yiqiao") as op:
            for i in range(400):  # until the transport pauses and frames wait in the outbox
                await post(op, "/api/v1/calls", new_call(description=LONG, title=f"{i}"), expect=201)
                if sock._wire is not None and not sock._wire.writable.is_set() and sock.session.pending:
                    break
            for j in range(3):  # more behind them
                await post(op, "/api/v1/calls", new_call(description=LONG, title=f"x{j}"), expect=201)
        async with hub.client(headers={"Authorization": f"Bearer {token}"}) as me:
            (await me.post("/api/v1/logout")).raise_for_status()
        await until(lambda: sock.session.close_requested is not None, what="closed by the hub")
        seqs, code = await client.read_to_the_end()
    assert code == 4010
    assert seqs and seqs == list(range(seqs[0], seqs[0] + len(seqs))), "a gap in the events"


async def test_a_reader_too_slow_for_its_outbox_gets_the_4008_close_frame(cfg: Config, dsn: str,
                                                                         clock: ManualClock) -> None:
    small = cfg.model_copy(update={"realtime": cfg.realtime.model_copy(update={"outbox_frames": 20})})
    hub, server, task = await start_hub(small, dsn, clock)
    try:
        async with slow_client(hub, await hub.token("op1.yiqiao")) as client:
            await _live_socket(hub)
            rt = hub.state.realtime
            async with await hub.login("op1.yiqiao") as op:
                for i in range(400):
                    await post(op, "/api/v1/calls", new_call(description=LONG, title=f"{i}"), expect=201)
                    if rt.closed_too_slow:
                        break
            assert rt.closed_too_slow == 1
            _, code = await client.read_to_the_end()
        assert code == 4008
    finally:
        server.should_exit = True
        await task


async def test_a_peer_that_stopped_reading_is_released_after_its_heartbeat_close(cfg: Config, dsn: str,
                                                                                clock: ManualClock) -> None:
    quick = cfg.model_copy(update={"realtime": cfg.realtime.model_copy(update={"heartbeat_s": 1.0})})
    hub, server, task = await start_hub(quick, dsn, clock)
    try:
        async with slow_client(hub, await hub.token("op1.yiqiao")):
            sock = await _live_socket(hub)
            rt = hub.state.realtime
            async with await hub.login("op1.yiqiao") as op:
                for i in range(400):
                    await post(op, "/api/v1/calls", new_call(description=LONG, title=f"{i}"), expect=201)
                    if sock._wire is not None and not sock._wire.writable.is_set() and sock.session.pending:
                        break
            await until(lambda: sock.session.close_requested is not None, timeout=10, what="the 4000 close")
            assert sock.session.close_requested[0] == 4000
            # released: unregistered within the close timeout, although the peer still reads nothing
            await until(lambda: sock not in rt.sockets, timeout=15, what="the socket released")
    finally:
        server.should_exit = True
        await task


# -- the direct /ws path's own ends ------------------------------------------------------------------------


async def test_an_endpoint_failing_while_its_peer_does_not_read_still_ends() -> None:
    """web.direct.HubApp closes 1011 after an exception without waiting for a transport that a peer which stopped
    reading keeps paused (Starlette's ``ws.close`` would wait for ever): the connection's task ends."""
    import base64
    import os

    import uvicorn
    from starlette.types import Receive, Scope, Send
    from starlette.websockets import WebSocket

    from dispatch.realtime import wire
    from dispatch.realtime.socket import SERVER_SEND
    from dispatch.web.direct import HubApp
    from tests.conftest import free_port

    ended, paused = asyncio.Event(), asyncio.Event()

    async def broken(ws: WebSocket) -> None:
        await ws.accept()
        conn = wire.connection_of(ws.scope[SERVER_SEND])
        assert conn is not None
        while wire.ready(conn):
            wire.write(conn, [b"x" * 65536])
            await asyncio.sleep(0)  # let the transport report it is full
        paused.set()
        raise RuntimeError("broken endpoint")

    app = HubApp(ws_endpoint=broken, trusted_proxies=[])

    async def tracked(scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await app(scope, receive, send)
        finally:
            if scope["type"] == "websocket":
                ended.set()

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(tracked, port=port, ws="websockets-sansio", lifespan="off",
                                           log_level="critical", http=wire.UpgradingHttp))
    task = asyncio.create_task(server.serve())
    try:
        await until(lambda: server.started)
        _reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1024)
        writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write((f"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        await writer.drain()
        writer.transport.pause_reading()  # the peer stops reading
        await asyncio.wait_for(paused.wait(), 10)
        await asyncio.wait_for(ended.wait(), 5)
        writer.transport.abort()
    finally:
        server.should_exit = True
        await task


async def test_a_websocket_upgraded_behind_a_pipelined_request_stays_open(hub: Hub) -> None:
    """A request pipelined before the upgrade completes after it: the upgraded connection's HTTP protocol
    (wire.UpgradingHttp) arms no keep-alive timer on what is now the WebSocket's transport (uvicorn's closed it
    5 s later)."""
    import base64
    import os

    token = await hub.token("op1.yiqiao")
    reader, writer = await asyncio.open_connection("127.0.0.1", hub.port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write((f"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                  f"GET /ws?token={token} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                  f"Sec-WebSocket-Protocol: {SUBPROTOCOL}\r\n\r\n").encode())
    await writer.drain()
    received = b""
    try:
        async with asyncio.timeout(6.5):  # past uvicorn's keep-alive timeout (5 s), which used to close it
            while chunk := await reader.read(65536):
                received += chunk
            raise AssertionError(f"the upgraded connection was closed: {received[:300]!r}")
    except TimeoutError:
        pass
    finally:
        writer.close()
    assert b"HTTP/1.1 200" in received and b"HTTP/1.1 101" in received
    assert len(hub.state.realtime.sockets) == 1
