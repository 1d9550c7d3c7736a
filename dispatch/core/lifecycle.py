"""The call/assignment state machine 问派转办审回: ``decide`` (command → events) and ``evolve`` (event → call).

Sans-I/O: commands in, events out. The store loads a call, calls ``decide``, folds the events with
``evolve`` and writes both in one transaction. The tables live in ``transitions``, the records in
``records``. See docs/LIFECYCLE.md for the rules in prose.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Protocol
from uuid import UUID

from dispatch.core import policy
from dispatch.core.commands import (
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
from dispatch.core.domain import Actor, DeadlineKind, Priority, Source
from dispatch.core.records import Assignment, Call, Event, _dt, _uuid
from dispatch.core.sla_policy import deadline_of, stopped_at
from dispatch.core.transitions import (
    ASSIGNMENT_FINAL,
    ASSIGNMENT_INITIAL,
    ASSIGNMENT_TRANSITIONS,
    CALL_FINAL,
    CALL_INITIAL,
    CALL_TRANSITIONS,
    DERIVED_TRIGGERS,
    OPEN_CALL_STATES,
    RECORD_MISSED,
    WAITING_FOR,
    AssignmentState,
    CallState,
)
from protocols.errors import Conflict, IllegalTransition, InternalError, NotFound, ValidationFailed

A, C = AssignmentState, CallState


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
    # How far back a liaison's acted time may reach (configuration: lifecycle.offline_window_s).
    offline_window: timedelta = timedelta(hours=24)
    # The ladder: how long after its deadline each escalation level falls due (None: every level at 0).
    rung_after: Callable[[DeadlineKind, int], timedelta] | None = None


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
    # A liaison's action counts from when the person acted (body.acted_at, already bounded by decide).
    acted = _dt(b.get("acted_at")) or at
    levels = dict(old.levels)
    for kind, voided in (b.get("voids_escalations") or {}).items():
        levels[kind] = min(levels.get(kind, 0), min(voided) - 1)
    new = replace(old, state=_ASSIGNMENT_EVENT_STATE[event.type], updated_at=at, state_since=acted, levels=levels)
    if event.type == "assignment.acknowledged":
        return replace(new, acknowledged_at=acted)
    if event.type == "assignment.arrived":
        return replace(new, on_scene_at=acted)
    if event.type == "assignment.reported":
        return replace(new, reported_at=acted, result=b["result"])
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
    if isinstance(cmd, Escalate):
        _escalate(b, cmd, a)
        return
    after = _step(a, kind)
    if isinstance(cmd, Acknowledge):
        b.emit("assignment.acknowledged", call.id, _acted(b, cmd, a, after, ctx), a.id)
    elif isinstance(cmd, Arrive):
        b.emit("assignment.arrived", call.id,
               {"lat": cmd.lat, "lon": cmd.lon, **_acted(b, cmd, a, after, ctx)}, a.id)
    elif isinstance(cmd, ReportResult):
        b.emit("assignment.reported", call.id, {"result": cmd.result, **_acted(b, cmd, a, after, ctx)}, a.id)
    elif isinstance(cmd, Decline):
        if cmd.suggested_target is not None and cmd.suggested_target not in ctx.known_targets:
            raise ValidationFailed(f"suggested_target: unknown target {cmd.suggested_target!r}",
                                   field="suggested_target")
        b.emit("assignment.declined", call.id,
               {"reason": cmd.reason, "suggested_target": cmd.suggested_target,
                **_acted(b, cmd, a, after, ctx)}, a.id)
    elif isinstance(cmd, Reroute):
        _check_targets(call, [cmd.target], ctx, "target", replacing=a.id)
        new_id = b.dispatch(cmd.target, ctx, transferred_from=a.id)
        b.emit("assignment.transferred", call.id, {"to_assignment_id": str(new_id), "to_target": cmd.target},
               a.id)
    elif isinstance(cmd, Withdraw):
        b.emit("assignment.withdrawn", call.id, {"reason": cmd.reason}, a.id)


# Why a claimed acted time was moved to the nearest bound (body.acted_at_reason).
ACTED_BEFORE_PREVIOUS = "before_previous_event"
ACTED_AFTER_RECEIPT = "after_receipt"
ACTED_OUTSIDE_WINDOW = "outside_offline_window"


def bound_acted_at(claimed: datetime, earliest: datetime, received: datetime,
                   window: timedelta) -> tuple[datetime, str | None]:
    """The acted time the hub uses for a claimed one, and why it was moved (None: taken as claimed).

    Bounds: not before ``earliest`` (the event the action answers), not after ``received`` (the hub's
    clock when the command is written), not older than ``window`` before receipt. Outside them the
    claim is clamped to the nearest bound."""
    if claimed > received:
        return received, ACTED_AFTER_RECEIPT
    oldest = received - window
    if claimed < earliest and earliest >= oldest:
        return earliest, ACTED_BEFORE_PREVIOUS
    if claimed < oldest:
        return max(oldest, earliest), ACTED_OUTSIDE_WINDOW
    return claimed, None


def _acted_fields(b: _Builder, claimed: datetime | None, earliest: datetime,
                  ctx: DecideContext) -> tuple[datetime, dict[str, Any]]:
    if claimed is None:
        return b.at, {}
    acted, reason = bound_acted_at(claimed, min(earliest, b.at), b.at, ctx.offline_window)
    body: dict[str, Any] = {"acted_at": acted.isoformat(), "received_at": b.at.isoformat()}
    if reason is not None:
        body.update(acted_at_adjusted=True, acted_at_reason=reason, acted_at_claimed=claimed.isoformat())
    return acted, body


def _answered_at(a: Assignment) -> datetime:
    """When the assignment entered its current state (for old documents: its latest clock stamp)."""
    if a.state_since is not None:
        return a.state_since
    return max(t for t in (a.dispatched_at, a.acknowledged_at, a.on_scene_at, a.reported_at) if t is not None)


def _acted(b: _Builder, cmd: Acknowledge | Arrive | ReportResult | Decline, a: Assignment,
           after: AssignmentState, ctx: DecideContext) -> dict[str, Any]:
    """The acted-time fields of a liaison's action, and the escalations its acted time voids.

    An escalation of a clock this action stops is void when its rung fell due at or after the acted time:
    the department met that rung, only the hub heard of it later (the same rule as ``record_missed``)."""
    acted, body = _acted_fields(b, cmd.acted_at, _answered_at(a), ctx)
    if cmd.acted_at is None:
        return body
    voids: dict[str, list[int]] = {}
    for kind in DeadlineKind:
        if a.state not in WAITING_FOR[kind] or after in WAITING_FOR[kind]:
            continue  # not a clock this action stops
        deadline = deadline_of(a, kind)
        levels = [level for level in range(1, a.levels.get(kind.value, 0) + 1)
                  if deadline + (ctx.rung_after(kind, level) if ctx.rung_after else timedelta()) >= acted]
        if levels:
            voids[kind.value] = levels
    if voids:
        body["voids_escalations"] = voids
    return body


def _ms(span: timedelta) -> int:
    return max(0, span // timedelta(milliseconds=1))


def _escalate(b: _Builder, cmd: Escalate, a: Assignment) -> None:
    """Escalate a running clock, or record (once, late) a rung that fell due before its clock stopped."""
    kind = cmd.deadline_kind
    due = cmd.due or cmd.deadline
    stopped = None
    if a.state not in WAITING_FOR[kind]:
        # The clock stopped: only a rung that fell due before it stopped is still owed (recorded late).
        stopped = stopped_at(a, kind)
        if (a.state, RECORD_MISSED) not in ASSIGNMENT_TRANSITIONS or stopped is None or due >= stopped:
            raise IllegalTransition(f"cannot escalate {kind.value} on an assignment that is {a.state.value}",
                                    field="assignment_id")
    _step(a, "escalate" if stopped is None else RECORD_MISSED)
    current = a.levels.get(kind.value, 0)
    if cmd.level != current + 1:
        raise IllegalTransition(
            f"cannot escalate {kind.value} to level {cmd.level}: it is at level {current}", field="level")
    if due < cmd.deadline:
        raise ValidationFailed("due: must not be before the deadline", field="due")
    if cmd.fired_at < due:
        raise ValidationFailed("fired_at: must not be before the level fell due", field="fired_at")
    # Measured when the store writes it (b.at, under the township lock), not when the timer went off.
    recorded_at = b.at
    overdue = _ms((recorded_at if stopped is None else min(recorded_at, stopped)) - cmd.deadline)
    b.emit("assignment.escalated", b.current.id,
           {"deadline_kind": kind.value, "level": cmd.level, "deadline": cmd.deadline.isoformat(),
            "due": due.isoformat(), "fired_at": cmd.fired_at.isoformat(), "recorded_at": recorded_at.isoformat(),
            "overdue_ms": overdue, "lateness_ms": overdue, "delay_ms": _ms(recorded_at - due),
            "late_record": stopped is not None,
            "recorded_after": None if stopped is None else stopped.isoformat()}, a.id)


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
        earliest = call.created_at if cmd.assignment_id is None else call.assignments[cmd.assignment_id].dispatched_at
        _, acted = _acted_fields(b, cmd.acted_at, earliest, ctx)
        b.emit("call.noted", call.id, {"text": cmd.text, "assignment_id": _str(cmd.assignment_id), **acted})
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

