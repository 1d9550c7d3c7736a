"""The call/assignment state machine 问派转办审回: transition tables as data, ``decide`` and ``evolve``.

Sans-I/O: commands in, events out. The store loads a call, calls ``decide``, folds the events with
``evolve`` and writes both in one transaction. See docs/LIFECYCLE.md for the rules in prose.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Hashable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol, TypeVar
from uuid import UUID

from dispatch import policy
from dispatch.commands import (
    Accept,
    Acknowledge,
    Arrive,
    Cancel,
    Close,
    Command,
    CreateCall,
    Decline,
    Dispatch,
    Escalate,
    Note,
    ReportResult,
    Reroute,
    ReturnVisit,
    SendBack,
    Withdraw,
    command_assignment_id,
)
from dispatch.domain import Actor, DeadlineKind, Priority, Source
from protocols.errors import Conflict, IllegalTransition, InternalError, NotFound, ValidationFailed


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
    DECLINED = "declined"  # 转: waiting for the operator to reroute
    TRANSFERRED = "transferred"
    WITHDRAWN = "withdrawn"


C, A = CallState, AssignmentState

# Triggers the call table derives from its assignments (not commands anyone sends).
NO_OPEN_ASSIGNMENT = "no_open_assignment"  # every assignment withdrawn/transferred → back to 问
AWAITING_ACK = "awaiting_acknowledgement"  # open assignments, none acknowledged yet
WORKING = "working"  # at least one acknowledged, on scene or reported, not all reported
ALL_REPORTED = "all_reported"  # every open assignment reported → 审

ASSIGNMENT_INITIAL = A.DISPATCHED
ASSIGNMENT_FINAL = frozenset({A.ACCEPTED, A.TRANSFERRED, A.WITHDRAWN})
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
    **{(s, "withdraw"): A.WITHDRAWN for s in (A.DISPATCHED, A.ACKNOWLEDGED, A.ON_SCENE, A.DECLINED)},
    **{(s, "cancel"): A.WITHDRAWN
       for s in (A.DISPATCHED, A.ACKNOWLEDGED, A.ON_SCENE, A.REPORTED, A.DECLINED)},
    **{(s, "escalate"): s for s in (A.DISPATCHED, A.ACKNOWLEDGED, A.ON_SCENE)},
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


check_table("assignment", list(A), [ASSIGNMENT_INITIAL], ASSIGNMENT_FINAL, ASSIGNMENT_TRANSITIONS)
check_table("call", list(C), [CALL_INITIAL], CALL_FINAL, CALL_TRANSITIONS)


# ---------------------------------------------------------------------------------------- records


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _dt(value: Any) -> datetime | None:
    return None if value is None else datetime.fromisoformat(str(value))


def _uuid(value: Any) -> UUID | None:
    return None if value is None else UUID(str(value))


def _fresh_levels() -> dict[str, int]:
    return {kind.value: 0 for kind in DeadlineKind}


@dataclass(frozen=True)
class Assignment:
    """One department's (or unit's) part in a call."""

    id: UUID
    call_id: UUID
    target: str
    state: AssignmentState
    dispatched_at: datetime
    ack_due: datetime
    arrive_due: datetime
    resolve_due: datetime
    updated_at: datetime
    acknowledged_at: datetime | None = None
    on_scene_at: datetime | None = None
    reported_at: datetime | None = None
    accepted_at: datetime | None = None
    closed_at: datetime | None = None  # transferred or withdrawn
    levels: dict[str, int] = field(default_factory=_fresh_levels)
    decline_reason: str | None = None
    suggested_target: str | None = None
    result: str | None = None
    transferred_from: UUID | None = None

    _TIMES = ("dispatched_at", "ack_due", "arrive_due", "resolve_due", "updated_at", "acknowledged_at",
              "on_scene_at", "reported_at", "accepted_at", "closed_at")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": str(self.id), "call_id": str(self.call_id), "target": self.target,
            "state": self.state.value, "levels": dict(self.levels),
            "decline_reason": self.decline_reason, "suggested_target": self.suggested_target,
            "result": self.result,
            "transferred_from": None if self.transferred_from is None else str(self.transferred_from),
        }
        for name in self._TIMES:
            out[name] = _iso(getattr(self, name))
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Assignment:
        times = {name: _dt(data.get(name)) for name in cls._TIMES}
        return cls(
            id=UUID(str(data["id"])), call_id=UUID(str(data["call_id"])), target=str(data["target"]),
            state=A(data["state"]), levels={**_fresh_levels(), **dict(data.get("levels") or {})},
            decline_reason=data.get("decline_reason"), suggested_target=data.get("suggested_target"),
            result=data.get("result"), transferred_from=_uuid(data.get("transferred_from")),
            **times,  # type: ignore[arg-type]
        )


@dataclass(frozen=True)
class Call:
    """A matter reported to a township's command centre, with its assignments."""

    id: UUID
    township_id: int
    number: str
    state: CallState
    source: Source
    category: str
    title: str
    description: str
    address: str
    priority: Priority
    created_at: datetime
    updated_at: datetime
    lat: float | None = None
    lon: float | None = None
    grid_id: int | None = None
    reporter_name: str | None = None
    reporter_phone: str | None = None
    closed_at: datetime | None = None
    resolved: bool | None = None
    satisfaction: int | None = None
    visit_comment: str | None = None
    cancel_reason: str | None = None
    assignments: dict[UUID, Assignment] = field(default_factory=dict)

    def snapshot(self) -> dict[str, Any]:
        """What a department needs to act on the call (sent with every dispatch)."""
        return {
            "number": self.number, "category": self.category, "title": self.title,
            "description": self.description, "address": self.address, "lat": self.lat, "lon": self.lon,
            "priority": self.priority.value, "source": self.source.value,
            "reporter_name": self.reporter_name, "reporter_phone": self.reporter_phone,
        }

    def targets(self) -> tuple[str, ...]:
        """Every target that has or had an assignment on this call, sorted."""
        return tuple(sorted({a.target for a in self.assignments.values()}))

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.snapshot(), "id": str(self.id), "township_id": self.township_id,
            "state": self.state.value, "grid_id": self.grid_id,
            "created_at": _iso(self.created_at), "updated_at": _iso(self.updated_at),
            "closed_at": _iso(self.closed_at), "resolved": self.resolved,
            "satisfaction": self.satisfaction, "visit_comment": self.visit_comment,
            "cancel_reason": self.cancel_reason,
            "assignments": [a.to_dict() for a in self.assignments.values()],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Call:
        assignments = [Assignment.from_dict(a) for a in data.get("assignments") or ()]
        created, updated = _dt(data["created_at"]), _dt(data["updated_at"])
        assert created is not None and updated is not None
        return cls(
            id=UUID(str(data["id"])), township_id=int(data["township_id"]), number=str(data["number"]),
            state=C(data["state"]), source=Source(data["source"]), category=str(data["category"]),
            title=str(data["title"]), description=str(data.get("description") or ""),
            address=str(data.get("address") or ""), priority=Priority(data["priority"]),
            created_at=created, updated_at=updated, lat=data.get("lat"), lon=data.get("lon"),
            grid_id=data.get("grid_id"), reporter_name=data.get("reporter_name"),
            reporter_phone=data.get("reporter_phone"), closed_at=_dt(data.get("closed_at")),
            resolved=data.get("resolved"), satisfaction=data.get("satisfaction"),
            visit_comment=data.get("visit_comment"), cancel_reason=data.get("cancel_reason"),
            assignments={a.id: a for a in assignments},
        )


EVENT_TYPES = (
    "call.created", "call.accepted", "call.sent_back", "call.visited", "call.closed", "call.cancelled",
    "call.noted", "assignment.dispatched", "assignment.acknowledged", "assignment.arrived",
    "assignment.reported", "assignment.declined", "assignment.transferred", "assignment.withdrawn",
    "assignment.accepted", "assignment.reopened", "assignment.escalated",
)


@dataclass(frozen=True)
class Event:
    """One fact about a call; ``call_state``/``assignment_state`` are the states after it."""

    type: str
    call_id: UUID
    assignment_id: UUID | None
    at: datetime
    body: dict[str, Any]
    audience: tuple[str, ...]
    call_state: CallState
    assignment_state: AssignmentState | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.type, "call_id": str(self.call_id),
            "assignment_id": None if self.assignment_id is None else str(self.assignment_id),
            "at": self.at.isoformat(), "body": self.body, "audience": list(self.audience),
            "call_state": self.call_state.value,
            "assignment_state": None if self.assignment_state is None else self.assignment_state.value,
        }


class SlaLookup(Protocol):
    def within(self, kind: DeadlineKind, priority: Priority, target: str, category: str) -> timedelta: ...


@dataclass(frozen=True)
class DecideContext:
    """What ``decide`` needs from outside: ids, call numbers, SLA policy and the township's vocabulary."""

    new_id: Callable[[], UUID]
    sla: SlaLookup
    known_targets: frozenset[str]
    categories: frozenset[str]
    township_id: int
    next_number: Callable[[], str]


# ------------------------------------------------------------------------------------------ evolve


def derived_state(state: CallState, assignments: Mapping[UUID, Assignment]) -> CallState:
    """The call state implied by its assignments while the call is open (问派办审)."""
    if state not in OPEN_CALL_STATES:
        return state
    open_states = [a.state for a in assignments.values() if a.state not in ASSIGNMENT_FINAL]
    if not open_states:
        return C.INTAKE
    if all(s == A.REPORTED for s in open_states):
        return C.REVIEW
    if any(s in (A.ACKNOWLEDGED, A.ON_SCENE, A.REPORTED) for s in open_states):
        return C.IN_PROGRESS
    return C.DISPATCHED


_CALL_EVENT_TRIGGER = {
    "call.accepted": "accept", "call.sent_back": "send_back", "call.visited": "return_visit",
    "call.closed": "close", "call.cancelled": "cancel", "call.noted": "note",
}
_ASSIGNMENT_EVENT_STATE = {
    "assignment.acknowledged": A.ACKNOWLEDGED, "assignment.arrived": A.ON_SCENE,
    "assignment.reported": A.REPORTED, "assignment.declined": A.DECLINED,
    "assignment.transferred": A.TRANSFERRED, "assignment.withdrawn": A.WITHDRAWN,
    "assignment.accepted": A.ACCEPTED, "assignment.reopened": A.ON_SCENE,
}


def _follow(state: CallState, trigger: str) -> CallState:
    try:
        return CALL_TRANSITIONS[(state, trigger)]
    except KeyError:
        raise InternalError(f"call table has no transition {state} --{trigger}-->") from None


def _created(event: Event) -> Call:
    b = event.body
    return Call(
        id=event.call_id, township_id=int(b["township_id"]), number=str(b["number"]), state=CALL_INITIAL,
        source=Source(b["source"]), category=b["category"], title=b["title"],
        description=b["description"], address=b["address"], priority=Priority(b["priority"]),
        created_at=event.at, updated_at=event.at, lat=b["lat"], lon=b["lon"], grid_id=b["grid_id"],
        reporter_name=b["reporter_name"], reporter_phone=b["reporter_phone"],
    )


def _evolve_assignment(call: Call, event: Event) -> Assignment:
    b, at = event.body, event.at
    if event.type == "assignment.dispatched":
        assert event.assignment_id is not None
        return Assignment(
            id=event.assignment_id, call_id=call.id, target=b["target"], state=ASSIGNMENT_INITIAL,
            dispatched_at=at, ack_due=_dt(b["ack_due"]) or at, arrive_due=_dt(b["arrive_due"]) or at,
            resolve_due=_dt(b["resolve_due"]) or at, updated_at=at,
            transferred_from=_uuid(b.get("transferred_from")),
        )
    if event.assignment_id not in call.assignments:
        raise InternalError(f"{event.type} names an unknown assignment {event.assignment_id}")
    old = call.assignments[event.assignment_id]
    if event.type == "assignment.escalated":
        return replace(old, levels={**old.levels, b["deadline_kind"]: int(b["level"])}, updated_at=at)
    new = replace(old, state=_ASSIGNMENT_EVENT_STATE[event.type], updated_at=at)
    if event.type == "assignment.acknowledged":
        return replace(new, acknowledged_at=at)
    if event.type == "assignment.arrived":
        return replace(new, on_scene_at=at)
    if event.type == "assignment.reported":
        return replace(new, reported_at=at, result=b["result"])
    if event.type == "assignment.declined":
        return replace(new, decline_reason=b["reason"], suggested_target=b.get("suggested_target"))
    if event.type in ("assignment.transferred", "assignment.withdrawn"):
        return replace(new, closed_at=at)
    if event.type == "assignment.accepted":
        return replace(new, accepted_at=at)
    # assignment.reopened: back on scene with a fresh resolve deadline
    return replace(new, reported_at=None, resolve_due=_dt(b["resolve_due"]) or at,
                   levels={**old.levels, DeadlineKind.RESOLVE.value: 0})


def evolve(call: Call | None, event: Event) -> Call:
    """Fold one event into a new ``Call``; the input is never changed."""
    if event.type == "call.created":
        return _created(event)
    if call is None:
        raise InternalError(f"{event.type} before call.created")
    at, b = event.at, event.body
    if event.type.startswith("assignment."):
        updated = _evolve_assignment(call, event)
        assignments = {**call.assignments, updated.id: updated}
        state = derived_state(call.state, assignments)
        if state != call.state:
            state = _follow(call.state, DERIVED_TRIGGERS[state])
        return replace(call, assignments=assignments, state=state, updated_at=at)
    if event.type not in _CALL_EVENT_TRIGGER:
        raise InternalError(f"unknown event type {event.type}")
    new = replace(call, state=_follow(call.state, _CALL_EVENT_TRIGGER[event.type]), updated_at=at)
    if event.type == "call.visited":
        return replace(new, resolved=b["resolved"], satisfaction=b["satisfaction"],
                       visit_comment=b.get("comment"))
    if event.type == "call.closed":
        return replace(new, closed_at=at)
    if event.type == "call.cancelled":
        return replace(new, closed_at=at, cancel_reason=b["reason"])
    return new


# ------------------------------------------------------------------------------------------ decide

_VERBS = {
    "dispatch": "dispatch", "acknowledge": "acknowledge", "arrive": "report arrival on",
    "report_result": "report a result on", "decline": "decline", "reroute": "reroute",
    "withdraw": "withdraw", "accept": "accept", "send_back": "send back",
    "return_visit": "record a return visit on", "close": "close", "cancel": "cancel",
    "note": "add a note to", "escalate": "escalate",
}


def _illegal(kind: str, noun: str, state: str, field: str) -> IllegalTransition:
    article = "an" if noun[0] in "aeiou" else "a"
    return IllegalTransition(f"cannot {_VERBS.get(kind, kind)} {article} {noun} that is {state}", field=field)


class _Builder:
    """Drafts events one by one, folding each so the next sees (and each claims) the state after it."""

    def __init__(self, call: Call | None, at: datetime) -> None:
        self.call = call
        self.at = at
        self.events: list[Event] = []

    @property
    def current(self) -> Call:
        assert self.call is not None
        return self.call

    def emit(self, type_: str, call_id: UUID, body: dict[str, Any],
             assignment_id: UUID | None = None) -> None:
        draft = Event(type_, call_id, assignment_id, self.at, body, (), CALL_INITIAL)
        after = evolve(self.call, draft)
        a_state = None if assignment_id is None else after.assignments[assignment_id].state
        audience = () if assignment_id is None else (after.assignments[assignment_id].target,)
        self.events.append(
            replace(draft, call_state=after.state, assignment_state=a_state, audience=audience))
        self.call = after

    def dispatch(self, target: str, ctx: DecideContext, transferred_from: UUID | None = None) -> UUID:
        call, new_id = self.current, ctx.new_id()

        def due(kind: DeadlineKind) -> str:
            return (self.at + ctx.sla.within(kind, call.priority, target, call.category)).isoformat()

        body = {"target": target, "call": call.snapshot(), "ack_due": due(DeadlineKind.ACK),
                "arrive_due": due(DeadlineKind.ARRIVE), "resolve_due": due(DeadlineKind.RESOLVE),
                "transferred_from": None if transferred_from is None else str(transferred_from)}
        self.emit("assignment.dispatched", call.id, body, new_id)
        return new_id

    def finish(self) -> list[Event]:
        audience = self.current.targets()
        return [e if e.assignment_id is not None else replace(e, audience=audience) for e in self.events]


def _check_targets(call: Call, targets: list[str], ctx: DecideContext, field: str,
                   replacing: UUID | None = None) -> None:
    for target in targets:
        if target not in ctx.known_targets:
            raise ValidationFailed(f"{field}: unknown target {target!r} in this township", field=field)
        for a in call.assignments.values():
            if a.target == target and a.state not in ASSIGNMENT_FINAL and a.id != replacing:
                raise ValidationFailed(f"{field}: {target} already has an open assignment on this call",
                                       field=field)


def _step(a: Assignment, kind: str) -> AssignmentState:
    nxt = ASSIGNMENT_TRANSITIONS.get((a.state, kind))
    if nxt is None:
        raise _illegal(kind, "assignment", a.state.value, "assignment_id")
    return nxt


def _create(cmd: CreateCall, at: datetime, ctx: DecideContext) -> list[Event]:
    if cmd.category not in ctx.categories:
        raise ValidationFailed(f"category: unknown category {cmd.category!r}", field="category")
    for target in cmd.targets:
        if target not in ctx.known_targets:
            raise ValidationFailed(f"targets: unknown target {target!r} in this township", field="targets")
    b = _Builder(None, at)
    body = {"township_id": ctx.township_id, "number": ctx.next_number(), "source": cmd.source.value,
            "category": cmd.category, "title": cmd.title, "description": cmd.description,
            "address": cmd.address, "lat": cmd.lat, "lon": cmd.lon, "grid_id": cmd.grid_id,
            "priority": cmd.priority.value, "reporter_name": cmd.reporter_name,
            "reporter_phone": cmd.reporter_phone}
    b.emit("call.created", ctx.new_id(), body)
    for target in cmd.targets:
        b.dispatch(target, ctx)
    return b.finish()


def _assignment_command(b: _Builder, cmd: Command, a: Assignment, ctx: DecideContext) -> None:
    call = b.current
    kind = cmd.kind
    _step(a, kind)
    if isinstance(cmd, Acknowledge):
        b.emit("assignment.acknowledged", call.id, {}, a.id)
    elif isinstance(cmd, Arrive):
        b.emit("assignment.arrived", call.id, {"lat": cmd.lat, "lon": cmd.lon}, a.id)
    elif isinstance(cmd, ReportResult):
        b.emit("assignment.reported", call.id, {"result": cmd.result}, a.id)
    elif isinstance(cmd, Decline):
        if cmd.suggested_target is not None and cmd.suggested_target not in ctx.known_targets:
            raise ValidationFailed(f"suggested_target: unknown target {cmd.suggested_target!r}",
                                   field="suggested_target")
        b.emit("assignment.declined", call.id,
               {"reason": cmd.reason, "suggested_target": cmd.suggested_target}, a.id)
    elif isinstance(cmd, Reroute):
        _check_targets(call, [cmd.target], ctx, "target", replacing=a.id)
        new_id = b.dispatch(cmd.target, ctx, transferred_from=a.id)
        b.emit("assignment.transferred", call.id, {"to_assignment_id": str(new_id), "to_target": cmd.target},
               a.id)
    elif isinstance(cmd, Withdraw):
        b.emit("assignment.withdrawn", call.id, {"reason": cmd.reason}, a.id)
    elif isinstance(cmd, Escalate):
        _escalate(b, cmd, a)


def _escalate(b: _Builder, cmd: Escalate, a: Assignment) -> None:
    kind = cmd.deadline_kind
    if a.state not in WAITING_FOR[kind]:
        raise IllegalTransition(f"cannot escalate {kind.value} on an assignment that is {a.state.value}",
                                field="assignment_id")
    current = a.levels.get(kind.value, 0)
    if cmd.level != current + 1:
        raise IllegalTransition(
            f"cannot escalate {kind.value} to level {cmd.level}: it is at level {current}", field="level")
    due = cmd.due or cmd.deadline
    if due < cmd.deadline:
        raise ValidationFailed("due: must not be before the deadline", field="due")
    if cmd.fired_at < due:
        raise ValidationFailed("fired_at: must not be before the level fell due", field="fired_at")
    lateness = (cmd.fired_at - due) // timedelta(milliseconds=1)
    b.emit("assignment.escalated", b.current.id,
           {"deadline_kind": kind.value, "level": cmd.level, "deadline": cmd.deadline.isoformat(),
            "due": due.isoformat(), "fired_at": cmd.fired_at.isoformat(), "lateness_ms": lateness}, a.id)


def _call_command(b: _Builder, cmd: Command, ctx: DecideContext) -> None:
    call = b.current
    if (call.state, cmd.kind) not in CALL_TRANSITIONS:
        raise _illegal(cmd.kind, "call", call.state.value, "call_id")
    expected = CALL_TRANSITIONS[(call.state, cmd.kind)]
    reported = [a for a in call.assignments.values() if a.state == A.REPORTED]
    if isinstance(cmd, Dispatch):
        _check_targets(call, cmd.targets, ctx, "targets")
        for target in cmd.targets:
            b.dispatch(target, ctx)
    elif isinstance(cmd, Accept):
        b.emit("call.accepted", call.id, {"assignment_ids": [str(a.id) for a in reported]})
        for a in reported:
            b.emit("assignment.accepted", call.id, {}, a.id)
    elif isinstance(cmd, SendBack):
        reported_ids = {a.id for a in reported}
        if not set(cmd.assignment_ids) <= reported_ids:
            raise ValidationFailed("assignment_ids: every id must name a reported assignment of this call",
                                   field="assignment_ids")
        b.emit("call.sent_back", call.id, {"reason": cmd.reason,
                                           "assignment_ids": [str(i) for i in cmd.assignment_ids]})
        for aid in cmd.assignment_ids:
            a = call.assignments[aid]
            due = b.at + ctx.sla.within(DeadlineKind.RESOLVE, call.priority, a.target, call.category)
            body = {"reason": cmd.reason, "resolve_due": due.isoformat()}
            b.emit("assignment.reopened", call.id, body, aid)
    elif isinstance(cmd, ReturnVisit):
        b.emit("call.visited", call.id,
               {"resolved": cmd.resolved, "satisfaction": cmd.satisfaction, "comment": cmd.comment})
    elif isinstance(cmd, Close):
        b.emit("call.closed", call.id, {})
    elif isinstance(cmd, Cancel):
        b.emit("call.cancelled", call.id, {"reason": cmd.reason})
        for a in call.assignments.values():
            if (a.state, "cancel") in ASSIGNMENT_TRANSITIONS:
                b.emit("assignment.withdrawn", call.id, {"reason": cmd.reason}, a.id)
    elif isinstance(cmd, Note):
        if cmd.assignment_id is not None and cmd.assignment_id not in call.assignments:
            raise NotFound("assignment_id: no such assignment on this call", field="assignment_id")
        b.emit("call.noted", call.id, {"text": cmd.text, "assignment_id": _str(cmd.assignment_id)})
    if b.current.state != expected:
        raise InternalError(f"{cmd.kind} left the call {b.current.state}, the table says {expected}")


def _str(value: UUID | None) -> str | None:
    return None if value is None else str(value)


_ASSIGNMENT_COMMANDS = frozenset({"acknowledge", "arrive", "report_result", "decline", "reroute", "withdraw",
                                  "escalate"})


def decide(call: Call | None, cmd: Command, actor: Actor, now: datetime, ctx: DecideContext) -> list[Event]:
    """Authorize and validate ``cmd`` against ``call``; return the events it causes (never empty)."""
    aid = command_assignment_id(cmd)
    assignment = None if call is None or aid is None else call.assignments.get(aid)
    policy.authorize(actor, cmd, call, assignment, township_id=ctx.township_id)
    if isinstance(cmd, CreateCall):
        if call is not None:
            raise Conflict("this call already exists", field="command_id")
        return _create(cmd, now, ctx)
    if call is None:
        field = "call_id" if hasattr(cmd, "call_id") else "assignment_id"
        raise NotFound(f"{field}: no such call", field=field)
    if getattr(cmd, "call_id", call.id) != call.id:
        raise NotFound("call_id: no such call", field="call_id")
    if call.state in CALL_FINAL:
        field = "assignment_id" if cmd.kind in _ASSIGNMENT_COMMANDS else "call_id"
        raise _illegal(cmd.kind, "call", call.state.value, field)
    b = _Builder(call, max(now, call.updated_at))
    if cmd.kind in _ASSIGNMENT_COMMANDS:
        if assignment is None:
            raise NotFound("assignment_id: no such assignment on this call", field="assignment_id")
        _assignment_command(b, cmd, assignment, ctx)
    else:
        _call_command(b, cmd, ctx)
    return b.finish()


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
    lines += _diagram_lines("asg", "Assignment 派单", ASSIGNMENT_INITIAL, ASSIGNMENT_FINAL,
                            ASSIGNMENT_TRANSITIONS, list(A))
    return "\n".join(lines) + "\n"
