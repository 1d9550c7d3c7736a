"""The call lifecycle 问派转办审回 as a pure machine: commands in, events out."""

from __future__ import annotations

import copy
import json
import re
from datetime import UTC, datetime, timedelta
from itertools import count
from pathlib import Path
from typing import Any, ClassVar
from uuid import UUID, uuid4

import pytest

from dispatch.core.commands import command_assignment_id, command_call_id, parse_command
from dispatch.core.domain import SYSTEM_ACTOR, Actor, DeadlineKind, Priority, Role
from dispatch.core.lifecycle import DecideContext, decide, evolve
from dispatch.core.records import Call, Event
from dispatch.core.transitions import (
    ASSIGNMENT_TRANSITIONS,
    AssignmentState,
    CallState,
    TransitionTableError,
    check_table,
    mermaid,
)
from protocols.errors import IllegalTransition, NotFound, ValidationFailed

ROOT = Path(__file__).resolve().parent.parent
T0 = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
TOWNSHIP = 1
TARGETS = frozenset({"police", "enforcement", "land", "fire", "unit:7"})
OPERATOR = Actor(user_id=1, role=Role.OPERATOR, township_id=TOWNSHIP, name="op")


class FakeSla:
    """Fixed SLA: urgent calls get half the time."""

    WITHIN: ClassVar[dict[DeadlineKind, timedelta]] = {
        DeadlineKind.ACK: timedelta(minutes=5),
        DeadlineKind.ARRIVE: timedelta(minutes=30),
        DeadlineKind.RESOLVE: timedelta(hours=4),
    }

    def within(self, kind: DeadlineKind, priority: Priority, target: str, category: str) -> timedelta:
        return self.WITHIN[kind] / (2 if priority == Priority.URGENT else 1)


def make_ctx() -> DecideContext:
    numbers = count(1)
    return DecideContext(new_id=uuid4, sla=FakeSla(), known_targets=TARGETS,
                         categories=frozenset({"street_vending", "noise"}), township_id=TOWNSHIP,
                         next_number=lambda: f"20250301-{next(numbers):04d}")


def liaison(target: str) -> Actor:
    if target.startswith("unit:"):
        return Actor(user_id=2, role=Role.LIAISON, township_id=TOWNSHIP, unit_id=int(target[5:]))
    return Actor(user_id=2, role=Role.LIAISON, township_id=TOWNSHIP, department=target)


def send(call: Call | None, kind: str, actor: Actor = OPERATOR, at: datetime = T0,
         ctx: DecideContext | None = None, **args: Any) -> tuple[Call, list[Event]]:
    cmd = parse_command(kind, {"command_id": str(uuid4()), **args})
    events = decide(call, cmd, actor, at, ctx or make_ctx())
    for event in events:
        call = evolve(call, event)
    assert call is not None
    return call, events


def create(*targets: str, priority: str = "normal") -> Call:
    call, _ = send(None, "create_call", source="hotline_12345", category="street_vending",
                   title="占道经营", description="水果摊占用人行道", address="中都街道 12 号", lat=35.7,
                   lon=116.5, priority=priority, reporter_name="张三丰", reporter_phone="13812345678",
                   targets=list(targets))
    return call


def of(call: Call, target: str) -> UUID:
    """The open assignment of ``target``."""
    (aid,) = [a.id for a in call.assignments.values() if a.target == target
              and a.state not in (AssignmentState.TRANSFERRED, AssignmentState.WITHDRAWN)]
    return aid


def reported(*targets: str) -> Call:
    call = create(*targets)
    for t in targets:
        call, _ = send(call, "acknowledge", liaison(t), assignment_id=str(of(call, t)))
        call, _ = send(call, "arrive", liaison(t), assignment_id=str(of(call, t)))
        call, _ = send(call, "report_result", liaison(t), assignment_id=str(of(call, t)), result="已清理")
    return call


def test_full_six_steps_with_a_decline_and_reroute() -> None:
    call = create("police", "enforcement")  # 问 + 派
    assert call.state == CallState.DISPATCHED and len(call.assignments) == 2
    call, _ = send(call, "acknowledge", liaison("police"), assignment_id=str(of(call, "police")))
    assert call.state == CallState.IN_PROGRESS
    enf = of(call, "enforcement")
    call, _ = send(call, "decline", liaison("enforcement"), assignment_id=str(enf), reason="不属本部门",
                   suggested_target="land")  # 转
    assert call.assignments[enf].state == AssignmentState.DECLINED
    call, events = send(call, "reroute", assignment_id=str(enf), target="land", reason="属自然资源")
    assert [e.type for e in events] == ["assignment.dispatched", "assignment.transferred"]
    land = of(call, "land")
    assert call.assignments[land].transferred_from == enf
    assert call.assignments[enf].state == AssignmentState.TRANSFERRED
    for t in ("land", "police"):  # 办
        if t == "land":
            call, _ = send(call, "acknowledge", liaison(t), assignment_id=str(of(call, t)))
        call, _ = send(call, "arrive", liaison(t), assignment_id=str(of(call, t)), lat=35.7, lon=116.5)
        call, _ = send(call, "report_result", liaison(t), assignment_id=str(of(call, t)), result="已处理")
    assert call.state == CallState.REVIEW
    call, events = send(call, "accept", call_id=str(call.id))  # 审
    assert call.state == CallState.ACCEPTED
    assert [e.type for e in events] == ["call.accepted", "assignment.accepted", "assignment.accepted"]
    call, _ = send(call, "return_visit", call_id=str(call.id), resolved=True, satisfaction=5)  # 回
    assert (call.state, call.resolved, call.satisfaction) == (CallState.VISITED, True, 5)
    call, _ = send(call, "close", call_id=str(call.id))
    assert call.state == CallState.CLOSED and call.closed_at == T0


def test_create_without_targets_stays_in_intake() -> None:
    call, events = send(None, "create_call", source="walk_in", category="noise", title="噪音")
    assert call.state == CallState.INTAKE
    assert [e.type for e in events] == ["call.created"]
    assert call.number == "20250301-0001"


def test_dispatched_event_carries_call_snapshot_and_deadlines() -> None:
    call = create()
    call, events = send(call, "dispatch", call_id=str(call.id), targets=["police"], at=T0)
    (event,) = events
    assert event.audience == ("police",)
    assert event.body["call"]["reporter_phone"] == "13812345678"
    assert event.body["call"]["title"] == "占道经营"
    assert event.body["ack_due"] == (T0 + timedelta(minutes=5)).isoformat()
    assert event.body["resolve_due"] == (T0 + timedelta(hours=4)).isoformat()
    assert event.body["transferred_from"] is None
    json.dumps(event.to_dict())


def test_urgent_calls_get_shorter_deadlines() -> None:
    call = create("fire", priority="urgent")
    assert call.assignments[of(call, "fire")].ack_due == T0 + timedelta(minutes=2, seconds=30)


def test_call_events_reach_every_target_that_ever_had_a_part() -> None:
    call = create("police", "enforcement")
    call, _ = send(call, "reroute", assignment_id=str(of(call, "enforcement")), target="land", reason="属自然资源")
    _, events = send(call, "note", call_id=str(call.id), text="注意安全")
    assert events[0].audience == ("enforcement", "land", "police")


def test_send_back_reopens_and_resets_resolve_deadline() -> None:
    call = reported("police", "land")
    police = of(call, "police")
    later = T0 + timedelta(hours=2)
    call, events = send(call, "send_back", at=later, call_id=str(call.id), reason="照片不清楚",
                        assignment_ids=[str(police)])
    assert [e.type for e in events] == ["call.sent_back", "assignment.reopened"]
    assert call.state == CallState.IN_PROGRESS
    assert call.assignments[police].state == AssignmentState.ON_SCENE
    assert call.assignments[police].resolve_due == later + timedelta(hours=4)
    assert call.assignments[police].levels["resolve"] == 0
    assert call.assignments[of(call, "land")].state == AssignmentState.REPORTED
    call, _ = send(call, "report_result", liaison("police"), at=later, assignment_id=str(police),
                   result="补充照片")
    assert call.state == CallState.REVIEW


def test_send_back_refuses_an_assignment_that_is_not_reported() -> None:
    call = reported("police")
    with pytest.raises(ValidationFailed) as err:
        send(call, "send_back", call_id=str(call.id), reason="x", assignment_ids=[str(uuid4())])
    assert err.value.field == "assignment_ids"


def escalate(call: Call, aid: UUID, kind: str, level: int) -> tuple[Call, list[Event]]:
    deadline = call.assignments[aid].ack_due
    return send(call, "escalate", SYSTEM_ACTOR, at=T0 + timedelta(minutes=6), assignment_id=str(aid),
                deadline_kind=kind, level=level, deadline=deadline.isoformat(),
                fired_at=(deadline + timedelta(seconds=3)).isoformat())


def test_escalation_raises_the_level_by_one() -> None:
    call = create("police")
    call, events = escalate(call, of(call, "police"), "ack", 1)
    assert call.assignments[of(call, "police")].levels == {"ack": 1, "arrive": 0, "resolve": 0}
    # measured when the store writes it (6 min), not when the timer fired (deadline + 3 s)
    assert events[0].body["lateness_ms"] == events[0].body["overdue_ms"] == 60_000
    assert events[0].body["delay_ms"] == 60_000 and events[0].body["level"] == 1
    call, _ = escalate(call, of(call, "police"), "ack", 2)
    assert call.assignments[of(call, "police")].levels["ack"] == 2


def test_duplicate_escalation_is_refused() -> None:
    call = create("police")
    call, _ = escalate(call, of(call, "police"), "ack", 1)
    with pytest.raises(IllegalTransition) as err:
        escalate(call, of(call, "police"), "ack", 1)
    assert err.value.field == "level"


def test_escalation_skipping_a_level_is_refused() -> None:
    call = create("police")
    with pytest.raises(IllegalTransition):
        escalate(call, of(call, "police"), "ack", 2)


def test_late_timer_is_refused_once_the_deadline_is_met() -> None:
    call = create("police")
    call, _ = send(call, "acknowledge", liaison("police"), assignment_id=str(of(call, "police")))
    with pytest.raises(IllegalTransition, match="cannot escalate ack on an assignment that is acknowledged"):
        escalate(call, of(call, "police"), "ack", 1)
    call, _ = escalate(call, of(call, "police"), "arrive", 1)  # arrival is still awaited
    assert call.assignments[of(call, "police")].levels["arrive"] == 1


def test_only_the_system_escalates() -> None:
    call = create("police")
    with pytest.raises(Exception, match="only the SLA engine"):
        send(call, "escalate", OPERATOR, assignment_id=str(of(call, "police")), deadline_kind="ack",
             level=1, deadline=T0.isoformat(), fired_at=T0.isoformat())


def test_acknowledging_a_reported_assignment_is_illegal() -> None:
    call = reported("police")
    with pytest.raises(IllegalTransition) as err:
        send(call, "acknowledge", liaison("police"), assignment_id=str(of(call, "police")))
    assert err.value.code == "illegal_transition"
    assert err.value.message == "cannot acknowledge an assignment that is reported"
    assert err.value.field == "assignment_id"


def test_closing_a_call_in_progress_is_illegal() -> None:
    call = create("police")
    call, _ = send(call, "acknowledge", liaison("police"), assignment_id=str(of(call, "police")))
    with pytest.raises(IllegalTransition) as err:
        send(call, "close", call_id=str(call.id))
    assert err.value.message == "cannot close a call that is in_progress"
    assert err.value.field == "call_id"


def test_closed_call_refuses_notes() -> None:
    call = reported("police")
    call, _ = send(call, "accept", call_id=str(call.id))
    call, _ = send(call, "close", call_id=str(call.id), reason="来电人要求不回访")
    with pytest.raises(IllegalTransition, match="cannot add a note to a call that is closed"):
        send(call, "note", call_id=str(call.id), text="还有问题")


def test_cancel_withdraws_every_open_assignment() -> None:
    call = create("police", "land")
    call, events = send(call, "cancel", call_id=str(call.id), reason="重复来电")
    assert [e.type for e in events] == ["call.cancelled", "assignment.withdrawn", "assignment.withdrawn"]
    assert call.state == CallState.CANCELLED and call.cancel_reason == "重复来电"
    assert {a.state for a in call.assignments.values()} == {AssignmentState.WITHDRAWN}


def test_withdrawing_the_last_assignment_returns_the_call_to_intake() -> None:
    call = create("police")
    call, events = send(call, "withdraw", assignment_id=str(of(call, "police")), reason="派错")
    assert call.state == CallState.INTAKE == events[-1].call_state


def test_unknown_target_is_a_validation_error() -> None:
    call = create()
    with pytest.raises(ValidationFailed) as err:
        send(call, "dispatch", call_id=str(call.id), targets=["unit:99"])
    assert err.value.field == "targets"


def test_unknown_category_is_a_validation_error() -> None:
    with pytest.raises(ValidationFailed) as err:
        send(None, "create_call", source="grid", category="ufo", title="x")
    assert err.value.field == "category"


def test_dispatching_a_target_twice_is_refused() -> None:
    call = create("police")
    with pytest.raises(ValidationFailed, match="already has an open assignment"):
        send(call, "dispatch", call_id=str(call.id), targets=["police"])


def test_unknown_assignment_is_not_found() -> None:
    call = create("police")
    with pytest.raises(NotFound):
        send(call, "withdraw", assignment_id=str(uuid4()), reason="x")


def test_event_time_never_goes_backwards() -> None:
    call = create("police")
    _, events = send(call, "note", at=T0 - timedelta(minutes=5), call_id=str(call.id), text="时钟回拨")
    assert events[0].at == T0


def test_decide_does_not_mutate_the_call() -> None:
    call = create("police", "land")
    before = copy.deepcopy(call)
    cmd = parse_command("cancel", {"command_id": str(uuid4()), "call_id": str(call.id), "reason": "x"})
    decide(call, cmd, OPERATOR, T0, make_ctx())
    assert call == before


def test_call_round_trips_through_json() -> None:
    call = reported("police")
    data = json.loads(json.dumps(call.to_dict()))
    assert Call.from_dict(data) == call


def test_command_helpers_name_the_call_or_assignment() -> None:
    aid = uuid4()
    cmd = parse_command("note", {"command_id": str(uuid4()), "call_id": str(aid), "text": "x",
                                 "assignment_id": str(aid)})
    assert command_call_id(cmd) == aid and command_assignment_id(cmd) == aid
    ack = parse_command("acknowledge", {"command_id": str(uuid4()), "assignment_id": str(aid)})
    assert command_call_id(ack) is None and command_assignment_id(ack) == aid


def test_parse_command_names_the_first_bad_field() -> None:
    with pytest.raises(ValidationFailed) as err:
        parse_command("create_call", {"command_id": str(uuid4()), "source": "grid", "category": "noise",
                                      "title": "x", "priority": "high"})
    assert err.value.field == "priority"
    assert err.value.message == "priority: must be one of urgent, normal, low"


def test_parse_command_refuses_unknown_fields_and_duplicates() -> None:
    with pytest.raises(ValidationFailed) as err:
        parse_command("dispatch", {"command_id": str(uuid4()), "call_id": str(uuid4()),
                                   "targets": ["police", "police"]})
    assert (err.value.field, err.value.message) == ("targets", "targets: must not contain duplicates")
    with pytest.raises(ValidationFailed) as err:
        parse_command("close", {"command_id": str(uuid4()), "call_id": str(uuid4()), "force": True})
    assert err.value.field == "force"


def test_parse_command_checks_limits() -> None:
    base = {"command_id": str(uuid4()), "call_id": str(uuid4())}
    with pytest.raises(ValidationFailed, match="satisfaction: must be at most 5"):
        parse_command("return_visit", {**base, "resolved": True, "satisfaction": 6})
    with pytest.raises(ValidationFailed, match="text: must be at most 2000 characters"):
        parse_command("note", {**base, "text": "x" * 2001})
    with pytest.raises(ValidationFailed, match="reason: must not be empty"):
        parse_command("cancel", {**base, "reason": "   "})


def test_check_table_refuses_an_unreachable_state() -> None:
    with pytest.raises(TransitionTableError, match="unreachable from a: c"):
        check_table("t", ["a", "b", "c"], ["a"], ["b"], {("a", "go"): "b", ("c", "go"): "b"})


def test_check_table_refuses_a_dead_end() -> None:
    with pytest.raises(TransitionTableError, match="state c is a dead end"):
        check_table("t", ["a", "b", "c"], ["a"], ["b"], {("a", "go"): "b", ("a", "x"): "c",
                                                         ("c", "loop"): "c"})


def test_check_table_refuses_two_initial_states() -> None:
    with pytest.raises(TransitionTableError, match="one initial state"):
        check_table("t", ["a", "b"], ["a", "b"], ["b"], {("a", "go"): "b"})


def test_check_table_refuses_a_way_out_of_a_final_state() -> None:
    with pytest.raises(TransitionTableError, match="final state b has a way out"):
        check_table("t", ["a", "b"], ["a"], ["b"], {("a", "go"): "b", ("b", "back"): "a"})


def test_real_tables_pass_the_check() -> None:
    # accepted is closed but not terminal: a return visit may reopen it (重办)
    check_table("assignment", list(AssignmentState), [AssignmentState.DISPATCHED],
                [AssignmentState.TRANSFERRED, AssignmentState.WITHDRAWN], ASSIGNMENT_TRANSITIONS)


@pytest.mark.parametrize("doc", ["docs/LIFECYCLE.md", "README.md"])
def test_lifecycle_doc_embeds_the_current_diagram(doc: str) -> None:
    text = (ROOT / doc).read_text(encoding="utf-8")
    found = re.search(r"<!-- lifecycle:begin -->\n```mermaid\n(.*?)```\n<!-- lifecycle:end -->", text, re.S)
    assert found is not None, f"{doc} lacks the lifecycle markers"
    assert found.group(1) == mermaid(), (
        f"{doc} is out of date: paste the output of "
        "`python -c 'from dispatch.core.transitions import mermaid; print(mermaid(), end=\"\")'`")
