"""Pure SLA rules: which escalation an assignment waits for next, and when (no I/O, no clock)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from dispatch.core.config import Config
from dispatch.core.domain import DEPARTMENT_KINDS, DeadlineKind
from dispatch.core.records import Assignment
from dispatch.core.transitions import ASSIGNMENT_TRANSITIONS, CLOCK_STOPPED_BY, RECORD_MISSED, AssignmentState

A = AssignmentState
# The deadline kinds an assignment in a given state is still waiting on.
WAITING: dict[AssignmentState, tuple[DeadlineKind, ...]] = {
    A.DISPATCHED: (DeadlineKind.ACK, DeadlineKind.ARRIVE, DeadlineKind.RESOLVE),
    A.ACKNOWLEDGED: (DeadlineKind.ARRIVE, DeadlineKind.RESOLVE),
    A.ON_SCENE: (DeadlineKind.RESOLVE,),
    A.DECLINED: (DeadlineKind.REVIEW,),  # the operator's clock on a transfer request
}


@dataclass(frozen=True, slots=True)
class NextEscalation:
    due: datetime  # when the level fires: deadline + the rung's delay
    kind: DeadlineKind
    level: int  # the level it would reach (1-based)
    deadline: datetime
    missed: bool = False  # fell due before the department stopped this clock: recorded late, once


# The ``Assignment`` field holding each kind's deadline.
DEADLINE_FIELD: dict[DeadlineKind, str] = {DeadlineKind.ACK: "ack_due", DeadlineKind.ARRIVE: "arrive_due",
                                           DeadlineKind.RESOLVE: "resolve_due", DeadlineKind.REVIEW: "review_due"}


def deadline_of(a: Assignment, kind: DeadlineKind) -> datetime | None:
    """The deadline of one kind (``review`` only while a transfer request waits, else None)."""
    value: datetime | None = getattr(a, DEADLINE_FIELD[kind])
    return value


def stopped_at(a: Assignment, kind: DeadlineKind) -> datetime | None:
    """When the department stopped this kind's clock (acknowledged, arrived, reported), if it did."""
    name = CLOCK_STOPPED_BY.get(kind)
    value: datetime | None = None if name is None else getattr(a, name)
    return value


def next_escalation(a: Assignment, cfg: Config) -> NextEscalation | None:
    """The earliest rung still to be written for this assignment, or None when nothing can escalate.

    Besides the rungs of the clocks still running, a rung that fell due before its clock stopped and was
    never written (the hub could not reach the database in time) is still owed: it is returned, with its
    past ``due``, marked ``missed``, so that it is recorded once after the fact."""
    best: NextEscalation | None = None
    waiting = WAITING.get(a.state, ())
    kinds = (*DEPARTMENT_KINDS, DeadlineKind.REVIEW) if a.state == A.DECLINED else DEPARTMENT_KINDS
    for kind in kinds:
        level = a.levels.get(kind.value, 0)
        delays = _delays(cfg, kind, a.sla_version(kind.value))  # the ladder its clock was started under
        deadline = deadline_of(a, kind)
        if level >= len(delays) or deadline is None:
            continue
        due = deadline + delays[level]
        missed = kind not in waiting
        if missed:
            stop = stopped_at(a, kind)
            if (a.state, RECORD_MISSED) not in ASSIGNMENT_TRANSITIONS or stop is None or due >= stop:
                continue
        if best is None or due < best.due:
            best = NextEscalation(due, kind, level + 1, deadline, missed)
    return best


# The delays of each ladder by (kind, SLA version), worked out once per configuration in effect: ``Config.ladder``
# reads pydantic's private attributes and copies the ladder on every call, and a batch of escalations asks it three
# times per assignment it writes (the projection's next rung). A configuration is never changed once in effect
# (``settings.effective`` builds a new one), so its identity keys the memo.
_delays_of: tuple[Config, dict[tuple[DeadlineKind, int], tuple[timedelta, ...]]] | None = None


def _delays(cfg: Config, kind: DeadlineKind, version: int) -> tuple[timedelta, ...]:
    """``cfg.ladder(kind, version)``'s delays after the deadline, level by level."""
    global _delays_of
    memo = _delays_of
    if memo is None or memo[0] is not cfg:
        memo = _delays_of = (cfg, {})
    delays = memo[1].get((kind, version))
    if delays is None:
        delays = memo[1][(kind, version)] = tuple(timedelta(seconds=r.after_s) for r in cfg.ladder(kind, version))
    return delays
