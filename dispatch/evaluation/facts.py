"""Evaluation facts: what one assignment did against its clocks, folded from its call's events.

One ``Facts`` per assignment, advanced by ``advance`` with every event of its call (and the call as it is
after the event). The store writes them in the same transaction as the events (table
``assignment_facts``); ``fold`` builds them from an exported log, so anyone can recompute a scorecard.
The facts keep times, never verdicts: whether a clock was met depends on when you ask (``scorecard``)."""

from __future__ import annotations

import operator
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from dispatch.core.lifecycle import evolve
from dispatch.core.records import Assignment, Call, Event, _dt
from dispatch.core.transitions import AssignmentState, CallState

# Bump when a rule of ``advance`` changes: the store rebuilds every row from the log at start-up.
FACTS_VERSION = 1

# How an assignment left its department without a result (``ended_how``).
WITHDRAWN = "withdrawn"  # the operator withdrew it
CANCELLED = "cancelled"  # the call was cancelled
REROUTED = "rerouted"  # the operator moved it to another department without a request (转派)
NOT_OUR_REMIT = "not_our_remit"  # a transfer approved as "not our remit" (requested or not)
TRANSFERRED = "transferred"  # the department's transfer request (申请转派) approved
ENDINGS = (WITHDRAWN, CANCELLED, REROUTED, NOT_OUR_REMIT, TRANSFERRED)
# Responses: the liaison acknowledged, or asked for a transfer that was approved (not as "not our remit").
BY_ACKNOWLEDGE = "acknowledge"
BY_REQUEST = "request"

KINDS = ("ack", "arrive", "resolve")


@dataclass(frozen=True, slots=True)
class Facts:
    assignment_id: UUID
    call_id: UUID
    township_id: int
    number: str
    target: str
    category: str
    priority: str
    source: str
    grid_id: int | None
    lead: bool
    state: str
    dispatched_at: datetime
    transferred_from: UUID | None
    # The deadlines in force: moved later by rejected transfer requests; resolve_due is the current cycle's.
    ack_due: datetime
    arrive_due: datetime
    resolve_due: datetime
    # When the department stopped each clock (the acted time), None while it runs.
    responded_at: datetime | None = None
    responded_by: str | None = None
    arrived_at: datetime | None = None
    reported_at: datetime | None = None  # the current result cycle's report
    first_reported_at: datetime | None = None
    requested_at: datetime | None = None  # a transfer request waiting for the operator (acted time)
    # The operator's time on rejected transfer requests, taken out of each clock's duration.
    paused_ack_ms: int = 0
    paused_arrive_ms: int = 0
    paused_resolve_ms: int = 0
    result_cycles: int = 1  # 1 + send-backs + 重办
    late_cycles: int = 0  # finished result cycles reported after their deadline
    ended_at: datetime | None = None
    ended_how: str | None = None
    requests_approved: int = 0
    requests_rejected: int = 0
    send_backs: int = 0
    reopened: int = 0  # 重办 after an unresolved or unsatisfied return visit
    # Escalation levels recorded per kind (late records included, levels voided by acted times removed).
    esc_ack: tuple[int, ...] = ()
    esc_arrive: tuple[int, ...] = ()
    esc_resolve: tuple[int, ...] = ()
    visited_at: datetime | None = None
    visit_resolved: bool | None = None
    visit_satisfaction: int | None = None
    adjusted: int = 0  # acted times the hub clamped to its bounds (flagged in the log)
    last_seq: int = 0  # the last event that changed these facts

    def to_row(self) -> dict[str, Any]:
        # Every value is immutable (times, ids, numbers, tuples of ints): no deep copy (``asdict``) needed.
        out = {name: getattr(self, name) for name in COLUMNS}
        for name in ("esc_ack", "esc_arrive", "esc_resolve"):
            out[name] = list(out[name])
        return out

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Facts:
        values = {name: row[name] for name in COLUMNS if name in row}
        for name in ("esc_ack", "esc_arrive", "esc_resolve"):
            values[name] = tuple(values.get(name) or ())
        return cls(**values)


COLUMNS = tuple(f.name for f in fields(Facts))
_VALUES = operator.attrgetter(*COLUMNS)
_POSITION = {name: i for i, name in enumerate(COLUMNS)}


def replace(f: Facts, **changes: Any) -> Facts:
    """``dataclasses.replace`` for ``Facts`` (frozen, slots, every field in ``__init__``, no ``__post_init__``):
    the same new record, about twice as fast (the fold makes one or two per event: a batch of escalations
    makes thousands)."""
    values = list(_VALUES(f))
    for name, value in changes.items():
        at = _POSITION.get(name)
        if at is None:
            raise TypeError(f"Facts has no field {name}")
        values[at] = value
    return Facts(*values)


def _new(call: Call, a: Assignment) -> Facts:
    return Facts(
        assignment_id=a.id, call_id=call.id, township_id=call.township_id, number=call.number, target=a.target,
        category=call.category, priority=call.priority.value, source=call.source.value, grid_id=call.grid_id,
        lead=a.lead, state=a.state.value, dispatched_at=a.dispatched_at, transferred_from=a.transferred_from,
        ack_due=a.ack_due, arrive_due=a.arrive_due, resolve_due=a.resolve_due)


def _without_last(levels: tuple[int, ...], voided: Iterable[int]) -> tuple[int, ...]:
    """``levels`` without the last occurrence of each voided level (the current cycle's)."""
    out = list(levels)
    for level in voided:
        for i in range(len(out) - 1, -1, -1):
            if out[i] == level:
                del out[i]
                break
    return tuple(out)


def _acted(f: Facts, event: Event) -> tuple[Facts, datetime]:
    b = event.body
    acted = _dt(b.get("acted_at")) or event.at
    if b.get("acted_at_adjusted"):
        f = replace(f, adjusted=f.adjusted + 1)
    for kind, voided in (b.get("voids_escalations") or {}).items():
        if kind in KINDS:
            f = _with_levels(f, kind, _without_last(levels_of(f, kind), voided))
    return f, acted


def levels_of(f: Facts, kind: str) -> tuple[int, ...]:
    levels: tuple[int, ...] = {"ack": f.esc_ack, "arrive": f.esc_arrive, "resolve": f.esc_resolve}[kind]
    return levels


def _with_levels(f: Facts, kind: str, levels: tuple[int, ...]) -> Facts:
    if kind == "ack":
        return replace(f, esc_ack=levels)
    if kind == "arrive":
        return replace(f, esc_arrive=levels)
    return replace(f, esc_resolve=levels)


def _ms(a: datetime, b: datetime) -> int:
    """Whole milliseconds from ``b`` to ``a`` (floored), never below 0."""
    return max(0, (a - b) // timedelta(milliseconds=1))


def _assignment_event(f: Facts, a: Assignment, event: Event) -> Facts:
    b, t = event.body, event.type
    if t == "assignment.acknowledged":
        f, acted = _acted(f, event)
        return f if f.responded_at is not None else replace(f, responded_at=acted, responded_by=BY_ACKNOWLEDGE)
    if t == "assignment.arrived":
        f, acted = _acted(f, event)
        return replace(f, arrived_at=acted)
    if t == "assignment.reported":
        f, acted = _acted(f, event)
        return replace(f, reported_at=acted, first_reported_at=f.first_reported_at or acted)
    if t == "assignment.declined":
        f, acted = _acted(f, event)
        return replace(f, requested_at=acted)
    if t == "assignment.transfer_rejected":
        shifted = set(b.get("shifted") or ())
        paused = int(b.get("paused_ms") or 0)
        return replace(
            f, requested_at=None, requests_rejected=f.requests_rejected + 1, ack_due=a.ack_due,
            arrive_due=a.arrive_due, resolve_due=a.resolve_due,
            paused_ack_ms=f.paused_ack_ms + (paused if "ack" in shifted else 0),
            paused_arrive_ms=f.paused_arrive_ms + (paused if "arrive" in shifted else 0),
            paused_resolve_ms=f.paused_resolve_ms + (paused if "resolve" in shifted else 0))
    if t == "assignment.transferred":
        requested = bool(b.get("requested")) and f.requested_at is not None
        end = f.requested_at if requested and f.requested_at is not None else event.at
        if b.get("not_our_remit"):
            how = NOT_OUR_REMIT
        elif requested:
            how = TRANSFERRED
        else:
            how = REROUTED
        out = replace(f, ended_at=end, ended_how=how, requested_at=None,
                      requests_approved=f.requests_approved + (1 if requested else 0))
        if how == TRANSFERRED and out.responded_at is None:
            out = replace(out, responded_at=end, responded_by=BY_REQUEST)
        return out
    if t == "assignment.withdrawn":
        how = CANCELLED if event.call_state == CallState.CANCELLED else WITHDRAWN
        return replace(f, ended_at=event.at, ended_how=how, requested_at=None)
    if t == "assignment.reopened":
        late = f.reported_at is not None and f.reported_at > f.resolve_due
        again = b.get("cause") == "return_visit"
        return replace(f, late_cycles=f.late_cycles + (1 if late else 0), result_cycles=f.result_cycles + 1,
                       reported_at=None, resolve_due=a.resolve_due, send_backs=f.send_backs + (0 if again else 1),
                       reopened=f.reopened + (1 if again else 0))
    if t == "assignment.escalated":
        kind = str(b.get("deadline_kind"))
        if kind in KINDS:
            return _with_levels(f, kind, (*levels_of(f, kind), int(b["level"])))
    return f


def advance(facts: Mapping[UUID, Facts], call: Call, event: Event, seq: int = 0) -> dict[UUID, Facts]:
    """The facts ``event`` changes (``call`` is the call after it), keyed by assignment id; the others
    stay as they are. Events that touch no assignment's evaluation return an empty dict."""
    changed: dict[UUID, Facts] = {}
    if event.type.startswith("assignment.") and event.assignment_id is not None:
        a = call.assignments[event.assignment_id]
        f = facts.get(a.id) if event.type != "assignment.dispatched" else None
        f = _new(call, a) if f is None else f
        f = _assignment_event(f, a, event)
        changed[a.id] = replace(f, state=a.state.value, lead=a.lead, last_seq=seq or f.last_seq)
    elif event.type == "call.visited":
        for r in event.body.get("ratings") or _call_level_ratings(call, event):
            aid = UUID(str(r["assignment_id"]))
            f = facts.get(aid)
            if f is not None:
                changed[aid] = replace(f, visited_at=event.at, visit_resolved=bool(r["resolved"]),
                                       visit_satisfaction=int(r["satisfaction"]), last_seq=seq or f.last_seq)
    elif event.type == "call.lead_changed":
        for aid, a in call.assignments.items():
            f = facts.get(aid)
            if f is not None and f.lead != a.lead:
                changed[aid] = replace(f, lead=a.lead, last_seq=seq or f.last_seq)
    return changed


def _call_level_ratings(call: Call, event: Event) -> list[dict[str, Any]]:
    """Visits recorded before ratings per department: the call's rating for each accepted assignment."""
    return [{"assignment_id": str(a.id), "resolved": event.body.get("resolved"),
             "satisfaction": event.body.get("satisfaction")}
            for a in call.assignments.values() if a.state == AssignmentState.ACCEPTED]


TOUCHING = frozenset({"call.visited", "call.lead_changed"})


def touches(events: Iterable[Event]) -> bool:
    """Whether any of ``events`` can change an assignment's facts (the store then loads the call's rows)."""
    return any(e.assignment_id is not None or e.type in TOUCHING for e in events)


def fold(events: Iterable[tuple[int, Event]]) -> dict[UUID, Facts]:
    """Every assignment's facts from a log: (seq, event) pairs of any calls, in each township's seq order."""
    calls: dict[UUID, Call] = {}
    facts: dict[UUID, Facts] = {}
    for seq, event in events:
        call = evolve(calls.get(event.call_id), event)
        calls[event.call_id] = call
        facts.update(advance(facts, call, event, seq))
    return facts


def response_ms(f: Facts) -> int | None:
    """Dispatch to response, less the operator's time on rejected requests (None: no response yet)."""
    return None if f.responded_at is None else max(0, _ms(f.responded_at, f.dispatched_at) - f.paused_ack_ms)


def arrive_ms(f: Facts) -> int | None:
    return None if f.arrived_at is None else max(0, _ms(f.arrived_at, f.dispatched_at) - f.paused_arrive_ms)


def result_ms(f: Facts) -> int | None:
    """Dispatch to the first result reported (send-backs and 重办 are counted, not timed)."""
    if f.first_reported_at is None:
        return None
    return max(0, _ms(f.first_reported_at, f.dispatched_at) - f.paused_resolve_ms)
