"""The call and assignment state machines 问派转办审回 as data: states, transition tables, the shape check
run at import (no unreachable state, no dead end), and the mermaid diagram drawn from the same tables."""

from __future__ import annotations

from collections.abc import Collection, Hashable, Mapping
from enum import StrEnum
from typing import Any, TypeVar

from dispatch.core.domain import DeadlineKind
from protocols.errors import InternalError


class CallState(StrEnum):
    INTAKE = "intake"  # 问
    DISPATCHED = "dispatched"  # 派
    IN_PROGRESS = "in_progress"  # 办
    REVIEW = "review"  # 审
    ACCEPTED = "accepted"
    VISITED = "visited"  # 回
    CLOSED = "closed"
    CANCELLED = "cancelled"


class AssignmentState(StrEnum):
    DISPATCHED = "dispatched"
    ACKNOWLEDGED = "acknowledged"  # 响应
    ON_SCENE = "on_scene"  # 报到
    REPORTED = "reported"  # 办结
    ACCEPTED = "accepted"
    DECLINED = "declined"  # 转: waiting for the operator to approve (reroute) or reject
    TRANSFERRED = "transferred"
    WITHDRAWN = "withdrawn"


C, A = CallState, AssignmentState

# Triggers the call table derives from its assignments (not commands anyone sends).
NO_OPEN_ASSIGNMENT = "no_open_assignment"  # every assignment withdrawn/transferred → back to 问
AWAITING_ACK = "awaiting_acknowledgement"  # open assignments, none acknowledged yet
WORKING = "working"  # at least one acknowledged, on scene or reported, not all reported
ALL_REPORTED = "all_reported"  # every open assignment reported → 审
# An escalation rung that fell due before the department stopped its clock, written after it stopped
# (the hub could not write it in time): recorded once, for the evaluation, without changing the state.
RECORD_MISSED = "record_missed"

# A rejected transfer request (驳回) resumes the state the assignment was declined from: one trigger per
# destination, so the table still names every move.
REJECT_TRANSFER_TO: dict[AssignmentState, str] = {
    A.DISPATCHED: "reject_transfer",
    A.ACKNOWLEDGED: "reject_transfer_acknowledged",
}

ASSIGNMENT_INITIAL = A.DISPATCHED
ASSIGNMENT_TERMINAL_STATES = (A.TRANSFERRED, A.WITHDRAWN)
# Closed: no longer open work (the call's state ignores them). Accepted work is closed but not terminal:
# an unresolved or unsatisfied return visit reopens it (重办).
ASSIGNMENT_FINAL = frozenset({A.ACCEPTED, A.TRANSFERRED, A.WITHDRAWN})
ASSIGNMENT_TERMINAL = frozenset({A.TRANSFERRED, A.WITHDRAWN})
ASSIGNMENT_TRANSITIONS: dict[tuple[AssignmentState, str], AssignmentState] = {
    (A.DISPATCHED, "acknowledge"): A.ACKNOWLEDGED,
    (A.ACKNOWLEDGED, "arrive"): A.ON_SCENE,
    (A.ON_SCENE, "report_result"): A.REPORTED,
    (A.DISPATCHED, "decline"): A.DECLINED,
    (A.ACKNOWLEDGED, "decline"): A.DECLINED,
    (A.DISPATCHED, "reroute"): A.TRANSFERRED,
    (A.DECLINED, "reroute"): A.TRANSFERRED,
    (A.REPORTED, "accept"): A.ACCEPTED,
    (A.REPORTED, "send_back"): A.ON_SCENE,
    (A.ACCEPTED, "reopen"): A.ON_SCENE,
    **{(A.DECLINED, trigger): state for state, trigger in REJECT_TRANSFER_TO.items()},
    **{(s, "withdraw"): A.WITHDRAWN for s in (A.DISPATCHED, A.ACKNOWLEDGED, A.ON_SCENE, A.DECLINED)},
    **{(s, "cancel"): A.WITHDRAWN
       for s in (A.DISPATCHED, A.ACKNOWLEDGED, A.ON_SCENE, A.REPORTED, A.DECLINED)},
    **{(s, "escalate"): s for s in (A.DISPATCHED, A.ACKNOWLEDGED, A.ON_SCENE, A.DECLINED)},
    **{(s, "nudge"): s for s in (A.DISPATCHED, A.ACKNOWLEDGED, A.ON_SCENE)},
    # an operator takes an escalation alarm (any state: the alarm may outlive the clock by a moment)
    **{(s, "handle_alarm"): s for s in A if s not in ASSIGNMENT_TERMINAL_STATES},
    **{(s, RECORD_MISSED): s for s in (A.ACKNOWLEDGED, A.ON_SCENE, A.REPORTED, A.DECLINED)},
}

CALL_INITIAL = C.INTAKE
CALL_FINAL = frozenset({C.CLOSED, C.CANCELLED})
OPEN_CALL_STATES = frozenset({C.INTAKE, C.DISPATCHED, C.IN_PROGRESS, C.REVIEW})
CALL_TRANSITIONS: dict[tuple[CallState, str], CallState] = {
    (C.INTAKE, "dispatch"): C.DISPATCHED,
    (C.DISPATCHED, "dispatch"): C.DISPATCHED,
    (C.IN_PROGRESS, "dispatch"): C.IN_PROGRESS,
    (C.REVIEW, "dispatch"): C.IN_PROGRESS,
    (C.INTAKE, AWAITING_ACK): C.DISPATCHED,
    (C.DISPATCHED, WORKING): C.IN_PROGRESS,
    (C.DISPATCHED, NO_OPEN_ASSIGNMENT): C.INTAKE,
    (C.IN_PROGRESS, AWAITING_ACK): C.DISPATCHED,
    (C.IN_PROGRESS, ALL_REPORTED): C.REVIEW,
    (C.IN_PROGRESS, NO_OPEN_ASSIGNMENT): C.INTAKE,
    (C.REVIEW, WORKING): C.IN_PROGRESS,
    (C.REVIEW, "accept"): C.ACCEPTED,
    (C.REVIEW, "send_back"): C.IN_PROGRESS,
    (C.ACCEPTED, "return_visit"): C.VISITED,
    (C.ACCEPTED, "close"): C.CLOSED,
    (C.VISITED, "close"): C.CLOSED,
    (C.VISITED, "reopen"): C.IN_PROGRESS,  # an unresolved or unsatisfied return visit: 重办
    **{(s, "set_lead"): s for s in (C.DISPATCHED, C.IN_PROGRESS, C.REVIEW, C.ACCEPTED, C.VISITED)},
    **{(s, "cancel"): C.CANCELLED for s in C if s not in CALL_FINAL},
    **{(s, "note"): s for s in C if s not in CALL_FINAL},
}

DERIVED_TRIGGERS: dict[CallState, str] = {
    C.INTAKE: NO_OPEN_ASSIGNMENT,
    C.DISPATCHED: AWAITING_ACK,
    C.IN_PROGRESS: WORKING,
    C.REVIEW: ALL_REPORTED,
}

# The assignment states in which each deadline kind is still running (escalation allowed).
WAITING_FOR: dict[DeadlineKind, frozenset[AssignmentState]] = {
    DeadlineKind.ACK: frozenset({A.DISPATCHED}),
    DeadlineKind.ARRIVE: frozenset({A.DISPATCHED, A.ACKNOWLEDGED}),
    DeadlineKind.RESOLVE: frozenset({A.DISPATCHED, A.ACKNOWLEDGED, A.ON_SCENE}),
    DeadlineKind.REVIEW: frozenset({A.DECLINED}),  # the operator's clock on a transfer request
}
# The assignment field holding the moment each deadline kind's clock stopped (responded, arrived, reported).
# ``review`` (the operator's clock) has none: a review rung the hub could not write before the operator
# decided is not recorded late.
CLOCK_STOPPED_BY: dict[DeadlineKind, str] = {
    DeadlineKind.ACK: "acknowledged_at",
    DeadlineKind.ARRIVE: "on_scene_at",
    DeadlineKind.RESOLVE: "reported_at",
}

S = TypeVar("S", bound=Hashable)


class TransitionTableError(InternalError):
    """A transition table that breaks the machine's shape (found at import, never at run time)."""


def check_table(
    name: str,
    states: Collection[S],
    initial: Collection[S],
    final: Collection[S],
    transitions: Mapping[tuple[S, str], S],
) -> None:
    """Refuse a table without exactly one initial state, with unreachable states or dead ends."""
    if len(initial) != 1:
        raise TransitionTableError(f"{name}: expected one initial state, got {len(initial)}")
    (start,) = initial
    for (src, trigger), dst in transitions.items():
        if src not in states or dst not in states:
            raise TransitionTableError(f"{name}: {src} --{trigger}--> {dst} names an unknown state")
    if start not in states or start in final:
        raise TransitionTableError(f"{name}: initial state {start} must be a non-final state")
    for src, trigger in transitions:
        if src in final:
            raise TransitionTableError(f"{name}: final state {src} has a way out ({trigger})")
    for state in states:
        if state not in final and not any(s == state and d != state for (s, _), d in transitions.items()):
            raise TransitionTableError(f"{name}: state {state} is a dead end")
    reached, frontier = {start}, [start]
    while frontier:
        here = frontier.pop()
        for (src, _), dst in transitions.items():
            if src == here and dst not in reached:
                reached.add(dst)
                frontier.append(dst)
    unreachable = [str(s) for s in states if s not in reached]
    if unreachable:
        raise TransitionTableError(f"{name}: unreachable from {start}: {', '.join(unreachable)}")


check_table("assignment", list(A), [ASSIGNMENT_INITIAL], ASSIGNMENT_TERMINAL, ASSIGNMENT_TRANSITIONS)
check_table("call", list(C), [CALL_INITIAL], CALL_FINAL, CALL_TRANSITIONS)

# ----------------------------------------------------------------------------------------- diagram


def _diagram_lines(prefix: str, title: str, initial: StrEnum, final: Collection[StrEnum],
                   table: Mapping[tuple[Any, str], Any], states: Collection[StrEnum]) -> list[str]:
    lines = [f'    state "{title}" as {prefix} {{']
    for s in states:
        lines.append(f'        state "{s.value}" as {prefix}_{s.value}')
    lines.append(f"        [*] --> {prefix}_{initial.value}")
    edges: dict[tuple[str, str], list[str]] = {}
    for (src, trigger), dst in table.items():
        edges.setdefault((src.value, dst.value), []).append(trigger)
    for (src, dst), triggers in edges.items():
        lines.append(f"        {prefix}_{src} --> {prefix}_{dst} : {', '.join(triggers)}")
    for s in states:
        if s in final:
            lines.append(f"        {prefix}_{s.value} --> [*]")
    lines.append("    }")
    return lines


def mermaid() -> str:
    """Both transition tables as one mermaid ``stateDiagram-v2`` (embedded in docs/LIFECYCLE.md)."""
    lines = ["stateDiagram-v2"]
    lines += _diagram_lines("call", "Call 呼叫", CALL_INITIAL, CALL_FINAL, CALL_TRANSITIONS, list(C))
    lines += _diagram_lines("asg", "Assignment 派单", ASSIGNMENT_INITIAL, ASSIGNMENT_TERMINAL,
                            ASSIGNMENT_TRANSITIONS, list(A))
    return "\n".join(lines) + "\n"
