"""Random command sequences against the pure machine: rejections change nothing, events tell the truth."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any
from uuid import UUID, uuid4

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from dispatch.core.commands import COMMANDS
from dispatch.core.domain import SYSTEM_ACTOR, Actor, DeadlineKind, Priority, Role
from dispatch.core.lifecycle import DecideContext, decide_and_fold, derived_state, evolve
from dispatch.core.records import Call, Event
from dispatch.core.transitions import ASSIGNMENT_FINAL, CALL_FINAL, OPEN_CALL_STATES
from protocols.errors import ClientError

T0 = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
TARGETS = ("police", "fire", "land", "unit:3")
# Progress commands are drawn more often, so sequences get past 派 into 办审回 before a cancel.
KINDS = [*sorted(COMMANDS), *["acknowledge", "arrive", "report_result"] * 5,
         *["accept", "send_back", "return_visit", "close"] * 2]


class FixedSla:
    def within(self, kind: DeadlineKind, priority: Priority, target: str, category: str) -> timedelta:
        return {"ack": timedelta(minutes=5), "arrive": timedelta(minutes=30)}.get(kind, timedelta(hours=2))


def liaison(target: str) -> Actor:
    if target.startswith("unit:"):
        return Actor(user_id=2, role=Role.LIAISON, township_id=1, unit_id=int(target[5:]))
    return Actor(user_id=2, role=Role.LIAISON, township_id=1, department=target)


OPERATOR = Actor(user_id=1, role=Role.OPERATOR, township_id=1)
ACTORS = (OPERATOR, SYSTEM_ACTOR, Actor(user_id=3, role=Role.SUPERVISOR),
          *(liaison(t) for t in TARGETS))


def args_for(kind: str, call: Call | None, data: st.DataObject, now: datetime) -> dict[str, Any]:
    """Mostly plausible arguments for ``kind``; sometimes wrong ones, which must be refused cleanly."""
    ids: list[UUID] = list(call.assignments) if call is not None else []
    open_ids = [i for i in ids if call is not None and call.assignments[i].state not in ASSIGNMENT_FINAL]
    if open_ids and bool(data.draw(st.booleans())):
        ids = open_ids
    aid = str(data.draw(st.sampled_from([*ids, uuid4()]) if ids else st.just(uuid4())))
    call_id = str(call.id) if call is not None else str(uuid4())
    target = data.draw(st.sampled_from([*TARGETS, "transport"]))
    targets = data.draw(st.lists(st.sampled_from(TARGETS), unique=True, max_size=3))
    reason = {"reason": "理由"}
    deadline = now - timedelta(minutes=data.draw(st.integers(0, 90)))
    table: dict[str, dict[str, Any]] = {
        "create_call": {"source": "grid", "category": "noise", "title": "噪音", "targets": targets},
        "dispatch": {"call_id": call_id, "targets": targets or [target]},
        "acknowledge": {"assignment_id": aid},
        "arrive": {"assignment_id": aid},
        "report_result": {"assignment_id": aid, "result": "已处理"},
        "decline": {"assignment_id": aid, **reason, "suggested_target": target},
        "reroute": {"assignment_id": aid, "target": target, "reason": "不属本部门"},
        "withdraw": {"assignment_id": aid, **reason},
        "accept": {"call_id": call_id},
        "send_back": {"call_id": call_id, **reason,
                      "assignment_ids": data.draw(st.lists(st.sampled_from([*ids, uuid4()]), min_size=1,
                                                           max_size=2, unique=True)) if ids else [uuid4()]},
        "return_visit": data.draw(st.sampled_from([
            {"call_id": call_id, "resolved": data.draw(st.booleans()), "satisfaction": 4},
            {"call_id": call_id, "ratings": [{"assignment_id": i, "resolved": data.draw(st.booleans()),
                                              "satisfaction": data.draw(st.integers(1, 5))} for i in ids[:2]]
             or [{"target": target, "resolved": True, "satisfaction": 5}]},
            {"call_id": call_id, "resolved": False, "satisfaction": 1, "reopen": []},
        ])),
        "close": data.draw(st.sampled_from([{"call_id": call_id}, {"call_id": call_id, **reason}])),
        "reject_transfer": {"assignment_id": aid, **reason},
        "set_lead": {"call_id": call_id, "assignment_id": aid},
        "cancel": {"call_id": call_id, **reason},
        "note": {"call_id": call_id, "text": "备注"},
        "nudge": {"assignment_id": aid, "text": "请尽快响应"},
        "handle_alarm": {"assignment_id": aid, "deadline_kind": "ack", "level": data.draw(st.integers(1, 2))},
        "escalate": {"assignment_id": aid, "deadline_kind": data.draw(st.sampled_from(list(DeadlineKind))),
                     "level": data.draw(st.integers(1, 3)), "deadline": deadline, "fired_at": now},
    }
    return table[kind]


def liaison_for(call: Call | None, args: dict[str, Any], data: st.DataObject) -> Actor:
    """Usually the liaison the named assignment belongs to, so liaison steps get exercised."""
    aid = args.get("assignment_id")
    if call is not None and aid is not None and UUID(str(aid)) in call.assignments:
        return liaison(call.assignments[UUID(str(aid))].target)
    return data.draw(st.sampled_from(ACTORS))


class CallMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        numbers = count(1)
        self.ctx = DecideContext(new_id=uuid4, sla=FixedSla(), known_targets=frozenset(TARGETS),
                                 categories=frozenset({"noise"}), township_id=1,
                                 next_number=lambda: str(next(numbers)))
        self.call: Call | None = None
        self.now = T0
        self.last_at: datetime | None = None

    @rule(data=st.data(), step=st.integers(-120, 600))
    def send(self, data: st.DataObject, step: int) -> None:
        self.now += timedelta(seconds=step)  # the clock may even step back
        preferred = "create_call" if self.call is None else None
        kind = preferred or data.draw(st.sampled_from(KINDS))
        args = args_for(kind, self.call, data, self.now)
        if kind == "escalate":
            actor = SYSTEM_ACTOR
        elif kind in ("acknowledge", "arrive", "report_result", "decline") or data.draw(st.booleans()):
            actor = liaison_for(self.call, args, data)
        else:
            actor = OPERATOR
        self.attempt(kind, args, actor)

    @rule(data=st.data())
    def advance(self, data: st.DataObject) -> None:
        """The natural next step of the call, so sequences reach 审 and 回 often."""
        call = self.call
        if call is None or call.state in CALL_FINAL:
            return
        natural = {"dispatched": "acknowledge", "acknowledged": "arrive", "on_scene": "report_result"}
        steps = [(natural[a.state.value], a) for a in call.assignments.values() if a.state.value in natural]
        if call.state.value == "review":
            kind = data.draw(st.sampled_from(["accept", "accept", "send_back"]))
        elif call.state.value in ("accepted", "visited"):
            kind = data.draw(st.sampled_from(["return_visit", "close"]))
        elif steps:
            kind, a = data.draw(st.sampled_from(steps))
            self.attempt(kind, args_for(kind, call, data, self.now) | {"assignment_id": str(a.id)},
                         liaison(a.target))
            return
        else:
            kind = "dispatch"
        self.attempt(kind, args_for(kind, call, data, self.now), OPERATOR)

    def attempt(self, kind: str, args: dict[str, Any], actor: Actor) -> None:
        cmd = COMMANDS[kind].model_validate({"command_id": uuid4(), "kind": kind, **args})
        before = copy.deepcopy(self.call)
        was_final = self.call is not None and self.call.state in CALL_FINAL
        try:
            events, steps = decide_and_fold(self.call, cmd, actor, self.now, self.ctx)  # type: ignore[arg-type]
        except ClientError:
            assert self.call == before, "a rejected command changed the call"
            return
        assert self.call == before, "decide mutated its input"
        assert not was_final, f"a {self.call.state if self.call else None} call accepted {kind}"
        assert events, f"{kind} was accepted but produced no event"
        self.fold(events, steps)

    def fold(self, events: list[Event], steps: list[Call]) -> None:
        """Fold ``events``; ``steps`` (``decide_and_fold``'s calls after each, which the writer keeps instead of
        folding) must be exactly what ``evolve`` makes of them."""
        assert len(steps) == len(events)
        call = self.call
        for event, step in zip(events, steps, strict=True):
            if self.last_at is not None:
                assert event.at >= self.last_at, "event time went backwards"
            self.last_at = event.at
            json.dumps(event.to_dict())
            call = evolve(call, event)
            assert call == step, "decide_and_fold's call after an event is not evolve's"
            assert call.state == event.call_state
            if event.assignment_id is not None:
                assert call.assignments[event.assignment_id].state == event.assignment_state
                assert event.audience == (call.assignments[event.assignment_id].target,)
        assert call is not None
        for event in events:
            if event.assignment_id is None:
                assert event.audience == call.targets()
        self.call = call

    @invariant()
    def call_state_follows_its_assignments(self) -> None:
        call = self.call
        if call is not None and call.state in OPEN_CALL_STATES:
            assert call.state == derived_state(call.state, call.assignments)

    @invariant()
    def final_call_has_no_open_assignment(self) -> None:
        call = self.call
        if call is not None and call.state in CALL_FINAL:
            assert all(a.state in ASSIGNMENT_FINAL for a in call.assignments.values())

    @invariant()
    def projection_round_trips(self) -> None:
        if self.call is not None:
            assert Call.from_dict(json.loads(json.dumps(self.call.to_dict()))) == self.call


CallMachine.TestCase.settings = settings(max_examples=200, stateful_step_count=40, deadline=None, database=None,
                                         suppress_health_check=[HealthCheck.too_slow])
TestCallMachine = CallMachine.TestCase
