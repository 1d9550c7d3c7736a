"""The six steps 问派转办审回 through the REST API, as an operator and liaisons would do them."""

from __future__ import annotations

import asyncio
import json
import uuid

from tests.conftest import Hub
from tests.helpers import assignment_of, cid, new_call, post


async def test_six_steps_with_a_decline_and_reroute(hub: Hub) -> None:
    op = await hub.login("op1.yiqiao")
    police = await hub.login("police1.yiqiao")
    transport = await hub.login("transport2.yiqiao")
    enforcement = await hub.login("enforcement1.yiqiao")
    async with op, police, transport, enforcement:
        # 问 + 派: a joint call to two departments
        created = await post(op, "/api/v1/calls", new_call(), expect=201)
        call_id = created["call_id"]
        assert created["call_state"] == "dispatched"
        detail = (await op.get(f"/api/v1/calls/{call_id}")).json()
        police_a = assignment_of(detail, "police")["id"]
        transport_a = assignment_of(detail, "transport")["id"]

        # 办: police acknowledges; 转: transport declines, the operator re-routes to enforcement
        await post(police, f"/api/v1/assignments/{police_a}/acknowledge")
        await post(transport, f"/api/v1/assignments/{transport_a}/decline",
                   {"reason": "不属于交通运输职责", "suggested_target": "enforcement"})
        rerouted = await post(op, f"/api/v1/assignments/{transport_a}/reroute",
                              {"target": "enforcement", "reason": "占道属综合执法"})
        assert sorted(e["type"] for e in rerouted["events"]) == ["assignment.dispatched", "assignment.transferred"]
        detail = (await op.get(f"/api/v1/calls/{call_id}")).json()
        enf_a = assignment_of(detail, "enforcement")["id"]
        assert assignment_of(detail, "transport")["state"] == "transferred"

        for client, aid in ((police, police_a), (enforcement, enf_a)):
            if client is enforcement:
                await post(client, f"/api/v1/assignments/{aid}/acknowledge")
            await post(client, f"/api/v1/assignments/{aid}/arrive", {"lat": 35.72, "lon": 116.49})
            await post(client, f"/api/v1/assignments/{aid}/report_result", {"result": "已劝离车辆，疏通通道"})

        # 审: send one back, then accept; 回: return visit; close
        detail = (await op.get(f"/api/v1/calls/{call_id}")).json()
        assert detail["state"] == "review"
        await post(op, f"/api/v1/calls/{call_id}/send_back", {"reason": "请补充现场照片", "assignment_ids": [enf_a]})
        await post(enforcement, f"/api/v1/assignments/{enf_a}/report_result", {"result": "已补充"})
        await post(op, f"/api/v1/calls/{call_id}/accept")
        await post(op, f"/api/v1/calls/{call_id}/return_visit", {"resolved": True, "satisfaction": 5,
                                                                 "comment": "很满意"})
        closed = await post(op, f"/api/v1/calls/{call_id}/close")
        assert closed["call_state"] == "closed"

        detail = (await op.get(f"/api/v1/calls/{call_id}")).json()
    types = [e["type"] for e in detail["timeline"]]
    for expected in ("call.created", "assignment.dispatched", "assignment.acknowledged", "assignment.declined",
                     "assignment.transferred", "assignment.arrived", "assignment.reported", "call.sent_back",
                     "assignment.reopened", "call.accepted", "call.visited", "call.closed"):
        assert expected in types
    assert all(e["actor"]["name"] and e["at"] for e in detail["timeline"])
    seqs = [e["seq"] for e in detail["timeline"]]
    assert seqs == sorted(seqs)
    assert detail["reporter_phone"] == "13812345678"  # the township's operator sees it in full


async def test_replayed_command_id_has_no_second_effect(hub: Hub) -> None:
    op = await hub.login("op1.yiqiao")
    async with op:
        body = new_call()
        first = await op.post("/api/v1/calls", json=body)
        again = await op.post("/api/v1/calls", json=body)
        changed = await op.post("/api/v1/calls", json={**body, "title": "另一件事"})
        listed = (await op.get("/api/v1/calls")).json()["calls"]
    assert first.status_code == 201 and again.status_code == 200
    assert again.json()["replayed"] is True
    assert again.json()["call_id"] == first.json()["call_id"]
    assert changed.status_code == 409 and changed.json()["code"] == "command_id_reused"
    assert len(listed) == 1


async def test_liaison_sees_masked_reporter_and_only_own_calls(hub: Hub) -> None:
    op = await hub.login("op1.yiqiao")
    police = await hub.login("police2.yiqiao")
    market = await hub.login("market1.yiqiao")
    async with op, police, market:
        created = await post(op, "/api/v1/calls", new_call(), expect=201)
        seen = (await police.get(f"/api/v1/calls/{created['call_id']}")).json()
        hidden = await market.get(f"/api/v1/calls/{created['call_id']}")
        market_list = (await market.get("/api/v1/calls")).json()["calls"]
    assert seen["reporter_phone"] == "138****5678"
    assert seen["reporter_name"] == "王**"
    others = [a for a in seen["assignments"] if a["target"] != "police"]
    assert others and all(set(a) == {"id", "call_id", "target", "state"} for a in others)  # not their work
    assert hidden.status_code == 404
    assert market_list == []


async def test_validation_errors_name_the_field_and_change_nothing(hub: Hub) -> None:
    op = await hub.login("op1.yiqiao")
    async with op:
        bad_priority = await op.post("/api/v1/calls", json=new_call(priority="asap"))
        bad_target = await op.post("/api/v1/calls", json=new_call(targets=["army"]))
        no_id = await op.post("/api/v1/calls", json={k: v for k, v in new_call().items() if k != "command_id"})
        bad_category = await op.post("/api/v1/calls", json=new_call(category="ufo"))
        listed = (await op.get("/api/v1/calls")).json()["calls"]
    assert bad_priority.status_code == 422 and bad_priority.json()["field"] == "priority"
    assert bad_target.status_code == 422 and bad_target.json()["field"].startswith("targets")
    assert no_id.status_code == 422 and no_id.json()["field"] == "command_id"
    assert bad_category.status_code == 422 and bad_category.json()["field"] == "category"
    assert listed == []


async def test_illegal_transition_is_409_with_a_readable_message(hub: Hub) -> None:
    op = await hub.login("op1.yiqiao")
    async with op:
        created = await post(op, "/api/v1/calls", new_call(), expect=201)
        res = await op.post(f"/api/v1/calls/{created['call_id']}/close", json={"command_id": cid()})
    assert res.status_code == 409
    assert res.json()["code"] == "illegal_transition"
    assert "cannot close" in res.json()["message"]


async def test_supervisor_reads_everything_and_changes_nothing(hub: Hub) -> None:
    op = await hub.login("op1.zhongdu")
    sup = await hub.login("supervisor")
    async with op, sup:
        created = await post(op, "/api/v1/calls", new_call(), expect=201)
        listed = (await sup.get("/api/v1/calls")).json()["calls"]
        res = await sup.post(f"/api/v1/calls/{created['call_id']}/note", json={"command_id": cid(), "text": "x"})
    assert [c["call_id"] if "call_id" in c else c["id"] for c in listed] == [created["call_id"]]
    assert listed[0]["reporter_phone"] == "138****5678"
    assert res.status_code == 403


async def test_list_filters(hub: Hub) -> None:
    op = await hub.login("op1.yiqiao")
    async with op:
        await post(op, "/api/v1/calls", new_call(category="food_safety", targets=["market"], priority="low",
                                                 title="餐馆卫生问题"), expect=201)
        await post(op, "/api/v1/calls", new_call(), expect=201)
        by_target = (await op.get("/api/v1/calls", params={"target": "market"})).json()["calls"]
        by_text = (await op.get("/api/v1/calls", params={"q": "卫生"})).json()["calls"]
        by_priority = (await op.get("/api/v1/calls", params={"priority": "urgent"})).json()["calls"]
        states = [("state", "dispatched"), ("state", "review")]
        by_state = (await op.get("/api/v1/calls", params=states)).json()["calls"]
        bad = await op.get("/api/v1/calls", params={"limit": "9999"})
    assert [c["category"] for c in by_target] == ["food_safety"]
    assert [c["category"] for c in by_text] == ["food_safety"]
    assert [c["category"] for c in by_priority] == ["parking"]
    assert len(by_state) == 2
    assert bad.status_code == 422 and bad.json()["field"] == "limit"


async def test_openapi_document_lists_every_command(hub: Hub) -> None:
    async with hub.client() as c:
        doc = (await c.get("/openapi.json")).json()
    paths = doc["paths"]
    assert "/api/v1/calls" in paths and "post" in paths["/api/v1/calls"]
    for kind in ("acknowledge", "arrive", "report_result", "decline", "reroute", "withdraw"):
        assert f"/api/v1/assignments/{{assignment_id}}/{kind}" in paths
    for kind in ("dispatch", "accept", "send_back", "return_visit", "close", "cancel", "note"):
        assert f"/api/v1/calls/{{call_id}}/{kind}" in paths
    schema = doc["components"]["schemas"]["CreateCallBody"]
    assert "command_id" in schema["required"]


async def test_hostile_input_gets_4xx_never_500(hub: Hub) -> None:
    op = await hub.login("op1.yiqiao")
    sup = await hub.login("supervisor")
    async with op, sup:
        nul = await op.post("/api/v1/calls", json=new_call(title="a\x00b"))
        nul_query = await op.get("/api/v1/calls", params={"q": "a\x00"})
        huge_township = await sup.get("/api/v1/calls", params={"township_id": "99999999999"})
        odd_year = await op.get("/api/v1/calls", params={"since": "0001-01-01T00:00:00+14:00"})
        deep = await op.post("/api/v1/calls", content=b"[" * 100_000 + b"]" * 100_000,
                             headers={"content-type": "application/json"})
        not_uuid = await op.get("/api/v1/calls/not-a-uuid")
        plain = await op.post("/api/v1/calls", content=json.dumps(new_call()).encode(),
                              headers={"content-type": "text/plain; x=json"})
        listed = (await op.get("/api/v1/calls")).json()["calls"]
    assert nul.status_code == 422 and nul.json()["field"] == "title"
    assert nul_query.status_code == 422 and nul_query.json()["field"] == "q"
    assert huge_township.status_code == 422 and huge_township.json()["field"] == "township_id"
    assert odd_year.status_code == 422 and odd_year.json()["field"] == "since"
    assert deep.status_code == 400
    assert not_uuid.status_code == 404 and not_uuid.json()["code"] == "not_found"
    assert plain.status_code == 400 and "application/json" in plain.json()["message"]
    assert listed == []


async def test_same_command_id_in_two_townships_at_once_is_a_reuse_not_a_crash(hub: Hub) -> None:
    a, b = await hub.login("op1.yiqiao"), await hub.login("op1.kangyi")
    body = new_call()
    async with a, b:
        results = await asyncio.gather(a.post("/api/v1/calls", json=body), b.post("/api/v1/calls", json=body))
    assert sorted(r.status_code for r in results) == [201, 409]
    assert [r.json()["code"] for r in results if r.status_code == 409] == ["command_id_reused"]


async def test_new_calls_and_assignments_get_time_ordered_ids(hub: Hub) -> None:
    """UUID version 7 (writer.new_id): a later call's id sorts after an earlier one's, so the rows' index
    entries are appended instead of landing on random leaves."""
    op = await hub.login("op1.yiqiao")
    async with op:
        first = (await op.post("/api/v1/calls", json=new_call())).json()
        second = (await op.post("/api/v1/calls", json=new_call())).json()
        call = (await op.get(f"/api/v1/calls/{second['call_id']}")).json()
    ids = [uuid.UUID(first["call_id"]), uuid.UUID(second["call_id"])]
    ids += [uuid.UUID(a["id"]) for a in call["assignments"]]
    assert [i.version for i in ids] == [7] * len(ids) and len(ids) == 4
    assert ids[0] < ids[1]

