"""The records of the lifecycle: ``Call``, ``Assignment`` and ``Event`` (immutable, with their dict forms)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

from dispatch.core.domain import DEPARTMENT_KINDS, Priority, Source
from dispatch.core.transitions import AssignmentState, CallState

A, C = AssignmentState, CallState
R = TypeVar("R", "Call", "Assignment", "Event")


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _dt(value: Any) -> datetime | None:
    return None if value is None else datetime.fromisoformat(str(value))


def _uuid(value: Any) -> UUID | None:
    return None if value is None else UUID(str(value))


def _fresh_levels() -> dict[str, int]:
    return {kind.value: 0 for kind in DEPARTMENT_KINDS}


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
    declined_at: datetime | None = None  # the pending transfer request (转), while declined
    review_due: datetime | None = None  # the operator's deadline to approve or reject it
    lead: bool = False  # 主办 (the others on the call are 协办)
    visit: dict[str, Any] | None = None  # the latest return visit of this department: resolved, satisfaction
    reopened: int = 0  # times reopened after an unresolved or unsatisfied return visit (重办)
    # When it entered its current state (the acted time for a liaison's action): the earliest moment an
    # acted time for its next action may claim. None in documents written before it was kept.
    state_since: datetime | None = None
    # The SLA policy version each clock was started under (kind -> version; absent: 0, the file's): its
    # escalations follow that version's ladder, not one an admin saved later (docs/LIFECYCLE.md).
    sla_versions: dict[str, int] = field(default_factory=dict)

    def sla_version(self, kind: str) -> int:
        return self.sla_versions.get(kind, 0)

    _TIMES = ("dispatched_at", "ack_due", "arrive_due", "resolve_due", "updated_at", "acknowledged_at",
              "on_scene_at", "reported_at", "accepted_at", "closed_at", "declined_at", "review_due", "state_since")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": str(self.id), "call_id": str(self.call_id), "target": self.target,
            "state": self.state.value, "levels": dict(self.levels),
            "decline_reason": self.decline_reason, "suggested_target": self.suggested_target,
            "result": self.result,
            "transferred_from": None if self.transferred_from is None else str(self.transferred_from),
            "lead": self.lead, "visit": self.visit, "reopened": self.reopened,
        }
        for name in self._TIMES:
            out[name] = _iso(getattr(self, name))
        if self.sla_versions:
            out["sla_versions"] = dict(self.sla_versions)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Assignment:
        times = {name: _dt(data.get(name)) for name in cls._TIMES}
        return cls(
            id=UUID(str(data["id"])), call_id=UUID(str(data["call_id"])), target=str(data["target"]),
            state=A(data["state"]), levels={**_fresh_levels(), **dict(data.get("levels") or {})},
            decline_reason=data.get("decline_reason"), suggested_target=data.get("suggested_target"),
            result=data.get("result"), transferred_from=_uuid(data.get("transferred_from")),
            lead=bool(data.get("lead", False)), visit=data.get("visit"), reopened=int(data.get("reopened") or 0),
            sla_versions={str(k): int(v) for k, v in (data.get("sla_versions") or {}).items()},
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
    close_reason: str | None = None  # why it was closed without a return visit
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
            "cancel_reason": self.cancel_reason, "close_reason": self.close_reason,
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
            close_reason=data.get("close_reason"), assignments={a.id: a for a in assignments},
        )


EVENT_TYPES = (
    "call.created", "call.accepted", "call.sent_back", "call.visited", "call.closed", "call.cancelled",
    "call.noted", "assignment.dispatched", "assignment.acknowledged", "assignment.arrived",
    "assignment.reported", "assignment.declined", "assignment.transferred", "assignment.withdrawn",
    "assignment.accepted", "assignment.reopened", "assignment.escalated",
    "assignment.transfer_rejected", "call.lead_changed", "call.reopened", "assignment.nudged",
    "assignment.alarm_handled",
    # Delivery records of the notification outbox (docs/NOTIFICATIONS.md): on the timeline, not lifecycle steps.
    "notice.sent", "notice.failed",
)
NOTICE_EVENT_PREFIX = "notice."


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


_FIELD_NAMES: dict[type, frozenset[str]] = {}


def replace(record: R, **changes: Any) -> R:
    """``dataclasses.replace`` for these records (frozen, no ``__post_init__``, every field in ``__init__``):
    the same new record, several times faster, by copying the fields instead of calling ``__init__``."""
    cls = type(record)
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = frozenset(f.name for f in fields(cls))
    if not names.issuperset(changes):
        raise TypeError(f"{cls.__name__} has no field {', '.join(sorted(set(changes) - names))}")
    new = object.__new__(cls)
    new.__dict__.update(record.__dict__)
    new.__dict__.update(changes)
    return new
