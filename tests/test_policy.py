"""Who may do and see what: every role × every command × own/other township × own/other department."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any
from uuid import UUID, uuid4

import pytest

from dispatch.core import policy
from dispatch.core.commands import COMMANDS, parse_command
from dispatch.core.domain import SYSTEM_ACTOR, Actor, DeadlineKind, Priority, Role
from dispatch.core.lifecycle import DecideContext, decide, evolve
from dispatch.core.records import Call
from protocols.errors import Forbidden, NotFound

T0 = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)


class FixedSla:
    def within(self, kind: DeadlineKind, priority: Priority, target: str, category: str) -> timedelta:
        return timedelta(minutes=10)


def make_ctx() -> DecideContext:
    numbers = count(1)
    return DecideContext(new_id=uuid4, sla=FixedSla(), known_targets=frozenset({"police", "fire", "land"}),
                         categories=frozenset({"noise"}), township_id=1,
                         next_number=lambda: str(next(numbers)))


OP = Actor(user_id=1, role=Role.OPERATOR, township_id=1)
POLICE = Actor(user_id=2, role=Role.LIAISON, township_id=1, department="police")
FIRE = Actor(user_id=3, role=Role.LIAISON, township_id=1, department="fire")

ACTORS: dict[str, Actor] = {
    "operator_own_township": OP,
    "operator_other_township": Actor(user_id=4, role=Role.OPERATOR, township_id=2),
    "operator_without_township": Actor(user_id=5, role=Role.OPERATOR),
    "liaison_own_department": POLICE,
    "liaison_other_department_on_call": FIRE,
    "liaison_other_department_off_call": Actor(user_id=6, role=Role.LIAISON, township_id=1,
                                               department="land"),
    "liaison_unit_off_call": Actor(user_id=7, role=Role.LIAISON, township_id=1, unit_id=7),
    "liaison_own_department_other_township": Actor(user_id=8, role=Role.LIAISON, township_id=2,
                                                   department="police"),
    "liaison_without_target": Actor(user_id=9, role=Role.LIAISON, township_id=1),
    "supervisor": Actor(user_id=10, role=Role.SUPERVISOR, township_id=1),
    "supervisor_other_township": Actor(user_id=12, role=Role.SUPERVISOR, township_id=2),
    "county_supervisor": Actor(user_id=13, role=Role.SUPERVISOR),
    "admin": Actor(user_id=11, role=Role.ADMIN),
    "system": SYSTEM_ACTOR,
    # intake roles: the matrix's create_call names a department, which only the command centre may do
    "grid_worker": Actor(user_id=14, role=Role.GRID_WORKER, township_id=1),
    "integration": Actor(user_id=15, role=Role.INTEGRATION, township_id=1),
}

# The rule, written independently of dispatch/policy.py.
ALLOWED: dict[str, set[str]] = {
    "operator_own_township": {"create_call", "dispatch", "reroute", "withdraw", "accept", "send_back",
                              "return_visit", "close", "cancel", "note", "reject_transfer", "set_lead", "nudge",
                              "handle_alarm"},
    "liaison_own_department": {"acknowledge", "arrive", "report_result", "decline", "note"},
    "liaison_other_department_on_call": {"note"},
    "system": {"escalate"},
}
# Who may see the scenario's call (township 1, assignments for police and fire), also written
# independently: anyone else gets the 404 a read gets, never a 403 that confirms the call exists.
SEES_THE_CALL = {"operator_own_township", "liaison_own_department", "liaison_other_department_on_call",
                 "supervisor", "county_supervisor", "admin", "system"}


def run(call: Call | None, kind: str, actor: Actor, **args: Any) -> Call:
    cmd = parse_command(kind, {"command_id": str(uuid4()), **args})
    for event in decide(call, cmd, actor, T0, make_ctx()):
        call = evolve(call, event)
    assert call is not None
    return call


def police_of(call: Call) -> UUID:
    return next(a.id for a in call.assignments.values() if a.target == "police")


def fire_of(call: Call) -> UUID:
    return next(a.id for a in call.assignments.values() if a.target == "fire")


def dispatched() -> Call:
    return run(None, "create_call", OP, source="grid", category="noise", title="噪音扰民",
               reporter_name="张三丰", reporter_phone="13812345678", targets=["police", "fire"])


def advanced(*steps: str) -> Call:
    call = dispatched()
    for liaison, aid in ((POLICE, police_of(call)), (FIRE, fire_of(call))):
        for step in steps:
            extra = {"result": "已处理"} if step == "report_result" else {}
            call = run(call, step, liaison, assignment_id=str(aid), **extra)
    return call


def in_review() -> Call:
    return advanced("acknowledge", "arrive", "report_result")


def scenario(kind: str) -> tuple[Call | None, dict[str, Any]]:
    """A call in which ``kind`` is legal, and the command's arguments (acting on police's assignment)."""
    call: Call
    if kind == "create_call":
        return None, {"source": "grid", "category": "noise", "title": "噪音", "targets": ["police"]}
    if kind in ("accept", "send_back"):
        call = in_review()
        extra: dict[str, Any] = {"reason": "补充", "assignment_ids": [str(police_of(call))]}
        return call, {"call_id": str(call.id), **(extra if kind == "send_back" else {})}
    if kind in ("return_visit", "close"):
        call = in_review()
        call = run(call, "accept", OP, call_id=str(call.id))
        extra = {"resolved": True, "satisfaction": 5} if kind == "return_visit" else {}
        return call, {"call_id": str(call.id), **extra}
    if kind == "reject_transfer":
        call = dispatched()
        call = run(call, "decline", POLICE, assignment_id=str(police_of(call)), reason="不归我管")
        return call, {"assignment_id": str(police_of(call)), "reason": "属本部门职责"}
    if kind == "handle_alarm":
        call = dispatched()
        call = run(call, "escalate", SYSTEM_ACTOR, assignment_id=str(police_of(call)), deadline_kind="ack",
                   level=1, deadline=T0.isoformat(), fired_at=T0.isoformat())
        return call, {"assignment_id": str(police_of(call)), "deadline_kind": "ack", "level": 1}
    if kind == "set_lead":
        call = dispatched()
        return call, {"call_id": str(call.id), "assignment_id": str(fire_of(call)), "reason": "以消防为主"}
    call = advanced("acknowledge") if kind == "arrive" else dispatched()
    if kind == "report_result":
        call = advanced("acknowledge", "arrive")
    aid = str(police_of(call))
    by_kind: dict[str, dict[str, Any]] = {
        "dispatch": {"call_id": str(call.id), "targets": ["land"]},
        "acknowledge": {"assignment_id": aid},
        "arrive": {"assignment_id": aid},
        "report_result": {"assignment_id": aid, "result": "已处理"},
        "decline": {"assignment_id": aid, "reason": "不归我管"},
        "reroute": {"assignment_id": aid, "target": "land", "reason": "不属本部门"},
        "withdraw": {"assignment_id": aid, "reason": "派错"},
        "cancel": {"call_id": str(call.id), "reason": "重复"},
        "note": {"call_id": str(call.id), "text": "备注"},
        "nudge": {"assignment_id": aid, "text": "请尽快响应"},
        "handle_alarm": {"assignment_id": aid, "deadline_kind": "ack", "level": 1},
        "escalate": {"assignment_id": aid, "deadline_kind": "ack", "level": 1,
                     "deadline": T0.isoformat(), "fired_at": T0.isoformat()},
    }
    return call, by_kind[kind]


@pytest.mark.parametrize("kind", sorted(COMMANDS))
@pytest.mark.parametrize("who", sorted(ACTORS))
def test_authorization_matrix(who: str, kind: str) -> None:
    call, args = scenario(kind)
    actor = ACTORS[who]
    if kind in ALLOWED.get(who, set()):
        assert run(call, kind, actor, **args) is not None
    elif call is not None and who not in SEES_THE_CALL:
        with pytest.raises(NotFound) as err:
            run(call, kind, actor, **args)
        field = "assignment_id" if "assignment_id" in args else "call_id"
        assert err.value.to_dict() == {"code": "not_found", "message": f"no {field[:-3]} {args[field]}",
                                       "field": field}
    else:
        with pytest.raises(Forbidden):
            run(call, kind, actor, **args)


def test_liaison_cannot_note_on_another_departments_assignment() -> None:
    call = dispatched()
    with pytest.raises(Forbidden, match="not for fire"):
        run(call, "note", FIRE, call_id=str(call.id), text="x", assignment_id=str(police_of(call)))


def test_liaison_cannot_note_once_its_assignment_is_withdrawn() -> None:
    call = dispatched()
    call = run(call, "withdraw", OP, assignment_id=str(police_of(call)), reason="派错")
    assert policy.can_read_call(POLICE, call)  # it may still read what it took part in
    with pytest.raises(Forbidden, match="no open assignment"):
        run(call, "note", POLICE, call_id=str(call.id), text="x")
    assert run(call, "note", FIRE, call_id=str(call.id), text="x") is not None


def test_township_scope_is_one_rule() -> None:
    assert policy.township_scope(ACTORS["supervisor"]) == 1
    assert policy.township_scope(ACTORS["county_supervisor"]) is None
    assert policy.township_scope(OP) == 1
    assert policy.township_scope(SYSTEM_ACTOR) is None


def test_forbidden_message_says_why() -> None:
    call = dispatched()
    with pytest.raises(Forbidden) as err:
        run(call, "close", ACTORS["supervisor"], call_id=str(call.id))
    assert err.value.message == "a supervisor has read-only access to calls and cannot close"
    assert err.value.code == "forbidden"


VISIBILITY: list[tuple[str, int, tuple[str, ...], bool]] = [
    ("operator_own_township", 1, (), True),
    ("operator_other_township", 1, ("police",), False),
    ("liaison_own_department", 1, ("police", "fire"), True),
    ("liaison_own_department", 1, ("fire",), False),
    ("liaison_own_department_other_township", 1, ("police",), False),
    ("liaison_without_target", 1, ("police",), False),
    ("supervisor", 1, (), True),
    ("supervisor", 2, (), False),  # a supervisor added with --township sees that township only
    ("county_supervisor", 2, (), True),
    ("admin", 1, ("police",), True),
]


@pytest.mark.parametrize(("who", "township", "audience", "expected"), VISIBILITY)
def test_visible_to(who: str, township: int, audience: tuple[str, ...], expected: bool) -> None:
    assert policy.visible_to(ACTORS[who], township, audience) is expected


def test_liaison_reads_only_calls_its_target_has_a_part_in() -> None:
    call = dispatched()
    assert policy.can_read_call(POLICE, call)
    assert not policy.can_read_call(ACTORS["liaison_other_department_off_call"], call)
    assert policy.can_read_call(ACTORS["supervisor"], call)
    assert not policy.can_read_call(ACTORS["operator_other_township"], call)


@pytest.mark.parametrize(("raw", "masked"), [("13812345678", "138****5678"), ("0537-7212345", "****2345"),
                                             ("62345678", "****5678"), ("+86 138 1234 5678", "****5678"),
                                             ("110", "***"), ("", "")])
def test_mask_phone(raw: str, masked: str) -> None:
    assert policy.mask_phone(raw) == masked


@pytest.mark.parametrize(("raw", "masked"), [("张三丰", "张**"), ("李四", "李*"), ("王", "*"), ("", "")])
def test_mask_name(raw: str, masked: str) -> None:
    assert policy.mask_name(raw) == masked


def dispatched_body() -> dict[str, Any]:
    call = dispatched()
    args = {"command_id": str(uuid4()), "call_id": str(call.id), "targets": ["land"]}
    cmd = parse_command("dispatch", args)
    (event,) = decide(call, cmd, OP, T0, make_ctx())
    return event.body


REDACTORS: dict[str, Callable[[], dict[str, Any]]] = {
    "event body": dispatched_body,
    "call dict": lambda: dispatched().to_dict(),
}


@pytest.mark.parametrize("source", sorted(REDACTORS))
def test_redact_masks_the_reporter_for_a_liaison(source: str) -> None:
    data = REDACTORS[source]()
    out = policy.redact(data, POLICE, 1)
    snapshot = out.get("call", out)
    assert (snapshot["reporter_name"], snapshot["reporter_phone"]) == ("张**", "138****5678")
    assert (data.get("call", data))["reporter_phone"] == "13812345678"  # the input is untouched


def test_redact_keeps_the_reporter_for_the_townships_operator() -> None:
    data = dispatched().to_dict()
    assert policy.redact(data, OP, 1)["reporter_phone"] == "13812345678"
    assert policy.redact(data, ACTORS["operator_other_township"], 1)["reporter_phone"] == "138****5678"
    assert policy.redact(data, ACTORS["supervisor"], 1)["reporter_name"] == "张**"


def test_redact_reaches_nested_lists() -> None:
    data = {"calls": [{"reporter_phone": "13812345678", "reporter_name": None}]}
    assert policy.redact(data, POLICE, 1) == {"calls": [{"reporter_phone": "138****5678",
                                                         "reporter_name": None}]}


SUPERVISOR = Actor(user_id=4, role=Role.SUPERVISOR)
TOWN_SUPERVISOR = Actor(user_id=5, role=Role.SUPERVISOR, township_id=1)


def test_township_read_defaults_to_the_accounts_township_and_hides_others() -> None:
    assert policy.township_read(OP, None, policy.DUTY_ROLES, "the duty roster") == 1
    assert policy.township_read(OP, 1, policy.DUTY_ROLES, "the duty roster") == 1
    with pytest.raises(NotFound) as err:
        policy.township_read(OP, 2, policy.DUTY_ROLES, "the duty roster")
    assert err.value.field == "township_id"
    assert policy.township_read(SUPERVISOR, None, policy.DUTY_ROLES, "the duty roster") is None  # the county
    assert policy.township_read(SUPERVISOR, 2, policy.DUTY_ROLES, "the duty roster") == 2
    with pytest.raises(NotFound):
        policy.township_read(TOWN_SUPERVISOR, 2, policy.DUTY_ROLES, "the duty roster")
    for actor in (POLICE, Actor(user_id=6, role=Role.ADMIN), Actor(user_id=7, role=Role.LEADER, township_id=1)):
        with pytest.raises(Forbidden):
            policy.township_read(actor, 1, policy.DUTY_ROLES, "the duty roster")
    assert policy.township_read(Actor(user_id=6, role=Role.ADMIN), None, policy.NOTIFY_STATUS_ROLES,
                                "the notification status") is None


def test_liaisons_phones_are_for_the_townships_operators_only() -> None:
    assert policy.sees_liaison_phones(OP, 1)
    assert not policy.sees_liaison_phones(OP, 2)
    for actor in (SUPERVISOR, TOWN_SUPERVISOR, POLICE, Actor(user_id=6, role=Role.ADMIN)):
        assert not policy.sees_liaison_phones(actor, 1)


@pytest.mark.parametrize("role", [Role.GRID_WORKER, Role.INTEGRATION])
def test_intake_roles_report_into_their_own_township_only(role: Role) -> None:
    actor = Actor(user_id=20, role=role, township_id=1)
    call = run(None, "create_call", actor, source="grid", category="noise", title="占道经营")
    assert call.state.value == "intake" and not call.assignments
    policy.authorize(actor, parse_command("create_call", {"command_id": str(uuid4()), "source": "grid",
                                                          "category": "noise", "title": "x"}), None, None,
                     township_id=1)
    with pytest.raises(Forbidden, match="another township"):
        policy.authorize(actor, parse_command("create_call", {"command_id": str(uuid4()), "source": "grid",
                                                              "category": "noise", "title": "x"}), None, None,
                         township_id=2)
    assert not policy.can_read_call(actor, call)  # they follow their reports through their own reads


def _sees(key: policy.ListenKey | None, township: int, audience: tuple[str, ...]) -> bool:
    """What the fan-out's index delivers to a subscriber listening on ``key``."""
    return key is not None and key[0] in (None, township) and (key[1] is None or key[1] in audience)


@pytest.mark.parametrize("role", list(Role))
def test_listen_key_is_visible_to_for_every_role(role: Role) -> None:
    """The fan-out indexes subscribers by ``listen_key``: an index that missed (or over-delivered to) anyone
    ``visible_to`` decides about would lose (or leak) live events. Every kind of account of each role, every
    township and audience shape."""
    audiences: list[tuple[str, ...]] = [(), ("police",), ("fire",), ("police", "fire"), ("unit:7",),
                                        ("fire", "unit:7"), ("police", "police"), ("",)]
    for township_id in (None, 1, 2):
        for department, unit_id in ((None, None), ("police", None), (None, 7), ("", None)):
            actor = Actor(user_id=9, role=role, township_id=township_id, department=department, unit_id=unit_id)
            key = policy.listen_key(actor)
            for township in (1, 2, 3):
                for audience in audiences:
                    assert _sees(key, township, audience) == policy.visible_to(actor, township, audience), (
                        actor, key, township, audience)
