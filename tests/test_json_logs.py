"""``xianghu serve --log-format json`` (docs/OPERATIONS.md): a real hub process whose every output line is a JSON
object, with a line per HTTP request and per published event, and no reporter, phone, name or token anywhere."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import websockets

from dispatch.cli.client import login
from dispatch.cli.demo import DEMO_PASSWORD
from protocols.session import SUBPROTOCOL
from tests.conftest import ROOT, free_port
from tests.helpers import assignment_of, new_call, post

METRICS_TOKEN = "json-logs-metrics-token-0123"


async def wait_ready(proc: subprocess.Popen[bytes], url: str) -> None:
    async with httpx.AsyncClient() as http:
        for _ in range(300):
            if proc.poll() is not None:
                raise RuntimeError(f"hub exited with {proc.returncode}")
            try:
                if (await http.get(f"{url}/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.05)  # polling a separate process for readiness
    raise RuntimeError("hub did not become ready")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def test_json_logs_have_request_and_event_lines_and_nothing_personal(dsn: str, tmp_path: Path) -> None:
    port, metrics_port = free_port(), free_port()
    config = tmp_path / "hub.toml"
    default = (ROOT / "dispatch" / "core" / "default.toml").read_text(encoding="utf-8")
    config.write_text(default.replace('token = ""', f'token = "{METRICS_TOKEN}"', 1), encoding="utf-8")
    out = tmp_path / "hub.log"
    env = {**os.environ, "DATABASE_URL": dsn}
    with out.open("wb") as sink:
        proc = subprocess.Popen([sys.executable, "-m", "dispatch.cli", "serve", "--port", str(port), "--config",
                                 str(config), "--log-format", "json", "--metrics-port", str(metrics_port)],
                                env=env, cwd=ROOT, stdout=sink, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    secrets: list[str] = [DEMO_PASSWORD, METRICS_TOKEN]
    try:
        await wait_ready(proc, url)
        op_token = await login(url, "op1.yiqiao", DEMO_PASSWORD)
        police_token = await login(url, "police1.yiqiao", DEMO_PASSWORD)
        secrets += [op_token, police_token]
        # a WebSocket with its token in the query string (clients that cannot set headers)
        async with websockets.connect(f"ws://127.0.0.1:{port}/ws?token={police_token}",
                                      subprotocols=[websockets.Subprotocol(SUBPROTOCOL)]) as ws:
            await ws.recv()  # welcome
        async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {op_token}"}) as op, \
                httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {police_token}"}) as police:
            created = await post(op, "/api/v1/calls", new_call(targets=["police"]), expect=201)
            found = await op.get("/api/v1/calls", params={"phone": "13812345678", "q": "王小明"})
            assert found.status_code == 200
            detail = (await op.get(f"/api/v1/calls/{created['call_id']}")).json()
            aid = assignment_of(detail, "police")["id"]
            await post(police, f"/api/v1/assignments/{aid}/acknowledge")
            assert (await op.get("/api/v1/calls/not-a-uuid")).status_code == 404
        async with httpx.AsyncClient() as http:
            scraped = await http.get(f"http://127.0.0.1:{metrics_port}/metrics",
                                     headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
            assert scraped.status_code == 200
            # the event lines are written by the fan-out: wait until this node published the acknowledgement
            for _ in range(200):
                if b'"assignment.acknowledged"' in out.read_bytes():
                    break
                await asyncio.sleep(0.05)  # polling a separate process's output
    finally:
        stop(proc)

    text = out.read_text(encoding="utf-8")
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]  # every line is JSON
    assert lines and all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    for leak in ["王小明", "13812345678", "5678", "义桥镇幸福路", "小区门口车辆乱停", *secrets]:
        assert leak not in text, f"{leak!r} is in the log"

    requests = [line for line in lines if line["message"] == "request"]
    assert all(set(r) == {"time", "level", "logger", "message", "method", "path", "status", "duration_ms", "role",
                          "user_id"} for r in requests)

    def one(method: str, path: str, status: int) -> dict[str, Any]:
        matching = [r for r in requests if (r["method"], r["path"], r["status"]) == (method, path, status)]
        assert matching, f"no request line for {method} {path} {status}: {requests}"
        return matching[0]

    posted = one("POST", "/api/v1/calls", 201)
    assert posted["role"] == "operator" and isinstance(posted["user_id"], int)
    assert isinstance(posted["duration_ms"], float) and posted["duration_ms"] >= 0
    assert one("GET", "/api/v1/calls", 200)["role"] == "operator"  # the path without its query
    assert one("GET", "/api/v1/calls/{call_id:uuid}", 200)["user_id"] == posted["user_id"]
    acked = one("POST", "/api/v1/assignments/{assignment_id:uuid}/acknowledge", 200)
    assert acked["role"] == "liaison" and acked["user_id"] != posted["user_id"]
    login_line = one("POST", "/api/v1/login", 200)
    assert login_line["role"] is None and login_line["user_id"] is None
    assert one("GET", "(no route)", 404)["role"] is None  # a malformed id matches no route
    assert one("GET", "/metrics", 200)["role"] is None  # the scrape, through the metrics listener

    events = [line for line in lines if line["message"] == "event"]
    assert [e["type"] for e in events] == ["call.created", "assignment.dispatched", "assignment.acknowledged"]
    fields = {"time", "level", "logger", "message", "township_id", "seq", "type", "call_id", "assignment_id",
              "call_state", "assignment_state", "actor_role", "actor_id", "node"}
    assert all(set(e) == fields for e in events)
    assert {e["call_id"] for e in events} == {created["call_id"]}
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)
    assert events[2]["assignment_id"] == aid and events[2]["assignment_state"] == "acknowledged"
    assert events[2]["actor_role"] == "liaison" and events[0]["actor_role"] == "operator"
    assert events[0]["call_state"] == "intake" and events[1]["call_state"] == "dispatched"
