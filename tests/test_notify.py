"""Notifications reach people (docs/NOTIFICATIONS.md): real HTTP receivers stand in for the SMS gateway, the
WeCom and DingTalk robots and a signed webhook; a fast-forwarded clock drives the ladder and its repeats; a
receiver that is down gets every message once, in order, when it returns; two nodes send each message once."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from dispatch.core.clock import ManualClock
from dispatch.core.config import Config, NotifyConfig, Robot, SmsGateway
from dispatch.notify.channels import webhook_signature
from tests.conftest import Hub, free_port, start_hub
from tests.helpers import assignment_of, new_call, post
from tests.test_sla import ACK

DING_SECRET = "SEC-ding-secret"
HOOK_SECRET = "hook-secret"


@dataclass
class Receiver:
    """One HTTP server standing in for every outside service; records what it was sent."""

    port: int = field(default_factory=free_port)
    got: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    status: int = 200  # what the SMS gateway answers (503: down for a while, 400: a bad number)
    server: uvicorn.Server | None = None
    task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _sms(self, request: Request) -> JSONResponse:
        if self.status != 200:
            return JSONResponse({"error": "gateway busy"}, status_code=self.status)
        body = await request.json()
        self.got.setdefault("sms", []).append({**body, "key": request.headers.get("idempotency-key")})
        return JSONResponse({"ok": True})

    async def _robot(self, request: Request) -> JSONResponse:
        kind = request.path_params["kind"]
        raw = await request.body()
        entry: dict[str, Any] = {"body": json.loads(raw), "query": dict(request.query_params)}
        if kind == "dingtalk":
            stamp = request.query_params["timestamp"]
            digest = hmac.new(DING_SECRET.encode(), f"{stamp}\n{DING_SECRET}".encode(), hashlib.sha256).digest()
            entry["signed"] = request.query_params["sign"] == base64.b64encode(digest).decode()
        if kind == "webhook":
            stamp = request.headers["x-xianghu-timestamp"]
            entry["signed"] = request.headers["x-xianghu-signature"] == webhook_signature(HOOK_SECRET, stamp, raw)
        self.got.setdefault(kind, []).append(entry)
        return JSONResponse({"errcode": 0, "errmsg": "ok"})

    async def start(self) -> None:
        app = Starlette(routes=[Route("/sms", self._sms, methods=["POST"]),
                                Route("/robot/{kind}", self._robot, methods=["POST"])])
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                                    lifespan="off"))
        self.server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        self.task = asyncio.create_task(self.server.serve())
        while not self.server.started:  # noqa: ASYNC110 - uvicorn has no event for it
            await asyncio.sleep(0.01)  # polling for readiness, not waiting out time

    async def stop(self) -> None:
        if self.server is not None and self.task is not None:
            self.server.should_exit = True
            await self.task
            self.server = self.task = None


def notify_cfg(cfg: Config, receiver: Receiver, repeat: bool = False) -> Config:
    notify = NotifyConfig(
        channels=["sms", "wecom", "dingtalk", "webhook"], retry_initial_s=5, retry_max_s=60,
        sms=SmsGateway(url=f"{receiver.url}/sms", template='{"mobile": "{phone}", "content": "{text}"}'),
        robots=[Robot(kind="wecom", name="义桥镇指挥群", url=f"{receiver.url}/robot/wecom", townships=["yiqiao"]),
                Robot(kind="dingtalk", name="县督查群", url=f"{receiver.url}/robot/dingtalk", secret=DING_SECRET,
                      reasons=["escalated"]),
                Robot(kind="webhook", name="县大数据平台", url=f"{receiver.url}/robot/webhook", secret=HOOK_SECRET)])
    sla = cfg.sla
    if repeat:
        ladder = dict(sla.ladder)
        ack = next(k for k in ladder if k.value == "ack")
        first = ladder[ack][0]
        ladder[ack] = [first.model_copy(update={"repeat_every_s": 60, "repeat_count": 2}), *ladder[ack][1:]]
        sla = sla.model_copy(update={"ladder": ladder})
    return cfg.model_copy(update={"notify": notify, "sla": sla})


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = Receiver()
    await r.start()
    yield r
    await r.stop()


async def with_phones(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("update users set phone = '1380000' || lpad(id::text, 4, '0') "
                           "where username in ('police1.yiqiao', 'police2.yiqiao')")
    finally:
        await conn.close()


@pytest.fixture
async def notifying(cfg: Config, dsn: str, clock: ManualClock, receiver: Receiver) -> AsyncIterator[Hub]:
    await with_phones(dsn)
    handle, server, task = await start_hub(notify_cfg(cfg, receiver, repeat=True), dsn, clock)
    yield handle
    server.should_exit = True
    await task


async def settle(hub: Hub) -> int:
    await hub.state.sla.settled()
    done: int = await hub.state.notify.settled()
    return done


def phones(receiver: Receiver) -> list[str]:
    return [m["mobile"] for m in receiver.got.get("sms", [])]


async def test_the_ladder_reaches_people_repeats_until_acknowledged_and_shows_on_the_timeline(
        notifying: Hub, receiver: Receiver) -> None:
    hub = notifying
    async with await hub.login("op1.yiqiao") as op, await hub.login("police1.yiqiao") as police:
        created = await post(op, "/api/v1/calls", new_call(targets=["police"], title="夜市烧烤噪音"), expect=201)
        await settle(hub)
        # the new call: both police liaisons by SMS, the township's WeCom group, the county's webhook
        assert len(set(phones(receiver))) == 2
        assert "新派单" in receiver.got["sms"][0]["content"] and "夜市烧烤噪音" in receiver.got["sms"][0]["content"]
        assert receiver.got["sms"][0]["key"].startswith("xianghu-")
        assert len(receiver.got["wecom"]) == 1 and "新派单" in receiver.got["wecom"][0]["body"]["markdown"]["content"]
        assert "dingtalk" not in receiver.got  # the DingTalk group carries escalations only
        assert receiver.got["webhook"][0]["signed"] and receiver.got["webhook"][0]["body"]["reason"] == "dispatched"

        hub.clock.advance(ACK + 1)  # level 1: the liaisons again, loudly; the DingTalk group hears of it
        await settle(hub)
        assert len(phones(receiver)) == 4 and "一级督办" in receiver.got["sms"][-1]["content"]
        ding = receiver.got["dingtalk"][0]
        assert ding["signed"] and "响应超时" in ding["body"]["markdown"]["title"]
        hub.clock.advance(60)  # the rung repeats every 60 s, twice, while nobody responds
        await settle(hub)
        assert len(phones(receiver)) == 6
        detail = (await op.get(f"/api/v1/calls/{created['call_id']}")).json()
        aid = assignment_of(detail, "police")["id"]
        await post(police, f"/api/v1/assignments/{aid}/acknowledge")
        hub.clock.advance(60)  # the second repeat is due, but the clock it is about stopped: not sent
        await settle(hub)
        assert len(phones(receiver)) == 6
        timeline = (await op.get(f"/api/v1/calls/{created['call_id']}")).json()["timeline"]
    sent = [e["body"] for e in timeline if e["type"] == "notice.sent"]
    assert {(b["channel"], b["reason"]) for b in sent} >= {("sms", "dispatched"), ("sms", "escalated"),
                                                          ("wecom", "dispatched"), ("dingtalk", "escalated"),
                                                          ("webhook", "dispatched")}
    assert any(b["recipient"].endswith("公安联络员1") and b["repeat"] == 1 for b in sent)
    conn = await asyncpg.connect(hub.dsn)
    try:
        states = dict(await conn.fetch("select state, count(*) from notifications group by state"))
    finally:
        await conn.close()
    assert states["obsolete"] == 2 and "pending" not in states and "failed" not in states


async def test_a_gateway_that_is_down_delays_every_message_then_delivers_each_once_in_order(
        notifying: Hub, receiver: Receiver) -> None:
    hub = notifying
    receiver.status = 503
    async with await hub.login("op1.yiqiao") as op:
        calls = [await post(op, "/api/v1/calls", new_call(targets=["police"], title=f"第{i}件", priority="low"),
                            expect=201) for i in range(3)]
        await settle(hub)
        assert phones(receiver) == []
        failed = [e for e in (await op.get(f"/api/v1/calls/{calls[0]['call_id']}")).json()["timeline"]
                  if e["type"] == "notice.failed"]
        assert failed and failed[0]["body"]["channel"] == "sms" and "503" in failed[0]["body"]["error"]
        assert not failed[0]["body"]["final"]
        for _ in range(4):  # still down through a few retries (5 s, 10 s, 20 s ...)
            hub.clock.advance(30)
            await settle(hub)
        assert phones(receiver) == []
        receiver.status = 200
        hub.clock.advance(60)
        await settle(hub)
    texts = [m["content"] for m in receiver.got["sms"]]
    assert len(texts) == 6 and len({m["key"] for m in receiver.got["sms"]}) == 6  # each once
    for phone in set(phones(receiver)):
        mine = [m["content"] for m in receiver.got["sms"] if m["mobile"] == phone]
        assert [t.split("｜")[0].split()[-1] for t in mine] == ["第0件", "第1件", "第2件"]  # in order


async def test_a_permanent_refusal_fails_at_once_and_says_so(notifying: Hub, receiver: Receiver) -> None:
    receiver.status = 400
    async with await notifying.login("op1.yiqiao") as op:
        created = await post(op, "/api/v1/calls", new_call(targets=["police"]), expect=201)
        await settle(notifying)
        timeline = (await op.get(f"/api/v1/calls/{created['call_id']}")).json()["timeline"]
    failed = [e["body"] for e in timeline if e["type"] == "notice.failed"]
    assert len(failed) == 2 and all(b["final"] and b["status"] == 400 for b in failed)


async def test_a_nudge_goes_down_the_same_channels(notifying: Hub, receiver: Receiver) -> None:
    async with await notifying.login("op1.yiqiao") as op:
        created = await post(op, "/api/v1/calls", new_call(targets=["police"]), expect=201)
        detail = (await op.get(f"/api/v1/calls/{created['call_id']}")).json()
        await settle(notifying)
        before = len(phones(receiver))
        await post(op, f"/api/v1/assignments/{assignment_of(detail, 'police')['id']}/nudge", {"text": "群众在等"})
        await settle(notifying)
    nudges = receiver.got["sms"][before:]
    assert len(nudges) == 2 and all("催办" in m["content"] and "群众在等" in m["content"] for m in nudges)


async def test_two_nodes_send_each_message_once(cfg: Config, dsn: str, clock: ManualClock,
                                                receiver: Receiver) -> None:
    await with_phones(dsn)
    config = notify_cfg(cfg, receiver)
    a, server_a, task_a = await start_hub(config, dsn, clock)
    b, server_b, task_b = await start_hub(config, dsn, clock)
    try:
        async with await a.login("op1.yiqiao") as op:
            for i in range(10):
                await post(op, "/api/v1/calls", new_call(targets=["police"], title=f"并发{i}"), expect=201)
        await asyncio.gather(a.state.notify.settled(), b.state.notify.settled())
        await asyncio.gather(a.state.notify.settled(), b.state.notify.settled())
    finally:
        for server, task in ((server_a, task_a), (server_b, task_b)):
            server.should_exit = True
            await task
    keys = [m["key"] for m in receiver.got["sms"]]
    assert len(keys) == 20 and len(set(keys)) == 20
    assert len(receiver.got["wecom"]) == 10


async def test_the_demo_gateway_shows_each_phone_and_can_be_taken_down(cfg: Config, dsn: str,
                                                                       clock: ManualClock) -> None:
    """`xianghu demo`: SMS goes to the hub's own demo gateway; its switch makes it refuse, and the messages
    go out once it is back."""
    from dispatch.cli.demo import DEMO_PHONES
    from dispatch.web.demo_sms import with_demo_sms

    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(DEMO_PHONES)
    finally:
        await conn.close()
    port = free_port()
    hub, server, task = await start_hub(with_demo_sms(cfg, port), dsn, clock, port=port, demo=True)
    try:
        async with hub.client() as anon, await hub.login("op1.yiqiao") as op:
            assert (await anon.get("/demo/phones/")).status_code == 200
            assert (await anon.post("/demo/sms/state", json={"down": True})).json() == {"down": True}
            await post(op, "/api/v1/calls", new_call(targets=["police"], title="演示短信"), expect=201)
            await hub.state.notify.settled()
            shown = (await anon.get("/demo/sms/messages")).json()
            assert shown["messages"] == [] and shown["refused"] == 2
            await anon.post("/demo/sms/state", json={"down": False})
            hub.clock.advance(10)
            await hub.state.notify.settled()
            shown = (await anon.get("/demo/sms/messages")).json()
        assert len(shown["messages"]) == 2 and all("演示短信" in m["text"] for m in shown["messages"])
        assert all(m["phone"].startswith("1390537") for m in shown["messages"])
    finally:
        server.should_exit = True
        await task
    plain, server, task = await start_hub(cfg, dsn, clock)  # `serve` has no demo gateway
    try:
        async with plain.client() as anon:
            assert (await anon.get("/demo/sms/messages")).status_code == 404
    finally:
        server.should_exit = True
        await task
