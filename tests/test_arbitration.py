"""Issue #13 part A: transfer arbitration (approve / 驳回), lead and supporting departments (主办/协办),
per-department return visits, reopening after an unsatisfied visit (重办) and closing without a visit.

The pure machine first (deadline arithmetic to the second), then the hub with its ManualClock: the
operator-side review deadline escalates through the real SLA engine."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
import pytest

from dispatch.core.commands import parse_command
from dispatch.core.domain import SYSTEM_ACTOR
from dispatch.core.lifecycle import evolve
from dispatch.core.records import Event
from dispatch.core.transitions import AssignmentState, CallState
from protocols.errors import IllegalTransition, ValidationFailed
from tests.conftest import Hub
from tests.helpers import assignment_of, new_call, post
from tests.test_lifecycle import T0, create, liaison, make_ctx, of, reported, send

A, C = AssignmentState, CallState
MIN = timedelta(minutes=1)


def accepted(*targets: str) -> Any:
    call = reported(*targets)
    call, _ = send(call, "accept", call_id=str(call.id))
    return call


# -- 转: approve and reject ---------------------------------------------------------------------------


def test_reject_resumes_the_departments_clocks_as_if_never_stopped() -> None:
    call = create("police")  # normal: ack 5 min, arrive 30 min, resolve 4 h after T0
    aid = of(call, "police")
    before = call.assignments[aid]
    call, events = send(call, "decline", liaison("police"), at=T0 + 2 * MIN, assignment_id=str(aid),
                        reason="不属本部门")
    assert events[0].body["review_due"] == (T0 + 2 * MIN + timedelta(minutes=30)).isoformat()
    assert call.assignments[aid].review_due == T0 + 32 * MIN
    # the operator takes 7 minutes to decide: none of it is the department's
    call, events = send(call, "reject_transfer", at=T0 + 9 * MIN, assignment_id=str(aid), reason="占道属公安职责")
    (ev,) = events
    assert ev.type == "assignment.transfer_rejected" and ev.assignment_state == A.DISPATCHED
    a = call.assignments[aid]
    assert a.state == A.DISPATCHED and a.declined_at is None and a.review_due is None
    assert (a.ack_due, a.arrive_due, a.resolve_due) == (before.ack_due + 7 * MIN, before.arrive_due + 7 * MIN,
                                                        before.resolve_due + 7 * MIN)
    assert a.dispatched_at == before.dispatched_at  # no restart: the 2 minutes before the request count
    assert ev.body["paused_ms"] == 7 * 60_000
    assert ev.body["declined_at"] == (T0 + 2 * MIN).isoformat()
    assert ev.body["rejected_at"] == (T0 + 9 * MIN).isoformat()
    assert ev.body["previous"]["ack_due"] == before.ack_due.isoformat()
    assert ev.body["reason"] == "占道属公安职责" and ev.body["shifted"] == ["ack", "arrive", "resolve"]


def test_reject_after_acknowledgement_resumes_acknowledged_and_keeps_the_stopped_ack_clock() -> None:
    call = create("police")
    aid = of(call, "police")
    call, _ = send(call, "acknowledge", liaison("police"), at=T0 + MIN, assignment_id=str(aid))
    before = call.assignments[aid]
    call, _ = send(call, "decline", liaison("police"), at=T0 + 3 * MIN, assignment_id=str(aid), reason="非本部门")
    call, events = send(call, "reject_transfer", at=T0 + 13 * MIN, assignment_id=str(aid), reason="属本部门")
    a = call.assignments[aid]
    assert a.state == A.ACKNOWLEDGED and call.state == C.IN_PROGRESS
    assert a.ack_due == before.ack_due  # that clock had stopped at 响应
    assert (a.arrive_due, a.resolve_due) == (before.arrive_due + 10 * MIN, before.resolve_due + 10 * MIN)
    assert events[0].body["shifted"] == ["arrive", "resolve"]


def test_reject_keeps_escalation_levels_and_folds_from_the_log() -> None:
    call = create("police")
    aid = of(call, "police")
    call, _ = send(call, "escalate", SYSTEM_ACTOR, at=T0 + 6 * MIN, assignment_id=str(aid), deadline_kind="ack",
                   level=1, deadline=call.assignments[aid].ack_due.isoformat(), fired_at=(T0 + 6 * MIN).isoformat())
    call, _ = send(call, "decline", liaison("police"), at=T0 + 7 * MIN, assignment_id=str(aid), reason="非本部门")
    call, _ = send(call, "reject_transfer", at=T0 + 8 * MIN, assignment_id=str(aid), reason="属本部门")
    assert call.assignments[aid].levels["ack"] == 1  # not restarted
    # the projection round-trips (the store keeps it as JSON)
    assert type(call).from_dict(call.to_dict()) == call


def test_reject_is_only_for_a_pending_request() -> None:
    call = create("police")
    with pytest.raises(IllegalTransition, match="cannot reject the transfer request of an assignment that is "
                                                "dispatched"):
        send(call, "reject_transfer", assignment_id=str(of(call, "police")), reason="x")
    with pytest.raises(ValidationFailed, match="reason"):
        send(call, "reject_transfer", assignment_id=str(of(call, "police")))


def test_approve_needs_a_reason_and_another_target_and_is_marked_not_our_remit() -> None:
    call = create("police")
    aid = of(call, "police")
    call, _ = send(call, "decline", liaison("police"), at=T0 + MIN, assignment_id=str(aid), reason="非本部门")
    with pytest.raises(ValidationFailed, match="reason: is required"):
        send(call, "reroute", assignment_id=str(aid), target="land")
    with pytest.raises(ValidationFailed, match="target: the assignment is already police's"):
        send(call, "reroute", assignment_id=str(aid), target="police", reason="x")
    call, events = send(call, "reroute", at=T0 + 4 * MIN, assignment_id=str(aid), target="land",
                        reason="属自然资源", not_our_remit=True)
    body = events[-1].body
    assert events[-1].type == "assignment.transferred"
    assert body["reason"] == "属自然资源" and body["not_our_remit"] is True and body["requested"] is True
    assert body["waited_ms"] == 3 * 60_000 and body["declined_at"] == (T0 + MIN).isoformat()
    new = call.assignments[of(call, "land")]
    assert new.lead  # the lead passes to the department the work went to


# -- 主办 / 协办 -----------------------------------------------------------------------------------------


def test_lead_defaults_to_the_first_target_and_can_be_named_and_changed() -> None:
    call = create("police", "enforcement")
    assert call.assignments[of(call, "police")].lead and not call.assignments[of(call, "enforcement")].lead
    call, _ = send(None, "create_call", source="grid", category="noise", title="噪音",
                   targets=["police", "enforcement"], lead="enforcement")
    assert [a.target for a in call.assignments.values() if a.lead] == ["enforcement"]
    with pytest.raises(ValidationFailed, match="lead: must be one of the targets"):
        send(None, "create_call", source="grid", category="noise", title="噪音", targets=["police"], lead="land")
    call, events = send(call, "set_lead", call_id=str(call.id), assignment_id=str(of(call, "police")),
                        reason="以公安为主")
    assert [e.type for e in events] == ["call.lead_changed"]
    assert events[0].body["previous_target"] == "enforcement" and events[0].body["target"] == "police"
    assert [a.target for a in call.assignments.values() if a.lead] == ["police"]
    with pytest.raises(ValidationFailed, match="already leads"):
        send(call, "set_lead", call_id=str(call.id), assignment_id=str(of(call, "police")))
    # a later dispatch adds supporting departments unless it names a new lead
    call, _ = send(call, "dispatch", call_id=str(call.id), targets=["land"])
    assert not call.assignments[of(call, "land")].lead
    call, _ = send(call, "dispatch", call_id=str(call.id), targets=["fire"], lead="fire")
    assert [a.target for a in call.assignments.values() if a.lead] == ["fire"]


# -- 回: per-department visits, 重办 ---------------------------------------------------------------------


def test_per_department_visits_on_a_joint_call() -> None:
    call = accepted("police", "enforcement")
    call, events = send(call, "return_visit", call_id=str(call.id), comment="两部门分别回访", ratings=[
        {"target": "police", "resolved": True, "satisfaction": 5, "comment": "民警很快到场"},
        {"assignment_id": str(of(call, "enforcement")), "resolved": True, "satisfaction": 4}])
    assert [e.type for e in events] == ["call.visited"]
    assert call.state == C.VISITED
    body = events[0].body
    assert [(r["target"], r["lead"], r["satisfaction"], r["satisfied"]) for r in body["ratings"]] == [
        ("police", True, 5, True), ("enforcement", False, 4, True)]
    assert body["per_department"] is True and body["reopen"] == []
    assert call.assignments[of(call, "police")].visit == {"resolved": True, "satisfaction": 5,
                                                         "comment": "民警很快到场", "at": T0.isoformat()}
    assert call.assignments[of(call, "enforcement")].visit["satisfaction"] == 4  # type: ignore[index]
    assert (call.resolved, call.satisfaction) == (True, 4)  # the call: all resolved, the lowest rating
    other = accepted("police")
    with pytest.raises(ValidationFailed, match="rated twice"):
        send(other, "return_visit", call_id=str(other.id), ratings=[
            {"target": "police", "resolved": True, "satisfaction": 5},
            {"target": "police", "resolved": True, "satisfaction": 5}])


def test_an_old_call_level_visit_event_still_folds() -> None:
    call = accepted("police")
    old = Event("call.visited", call.id, None, T0, {"resolved": True, "satisfaction": 5, "comment": None},
                ("police",), C.VISITED)
    after = evolve(call, old)
    assert (after.state, after.resolved, after.satisfaction) == (C.VISITED, True, 5)
    assert after.assignments[of(call, "police")].visit is None


def test_unsatisfied_visit_reopens_the_chosen_assignment_with_a_new_result_deadline() -> None:
    call = accepted("police", "enforcement")
    at = T0 + timedelta(hours=6)
    police, enf = of(call, "police"), of(call, "enforcement")
    old_due = call.assignments[police].resolve_due
    call, events = send(call, "return_visit", at=at, call_id=str(call.id), ratings=[
        {"target": "police", "resolved": False, "satisfaction": 1, "comment": "根本没人来过"},
        {"target": "enforcement", "resolved": True, "satisfaction": 5}])
    assert [e.type for e in events] == ["call.visited", "call.reopened", "assignment.reopened"]
    assert [e.call_state for e in events] == [C.VISITED, C.IN_PROGRESS, C.IN_PROGRESS]
    assert call.state == C.IN_PROGRESS
    a = call.assignments[police]
    assert a.state == A.ON_SCENE and a.reopened == 1 and a.accepted_at is None and a.reported_at is None
    assert a.resolve_due == at + timedelta(hours=4) != old_due
    assert events[2].body["cause"] == "return_visit" and events[2].body["reason"] == "根本没人来过"
    assert call.assignments[enf].state == A.ACCEPTED  # satisfied: stays accepted
    # it is handled again, reviewed, and visited a second time
    call, _ = send(call, "report_result", liaison("police"), at=at, assignment_id=str(police), result="已到场清理")
    call, _ = send(call, "accept", at=at, call_id=str(call.id))
    call, _ = send(call, "return_visit", at=at, call_id=str(call.id),
                   ratings=[{"target": "police", "resolved": True, "satisfaction": 4}])
    assert call.state == C.VISITED and call.assignments[police].reopened == 1


def test_the_operator_picks_which_unsatisfied_assignments_reopen() -> None:
    call = accepted("police", "enforcement")
    police, enf = of(call, "police"), of(call, "enforcement")
    ratings = [{"target": "police", "resolved": False, "satisfaction": 2},
               {"target": "enforcement", "resolved": True, "satisfaction": 3}]
    with pytest.raises(ValidationFailed, match=r"reopen: .* is not an assignment rated unresolved"):
        send(call, "return_visit", call_id=str(call.id),
             ratings=[{"target": "police", "resolved": True, "satisfaction": 5}], reopen=[str(police)])
    _, events = send(call, "return_visit", call_id=str(call.id), ratings=ratings, reopen=[str(enf)])
    assert [e.assignment_id for e in events if e.type == "assignment.reopened"] == [enf]
    none, events = send(call, "return_visit", call_id=str(call.id), ratings=ratings, reopen=[])
    assert none.state == C.VISITED and [e.type for e in events] == ["call.visited"]
    _, events = send(call, "return_visit", call_id=str(call.id), ratings=ratings)
    assert {e.assignment_id for e in events if e.type == "assignment.reopened"} == {police, enf}


def test_closing_without_a_visit_needs_a_reason_for_a_hotline_call() -> None:
    call = accepted("police")  # created from hotline_12345
    with pytest.raises(ValidationFailed) as err:
        send(call, "close", call_id=str(call.id))
    assert err.value.field == "reason" and "without a return visit" in err.value.message
    closed, events = send(call, "close", call_id=str(call.id), reason="来电人拒绝回访")
    assert closed.state == C.CLOSED and closed.close_reason == "来电人拒绝回访"
    assert events[0].body == {"reason": "来电人拒绝回访", "visited": False}
    visited, _ = send(call, "return_visit", call_id=str(call.id), resolved=True, satisfaction=5)
    assert send(visited, "close", call_id=str(call.id))[0].state == C.CLOSED  # visited: no reason needed


def test_close_reason_sources_are_configurable() -> None:
    call, _ = send(None, "create_call", source="grid", category="noise", title="噪音", targets=["police"])
    call, _ = send(call, "acknowledge", liaison("police"), assignment_id=str(of(call, "police")))
    call, _ = send(call, "arrive", liaison("police"), assignment_id=str(of(call, "police")))
    call, _ = send(call, "report_result", liaison("police"), assignment_id=str(of(call, "police")), result="好")
    call, _ = send(call, "accept", call_id=str(call.id))
    assert send(call, "close", call_id=str(call.id))[0].state == C.CLOSED  # grid: not listed by default
    strict = make_ctx()
    strict = type(strict)(**{**strict.__dict__, "close_reason_sources": frozenset({"hotline_12345", "grid"})})
    with pytest.raises(ValidationFailed, match="reason"):
        send(call, "close", ctx=strict, call_id=str(call.id))


def test_return_visit_validation_names_the_field() -> None:
    for args, field in (({}, "resolved"), ({"resolved": True}, "satisfaction"),
                        ({"resolved": True, "satisfaction": 5, "ratings": [{"target": "police", "resolved": True,
                                                                             "satisfaction": 5}]}, "ratings"),
                        ({"ratings": [{"resolved": True, "satisfaction": 5}]}, "ratings.0"),
                        ({"ratings": [{"target": "police", "resolved": True, "satisfaction": 6}]},
                         "ratings.0.satisfaction")):
        with pytest.raises(ValidationFailed) as err:
            parse_command("return_visit", {"command_id": "0d3f7b52-8a61-4f0c-b7e2-5c9a1e4d6b38",
                                           "call_id": "0d3f7b52-8a61-4f0c-b7e2-5c9a1e4d6b38", **args})
        assert err.value.field == field, (args, err.value.to_dict())


# -- on the hub, with the real SLA engine -----------------------------------------------------------------

REVIEW_S = 1800  # sla.transfer_review_s in the default configuration


async def _declined_call(hub: Hub) -> tuple[str, str]:
    async with await hub.login("op1.yiqiao") as op:
        created = await post(op, "/api/v1/calls", new_call(targets=["police"]), expect=201)
        detail = (await op.get(f"/api/v1/calls/{created['call_id']}")).json()
    aid = assignment_of(detail, "police")["id"]
    async with await hub.login("police1.yiqiao") as police:
        await post(police, f"/api/v1/assignments/{aid}/decline", {"reason": "不属公安职责", "suggested_target": "land"})
    return created["call_id"], aid


async def _escalations(conn: asyncpg.Connection, aid: str) -> list[tuple[str, int]]:
    rows = await conn.fetch("select body from events where type = 'assignment.escalated' and assignment_id = $1"
                            " order by seq", UUID(aid))
    return [(r["body"]["deadline_kind"], r["body"]["level"]) for r in rows]


async def test_a_waiting_transfer_request_escalates_to_the_operators(hub: Hub, conn: asyncpg.Connection) -> None:
    _, aid = await _declined_call(hub)
    hub.clock.advance(REVIEW_S - 1)
    assert await hub.state.sla.settled() == 0  # the department's ack deadline (120 s) does not run: declined
    hub.clock.advance(1)
    assert await hub.state.sla.settled() == 1
    assert await _escalations(conn, aid) == [("review", 1)]
    hub.clock.advance(1800)
    assert await hub.state.sla.settled() == 1
    assert await _escalations(conn, aid) == [("review", 1), ("review", 2)]
    row = await conn.fetchrow("select body from events where type = 'assignment.escalated' "
                              "order by seq limit 1")
    assert row["body"]["overdue_ms"] == 0 and row["body"]["deadline_kind"] == "review"


async def test_reject_on_the_hub_resumes_the_countdown_without_restarting_it(
        hub: Hub, conn: asyncpg.Connection) -> None:
    call_id, aid = await _declined_call(hub)
    start: datetime = (await conn.fetchrow("select ack_due from assignments where id = $1", UUID(aid)))["ack_due"]
    hub.clock.advance(600)  # ten minutes with the operator
    assert await hub.state.sla.settled() == 0
    async with await hub.login("op1.yiqiao") as op:
        res = await op.post(f"/api/v1/assignments/{aid}/reject_transfer", json={"command_id": str(UUID(int=7))})
        assert res.status_code == 422 and res.json()["field"] == "reason"
        out = await post(op, f"/api/v1/assignments/{aid}/reject_transfer", {"reason": "噪音扰民属公安职责"})
        assert out["events"][0]["type"] == "assignment.transfer_rejected"
        detail = (await op.get(f"/api/v1/calls/{call_id}")).json()
    a = assignment_of(detail, "police")
    assert a["state"] == "dispatched"
    row = await conn.fetchrow("select ack_due, next_due, next_kind from assignments where id = $1", UUID(aid))
    assert row["ack_due"] == start + timedelta(seconds=600)
    assert (row["next_kind"], row["next_due"]) == ("ack", start + timedelta(seconds=600))
    # the ack deadline fires at its shifted time, not before
    hub.clock.advance(119)  # the request came at once: 120 s of ack time were left
    assert await hub.state.sla.settled() == 0
    hub.clock.advance(1)
    assert await hub.state.sla.settled() == 1
    assert await _escalations(conn, aid) == [("ack", 1)]


async def test_joint_call_visited_per_department_and_reopened_on_the_hub(hub: Hub) -> None:
    async with await hub.login("op1.yiqiao") as op:
        created = await post(op, "/api/v1/calls", new_call(lead="transport"), expect=201)
        call_id = created["call_id"]
        detail = (await op.get(f"/api/v1/calls/{call_id}")).json()
        assert {a["target"]: a["lead"] for a in detail["assignments"]} == {"police": False, "transport": True}
        for target in ("police", "transport"):
            aid = assignment_of(detail, target)["id"]
            async with await hub.login(f"{target}1.yiqiao") as liaison_client:
                for kind in ("acknowledge", "arrive"):
                    await post(liaison_client, f"/api/v1/assignments/{aid}/{kind}")
                await post(liaison_client, f"/api/v1/assignments/{aid}/report_result", {"result": "已处理"})
        await post(op, f"/api/v1/calls/{call_id}/accept")
        refused = await op.post(f"/api/v1/calls/{call_id}/close", json={"command_id": str(UUID(int=9))})
        assert refused.status_code == 422 and refused.json()["field"] == "reason"
        hub.clock.advance(3600)
        out = await post(op, f"/api/v1/calls/{call_id}/return_visit", {"ratings": [
            {"target": "police", "resolved": False, "satisfaction": 1, "comment": "根本没人来过"},
            {"target": "transport", "resolved": True, "satisfaction": 5}]})
        assert out["call_state"] == "in_progress"
        detail = (await op.get(f"/api/v1/calls/{call_id}")).json()
    police = assignment_of(detail, "police")
    assert police["state"] == "on_scene" and police["reopened"] == 1
    assert police["visit"]["satisfaction"] == 1 and assignment_of(detail, "transport")["visit"]["satisfaction"] == 5
    assert datetime.fromisoformat(police["resolve_due"]) == hub.clock.now() + timedelta(hours=4)
