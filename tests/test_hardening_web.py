"""Issue #12 items 5-13 and 15 (web hardening): body limits, login throttling, trusted proxies, Origin on cookie POSTs,
headers, TLS, one scope rule and 404 for what an account may not see, notes, no tokens in REST URLs.
Real sockets, a real PostgreSQL and (for the login page) a real Chromium, like the rest of the suite."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import uvicorn
from click.testing import CliRunner
from starlette.websockets import WebSocket
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from dispatch.cli.command import main
from dispatch.cli.demo import DEMO_PASSWORD
from dispatch.core.clock import ManualClock
from dispatch.core.config import Config, ServerConfig
from dispatch.core.domain import Role
from dispatch.store.accounts import COOKIE_NAME, add_user
from dispatch.web.direct import HubApp
from dispatch.web.middleware import CONTENT_SECURITY_POLICY
from protocols.messages import Welcome, decode
from protocols.session import SUBPROTOCOL
from tests.conftest import ROOT, Hub, free_port, start_hub
from tests.helpers import assignment_of, cid, new_call, post, until

LIMIT = 256 * 1024


def with_server(cfg: Config, **server: Any) -> Config:
    """``cfg`` with some ``[server]`` keys changed, validated like a file would be."""
    return cfg.model_copy(update={"server": ServerConfig.model_validate({**cfg.server.model_dump(), **server})})


@contextlib.asynccontextmanager
async def hub_with(cfg: Config, dsn: str, clock: ManualClock, **server: Any) -> AsyncIterator[Hub]:
    handle, srv, task = await start_hub(with_server(cfg, **server), dsn, clock)
    try:
        yield handle
    finally:
        srv.should_exit = True
        await task


def from_address(hub: Hub, address: str, **kwargs: Any) -> httpx.AsyncClient:
    """A client whose TCP connections really come from ``address`` (any 127.x.y.z is loopback)."""
    return hub.client(transport=httpx.AsyncHTTPTransport(local_address=address), **kwargs)


async def login(c: httpx.AsyncClient, username: str, password: str = DEMO_PASSWORD,
                headers: dict[str, str] | None = None) -> httpx.Response:
    return await c.post("/api/v1/login", json={"username": username, "password": password}, headers=headers)


# -- item 5: request bodies are refused by Content-Length and while streaming ---------------------

async def raw_request(hub: Hub, head: str, chunks: Sequence[bytes] = ()) -> bytes:
    """Send a request head (and body pieces) on a plain socket; return the response's first bytes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", hub.port)
    try:
        writer.write(head.encode())
        for chunk in chunks:
            writer.write(chunk)
            await writer.drain()
        # Never the end of the body: the hub must answer without it.
        return await asyncio.wait_for(reader.read(4096), timeout=5)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


def status_and_body(response: bytes) -> tuple[int, dict[str, Any]]:
    head, _, body = response.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


async def test_a_huge_declared_body_is_refused_before_it_is_read(hub: Hub) -> None:
    head = (f"POST /api/v1/login HTTP/1.1\r\nHost: 127.0.0.1:{hub.port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {64 * 1024 * 1024}\r\n\r\n")
    status, body = status_and_body(await raw_request(hub, head))
    assert status == 413
    assert body["code"] == "payload_too_large"
    async with hub.client() as c:
        assert (await c.get("/healthz")).status_code == 200


async def test_a_streamed_body_is_cut_off_once_past_the_limit(hub: Hub) -> None:
    head = (f"POST /api/v1/login HTTP/1.1\r\nHost: 127.0.0.1:{hub.port}\r\nContent-Type: application/json\r\n"
            "Transfer-Encoding: chunked\r\n\r\n")
    piece = b"x" * 65536
    chunks = [f"{len(piece):x}\r\n".encode() + piece + b"\r\n"] * (LIMIT // len(piece) + 1)
    response = await raw_request(hub, head, chunks)
    status, body = status_and_body(response)
    assert status == 413 and body["code"] == "payload_too_large"
    assert b"connection: close" in response.lower()  # the rest is not read


async def test_a_body_within_the_limit_still_works_chunked(hub: Hub) -> None:
    async def gen() -> AsyncIterator[bytes]:
        yield json.dumps({"username": "op1.yiqiao", "password": DEMO_PASSWORD}).encode()

    async with hub.client() as c:
        res = await c.post("/api/v1/login", content=gen(), headers={"content-type": "application/json"})
    assert res.status_code == 200


# -- item 6: nobody can lock an account's owner out ------------------------------------------------

async def test_wrong_passwords_from_elsewhere_do_not_lock_the_owner_out(hub: Hub) -> None:
    limit = hub.state.cfg.server.login_max_failures
    async with from_address(hub, "127.0.0.2") as attacker, hub.client() as owner:
        for _ in range(limit):
            assert (await login(attacker, "op2.yiqiao", "wrong")).status_code == 401
        blocked = await login(attacker, "op2.yiqiao")  # even the right password, from there
        ok = await login(owner, "op2.yiqiao")
    assert blocked.status_code == 429 and int(blocked.headers["retry-after"]) >= 1
    assert ok.status_code == 200


async def test_the_delay_grows_with_each_failure_and_ends(hub: Hub) -> None:
    limit = hub.state.cfg.server.login_max_failures
    async with hub.client() as c:
        for _ in range(limit):
            await login(c, "op2.yiqiao", "wrong")
        first = await login(c, "op2.yiqiao", "wrong")
        hub.clock.advance(1)
        assert (await login(c, "op2.yiqiao", "wrong")).status_code == 401
        second = await login(c, "op2.yiqiao", "wrong")
        hub.clock.advance(2)
        ok = await login(c, "op2.yiqiao")
    assert first.status_code == 429 and first.headers["retry-after"] == "1"
    assert second.status_code == 429 and second.headers["retry-after"] == "2"
    assert ok.status_code == 200


async def test_a_shared_address_is_not_locked_by_twenty_failures(hub: Hub) -> None:
    async with hub.client() as c:  # a township's NAT: everyone comes from one address
        for i in range(20):
            assert (await login(c, f"guess{i % 7}", "x")).status_code == 401
        ok = await login(c, "op1.yiqiao")
    assert ok.status_code == 200


async def test_spraying_from_one_address_is_slowed_there_only(cfg: Config, dsn: str, clock: ManualClock) -> None:
    async with hub_with(cfg, dsn, clock, login_address_max_failures=10) as hub:
        async with from_address(hub, "127.0.0.3") as sprayer, hub.client() as owner:
            for i in range(10):
                assert (await login(sprayer, f"guess{i}", "x")).status_code == 401
            blocked = await login(sprayer, "op1.yiqiao")
            ok = await login(owner, "op1.yiqiao")
    assert blocked.status_code == 429
    assert ok.status_code == 200


async def test_a_distributed_guess_slows_only_the_guessing_addresses(cfg: Config, dsn: str,
                                                                     clock: ManualClock) -> None:
    async with hub_with(cfg, dsn, clock, login_account_max_failures=3) as hub:
        bots = [from_address(hub, f"127.0.1.{i}") for i in range(1, 4)]
        async with bots[0], bots[1], bots[2], hub.client() as owner:
            for bot in bots:
                assert (await login(bot, "op2.yiqiao", "wrong")).status_code == 401
            again = await login(bots[0], "op2.yiqiao")
            ok = await login(owner, "op2.yiqiao")
    assert again.status_code == 429
    assert ok.status_code == 200


# -- items 6 and 10: forwarded addresses and scheme only from trusted proxies ------------------------

async def test_forwarded_headers_are_ignored_without_trusted_proxies(hub: Hub) -> None:
    limit = hub.state.cfg.server.login_max_failures
    async with hub.client() as c:
        for i in range(limit):
            await login(c, "op2.yiqiao", "wrong", headers={"X-Forwarded-For": f"203.0.113.{i}"})
        spoofed = await login(c, "op2.yiqiao", headers={"X-Forwarded-For": "198.51.100.77"})
        cookie = await login(c, "op1.yiqiao", headers={"X-Forwarded-Proto": "https"})
    assert spoofed.status_code == 429  # the peer is the client: a made-up address changes nothing
    assert cookie.status_code == 200 and "secure" not in cookie.headers["set-cookie"].lower()


async def test_a_trusted_proxy_forwards_the_client_address_and_scheme(cfg: Config, dsn: str,
                                                                      clock: ManualClock) -> None:
    async with hub_with(cfg, dsn, clock, trusted_proxies=["127.0.0.0/30"]) as hub:
        limit = hub.state.cfg.server.login_max_failures
        async with hub.client() as proxy:
            for _ in range(limit):  # the attacker puts a fake address first; the proxy appends the real one
                res = await login(proxy, "op2.yiqiao", "wrong",
                                  headers={"X-Forwarded-For": "192.0.2.1, 203.0.113.9, 127.0.0.2"})
                assert res.status_code == 401
            attacker = await login(proxy, "op2.yiqiao", headers={"X-Forwarded-For": "192.0.2.2, 203.0.113.9"})
            owner = await login(proxy, "op2.yiqiao", headers={"X-Forwarded-For": "198.51.100.7",
                                                               "X-Forwarded-Proto": "https"})
        rows = await hub.state.pool.fetch("select distinct address from login_failures")
    assert attacker.status_code == 429
    assert owner.status_code == 200
    assert [r["address"] for r in rows] == ["203.0.113.9"]
    assert "secure" in owner.headers["set-cookie"].lower()


async def test_a_websocket_behind_a_trusted_proxy_is_judged_by_the_forwarded_scheme(cfg: Config, dsn: str,
                                                                                      clock: ManualClock) -> None:
    """/ws skips the HTTP middleware (web.direct) but not the proxy's rewrite: behind a trusted TLS proxy the
    console's https Origin matches the socket's wss scheme; from any other peer the same headers change nothing."""
    async with hub_with(cfg, dsn, clock, trusted_proxies=["127.0.0.0/30"]) as hub:
        token = await hub.token("op1.yiqiao")

        def dial(local: str) -> Any:
            return connect(hub.ws_url, subprotocols=[SUBPROTOCOL], origin=f"https://127.0.0.1:{hub.port}",  # type: ignore[list-item, arg-type]
                           additional_headers={"Authorization": f"Bearer {token}", "X-Forwarded-Proto": "https"},
                           local_addr=(local, 0))

        async with dial("127.0.0.2") as proxied:
            welcome = decode(await proxied.recv())
        async with dial("127.0.0.9") as direct:
            with pytest.raises(ConnectionClosed) as closed:
                await direct.recv()
    assert isinstance(welcome, Welcome)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008


async def test_an_exception_in_the_realtime_endpoint_closes_1011_and_is_logged(
        caplog: pytest.LogCaptureFixture) -> None:
    """web.direct: a fault after the socket was accepted is logged and the client told (1011), not dropped."""
    async def broken(ws: WebSocket) -> None:
        await ws.accept()
        raise RuntimeError("broken endpoint")

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(HubApp(ws_endpoint=broken, trusted_proxies=[]), port=port,
                                           ws="websockets-sansio", lifespan="off", log_level="warning"))
    task = asyncio.create_task(server.serve())
    try:
        await until(lambda: server.started)
        async with connect(f"ws://127.0.0.1:{port}/ws") as ws:
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
    finally:
        server.should_exit = True
        await task
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1011
    assert any(r.message == "WebSocket connection failed" and r.exc_info for r in caplog.records)


def test_trusted_proxies_must_be_networks(cfg: Config) -> None:
    with pytest.raises(ValueError, match="not an IP address"):
        with_server(cfg, trusted_proxies=["proxy.example"])


# -- item 10: serve over TLS --------------------------------------------------------------------------

def self_signed(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


def test_serve_refuses_half_or_broken_tls_options(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    runner = CliRunner()
    half = runner.invoke(main, ["serve", "--tls-cert", str(cert)])
    missing = runner.invoke(main, ["serve", "--tls-cert", str(cert), "--tls-key", str(tmp_path / "nope.pem")])
    swapped = runner.invoke(main, ["serve", "--tls-cert", str(key), "--tls-key", str(key)])
    assert half.exit_code == 2 and "--tls-key" in half.output
    assert missing.exit_code == 2 and "nope.pem" in missing.output
    assert swapped.exit_code == 2 and "cannot use" in swapped.output


async def test_serve_over_tls_sets_a_secure_cookie(dsn: str, tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "dispatch.cli", "--log-level", "warning", "serve", "--port",
                             str(port), "--tls-cert", str(cert), "--tls-key", str(key)],
                            env={**os.environ, "DATABASE_URL": dsn}, cwd=ROOT)
    url = f"https://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=url, verify=ssl.create_default_context(cafile=cert), timeout=10) as c:
            for _ in range(300):
                assert proc.poll() is None, f"serve exited with {proc.returncode}"
                try:
                    await c.get("/readyz")
                    break
                except httpx.ConnectError as exc:
                    assert "CERTIFICATE" not in str(exc)
                    await asyncio.sleep(0.05)  # polling a separate process for readiness
            res = await login(c, "op1.yiqiao")
            me = await c.get("/api/v1/me")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert res.status_code == 200
    assert "secure" in res.headers["set-cookie"].lower()
    assert me.json()["username"] == "op1.yiqiao"


# -- item 8: cookie-authenticated POSTs must come from the hub's own pages ----------------------------

async def test_cross_origin_logout_with_the_cookie_is_refused(hub: Hub) -> None:
    own = f"http://127.0.0.1:{hub.port}"
    async with hub.client() as c:
        assert (await login(c, "op1.yiqiao")).status_code == 200
        other_port = await c.post("/api/v1/logout", headers={"Origin": f"http://127.0.0.1:{hub.port + 1}"})
        other_host = await c.post("/api/v1/logout", headers={"Origin": f"http://evil.127.0.0.1.nip.io:{hub.port}"})
        null = await c.post("/api/v1/logout", headers={"Origin": "null"})
        bare = await c.post("/api/v1/logout")  # neither Origin nor Referer
        bad_referer = await c.post("/api/v1/logout", headers={"Referer": f"http://localhost:{hub.port}/x"})
        still = await c.get("/api/v1/me")
        create = await c.post("/api/v1/calls", json=new_call(), headers={"Origin": f"http://127.0.0.1:{hub.port + 1}"})
        by_referer = await c.post("/api/v1/calls", json=new_call(), headers={"Referer": f"{own}/operator/"})
        ok = await c.post("/api/v1/logout", headers={"Origin": own})
        gone = await c.get("/api/v1/me")
    for res in (other_port, other_host, null, bare, bad_referer, create):
        assert res.status_code == 403 and res.json()["code"] == "forbidden", res.text
    assert still.status_code == 200
    assert by_referer.status_code == 201
    assert ok.status_code == 200 and gone.status_code == 401


async def test_console_origins_may_post_and_bearer_clients_are_exempt(cfg: Config, dsn: str,
                                                                      clock: ManualClock) -> None:
    async with hub_with(cfg, dsn, clock, console_origins=["https://console.example.gov.cn"]) as hub:
        async with hub.client() as c:
            await login(c, "op1.yiqiao")
            res = await c.post("/api/v1/calls", json=new_call(), headers={"Origin": "https://console.example.gov.cn"})
        bearer = await hub.login("op1.yiqiao")
        async with bearer:
            api = await bearer.post("/api/v1/calls", json=new_call(), headers={"Origin": "https://elsewhere.example"})
    assert res.status_code == 201
    assert api.status_code == 201


# -- item 9: security headers -----------------------------------------------------------------------

async def test_security_headers_on_pages_and_no_store_on_the_api(hub: Hub) -> None:
    async with hub.client() as c:
        pages = [await c.get(p) for p in ("/login", "/operator/", "/shared/login.js", "/healthz")]
        api = [await c.get("/api/v1/me"), await login(c, "op1.yiqiao"), await c.get("/api/v1/calls"),
               await c.get("/api/v1/nothing-here")]
    for res in pages + api:
        assert res.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert res.headers["x-frame-options"] == "DENY"
        assert res.headers["x-content-type-options"] == "nosniff"
        assert res.headers["referrer-policy"] == "same-origin"
    for res in api:
        assert res.headers["cache-control"] == "no-store"
    assert "script-src 'self';" in CONTENT_SECURITY_POLICY and "unsafe-inline" not in CONTENT_SECURITY_POLICY
    assert "frame-ancestors 'none'" in CONTENT_SECURITY_POLICY


def test_no_console_page_has_inline_script_style_or_handler() -> None:
    for page in (ROOT / "console").glob("**/*.html"):
        if "node_modules" in page.parts:
            continue
        text = page.read_text(encoding="utf-8")
        assert "<script>" not in text and '<script type="module">' not in text, page
        assert "<style" not in text and " style=" not in text, page
        assert " onclick=" not in text and " onload=" not in text, page


# -- item 13: no tokens in REST URLs ------------------------------------------------------------------

async def test_rest_refuses_a_token_in_the_url_and_the_websocket_takes_it(hub: Hub) -> None:
    token = await hub.token("op1.yiqiao")
    async with hub.client() as c:
        me = await c.get("/api/v1/me", params={"token": token})
        calls = await c.get("/api/v1/calls", params={"token": token})
        logout = await c.post("/api/v1/logout", params={"token": token})
    assert me.status_code == 401 and calls.status_code == 401 and logout.status_code == 401
    async with connect(f"{hub.ws_url}?token={token}", subprotocols=[SUBPROTOCOL]) as ws:  # type: ignore[list-item]
        welcome = decode(await ws.recv())  # type: ignore[arg-type]
    assert isinstance(welcome, Welcome) and welcome.user.name


# -- items 11 and 15: one scope rule; 404 for what an account may not see -----------------------------

async def test_commands_on_a_foreign_call_answer_like_reads(hub: Hub) -> None:
    owner = await hub.login("op1.zhongdu")
    other_op = await hub.login("op1.yiqiao")
    other_police = await hub.login("police1.yiqiao")
    off_call = await hub.login("market1.zhongdu")  # same township, no part in the call
    async with owner, other_op, other_police, off_call:
        created = await post(owner, "/api/v1/calls", new_call(), expect=201)
        call_id = created["call_id"]
        detail = (await owner.get(f"/api/v1/calls/{call_id}")).json()
        police_a = assignment_of(detail, "police")["id"]
        read = await other_op.get(f"/api/v1/calls/{call_id}")
        note = await other_op.post(f"/api/v1/calls/{call_id}/note", json={"command_id": cid(), "text": "x"})
        cancel = await other_op.post(f"/api/v1/calls/{call_id}/cancel", json={"command_id": cid(), "reason": "x"})
        ack = await other_police.post(f"/api/v1/assignments/{police_a}/acknowledge", json={"command_id": cid()})
        withdraw = await other_op.post(f"/api/v1/assignments/{police_a}/withdraw",
                                       json={"command_id": cid(), "reason": "x"})
        off_note = await off_call.post(f"/api/v1/calls/{call_id}/note", json={"command_id": cid(), "text": "x"})
        missing = await other_op.post(f"/api/v1/assignments/{cid()}/withdraw",
                                      json={"command_id": cid(), "reason": "x"})
        after = (await owner.get(f"/api/v1/calls/{call_id}")).json()
    assert read.status_code == 404
    for res in (note, cancel, off_note):
        assert res.status_code == 404 and res.json() == read.json()
    for res in (ack, withdraw):
        assert res.status_code == 404
        assert res.json() == {"code": "not_found", "message": f"no assignment {police_a}", "field": "assignment_id"}
    assert missing.status_code == 404 and set(missing.json()) == set(ack.json())
    assert [e["type"] for e in after["timeline"]] == [e["type"] for e in detail["timeline"]]


async def test_a_township_supervisor_sees_only_its_township_over_rest_and_websocket(hub: Hub) -> None:
    conn = await asyncpg.connect(hub.dsn)
    try:
        zhongdu, yiqiao = [await conn.fetchval("select id from townships where code = $1", code)
                           for code in ("zhongdu", "yiqiao")]
        await add_user(conn, username="sup.zhongdu", display_name="中都督查", password=DEMO_PASSWORD,
                       role=Role.SUPERVISOR, township_id=zhongdu)
    finally:
        await conn.close()
    a, b = await hub.login("op1.zhongdu"), await hub.login("op1.yiqiao")
    sup = await hub.login("sup.zhongdu")
    async with a, b, sup:
        own = await post(a, "/api/v1/calls", new_call(), expect=201)
        foreign = await post(b, "/api/v1/calls", new_call(), expect=201)
        listed = (await sup.get("/api/v1/calls")).json()["calls"]
        asked_other = (await sup.get("/api/v1/calls", params={"township_id": yiqiao})).json()["calls"]
        open_own = await sup.get(f"/api/v1/calls/{own['call_id']}")
        open_foreign = await sup.get(f"/api/v1/calls/{foreign['call_id']}")
        note_foreign = await sup.post(f"/api/v1/calls/{foreign['call_id']}/note",
                                      json={"command_id": cid(), "text": "x"})
        note_own = await sup.post(f"/api/v1/calls/{own['call_id']}/note", json={"command_id": cid(), "text": "x"})
        note_none = await sup.post(f"/api/v1/calls/{cid()}/note", json={"command_id": cid(), "text": "x"})
        me = (await sup.get("/api/v1/me")).json()
    assert [c["id"] for c in listed] == [own["call_id"]]
    assert asked_other == []
    assert open_own.status_code == 200
    assert open_foreign.status_code == 404
    # A read-only role is refused before any lookup: the same answer whether the call exists or not.
    assert note_foreign.status_code == note_own.status_code == 403
    assert note_foreign.json() == note_own.json() == note_none.json()
    assert me["scope"]["township_ids"] == [zhongdu]
    token = await hub.token("sup.zhongdu")
    async with connect(hub.ws_url, subprotocols=[SUBPROTOCOL],  # type: ignore[list-item]
                       additional_headers={"Authorization": f"Bearer {token}"}) as ws:
        welcome = decode(await ws.recv())  # type: ignore[arg-type]
    assert isinstance(welcome, Welcome) and list(welcome.scope.township_ids) == [zhongdu]


# -- item 12: a liaison notes a call only while its department works on it ----------------------------

async def test_a_liaison_cannot_note_after_its_assignment_is_withdrawn(hub: Hub) -> None:
    op, police, transport = [await hub.login(u) for u in ("op1.yiqiao", "police1.yiqiao", "transport1.yiqiao")]
    async with op, police, transport:
        created = await post(op, "/api/v1/calls", new_call(), expect=201)
        call_id = created["call_id"]
        detail = (await op.get(f"/api/v1/calls/{call_id}")).json()
        before = await police.post(f"/api/v1/calls/{call_id}/note", json={"command_id": cid(), "text": "到场前备注"})
        await post(op, f"/api/v1/assignments/{assignment_of(detail, 'police')['id']}/withdraw", {"reason": "派错"})
        after = await police.post(f"/api/v1/calls/{call_id}/note", json={"command_id": cid(), "text": "撤回后"})
        still_reads = await police.get(f"/api/v1/calls/{call_id}")
        other = await transport.post(f"/api/v1/calls/{call_id}/note", json={"command_id": cid(), "text": "仍在办"})
    assert before.status_code == 200
    assert after.status_code == 403 and after.json()["code"] == "forbidden"
    assert still_reads.status_code == 200
    assert other.status_code == 200


async def test_the_session_cookie_is_cleared_with_the_same_attributes(hub: Hub) -> None:
    async with hub.client() as c:
        await login(c, "op1.yiqiao")
        res = await c.post("/api/v1/logout", headers={"Origin": f"http://127.0.0.1:{hub.port}"})
    header = res.headers["set-cookie"].lower()
    assert header.startswith(f"{COOKIE_NAME}=") and "httponly" in header and "samesite=strict" in header
