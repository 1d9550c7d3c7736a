"""Vocabulary shared by every module: roles, priorities, sources, deadline kinds, the acting user."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    OPERATOR = "operator"
    LIAISON = "liaison"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"
    LEADER = "leader"  # 镇街领导: reads the evaluation (and the record) of one township
    DEPARTMENT_HEAD = "department_head"  # 部门负责人: one county department across every township
    GRID_WORKER = "grid_worker"  # 网格员: reports matters from their township's grids into its intake
    INTEGRATION = "integration"  # an outside system (Open311 client, the 12345 hotline) feeding the intake
    SYSTEM = "system"  # the SLA engine; never a login


class Priority(StrEnum):
    URGENT = "urgent"
    NORMAL = "normal"
    LOW = "low"


class Source(StrEnum):
    HOTLINE_12345 = "hotline_12345"
    GRID = "grid"
    RESIDENT_APP = "resident_app"
    MINI_PROGRAM = "mini_program"
    WALK_IN = "walk_in"
    PATROL = "patrol"


class DeadlineKind(StrEnum):
    ACK = "ack"  # 响应
    ARRIVE = "arrive"  # 报到
    RESOLVE = "resolve"  # 办结
    REVIEW = "review"  # the operator's side: a transfer request (转) waiting to be approved or rejected


# The department's own clocks (evaluated per department); ``review`` is the command centre's.
DEPARTMENT_KINDS: tuple[DeadlineKind, ...] = (DeadlineKind.ACK, DeadlineKind.ARRIVE, DeadlineKind.RESOLVE)


# The "7": county departments stationed in every township. Names live in the configuration.
DEPARTMENTS: tuple[str, ...] = ("enforcement", "police", "justice", "market", "land", "transport", "fire")


def unit_target(unit_id: int) -> str:
    """Audience/target code of a township's own force (the "N")."""
    return f"unit:{unit_id}"


@dataclass(frozen=True, slots=True)
class Actor:
    """Who is acting, as established server-side from the session; never from the request body."""

    user_id: int | None
    role: Role
    township_id: int | None = None
    department: str | None = None  # liaisons and the head of a county department
    unit_id: int | None = None  # liaisons of a township unit ("N")
    team_lead: bool = False
    name: str = ""
    grid_id: int | None = None  # a grid worker's grid (users.grid_id): their reports are filed under it

    @property
    def target(self) -> str | None:
        """The assignment target this liaison answers for: a department code or ``unit:<id>``."""
        if self.department is not None:
            return self.department
        if self.unit_id is not None:
            return unit_target(self.unit_id)
        return None


SYSTEM_ACTOR = Actor(user_id=None, role=Role.SYSTEM, name="system")
