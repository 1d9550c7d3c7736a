"""GET /api/v1/notify/status: per channel what waits, what is retrying since when and why, and what was given
up lately, against a real HTTP SMS gateway stand-in that is down, comes back, and goes down again."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import asyncpg
import pytest

from dispatch.core.clock import ManualClock
from dispatch.core.config import Config
from dispatch.web import schemas
from tests.conftest import Hub
from tests.helpers import assignment_of, new_call, post
from tests.sms_gateway import Gateway
from tests.sms_gateway import sms_hub as start_sms_hub

PHONES = {"police1.yiqiao": "13912340001", "police2.yiqiao": "13912340002"}


@pytest.fixture
async def sms_hub(cfg: Config, dsn: str, clock: ManualClock) -> AsyncIterator[tuple[Hub, Gateway]]:
    async with start_sms_hub(cfg, dsn, clock) as handle:
        yield handle


async def status(hub: Hub, username: str, **params: Any) -> tuple[int, dict[str, Any]]:
    async with await hub.login(username) as client:
        res = await client.get("/api/v1/notify/status", params=params)
        body: dict[str, Any] = res.json()
        return res.status_code, body


def sms(doc: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in doc["channels"] if c["channel"] == "sms")


async def test_notify_status_follows_a_gateway_that_is_down_then_back(
        sms_hub: tuple[Hub, Gateway], conn: asyncpg.Connection) -> None:
    hub, gateway = sms_hub
    for username, phone in PHONES.items():
        await conn.execute("update users set phone = $1 where username = $2", phone, username)
    yiqiao = await conn.fetchval("select id from townships where code = 'yiqiao'")
    wenshang = await conn.fetchval("select id from townships where code = 'wenshang'")
    created_at = hub.clock.now()
    async with await hub.login("op1.yiqiao") as op:
        created = await post(op, "/api/v1/calls", new_call(targets=["police"]), expect=201)
    sender = hub.state.notify
    await sender.settled()  # both liaisons' SMS tried once: the gateway is not there

    code, doc = await status(hub, "op1.yiqiao")
    assert code == 200, doc
    schemas.NotifyStatusOut.model_validate(doc)
    assert doc["township_id"] == yiqiao and doc["failing"] is True
    s = sms(doc)
    assert (s["configured"], s["pending"], s["retrying"], s["failed"]) == (True, 2, 2, 0)
    assert "ConnectError" in s["last_error"], s
    assert s["failing_since"] == created_at.isoformat()
    # the failures are on the call's timeline at once
    async with await hub.login("op1.yiqiao") as op:
        timeline = (await op.get(f"/api/v1/calls/{created['call_id']}")).json()["timeline"]
    failed = [e["body"] for e in timeline if e["type"] == "notice.failed"]
    assert sorted(b["recipient"] for b in failed) == ["义桥镇公安联络员1", "义桥镇公安联络员2"]
    assert all(b["channel"] == "sms" and b["final"] is False for b in failed)

    # another township's operators see their own township's channels, which are fine
    code, doc = await status(hub, "op1.wenshang")
    assert code == 200 and doc["township_id"] == wenshang and doc["failing"] is False
    assert sms(doc) | {"last_error": None} == {"channel": "sms", "configured": True, "pending": 0, "retrying": 0,
                                               "failed": 0, "last_error": None, "failing_since": None}
    # county-wide: every township, or one
    code, doc = await status(hub, "supervisor")
    assert code == 200 and doc["township_id"] is None and sms(doc)["retrying"] == 2
    code, doc = await status(hub, "admin", township_id=wenshang)
    assert code == 200 and doc["failing"] is False

    # the gateway comes back: the retries go out, the warning ends
    await gateway.start()
    hub.clock.advance(3)
    assert await sender.settled() == 2
    assert sorted(m["phone"] for m in gateway.received) == sorted(PHONES.values())
    code, doc = await status(hub, "op1.yiqiao")
    assert doc["failing"] is False and (sms(doc)["pending"], sms(doc)["retrying"]) == (0, 0)

    # down again for longer than give_up_after_s: a 催办 is given up, and stays in the status for an hour
    await gateway.stop()
    async with await hub.login("op1.yiqiao") as op:
        call = (await op.get(f"/api/v1/calls/{created['call_id']}")).json()
        await post(op, f"/api/v1/assignments/{assignment_of(call, 'police')['id']}/nudge", {"text": "请立即回电"})
    await sender.settled()
    hub.clock.advance(6)
    await sender.settled()
    code, doc = await status(hub, "op1.yiqiao")
    assert doc["failing"] is True and (sms(doc)["retrying"], sms(doc)["failed"]) == (0, 2), doc
    # an hour later (the call's deadlines escalate meanwhile: nobody has a phone any more, so no new SMS)
    await conn.execute("update users set phone = null where phone is not null")
    hub.clock.advance(timedelta(hours=1).total_seconds())
    await sender.settled()
    code, doc = await status(hub, "op1.yiqiao")
    assert doc["failing"] is False and sms(doc)["failed"] == 0, doc["channels"]


async def test_notify_status_who_may_read_it(hub: Hub, conn: asyncpg.Connection) -> None:
    yiqiao = await conn.fetchval("select id from townships where code = 'yiqiao'")
    # no channel besides the consoles configured (the default): nothing to report, nothing failing
    code, doc = await status(hub, "op1.yiqiao")
    assert code == 200 and doc == {**doc, "township_id": yiqiao, "failing": False, "channels": []}
    code, doc = await status(hub, "op1.wenshang", township_id=yiqiao)
    assert code == 404 and doc["field"] == "township_id"
    code, doc = await status(hub, "supervisor", township_id=yiqiao)
    assert code == 200
    for username in ("police1.yiqiao", "leader.yiqiao", "head.police"):
        code, doc = await status(hub, username)
        assert code == 403 and doc["code"] == "forbidden", (username, doc)
    async with hub.client() as anon:
        assert (await anon.get("/api/v1/notify/status")).status_code == 401
