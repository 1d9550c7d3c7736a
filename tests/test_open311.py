"""Open311 GeoReport v2 with real sockets: a client posting forms as the spec's clients do, the call it makes
worked through the lifecycle, and the api_key, rate limit and township rules."""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET
from datetime import timedelta
from typing import Any
from uuid import UUID

import httpx

from dispatch.cli.client import HubClient
from dispatch.store import erasure
from dispatch.store import pool as db
from tests.conftest import Hub
from tests.helpers import assignment_of, post
from tests.intake_support import add_integration, grid_id
from tests.test_attachments import bodies, photo, upload

V2 = "/open311/v2"


def report(api_key: str, **overrides: str) -> dict[str, str]:
    """A request's form fields as a GeoReport v2 client sends them (义桥镇, its first grid)."""
    form = {"api_key": api_key, "service_code": "parking", "lat": "35.71", "long": "116.71",
            "address_string": "义桥镇幸福路12号", "description": "小区门口车辆乱停，堵住消防通道",
            "first_name": "小明", "last_name": "王", "phone": "13812345678", "email": "wang@example.cn",
            "device_id": "dev-1", "account_id": "acct-9", "media_url": "https://img.example.cn/1.jpg",
            "attribute[priority]": "urgent"}
    form.update(overrides)
    return {k: v for k, v in form.items() if v is not None}


async def get_request(client: httpx.AsyncClient, number: str, api_key: str) -> dict[str, Any]:
    res = await client.get(f"{V2}/requests/{number}.json", params={"api_key": api_key})
    assert res.status_code == 200, res.text
    (item,) = res.json()
    return item  # type: ignore[no-any-return]


async def test_a_georeport_client_reports_and_follows_a_matter_until_closed(hub: Hub) -> None:
    _, key = await add_integration(hub, "open311", "cityapp", display_name="市民App")
    op_token = await hub.token("op1.yiqiao")
    async with hub.client() as app, HubClient(hub.url, op_token) as console, \
            await hub.login("op1.yiqiao") as op, await hub.login("police1.yiqiao") as police:
        await asyncio.wait_for(console.caught_up.wait(), 5)
        services = (await app.get(f"{V2}/services.json")).json()
        parking = next(s for s in services if s["service_code"] == "parking")
        assert parking == {"service_code": "parking", "service_name": "停车秩序", "description": parking["description"],
                           "metadata": True, "type": "realtime", "keywords": "停车秩序,Parking order",
                           "group": parking["group"]}
        definition = (await app.get(f"{V2}/services/parking.json")).json()
        assert definition["attributes"][0]["code"] == "priority"
        assert [v["key"] for v in definition["attributes"][0]["values"]] == ["urgent", "normal", "low"]

        res = await app.post(f"{V2}/requests.json", data=report(key))  # application/x-www-form-urlencoded
        assert res.status_code == 200, res.text
        (created,) = res.json()
        number = created["service_request_id"]
        assert number.startswith("YIQIAO-2026-") and created["account_id"] == "acct-9"
        assert "已受理" in created["service_notice"]

        # The township's operator console sees it live, as an intake call made by the integration.
        ev = await console.next_event(predicate=lambda e: e.event_type == "call.created")
        assert ev.call_state == "intake" and ev.actor.name == "市民App" and ev.actor.role == "integration"
        call_id = ev.call_id
        detail = (await op.get(f"/api/v1/calls/{call_id}")).json()
        assert detail["number"] == number and detail["source"] == "resident_app" and detail["priority"] == "urgent"
        assert detail["grid_id"] == await grid_id(hub, "yiqiao", "第1网格")
        assert detail["reporter_name"] == "王小明" and detail["reporter_phone"] == "13812345678"
        assert "https://img.example.cn/1.jpg" in detail["description"]
        intake = (await op.get("/api/v1/calls", params={"state": "intake"})).json()["calls"]
        assert call_id in [c["id"] for c in intake]

        first = await get_request(app, number, key)
        assert first["status"] == "open" and first["status_notes"].startswith("待派单")
        assert first["agency_responsible"] is None and first["expected_datetime"] is None
        assert first["media_url"] == "https://img.example.cn/1.jpg" and first["lat"] == 35.71
        assert first["requested_datetime"] == "2026-11-02T16:00:00+08:00"

        # The operator dispatches; the liaison acknowledges, arrives and reports; the operator closes.
        await post(op, f"/api/v1/calls/{call_id}/dispatch", {"targets": ["police"]})
        dispatched = await get_request(app, number, key)
        assert dispatched["status_notes"].startswith("已派单") and dispatched["agency_responsible"] == "公安"
        assert dispatched["expected_datetime"] is not None
        aid = assignment_of((await op.get(f"/api/v1/calls/{call_id}")).json(), "police")["id"]
        await post(police, f"/api/v1/assignments/{aid}/acknowledge")
        before, after = await upload(police, photo(color="red")), await upload(police, photo(color="green"))
        await post(police, f"/api/v1/assignments/{aid}/arrive", {"attachments": [before["id"]]})
        assert (await get_request(app, number, key))["status_notes"].startswith("处置中")
        await post(police, f"/api/v1/assignments/{aid}/report_result",
                   {"result": "已劝离车辆，通道畅通", "attachments": [after["id"]]})
        evidence = (await op.get(f"/api/v1/calls/{call_id}")).json()
        assert [b["attachments"][0]["sha256"] for b in bodies(evidence, "assignment.arrived")] == [before["sha256"]]
        assert [b["attachments"][0]["sha256"] for b in bodies(evidence, "assignment.reported")] \
            == [after["sha256"]]
        await post(op, f"/api/v1/calls/{call_id}/accept")
        await post(op, f"/api/v1/calls/{call_id}/return_visit", {"resolved": True, "satisfaction": 5})
        await post(op, f"/api/v1/calls/{call_id}/close")

        seen: dict[str, Any] = {}

        async def poll() -> None:
            # an outside client's polling: it has no event to wait on, only the API
            while (await get_request(app, number, key))["status"] != "closed":  # noqa: ASYNC110
                await asyncio.sleep(0.05)
            seen.update(await get_request(app, number, key))

        await asyncio.wait_for(poll(), 10)
        assert seen["status_notes"] == "已结案：已劝离车辆，通道畅通" and seen["expected_datetime"] is None

        listed = (await app.get(f"{V2}/requests.json", params={"api_key": key})).json()
        assert [r["service_request_id"] for r in listed] == [number]
        still_open = (await app.get(f"{V2}/requests.json", params={"api_key": key, "status": "open"})).json()
        assert still_open == []
        xml = await app.get(f"{V2}/requests/{number}.xml", params={"api_key": key})
        root = ET.fromstring(xml.content)
        assert root.tag == "service_requests" and root.find("request/status").text == "closed"  # type: ignore[union-attr]

    # Erasure takes what the client said about the person with the reporter's name and phone.
    conn = await db.connect(hub.dsn)  # with the hub's JSON codecs
    try:
        await erasure.erase(conn, cutoff=hub.clock.now() + timedelta(days=1), now=hub.clock.now())
        details = await conn.fetchval("select details from integration_calls where call_id = $1", UUID(call_id))
    finally:
        await conn.close()
    assert not {"email", "device_id", "account_id"} & set(details), details


async def test_api_key_missing_unknown_or_disabled_is_refused_in_the_standard_form(hub: Hub) -> None:
    found, key = await add_integration(hub, "open311", "keyed")
    async with hub.client() as app:
        for form, why in ((report(""), "api_key is required"),
                          (report("not-a-key"), "invalid api_key")):
            res = await app.post(f"{V2}/requests.json", data=form)
            assert res.status_code == 403 and res.json() == [{"code": 403, "description": why}]
        async with await hub.login("admin") as admin:
            assert (await admin.post(f"/api/v1/admin/integrations/{found['id']}/disable")).status_code == 200
        res = await app.post(f"{V2}/requests.json", data=report(key))
        assert res.status_code == 403 and res.json()[0]["description"] == "this api_key is disabled"
        res = await app.get(f"{V2}/requests.json", params={"api_key": key})
        assert res.status_code == 403
        xml = await app.post(f"{V2}/requests.xml", data=report("not-a-key"))
        assert xml.status_code == 403 and ET.fromstring(xml.content).find("error/code").text == "403"  # type: ignore[union-attr]


async def test_rate_limit_answers_429_until_the_bucket_refills(hub: Hub) -> None:
    _, key = await add_integration(hub, "open311", "slow", rate_per_min=2)
    async with hub.client() as app:
        for _ in range(2):
            assert (await app.post(f"{V2}/requests.json", data=report(key))).status_code == 200
        res = await app.post(f"{V2}/requests.json", data=report(key))
        assert res.status_code == 429 and res.json()[0]["code"] == 429
        assert res.headers["Retry-After"] == "30"
        hub.clock.advance(30)
        assert (await app.post(f"{V2}/requests.json", data=report(key))).status_code == 200


async def test_a_key_bound_to_a_township_reports_there_whatever_the_place(hub: Hub) -> None:
    _, key = await add_integration(hub, "open311", "nanwang-app", township="nanwang")
    async with hub.client() as app:
        res = await app.post(f"{V2}/requests.json", data=report(key))  # a place in 义桥镇
        assert res.status_code == 200, res.text
        assert res.json()[0]["service_request_id"].startswith("NANWANG-2026-")
        # No coordinates: the address is enough for a bound key.
        res = await app.post(f"{V2}/requests.json", data=report(key, lat="", long=""))
        assert res.status_code == 200, res.text


async def test_the_place_decides_the_township_and_outside_the_county_is_an_error(hub: Hub) -> None:
    _, key = await add_integration(hub, "open311", "county-app")
    async with hub.client() as app:
        res = await app.post(f"{V2}/requests.json", data=report(key, lat="35.75", long="116.45"))
        assert res.json()[0]["service_request_id"].startswith("GUOLOU-2026-")
        res = await app.post(f"{V2}/requests.json", data=report(key, lat="30.0", long="120.0"))
        assert res.status_code == 400
        assert res.json()[0]["description"].startswith("lat/long: (30.0, 120.0) lies outside every township")
        res = await app.post(f"{V2}/requests.json", data=report(key, lat="", long=""))
        assert res.status_code == 400 and res.json()[0]["description"].startswith("lat/long:")
        res = await app.post(f"{V2}/requests.json", data=report(key, service_code="potholes"))
        assert res.status_code == 400 and "service_code" in res.json()[0]["description"]
        res = await app.post(f"{V2}/requests.json", data=report(key, **{"attribute[priority]": "asap"}))
        assert res.status_code == 400 and "attribute" in res.json()[0]["description"]
        json_body = {k: v for k, v in report(key).items() if not k.startswith("attribute")}
        res = await app.post(f"{V2}/requests.json", json={**json_body, "attribute": {"priority": "low"}})
        assert res.status_code == 200, res.text


async def test_an_integration_reads_only_the_requests_it_made(hub: Hub) -> None:
    _, mine = await add_integration(hub, "open311", "mine")
    _, theirs = await add_integration(hub, "open311", "theirs")
    async with hub.client() as app:
        number = (await app.post(f"{V2}/requests.json", data=report(mine))).json()[0]["service_request_id"]
        res = await app.get(f"{V2}/requests/{number}.json", params={"api_key": theirs})
        assert res.status_code == 404 and res.json()[0]["code"] == 404
        assert (await app.get(f"{V2}/requests.json", params={"api_key": theirs})).json() == []
        assert (await app.get(f"{V2}/services/potholes.json")).status_code == 404


async def test_only_admins_manage_integrations(hub: Hub) -> None:
    found, key = await add_integration(hub, "open311", "managed")
    body = {"kind": "open311", "name": "other", "display_name": "x"}
    async with hub.client() as anon:
        assert (await anon.get("/api/v1/admin/integrations")).status_code == 401
    for username in ("op1.yiqiao", "supervisor", "leader.yiqiao", "police1.yiqiao"):
        async with await hub.login(username) as who:
            assert (await who.get("/api/v1/admin/integrations")).status_code == 403
            assert (await who.post("/api/v1/admin/integrations", json=body)).status_code == 403
            assert (await who.post(f"/api/v1/admin/integrations/{found['id']}/rotate")).status_code == 403
    async with await hub.login("admin") as admin:
        listed = (await admin.get("/api/v1/admin/integrations")).json()["integrations"]
        assert [i["name"] for i in listed] == ["managed"] and "api_key" not in listed[0]
        again = await admin.post("/api/v1/admin/integrations", json={**body, "name": "managed"})
        assert again.status_code == 409 and again.json()["field"] == "name"
        rotated = (await admin.post(f"/api/v1/admin/integrations/{found['id']}/rotate")).json()
    async with hub.client() as app:
        assert (await app.post(f"{V2}/requests.json", data=report(key))).status_code == 403
        assert (await app.post(f"{V2}/requests.json", data=report(rotated["api_key"]))).status_code == 200

