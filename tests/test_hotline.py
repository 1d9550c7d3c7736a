"""The 12345 hotline webhook over real sockets: signed work orders, refused forgeries, stale and replayed
requests, idempotent tickets, and the status a ticket's call has."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import Hub
from tests.helpers import post
from tests.intake_support import add_integration, body_of, signed

PATH = "/api/v1/intake/hotline"


def ticket(ticket_id: str = "GD-20261102-0001", **overrides: Any) -> dict[str, Any]:
    doc = {"ticket_id": ticket_id, "category": "飞线充电", "title": "居民楼飞线充电",
           "description": "3号楼二单元有电动车从窗口拉线充电", "address": "义桥镇幸福小区3号楼",
           "reporter_name": "李红梅", "reporter_phone": "13905371234", "priority": "urgent",
           "township": "yiqiao", "reported_at": "2026-11-02T15:58:00+08:00"}
    doc.update(overrides)
    return {k: v for k, v in doc.items() if v is not None}


async def send(hub: Hub, client: httpx.AsyncClient, name: str, secret: str, doc: dict[str, Any],
               *, at: int | None = None) -> httpx.Response:
    body = body_of(doc)
    stamp = int(hub.clock.now().timestamp()) if at is None else at
    return await client.post(PATH, content=body, headers=signed(name, secret, body, stamp))


async def status(hub: Hub, client: httpx.AsyncClient, name: str, secret: str, ticket_id: str) -> httpx.Response:
    headers = signed(name, secret, b"", int(hub.clock.now().timestamp()))
    return await client.get(f"{PATH}/tickets/{ticket_id}", headers=headers)


async def test_a_signed_ticket_becomes_an_intake_call_and_reports_its_status(hub: Hub) -> None:
    _, secret = await add_integration(hub, "hotline", "h12345", display_name="12345热线")
    async with hub.client() as line, await hub.login("op1.yiqiao") as op:
        res = await send(hub, line, "h12345", secret, ticket())
        assert res.status_code == 201, res.text
        made = res.json()
        assert made["state"] == "intake" and made["status"] == "open" and not made["replayed"]
        assert made["status_text"].startswith("待派单") and made["number"].startswith("YIQIAO-2026-")
        detail = (await op.get(f"/api/v1/calls/{made['call_id']}")).json()
        assert detail["source"] == "hotline_12345" and detail["category"] == "flying_wire_charging"
        assert detail["reporter_phone"] == "13905371234" and detail["timeline"][0]["actor"]["name"] == "12345热线"

        hub.clock.advance(5)
        now = (await status(hub, line, "h12345", secret, "GD-20261102-0001")).json()
        assert now["call_id"] == made["call_id"] and now["state"] == "intake"
        await post(op, f"/api/v1/calls/{made['call_id']}/dispatch", {"targets": ["fire", "enforcement"]})
        hub.clock.advance(1)
        now = (await status(hub, line, "h12345", secret, "GD-20261102-0001")).json()
        assert now["state"] == "dispatched" and now["agency"] == "消防"
        assert now["status_text"] == "已派单：已派消防，等待响应"
        missing = await status(hub, line, "h12345", secret, "GD-NOPE")
        assert missing.status_code == 404 and missing.json()["code"] == "not_found"


async def test_the_same_ticket_again_answers_the_same_call_even_if_it_changed(hub: Hub) -> None:
    _, secret = await add_integration(hub, "hotline", "h12345")
    async with hub.client() as line, await hub.login("op1.yiqiao") as op:
        first = (await send(hub, line, "h12345", secret, ticket())).json()
        hub.clock.advance(2)  # a new timestamp: a new signature, not a replay
        again = await send(hub, line, "h12345", secret, ticket(title="改了标题"))
        assert again.status_code == 200 and again.json()["call_id"] == first["call_id"] and again.json()["replayed"]
        calls = (await op.get("/api/v1/calls", params={"state": "intake"})).json()["calls"]
        assert [c["title"] for c in calls if c["id"] == first["call_id"]] == ["居民楼飞线充电"]
        assert sum(1 for c in calls if c["source"] == "hotline_12345") == 1
        other = await send(hub, line, "h12345", secret, ticket("GD-20261102-0002"))
        assert other.status_code == 201 and other.json()["call_id"] != first["call_id"]


async def test_a_forged_or_unknown_signature_is_refused_without_saying_why(hub: Hub) -> None:
    _, secret = await add_integration(hub, "hotline", "h12345")
    async with hub.client() as line:
        body = body_of(ticket())
        stamp = int(hub.clock.now().timestamp())
        forged = signed("h12345", "not-the-secret", body, stamp)
        unknown = signed("nobody", secret, body, stamp)
        tampered = signed("h12345", secret, body, stamp)
        answers = [await line.post(PATH, content=body, headers=forged),
                   await line.post(PATH, content=body, headers=unknown),
                   await line.post(PATH, content=body_of(ticket(title="别的内容")), headers=tampered),
                   await line.post(PATH, content=body, headers={"Content-Type": "application/json"})]
        assert [a.status_code for a in answers] == [401, 401, 401, 401]
        assert {a.json()["message"] for a in answers} == {"signature verification failed"}
        # The tampered request did not burn the signature: the genuine body with it still goes through.
        assert (await line.post(PATH, content=body, headers=tampered)).status_code == 201


async def test_stale_future_and_replayed_requests_are_refused(hub: Hub) -> None:
    _, secret = await add_integration(hub, "hotline", "h12345")
    now = int(hub.clock.now().timestamp())
    async with hub.client() as line:
        for at in (now - 301, now + 301):
            res = await send(hub, line, "h12345", secret, ticket(), at=at)
            assert res.status_code == 401 and res.json()["field"] == "X-Xianghu-Timestamp"
        body = body_of(ticket())
        headers = signed("h12345", secret, body, now - 299)
        assert (await line.post(PATH, content=body, headers=headers)).status_code == 201
        replay = await line.post(PATH, content=body, headers=headers)
        assert replay.status_code == 401 and "replay" in replay.json()["message"]


async def test_township_from_the_binding_the_code_or_the_place(hub: Hub) -> None:
    _, county = await add_integration(hub, "hotline", "county-line")
    _, bound = await add_integration(hub, "hotline", "nanwang-line", township="nanwang")
    async with hub.client() as line:
        by_place = await send(hub, line, "county-line", county, ticket("T-1", township=None, lat=35.75, lon=116.45))
        assert by_place.json()["number"].startswith("GUOLOU-2026-")
        nowhere = await send(hub, line, "county-line", county, ticket("T-2", township=None))
        assert nowhere.status_code == 422 and nowhere.json()["field"] == "lat"
        outside = await send(hub, line, "county-line", county, ticket("T-3", township=None, lat=30.0, lon=120.0))
        assert outside.status_code == 422 and "outside every township" in outside.json()["message"]
        by_binding = await send(hub, line, "nanwang-line", bound, ticket("T-4", township=None))
        assert by_binding.json()["number"].startswith("NANWANG-2026-")
        foreign = await send(hub, line, "nanwang-line", bound, ticket("T-5", township="yiqiao"))
        assert foreign.status_code == 422 and foreign.json()["field"] == "township"
        unknown = await send(hub, line, "county-line", county, ticket("T-6", category="不存在的分类"))
        assert unknown.status_code == 422 and unknown.json()["field"] == "category"


async def test_a_hotline_over_its_rate_or_disabled_is_refused(hub: Hub) -> None:
    found, secret = await add_integration(hub, "hotline", "h12345", rate_per_min=1)
    async with hub.client() as line:
        assert (await send(hub, line, "h12345", secret, ticket("R-1"))).status_code == 201
        limited = await send(hub, line, "h12345", secret, ticket("R-2"))
        assert limited.status_code == 429 and limited.headers["Retry-After"] == "60"
        async with await hub.login("admin") as admin:
            await admin.post(f"/api/v1/admin/integrations/{found['id']}/disable")
        hub.clock.advance(60)
        res = await send(hub, line, "h12345", secret, ticket("R-3"))
        assert res.status_code == 403
