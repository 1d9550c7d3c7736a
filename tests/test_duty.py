"""GET /api/v1/duty: who answers for each department and unit of a township, who is online now (from the
presence of the hub), and phones in full for that township's operators only."""

from __future__ import annotations

from typing import Any

import asyncpg

from dispatch.cli.client import HubClient
from dispatch.core.domain import DEPARTMENTS
from dispatch.web import schemas
from tests.conftest import Hub
from tests.helpers import until

POLICE1_PHONE = "13912340001"


async def township_id(conn: asyncpg.Connection, code: str) -> int:
    tid: int = await conn.fetchval("select id from townships where code = $1", code)
    return tid


async def duty(hub: Hub, username: str, **params: Any) -> tuple[int, dict[str, Any]]:
    async with await hub.login(username) as client:
        res = await client.get("/api/v1/duty", params=params)
        body: dict[str, Any] = res.json()
        return res.status_code, body


def target(doc: dict[str, Any], code: str) -> dict[str, Any]:
    return next(t for t in doc["targets"] if t["target"] == code)


async def test_duty_lists_every_target_its_liaisons_and_who_is_online(hub: Hub, conn: asyncpg.Connection) -> None:
    await conn.execute("update users set phone = $1 where username = 'police1.yiqiao'", POLICE1_PHONE)
    await conn.execute("update users set phone = null where username = 'police2.yiqiao'")  # none on record
    await conn.execute("update users set disabled = true where username = 'market2.yiqiao'")
    yiqiao = await township_id(conn, "yiqiao")
    status, doc = await duty(hub, "op1.yiqiao")  # an operator reads its own township by default
    assert status == 200, doc
    schemas.DutyOut.model_validate(doc)
    assert doc["township_id"] == yiqiao and doc["phones"] == "full"
    codes = [t["target"] for t in doc["targets"]]
    units = await conn.fetch("select id from units where township_id = $1 order by id", yiqiao)
    assert codes == [*DEPARTMENTS, *(f"unit:{u['id']}" for u in units)]  # the consoles' order
    police = target(doc, "police")
    assert police["kind"] == "department" and police["name_zh"] == "公安" and police["online"] == 0
    assert [(p["name"], p["team_lead"], p["phone"], p["online"]) for p in police["liaisons"]] == [
        ("义桥镇公安联络员1", True, POLICE1_PHONE, False), ("义桥镇公安联络员2", False, None, False)]
    assert [p["name"] for p in target(doc, "market")["liaisons"]] == ["义桥镇市场监管联络员1"]  # disabled: off duty
    assert target(doc, f"unit:{units[0]['id']}")["kind"] == "unit"

    # police1 opens the page (a WebSocket): online, on every read of the roster
    presence = hub.state.realtime.presence
    async with HubClient(hub.url, await hub.token("police1.yiqiao")):
        await until(lambda: bool(presence.people(yiqiao).get("police")), what="police1 online")
        _, doc = await duty(hub, "op2.yiqiao", township_id=yiqiao)
        police = target(doc, "police")
        assert police["online"] == 1
        assert [p["online"] for p in police["liaisons"]] == [True, False]
        assert target(doc, "transport")["online"] == 0
    await until(lambda: not presence.people(yiqiao).get("police"), what="police1 offline")
    _, doc = await duty(hub, "op1.yiqiao")
    assert target(doc, "police")["online"] == 0


async def test_duty_phones_in_full_for_the_townships_operators_only(hub: Hub, conn: asyncpg.Connection) -> None:
    await conn.execute("update users set phone = $1 where username = 'police1.yiqiao'", POLICE1_PHONE)
    yiqiao = await township_id(conn, "yiqiao")
    status, doc = await duty(hub, "supervisor", township_id=yiqiao)  # county-wide, read-only: masked
    assert status == 200 and doc["phones"] == "masked"
    assert target(doc, "police")["liaisons"][0]["phone"] == "139****0001"
    assert POLICE1_PHONE not in str(doc)


async def test_duty_who_may_read_it(hub: Hub, conn: asyncpg.Connection) -> None:
    yiqiao = await township_id(conn, "yiqiao")
    # another township's operator: as if the township did not exist (like an export outside the scope)
    status, doc = await duty(hub, "op1.wenshang", township_id=yiqiao)
    assert status == 404 and doc["field"] == "township_id"
    # a county-wide account must say which township
    status, doc = await duty(hub, "supervisor")
    assert status == 422 and doc["field"] == "township_id"
    status, doc = await duty(hub, "supervisor", township_id=99999)
    assert status == 404 and doc["field"] == "township_id"
    status, doc = await duty(hub, "supervisor", township_id="x")
    assert status == 422 and doc["field"] == "township_id"
    for username in ("police1.yiqiao", "leader.yiqiao", "head.police", "admin"):
        status, doc = await duty(hub, username, township_id=yiqiao)
        assert status == 403 and doc["code"] == "forbidden", (username, doc)
    async with hub.client() as anon:
        assert (await anon.get("/api/v1/duty", params={"township_id": yiqiao})).status_code == 401


async def test_duty_and_notify_status_are_in_the_openapi_document(hub: Hub) -> None:
    async with hub.client() as anon:
        doc = (await anon.get("/openapi.json")).json()
    for path, model in (("/api/v1/duty", "DutyOut"), ("/api/v1/notify/status", "NotifyStatusOut")):
        op = doc["paths"][path]["get"]
        assert op["responses"]["200"]["content"]["application/json"]["schema"] == {
            "$ref": f"#/components/schemas/{model}"}
        assert {"401", "403", "404"} <= set(op["responses"])
        assert [p["name"] for p in op["parameters"]] == ["township_id"]
