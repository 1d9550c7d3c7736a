"""Offline actions (issue #13, item 1): a liaison's phone sends the time the person acted (``acted_at``); the
hub keeps it and the received time, uses it for the clocks within bounds (clamped and flagged outside them),
and escalations of a rung the acted time met are void, not the department's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from dispatch.core.lifecycle import (
    ACTED_AFTER_RECEIPT,
    ACTED_BEFORE_PREVIOUS,
    ACTED_OUTSIDE_WINDOW,
    bound_acted_at,
)
from tests.conftest import Hub
from tests.helpers import assignment_of, cid, post
from tests.test_sla import ACK, ARRIVE, escalations, open_call, step

T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)


async def detail(hub: Hub, call_id: str) -> dict[str, Any]:
    async with await hub.login("op1.yiqiao") as op:
        res = await op.get(f"/api/v1/calls/{call_id}")
        assert res.status_code == 200, res.text
        data: dict[str, Any] = res.json()
        return data


def event(call: dict[str, Any], type_: str) -> dict[str, Any]:
    found = [e for e in call["timeline"] if e["type"] == type_]
    assert found, f"no {type_} in {[e['type'] for e in call['timeline']]}"
    return found[-1]


async def test_an_offline_acknowledgement_before_the_deadline_received_after_it_is_on_time(hub: Hub) -> None:
    call_id, aid = await open_call(hub)
    acted = hub.clock.now() + timedelta(seconds=ACK - 9)  # tapped 9 s before the response deadline, offline
    # The phone has no signal: the deadline passes and the hub escalates levels 1 and 2 of the response clock.
    assert await step(hub, ACK + 150) == 2
    async with await hub.login("police1.yiqiao") as police:
        await post(police, f"/api/v1/assignments/{aid}/acknowledge",
                   {"acted_at": int(acted.timestamp() * 1000)})  # epoch ms, as a phone's Date.now()
    call = await detail(hub, call_id)
    ack = event(call, "assignment.acknowledged")
    received = T0 + timedelta(seconds=ACK + 150)
    assert datetime.fromisoformat(ack["at"]) == received
    assert datetime.fromisoformat(ack["body"]["acted_at"]) == acted
    assert datetime.fromisoformat(ack["body"]["received_at"]) == received
    assert ack["body"]["voids_escalations"] == {"ack": [1, 2]}
    assert "acted_at_adjusted" not in ack["body"]
    a = assignment_of(call, "police")
    assert datetime.fromisoformat(a["acknowledged_at"]) == acted  # the clock uses the acted time
    assert a["levels"]["ack"] == 0  # no escalation of the response clock counts against the department
    # nothing more of the response clock is owed or written later
    assert await step(hub, 600) == 0


async def test_an_offline_acknowledgement_after_the_deadline_voids_only_the_rungs_it_met(
        hub: Hub, conn: asyncpg.Connection) -> None:
    call_id, aid = await open_call(hub)
    acted = hub.clock.now() + timedelta(seconds=ACK + 30)  # 30 s late: level 1 stands, level 2 (+120) was met
    assert await step(hub, ACK + 130) == 2
    async with await hub.login("police1.yiqiao") as police:
        await post(police, f"/api/v1/assignments/{aid}/acknowledge", {"acted_at": acted.isoformat()})
    call = await detail(hub, call_id)
    assert event(call, "assignment.acknowledged")["body"]["voids_escalations"] == {"ack": [2]}
    assert assignment_of(call, "police")["levels"]["ack"] == 1
    assert [(k, lvl) for k, lvl, _ in await escalations(conn, aid)] == [("ack", 1), ("ack", 2)]  # log unchanged


async def test_arrive_and_report_queued_together_keep_their_own_acted_times(hub: Hub) -> None:
    call_id, aid = await open_call(hub)
    start = hub.clock.now()
    async with await hub.login("police1.yiqiao") as police:
        await post(police, f"/api/v1/assignments/{aid}/acknowledge")
        hub.clock.advance(ARRIVE + 600)
        arrived, reported = start + timedelta(seconds=ARRIVE - 60), start + timedelta(seconds=ARRIVE + 300)
        await post(police, f"/api/v1/assignments/{aid}/arrive", {"acted_at": arrived.isoformat()})
        await post(police, f"/api/v1/assignments/{aid}/report_result",
                   {"result": "已劝离", "acted_at": reported.isoformat()})
    a = assignment_of(await detail(hub, call_id), "police")
    assert datetime.fromisoformat(a["on_scene_at"]) == arrived  # before the arrival deadline: on time
    assert datetime.fromisoformat(a["reported_at"]) == reported


async def test_acted_times_outside_the_bounds_are_clamped_and_flagged(hub: Hub) -> None:
    call_id, aid = await open_call(hub)
    dispatched = hub.clock.now()
    hub.clock.advance(60)
    async with await hub.login("police1.yiqiao") as police:
        # before the dispatch it answers (a phone's clock running behind): clamped to the dispatch
        await post(police, f"/api/v1/assignments/{aid}/acknowledge",
                   {"acted_at": (dispatched - timedelta(minutes=5)).isoformat()})
        ack = event(await detail(hub, call_id), "assignment.acknowledged")["body"]
        assert datetime.fromisoformat(ack["acted_at"]) == dispatched
        assert ack["acted_at_adjusted"] is True and ack["acted_at_reason"] == ACTED_BEFORE_PREVIOUS
        assert datetime.fromisoformat(ack["acted_at_claimed"]) == dispatched - timedelta(minutes=5)
        # after the hub received it (a phone's clock running ahead): clamped to the receipt
        hub.clock.advance(60)
        now = hub.clock.now()
        await post(police, f"/api/v1/assignments/{aid}/arrive",
                   {"acted_at": (now + timedelta(hours=1)).isoformat()})
        body = event(await detail(hub, call_id), "assignment.arrived")["body"]
        assert datetime.fromisoformat(body["acted_at"]) == now
        assert body["acted_at_reason"] == ACTED_AFTER_RECEIPT
        # older than the offline window (24 h by default): clamped to the window's start
        hub.clock.advance(3 * 86400)
        now = hub.clock.now()
        await post(police, f"/api/v1/assignments/{aid}/report_result",
                   {"result": "已处理", "acted_at": (now - timedelta(days=2)).isoformat()})
        body = event(await detail(hub, call_id), "assignment.reported")["body"]
        assert datetime.fromisoformat(body["acted_at"]) == now - timedelta(days=1)
        assert body["acted_at_adjusted"] is True and body["acted_at_reason"] == ACTED_OUTSIDE_WINDOW
        a = assignment_of(await detail(hub, call_id), "police")
        assert datetime.fromisoformat(a["reported_at"]) == now - timedelta(days=1)


async def test_a_retried_command_with_acted_at_is_idempotent_and_acted_at_is_validated(hub: Hub) -> None:
    call_id, aid = await open_call(hub)
    hub.clock.advance(30)
    acted = (hub.clock.now() - timedelta(seconds=10)).isoformat()
    body = {"command_id": cid(), "acted_at": acted}
    async with await hub.login("police1.yiqiao") as police:
        first = await police.post(f"/api/v1/assignments/{aid}/acknowledge", json=body)
        hub.clock.advance(30)
        again = await police.post(f"/api/v1/assignments/{aid}/acknowledge", json=body)
        assert first.status_code == 200 and again.status_code == 200, again.text
        assert again.json()["replayed"] is True and again.json()["events"] == first.json()["events"]
        bad = await police.post(f"/api/v1/assignments/{aid}/arrive",
                                json={"command_id": cid(), "acted_at": "2026-11-02 08:00"})
        assert bad.status_code == 422 and bad.json()["field"] == "acted_at", bad.text
    call = await detail(hub, call_id)
    assert len([e for e in call["timeline"] if e["type"] == "assignment.acknowledged"]) == 1


def test_bounds() -> None:
    received, earliest, window = T0 + timedelta(hours=30), T0, timedelta(hours=24)
    assert bound_acted_at(T0 + timedelta(hours=29), earliest, received, window) == (T0 + timedelta(hours=29), None)
    assert bound_acted_at(received + timedelta(seconds=1), earliest, received, window) == (
        received, ACTED_AFTER_RECEIPT)
    assert bound_acted_at(T0 + timedelta(hours=1), earliest, received, window) == (
        T0 + timedelta(hours=6), ACTED_OUTSIDE_WINDOW)
    assert bound_acted_at(T0 - timedelta(hours=1), T0 + timedelta(hours=10), received, window) == (
        T0 + timedelta(hours=10), ACTED_BEFORE_PREVIOUS)
