"""Two hub processes on one database: delivery across nodes, and failover with resume (no sticky sessions)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from dispatch.cli.client import HubClient, login
from dispatch.cli.demo import DEMO_PASSWORD
from tests.conftest import ROOT, free_port
from tests.helpers import new_call, post


@dataclass
class Node:
    proc: subprocess.Popen[bytes]
    url: str


async def start_node(dsn: str) -> Node:
    port = free_port()
    env = {**os.environ, "DATABASE_URL": dsn}
    proc = subprocess.Popen([sys.executable, "-m", "dispatch.cli", "--log-level", "warning", "serve",
                             "--port", str(port)], env=env, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient() as http:
        for _ in range(300):
            if proc.poll() is not None:
                raise RuntimeError(f"node exited with {proc.returncode}")
            try:
                if (await http.get(f"{url}/readyz")).status_code == 200:
                    return Node(proc, url)
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.05)  # polling a separate process for readiness
    proc.kill()
    raise RuntimeError("node did not become ready")


def stop(node: Node) -> None:
    if node.proc.poll() is None:
        node.proc.send_signal(signal.SIGTERM)
        try:
            node.proc.wait(15)
        except subprocess.TimeoutExpired:
            node.proc.kill()
            node.proc.wait()


@pytest.fixture
async def nodes(dsn: str) -> AsyncIterator[tuple[Node, Node]]:
    a, b = await asyncio.gather(start_node(dsn), start_node(dsn))
    try:
        yield a, b
    finally:
        stop(a)
        stop(b)


@pytest.mark.slow
async def test_call_created_on_node_a_reaches_a_liaison_on_node_b(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    token = await login(b.url, "police1.yiqiao", DEMO_PASSWORD)
    async with HubClient(b.url, token) as liaison:
        await asyncio.wait_for(liaison.caught_up.wait(), 10)
        op_token = await login(a.url, "op1.yiqiao", DEMO_PASSWORD)
        async with httpx.AsyncClient(base_url=a.url, headers={"Authorization": f"Bearer {op_token}"}) as op:
            created = await post(op, "/api/v1/calls", new_call(), expect=201)
        ev = await liaison.next_event(predicate=lambda e: e.event_type == "assignment.dispatched")
    assert ev.call_id == created["call_id"]


@pytest.mark.slow
async def test_killed_node_clients_resume_on_the_other_without_gap_or_repeat(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    op_token = await login(b.url, "op1.yiqiao", DEMO_PASSWORD)
    async with HubClient([a.url, b.url], op_token) as watcher:  # connected to node A first
        await asyncio.wait_for(watcher.caught_up.wait(), 10)
        assert watcher.url.startswith(a.url.replace("http", "ws"))
        seen: list[int] = []
        async with httpx.AsyncClient(base_url=b.url, headers={"Authorization": f"Bearer {op_token}"}) as op:
            for i in range(10):
                await post(op, "/api/v1/calls", new_call(title=f"前{i}"), expect=201)
            while len(seen) < 30:
                seen.append((await watcher.next_event()).seq)
            a.proc.send_signal(signal.SIGKILL)  # no goodbye: the socket just dies
            a.proc.wait()
            for i in range(10):
                await post(op, "/api/v1/calls", new_call(title=f"后{i}"), expect=201)
            while len(seen) < 60:
                seen.append((await watcher.next_event(timeout=20)).seq)
        assert watcher.url.startswith(b.url.replace("http", "ws"))
        assert watcher.connections >= 2
    assert seen == list(range(1, 61))
