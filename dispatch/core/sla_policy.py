"""Pure SLA rules: which escalation an assignment waits for next, and when (no I/O, no clock)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from dispatch.core.config import Config
from dispatch.core.domain import DeadlineKind
from dispatch.core.records import Assignment
from dispatch.core.transitions import AssignmentState

A = AssignmentState
# The deadline kinds an assignment in a given state is still waiting on.
WAITING: dict[AssignmentState, tuple[DeadlineKind, ...]] = {
    A.DISPATCHED: (DeadlineKind.ACK, DeadlineKind.ARRIVE, DeadlineKind.RESOLVE),
    A.ACKNOWLEDGED: (DeadlineKind.ARRIVE, DeadlineKind.RESOLVE),
    A.ON_SCENE: (DeadlineKind.RESOLVE,),
}


@dataclass(frozen=True, slots=True)
class NextEscalation:
    due: datetime  # when the level fires: deadline + the rung's delay
    kind: DeadlineKind
    level: int  # the level it would reach (1-based)
    deadline: datetime


def deadline_of(a: Assignment, kind: DeadlineKind) -> datetime:
    return {DeadlineKind.ACK: a.ack_due, DeadlineKind.ARRIVE: a.arrive_due,
            DeadlineKind.RESOLVE: a.resolve_due}[kind]


def next_escalation(a: Assignment, cfg: Config) -> NextEscalation | None:
    """The earliest rung still ahead of this assignment, or None when nothing can escalate."""
    best: NextEscalation | None = None
    for kind in WAITING.get(a.state, ()):
        level = a.levels.get(kind.value, 0)
        ladder = cfg.sla.ladder[kind]
        if level >= len(ladder):
            continue
        deadline = deadline_of(a, kind)
        due = deadline + timedelta(seconds=ladder[level].after_s)
        if best is None or due < best.due:
            best = NextEscalation(due, kind, level + 1, deadline)
    return best
