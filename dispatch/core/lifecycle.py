"""The call/assignment state machine 问派转办审回: ``decide`` (command → events) and ``evolve`` (event → call).

Sans-I/O: commands in, events out. The store loads a call, calls ``decide``, folds the events with
``evolve`` and writes both in one transaction. The tables live in ``transitions``, the records in
``records``. See docs/LIFECYCLE.md for the rules in prose.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
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
    HandleAlarm,
    Note,
    Nudge,
    Rating,
    RejectTransfer,
    ReportResult,
    Reroute,
    ReturnVisit,
    SendBack,
    SetLead,
    Withdraw,
    command_assignment_id,
)
from dispatch.core.domain import DEPARTMENT_KINDS, Actor, DeadlineKind, Priority, Source
from dispatch.core.records import NOTICE_EVENT_PREFIX, Assignment, Call, Event, _dt, _uuid, replace
from dispatch.core.sla_policy import deadline_of, stopped_at
from dispatch.core.transitions import (
    ASSIGNMENT_FINAL,
    ASSIGNMENT_INITIAL,
    ASSIGNMENT_TERMINAL,
    ASSIGNMENT_TRANSITIONS,
    CALL_FINAL,
    CALL_INITIAL,
    CALL_TRANSITIONS,
    DERIVED_TRIGGERS,
    OPEN_CALL_STATES,
    RECORD_MISSED,
    REJECT_TRANSFER_TO,
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
    transfer_review: timedelta = timedelta(minutes=30)  # sla.transfer_review_s
    close_reason_sources: frozenset[str] = frozenset({Source.HOTLINE_12345.value})  # lifecycle.close_…
    # How far back a liaison's acted time may reach (configuration: lifecycle.offline_window_s).
    offline_window: timedelta = timedelta(hours=24)
    # The ladder: how long after its deadline each escalation level falls due, under the SLA policy version
    # the clock was started with (None: every level at 0).
    rung_after: Callable[[DeadlineKind, int, int], timedelta] | None = None
    # The SLA policy version in effect (settings section ``sla``; 0: the file's): recorded on each clock started.
    sla_version: int = 0
    # The uploads the command names, resolved and checked by the store (its user's, not yet bound), in the
    # command's order: each {id, sha256, content_type, size}, recorded in the event body as they are.
    attachments: tuple[Mapping[str, Any], ...] = ()


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
    "call.reopened": "reopen", "call.lead_changed": "set_lead",
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
        # the chained body has only the digest; the projection keeps the plaintext from the command's events
        reporter_name=b.get("reporter_name"), reporter_phone=b.get("reporter_phone"),
    )


def _evolve_assignment(call: Call, event: Event) -> Assignment:
    b, at = event.body, event.at
    if event.type == "assignment.dispatched":
        assert event.assignment_id is not None
        return Assignment(
            id=event.assignment_id, call_id=call.id, target=b["target"], state=ASSIGNMENT_INITIAL,
            dispatched_at=at, ack_due=_dt(b["ack_due"]) or at, arrive_due=_dt(b["arrive_due"]) or at,
            resolve_due=_dt(b["resolve_due"]) or at, updated_at=at,
            transferred_from=_uuid(b.get("transferred_from")), lead=bool(b.get("lead", False)),
            sla_versions={kind.value: int(b["sla_version"]) for kind in DEPARTMENT_KINDS} if b.get("sla_version")
            else {},
        )
    if event.assignment_id not in call.assignments:
        raise InternalError(f"{event.type} names an unknown assignment {event.assignment_id}")
    old = call.assignments[event.assignment_id]
    if event.type == "assignment.escalated":
        return replace(old, levels={**old.levels, b["deadline_kind"]: int(b["level"])}, updated_at=at)
    if event.type in ("assignment.nudged", "assignment.alarm_handled"):
        return replace(old, updated_at=at)
    if event.type == "assignment.transfer_rejected":
        # 驳回: back to the state it was declined from, each running deadline moved by the time waited
        return replace(old, state=A(b["resumed_state"]), updated_at=at, ack_due=_dt(b["ack_due"]) or old.ack_due,
                       arrive_due=_dt(b["arrive_due"]) or old.arrive_due,
                       resolve_due=_dt(b["resolve_due"]) or old.resolve_due, declined_at=None, review_due=None,
                       decline_reason=None, suggested_target=None)
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
        # the operator's review clock starts (a fresh ladder for every request)
        levels = {k: v for k, v in old.levels.items() if k != DeadlineKind.REVIEW.value}
        return replace(new, decline_reason=b["reason"], suggested_target=b.get("suggested_target"),
                       declined_at=at, review_due=_dt(b.get("review_due")), levels=levels,
                       sla_versions=_versions(old, b, (DeadlineKind.REVIEW,)))
    if event.type in ("assignment.transferred", "assignment.withdrawn"):
        return replace(new, closed_at=at)
    if event.type == "assignment.accepted":
        return replace(new, accepted_at=at)
    # assignment.reopened: back on scene with a fresh resolve deadline (sent back, or 重办 after a visit)
    again = old.reopened + (1 if b.get("cause") == "return_visit" else 0)
    return replace(new, reported_at=None, accepted_at=None, resolve_due=_dt(b["resolve_due"]) or at,
                   levels={**old.levels, DeadlineKind.RESOLVE.value: 0}, reopened=again,
                   sla_versions=_versions(old, b, (DeadlineKind.RESOLVE,)))


def _with_lead(assignments: Mapping[UUID, Assignment], lead: UUID) -> dict[UUID, Assignment]:
    """Exactly one lead (主办): ``lead``; every other assignment supporting (协办)."""
    return {aid: a if a.lead == (aid == lead) else replace(a, lead=aid == lead) for aid, a in assignments.items()}


def evolve(call: Call | None, event: Event) -> Call:
    """Fold one event into a new ``Call``; the input is never changed."""
    if event.type == "call.created":
        return _created(event)
    if call is None:
        raise InternalError(f"{event.type} before call.created")
    if event.type.startswith(NOTICE_EVENT_PREFIX):
        return call  # a delivery record: who was told, how; the call does not change
    at, b = event.at, event.body
    if event.type.startswith("assignment."):
        updated = _evolve_assignment(call, event)
        assignments = {**call.assignments, updated.id: updated}
        if event.type == "assignment.dispatched" and updated.lead:
            assignments = _with_lead(assignments, updated.id)
        state = derived_state(call.state, assignments)
        if state != call.state:
            state = _follow(call.state, DERIVED_TRIGGERS[state])
        return replace(call, assignments=assignments, state=state, updated_at=at)
    if event.type not in _CALL_EVENT_TRIGGER:
        raise InternalError(f"unknown event type {event.type}")
    new = replace(call, state=_follow(call.state, _CALL_EVENT_TRIGGER[event.type]), updated_at=at)
    if event.type == "call.visited":
        assignments = dict(call.assignments)
        for r in b.get("ratings") or ():  # per department (older events carry only the call's rating)
            aid = UUID(r["assignment_id"])
            assignments[aid] = replace(assignments[aid], visit={
                "resolved": r["resolved"], "satisfaction": r["satisfaction"], "comment": r.get("comment"),
                "at": at.isoformat()})
        return replace(new, resolved=b["resolved"], satisfaction=b["satisfaction"],
                       visit_comment=b.get("comment"), assignments=assignments)
    if event.type == "call.lead_changed":
        return replace(new, assignments=_with_lead(call.assignments, UUID(b["assignment_id"])))
    if event.type == "call.closed":
        return replace(new, closed_at=at, close_reason=b.get("reason"))
    if event.type == "call.cancelled":
        return replace(new, closed_at=at, cancel_reason=b["reason"])
    return new


# ------------------------------------------------------------------------------------------ decide

_VERBS = {
    "dispatch": "dispatch", "acknowledge": "acknowledge", "arrive": "report arrival on",
    "report_result": "report a result on", "decline": "decline", "reroute": "reroute",
    "withdraw": "withdraw", "accept": "accept", "send_back": "send back",
    "return_visit": "record a return visit on", "close": "close", "cancel": "cancel",
    "note": "add a note to", "escalate": "escalate", "reject_transfer": "reject the transfer request of",
    "set_lead": "change the lead of", "reopen": "reopen", "nudge": "nudge",
    "handle_alarm": "take the alarm of",
}


def _illegal(kind: str, noun: str, state: str, field: str) -> IllegalTransition:
    article = "an" if noun[0] in "aeiou" else "a"
    err = IllegalTransition(f"cannot {_VERBS.get(kind, kind)} {article} {noun} that is {state}", field=field)
    err.context = {"command": kind, "noun": noun, "state": state}  # the store adds who made it so, and when
    return err


class _Builder:
    """Drafts events one by one, folding each so the next sees (and each claims) the state after it."""

    def __init__(self, call: Call | None, at: datetime) -> None:
        self.call = call
        self.at = at
        self.events: list[Event] = []
        self.steps: list[Call] = []  # the call after each event (``evolve`` reads none of what the draft lacks)

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
        self.steps.append(after)
        self.call = after

    def dispatch(self, target: str, ctx: DecideContext, transferred_from: UUID | None = None,
                 lead: bool = False) -> UUID:
        call, new_id = self.current, ctx.new_id()

        def due(kind: DeadlineKind) -> str:
            return (self.at + ctx.sla.within(kind, call.priority, target, call.category)).isoformat()

        body = {"target": target, "call": call.snapshot(), "ack_due": due(DeadlineKind.ACK),
                "arrive_due": due(DeadlineKind.ARRIVE), "resolve_due": due(DeadlineKind.RESOLVE),
                "transferred_from": None if transferred_from is None else str(transferred_from),
                "lead": lead, **_policy(ctx)}
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


def _evidence(ids: list[UUID], ctx: DecideContext) -> dict[str, Any]:
    """The ``attachments`` field of an event body (none when the command names none)."""
    if not ids:
        return {}
    refs = [dict(r) for r in ctx.attachments]
    if [r["id"] for r in refs] != [str(i) for i in ids]:
        raise InternalError("the store resolved other attachments than the command names")
    return {"attachments": refs}


def _create(cmd: CreateCall, actor: Actor, at: datetime, ctx: DecideContext) -> list[Event]:
    if cmd.category not in ctx.categories:
        raise ValidationFailed(f"category: unknown or retired category {cmd.category!r}", field="category")
    for target in cmd.targets:
        if target not in ctx.known_targets:
            raise ValidationFailed(f"targets: unknown target {target!r} in this township", field="targets")
    grid_id = policy.report_grid(actor, cmd)
    b = _Builder(None, at)
    body = {"township_id": ctx.township_id, "number": ctx.next_number(), "source": cmd.source.value,
            "category": cmd.category, "title": cmd.title, "description": cmd.description,
            "address": cmd.address, "lat": cmd.lat, "lon": cmd.lon, "grid_id": grid_id,
            "priority": cmd.priority.value, "reporter_name": cmd.reporter_name,
            "reporter_phone": cmd.reporter_phone, **_evidence(cmd.attachments, ctx)}
    b.emit("call.created", ctx.new_id(), body)
    lead = cmd.lead or (cmd.targets[0] if cmd.targets else None)
    for target in cmd.targets:
        b.dispatch(target, ctx, lead=target == lead)
    return b.finish()


def _assignment_command(b: _Builder, cmd: Command, a: Assignment, ctx: DecideContext) -> None:
    call = b.current
    kind = cmd.kind
    if isinstance(cmd, Escalate):
        _escalate(b, cmd, a)
        return
    if isinstance(cmd, RejectTransfer):
        _reject_transfer(b, cmd, a)
        return
    after = _step(a, kind)
    if isinstance(cmd, Acknowledge):
        b.emit("assignment.acknowledged", call.id, _acted(b, cmd, a, after, ctx), a.id)
    elif isinstance(cmd, Arrive):
        b.emit("assignment.arrived", call.id,
               {"lat": cmd.lat, "lon": cmd.lon, **_acted(b, cmd, a, after, ctx), **_evidence(cmd.attachments, ctx)},
               a.id)
    elif isinstance(cmd, ReportResult):
        b.emit("assignment.reported", call.id,
               {"result": cmd.result, **_acted(b, cmd, a, after, ctx), **_evidence(cmd.attachments, ctx)}, a.id)
    elif isinstance(cmd, Decline):
        if cmd.suggested_target is not None and cmd.suggested_target not in ctx.known_targets:
            raise ValidationFailed(f"suggested_target: unknown target {cmd.suggested_target!r}",
                                   field="suggested_target")
        b.emit("assignment.declined", call.id,
               {"reason": cmd.reason, "suggested_target": cmd.suggested_target, "from_state": a.state.value,
                "review_due": (b.at + ctx.transfer_review).isoformat(), **_acted(b, cmd, a, after, ctx),
                **_policy(ctx)}, a.id)
    elif isinstance(cmd, Reroute):
        if cmd.target == a.target:
            raise ValidationFailed(f"target: the assignment is already {a.target}'s; to keep it there, "
                                   "reject the transfer request (reject_transfer)", field="target")
        _check_targets(call, [cmd.target], ctx, "target", replacing=a.id)
        new_id = b.dispatch(cmd.target, ctx, transferred_from=a.id, lead=a.lead)
        requested = a.state == A.DECLINED
        b.emit("assignment.transferred", call.id, {
            "to_assignment_id": str(new_id), "to_target": cmd.target, "reason": cmd.reason,
            "not_our_remit": cmd.not_our_remit, "requested": requested,
            "declined_at": _iso(a.declined_at) if requested else None,
            "review_due": _iso(a.review_due) if requested else None,
            "waited_ms": _ms(b.at - a.declined_at) if requested and a.declined_at else None}, a.id)
    elif isinstance(cmd, Withdraw):
        b.emit("assignment.withdrawn", call.id, {"reason": cmd.reason}, a.id)
    elif isinstance(cmd, Nudge):
        b.emit("assignment.nudged", call.id, {"text": cmd.text, "state": a.state.value}, a.id)
    elif isinstance(cmd, HandleAlarm):
        if a.levels.get(cmd.deadline_kind.value, 0) < cmd.level:
            raise ValidationFailed(f"level: {cmd.deadline_kind.value} has not reached level {cmd.level}",
                                   field="level")
        b.emit("assignment.alarm_handled", call.id,
               {"deadline_kind": cmd.deadline_kind.value, "level": cmd.level}, a.id)


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
        if deadline is None:  # the operator's review clock: never the department's
            continue
        levels = [level for level in range(1, a.levels.get(kind.value, 0) + 1)
                  if deadline + (ctx.rung_after(kind, level, a.sla_version(kind.value)) if ctx.rung_after
                                 else timedelta()) >= acted]
        if levels:
            voids[kind.value] = levels
    if voids:
        body["voids_escalations"] = voids
    return body


def _policy(ctx: DecideContext) -> dict[str, int]:
    """The SLA policy version the clocks this event starts run under (omitted for the file's, version 0)."""
    return {"sla_version": ctx.sla_version} if ctx.sla_version else {}


def _versions(old: Assignment, body: Mapping[str, Any], kinds: tuple[DeadlineKind, ...]) -> dict[str, int]:
    """``old``'s policy versions with the clocks of ``kinds`` restarted under the event's version."""
    version = int(body.get("sla_version") or 0)
    out = {k: v for k, v in old.sla_versions.items() if k not in {kind.value for kind in kinds}}
    return {**out, **{kind.value: version for kind in kinds}} if version else out


def _ms(span: timedelta) -> int:
    return max(0, span // timedelta(milliseconds=1))


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _reject_transfer(b: _Builder, cmd: RejectTransfer, a: Assignment) -> None:
    """驳回: the department keeps the assignment; its clocks resume as if never stopped.

    The time spent waiting for the operator is not the department's, so every deadline whose clock was
    still running when the request was made moves later by exactly that time; escalation levels already
    reached stay. The body records the arithmetic."""
    if a.state != A.DECLINED:
        raise _illegal(cmd.kind, "assignment", a.state.value, "assignment_id")
    resumed = A.ACKNOWLEDGED if a.acknowledged_at is not None else A.DISPATCHED
    _step(a, REJECT_TRANSFER_TO[resumed])
    # A request recorded before declined_at existed: the last change of the assignment is the best bound.
    declined_at = a.declined_at or a.updated_at
    paused = max(timedelta(0), b.at - declined_at)
    dues = {DeadlineKind.ACK: a.ack_due, DeadlineKind.ARRIVE: a.arrive_due, DeadlineKind.RESOLVE: a.resolve_due}
    shifted = [k for k in DEPARTMENT_KINDS if resumed in WAITING_FOR[k]]
    new_dues = {k: dues[k] + paused if k in shifted else dues[k] for k in DEPARTMENT_KINDS}
    b.emit("assignment.transfer_rejected", b.current.id, {
        "reason": cmd.reason, "resumed_state": resumed.value, "declined_at": declined_at.isoformat(),
        "declined_at_estimated": a.declined_at is None, "rejected_at": b.at.isoformat(),
        "review_due": _iso(a.review_due), "paused_ms": _ms(paused),
        "shifted": [k.value for k in shifted],
        "previous": {f"{k.value}_due": dues[k].isoformat() for k in shifted},
        **{f"{k.value}_due": new_dues[k].isoformat() for k in DEPARTMENT_KINDS},
        "rule": "each deadline still running at the request moves by paused_ms = rejected_at - declined_at",
    }, a.id)


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
        has_lead = any(a.lead and a.state not in ASSIGNMENT_TERMINAL for a in call.assignments.values())
        lead = cmd.lead or (None if has_lead else cmd.targets[0])
        for target in cmd.targets:
            b.dispatch(target, ctx, lead=target == lead)
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
            body = {"reason": cmd.reason, "resolve_due": due.isoformat(), **_policy(ctx)}
            b.emit("assignment.reopened", call.id, body, aid)
    elif isinstance(cmd, ReturnVisit):
        if _return_visit(b, cmd, ctx):
            expected = CALL_TRANSITIONS[(expected, "reopen")]
    elif isinstance(cmd, SetLead):
        _set_lead(b, cmd)
    elif isinstance(cmd, Close):
        if call.state == C.ACCEPTED and call.source.value in ctx.close_reason_sources and cmd.reason is None:
            raise ValidationFailed(f"reason: a {call.source.value} call closed without a return visit needs a "
                                   "reason", field="reason")
        b.emit("call.closed", call.id, {"reason": cmd.reason, "visited": call.state == C.VISITED})
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


def _unsatisfied(resolved: bool, satisfaction: int) -> bool:
    """Unresolved, or satisfaction 3 or below (满意 and 基本满意 are 4 and 5)."""
    return not resolved or satisfaction <= 3


def _rated(call: Call, cmd: ReturnVisit) -> list[tuple[Assignment, Rating]]:
    """Each rating with the accepted assignment it names; the call-level form rates every accepted one."""
    accepted = {a.id: a for a in call.assignments.values() if a.state == A.ACCEPTED}
    if cmd.ratings is None:
        assert cmd.resolved is not None and cmd.satisfaction is not None
        return [(a, Rating(assignment_id=a.id, resolved=cmd.resolved, satisfaction=cmd.satisfaction,
                           comment=cmd.comment)) for a in accepted.values()]
    by_target = {a.target: a for a in accepted.values()}
    out: list[tuple[Assignment, Rating]] = []
    for i, r in enumerate(cmd.ratings):
        a = accepted.get(r.assignment_id) if r.assignment_id is not None else by_target.get(r.target or "")
        if a is None:
            name = str(r.assignment_id) if r.assignment_id is not None else repr(r.target)
            raise ValidationFailed(f"ratings.{i}: {name} names no accepted assignment of this call",
                                   field=f"ratings.{i}")
        if any(seen.id == a.id for seen, _ in out):
            raise ValidationFailed(f"ratings.{i}: {a.target} is rated twice", field=f"ratings.{i}")
        out.append((a, r))
    return out


def _return_visit(b: _Builder, cmd: ReturnVisit, ctx: DecideContext) -> bool:
    """回: record the visit per department, then reopen (重办) the chosen unsatisfied ones. True if any."""
    call = b.current
    rated = _rated(call, cmd)
    unsatisfied = [a.id for a, r in rated if _unsatisfied(r.resolved, r.satisfaction)]
    reopen = unsatisfied if cmd.reopen is None else list(cmd.reopen)
    for aid in reopen:
        if aid not in unsatisfied:
            raise ValidationFailed(f"reopen: {aid} is not an assignment rated unresolved or unsatisfied "
                                   "(satisfaction 3 or below) in this visit", field="reopen")
    ratings = [{"assignment_id": str(a.id), "target": a.target, "lead": a.lead, "resolved": r.resolved,
                "satisfaction": r.satisfaction, "comment": r.comment,
                "satisfied": not _unsatisfied(r.resolved, r.satisfaction)} for a, r in rated]
    b.emit("call.visited", call.id, {
        "resolved": all(r.resolved for _, r in rated), "satisfaction": min(r.satisfaction for _, r in rated),
        "comment": cmd.comment, "ratings": ratings, "per_department": cmd.ratings is not None,
        "reopen": [str(i) for i in reopen]})
    if not reopen:
        return False
    b.emit("call.reopened", call.id, {"reason": "return_visit", "assignment_ids": [str(i) for i in reopen]})
    for aid in reopen:
        a = call.assignments[aid]
        _step(a, "reopen")
        r = next(r for x, r in rated if x.id == aid)
        due = b.at + ctx.sla.within(DeadlineKind.RESOLVE, call.priority, a.target, call.category)
        text = r.comment or f"resolved={'yes' if r.resolved else 'no'}, satisfaction {r.satisfaction}/5"
        b.emit("assignment.reopened", call.id, {"reason": text, "cause": "return_visit",
                                                "resolve_due": due.isoformat(), "reopened": a.reopened + 1,
                                                **_policy(ctx)}, aid)
    return True


def _set_lead(b: _Builder, cmd: SetLead) -> None:
    call = b.current
    a = call.assignments.get(cmd.assignment_id)
    if a is None:
        raise NotFound("assignment_id: no such assignment on this call", field="assignment_id")
    if a.state in ASSIGNMENT_TERMINAL:
        raise ValidationFailed(f"assignment_id: a {a.state.value} assignment cannot lead", field="assignment_id")
    if a.lead:
        raise ValidationFailed(f"assignment_id: {a.target} already leads this call", field="assignment_id")
    before = next((x for x in call.assignments.values() if x.lead), None)
    b.emit("call.lead_changed", call.id, {
        "assignment_id": str(a.id), "target": a.target, "reason": cmd.reason,
        "previous_assignment_id": None if before is None else str(before.id),
        "previous_target": None if before is None else before.target})


_ASSIGNMENT_COMMANDS = frozenset({"acknowledge", "arrive", "report_result", "decline", "reroute", "withdraw",
                                  "escalate", "reject_transfer", "nudge", "handle_alarm"})


def decide(call: Call | None, cmd: Command, actor: Actor, now: datetime, ctx: DecideContext) -> list[Event]:
    """Authorize and validate ``cmd`` against ``call``; return the events it causes (never empty)."""
    return decide_and_fold(call, cmd, actor, now, ctx)[0]


def decide_and_fold(call: Call | None, cmd: Command, actor: Actor, now: datetime,
                    ctx: DecideContext) -> tuple[list[Event], list[Call]]:
    """``decide``, with the call after each of its events — what ``evolve`` folds them into, which drafting them
    already did: a writer needs them and need not fold the events a second time."""
    aid = command_assignment_id(cmd)
    assignment = None if call is None or aid is None else call.assignments.get(aid)
    policy.authorize(actor, cmd, call, assignment, township_id=ctx.township_id)
    if isinstance(cmd, CreateCall):
        if call is not None:
            raise Conflict("this call already exists", field="command_id")
        events = _create(cmd, actor, now, ctx)
        steps: list[Call] = []
        for ev in events:
            steps.append(evolve(steps[-1] if steps else None, ev))
        return events, steps
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
    return b.finish(), b.steps

