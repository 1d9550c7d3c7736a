"""The hub answers as PROTOCOL.md says (issue #12, contract drift): each test failed before its fix."""

from __future__ import annotations

import asyncio

import msgpack
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from protocols.messages import Error, Result, Welcome, decode
from protocols.session import SUBPROTOCOL
from tests.conftest import Hub
from tests.helpers import cid


async def _open(hub: Hub, username: str):  # type: ignore[no-untyped-def]
    token = await hub.token(username)
    ws = await connect(hub.ws_url, subprotocols=[SUBPROTOCOL],  # type: ignore[list-item]
                       additional_headers={"Authorization": f"Bearer {token}", "Accept-Language": "en"}, max_size=None,
                       ping_interval=None)
    assert isinstance(decode(await ws.recv()), Welcome)  # type: ignore[arg-type]
    return ws


async def _answer(ws, command_id: str) -> Error | Result:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(10):
        while True:
            msg = decode(await ws.recv())
            if isinstance(msg, Error | Result) and msg.command_id == command_id:
                return msg


async def _command(ws, name: str, args: dict[str, object]) -> Error | Result:  # type: ignore[no-untyped-def]
    command_id = cid()
    await ws.send(msgpack.packb({"type": "command", "command_id": command_id, "name": name, "args": args}))
    return await _answer(ws, command_id)


async def test_a_bad_argument_is_named_as_in_the_frame(hub: Hub) -> None:
    ws = await _open(hub, "op1.yiqiao")
    async with ws:
        bad = await _command(ws, "create_call", {"source": "walk_in", "category": "parking", "title": "x",
                                                 "priority": "soon"})
        assert isinstance(bad, Error) and (bad.code, bad.field) == ("validation", "args.priority")
        assert bad.message.startswith("args.priority:")
        item = await _command(ws, "create_call", {"source": "walk_in", "category": "parking", "title": "x",
                                                  "targets": ["police", "NOT A TARGET"]})
        assert isinstance(item, Error) and item.field == "args.targets[1]"
        unknown = await _command(ws, "teleport", {})
        assert isinstance(unknown, Error) and (unknown.code, unknown.field) == ("protocol", "name")


async def test_a_read_only_scope_is_forbidden_before_its_arguments_are_read(hub: Hub) -> None:
    ws = await _open(hub, "supervisor")
    async with ws:
        for name, args in (("close", {"call_id": "0d3f7b52-8a61-4f0c-b7e2-5c9a1e4d6b38"}), ("close", {}),
                           ("acknowledge", {"assignment_id": "not-a-uuid"})):
            answer = await _command(ws, name, args)
            assert isinstance(answer, Error) and answer.code == "forbidden", (name, args, answer)


async def test_escalate_is_forbidden_to_every_client(hub: Hub) -> None:
    ws = await _open(hub, "op1.yiqiao")
    async with ws:
        answer = await _command(ws, "escalate", {})
        assert isinstance(answer, Error) and answer.code == "forbidden"


async def test_an_oversized_frame_gets_the_documented_error_then_1009(hub: Hub) -> None:
    ws = await _open(hub, "op1.yiqiao")
    limit = hub.state.cfg.realtime.max_frame_bytes
    async with ws:
        await ws.send(msgpack.packb({"type": "ping", "nonce": 1, "pad": "x" * (limit + 10)}))
        got = []
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                got.append(decode(await asyncio.wait_for(ws.recv(), 10)))
    assert any(isinstance(m, Error) and m.code == "frame_too_large" for m in got)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009


async def test_the_hub_sends_no_control_pings(hub: Hub) -> None:
    """Liveness is the protocol's ping/pong: no WebSocket control ping reaches a client (uvicorn's default
    would send one every 20 s; its interval is read from the server's configuration here)."""
    assert hub.app is not None
    from dispatch.web.app import server_config

    config = server_config(hub.app, hub.state.cfg, "127.0.0.1", 0)
    assert config.ws_ping_interval is None and config.ws_ping_timeout is None
