"""The one place that decides what a role may do (``authorize``) and may see (``visible_to``, ``redact``)."""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from dispatch.core.commands import command_assignment_id
from dispatch.core.domain import Actor, Role, Source
from dispatch.core.transitions import ASSIGNMENT_FINAL
from protocols.errors import Forbidden, NotFound

if TYPE_CHECKING:
    from dispatch.core.commands import Command, CreateCall
    from dispatch.core.records import Assignment, Call

OPERATOR_COMMANDS = frozenset({
    "create_call", "dispatch", "reroute", "withdraw", "accept", "send_back", "return_visit", "close",
    "cancel", "note", "reject_transfer", "set_lead", "nudge",
    "handle_alarm",
})
LIAISON_COMMANDS = frozenset({"acknowledge", "arrive", "report_result", "decline"})
SYSTEM_COMMANDS = frozenset({"escalate"})
# Roles that only feed a township's intake (问): they create calls with no department called, which the
# command centre then dispatches; they never read the live stream or act on a call.
INTAKE_ROLES = frozenset({Role.GRID_WORKER, Role.INTEGRATION})
READ_ONLY_ROLES = frozenset({Role.SUPERVISOR, Role.ADMIN, Role.LEADER, Role.DEPARTMENT_HEAD})
# Roles that read the record of one target (a department code or ``unit:<id>``) only.
TARGET_SCOPED_ROLES = frozenset({Role.LIAISON, Role.DEPARTMENT_HEAD})
# Roles that may export a township's raw event log (within their township scope). The raw log is every
# event unfiltered (reporters' names and phones are not in it: only their salted digest); a part filtered for a
# department head would not verify, and operators and liaisons work calls, they do not audit them.
LOG_EXPORT_ROLES = frozenset({Role.ADMIN, Role.SUPERVISOR, Role.LEADER})


def authorize_kind(actor: Actor, kind: str) -> None:
    """The checks that need no call: run before a command's arguments are read, so a read-only scope is
    told ``forbidden`` (not ``not_found`` or ``validation``) and only the SLA engine may escalate."""
    if actor.role in READ_ONLY_ROLES:
        raise Forbidden(f"a {actor.role.value} has read-only access to calls and cannot {kind}")
    if kind in SYSTEM_COMMANDS and actor.role != Role.SYSTEM:
        raise Forbidden(f"only the SLA engine may {kind}")


def township_scope(actor: Actor) -> int | None:
    """The one township ``actor`` may see, or None for the whole county (REST and WebSocket alike).

    Every account attached to a township (operators, liaisons, a supervisor added with ``--township``)
    sees that township only; only an account without one (a county supervisor, an admin) sees them all.
    """
    if actor.role == Role.SYSTEM:
        return None
    return actor.township_id


def target_scope(actor: Actor) -> str | None:
    """The one target whose part in calls ``actor`` may read (a liaison's or a department head's), or None
    for every target. An account of such a role without a target reads nothing (``""`` matches none)."""
    if actor.role in TARGET_SCOPED_ROLES:
        return actor.target or ""
    return None


def is_read_only(actor: Actor) -> bool:
    """Whether ``actor`` may only read (never send a command)."""
    return actor.role in READ_ONLY_ROLES


def authorize_log_export(actor: Actor, township_id: int) -> None:
    """Raise ``Forbidden`` unless ``actor``'s role may export raw logs; ``NotFound`` for a township outside
    its scope (as for a call there: an export never confirms that a township it may not read exists)."""
    if actor.role not in LOG_EXPORT_ROLES:
        raise Forbidden(f"a {actor.role.value} may not export the raw event log")
    scope = township_scope(actor)
    if scope is not None and scope != township_id:
        raise NotFound(f"no township {township_id}", field="township_id")


# Who reads a township's duty roster (who answers for each department, who is online): its operators,
# who dispatch to them, and supervisors. Liaisons' phones are shown in full to the township's operators only.
DUTY_ROLES = frozenset({Role.OPERATOR, Role.SUPERVISOR})
# Who reads whether the notification channels deliver (the operator console's warning): operators for their
# township, supervisors and admins within their scope.
NOTIFY_STATUS_ROLES = frozenset({Role.OPERATOR, Role.SUPERVISOR, Role.ADMIN})


def township_read(actor: Actor, township_id: int | None, roles: Collection[Role], what: str) -> int | None:
    """The township a per-township read by ``actor`` covers (None: the whole county): ``Forbidden`` for a
    role not in ``roles``; ``NotFound`` for a township outside its scope (as an export answers); an account
    attached to a township reads its own when none is named."""
    if actor.role not in roles:
        raise Forbidden(f"a {actor.role.value} may not read {what}")
    scope = township_scope(actor)
    if scope is None:
        return township_id
    if township_id is not None and township_id != scope:
        raise NotFound(f"no township {township_id}", field="township_id")
    return scope


def sees_liaison_phones(actor: Actor, township_id: int) -> bool:
    """Whether ``actor`` sees the phone numbers of ``township_id``'s liaisons in full (its operators)."""
    return actor.role == Role.OPERATOR and actor.township_id == township_id


def not_found(cmd: Command, call: Call) -> NotFound:
    """The error a command gets for something its actor may not see: the same as for one that does
    not exist, so a command never confirms that a foreign call or assignment exists."""
    aid = command_assignment_id(cmd)
    if aid is not None:
        return NotFound(f"no assignment {aid}", field="assignment_id")
    return NotFound(f"no call {call.id}", field="call_id")


def authorize(actor: Actor, cmd: Command, call: Call | None, assignment: Assignment | None, *,
              township_id: int | None = None) -> None:
    """Raise ``Forbidden`` unless ``actor`` may send ``cmd``; ``NotFound`` (as a read would) when
    ``actor`` may not even see the call.

    ``township_id`` names the township of a call about to be created (``call`` is None then);
    otherwise the call's own township is used.
    """
    kind = cmd.kind
    if call is not None and not can_read_call(actor, call):
        raise not_found(cmd, call)
    if actor.role in READ_ONLY_ROLES:
        raise Forbidden(f"a {actor.role.value} has read-only access to calls and cannot {kind}")
    if actor.role == Role.SYSTEM:
        if kind not in SYSTEM_COMMANDS:
            raise Forbidden(f"the system actor may only escalate, not {kind}")
        return
    if kind in SYSTEM_COMMANDS:
        raise Forbidden(f"only the SLA engine may {kind}")
    township = call.township_id if call is not None else township_id
    if actor.township_id is None or township is None or actor.township_id != township:
        raise Forbidden("this call belongs to another township")
    if actor.role == Role.OPERATOR:
        if kind not in OPERATOR_COMMANDS:
            raise Forbidden(f"only the liaison of the assigned department may {kind}")
        return
    if actor.role in INTAKE_ROLES:
        _authorize_intake(actor, cmd)
        return
    if actor.role != Role.LIAISON:
        raise Forbidden(f"role {actor.role.value} cannot {kind}")
    target = actor.target
    if target is None:
        raise Forbidden("this liaison account is not attached to a department or unit")
    if kind in LIAISON_COMMANDS:
        if assignment is None or assignment.target != target:
            raise Forbidden(f"this assignment is not for {target}")
        return
    if kind == "note":
        # Only while the department is working on the call: a withdrawn, transferred or accepted
        # assignment leaves it able to read the call, not to add to it.
        if call is None or not any(a.target == target and a.state not in ASSIGNMENT_FINAL
                                   for a in call.assignments.values()):
            raise Forbidden(f"{target} has no open assignment on this call")
        if assignment is not None and assignment.target != target:
            raise Forbidden(f"this assignment is not for {target}")
        return
    raise Forbidden(f"a liaison cannot {kind}; ask the command centre")


def _authorize_intake(actor: Actor, cmd: Command) -> None:
    """A grid worker or an outside system reports a matter (``create_call``) and nothing else; who handles
    it is the command centre's decision (派), so it names no department."""
    if cmd.kind != "create_call":
        raise Forbidden(f"a {actor.role.value} reports matters to the command centre and cannot {cmd.kind}")
    if getattr(cmd, "targets", None):
        raise Forbidden("targets: a report goes to the command centre, which decides who handles it",
                        field="targets")


def report_grid(actor: Actor, cmd: CreateCall) -> int | None:
    """The grid a new call is filed under: a grid worker's own (from the session, never from the request:
    naming another is ``Forbidden``) with source ``grid``; for everyone else the ``grid_id`` sent."""
    if actor.role != Role.GRID_WORKER:
        return cmd.grid_id
    if cmd.source != Source.GRID:
        raise Forbidden("source: a grid worker's reports have source grid", field="source")
    if cmd.grid_id is not None and cmd.grid_id != actor.grid_id:
        raise Forbidden("grid_id: a grid worker reports from their own grid", field="grid_id")
    return actor.grid_id


def visible_to(actor: Actor, township_id: int, audience: Collection[str]) -> bool:
    """Whether ``actor`` may see an event of ``township_id`` addressed to ``audience``."""
    if actor.role == Role.SYSTEM:
        return True
    scope = township_scope(actor)
    if scope is not None and scope != township_id:
        return False
    if actor.role == Role.DEPARTMENT_HEAD:
        return actor.target is not None and actor.target in audience
    if actor.role in READ_ONLY_ROLES:
        return True
    if actor.township_id is None:
        return False
    if actor.role == Role.OPERATOR:
        return True
    if actor.role == Role.LIAISON:
        return actor.target is not None and actor.target in audience
    return False


# Whom an actor's live stream is for: (township, target). The township is None for every township, the target
# None for every event of it; ``listen_key`` returns None for an actor that sees no event at all.
ListenKey = tuple[int | None, str | None]


def listen_key(actor: Actor) -> ListenKey | None:
    """The events ``actor`` sees, as an index key: exactly those of township ``key[0]`` (any when None) whose
    audience names ``key[1]`` (any when None); None: none. The same rule as ``visible_to`` (tested against
    it for every role), so the fan-out can look subscribers up by key instead of asking each one."""
    if actor.role == Role.SYSTEM:
        return None, None
    scope = township_scope(actor)
    if actor.role in TARGET_SCOPED_ROLES:
        if actor.target is None or (actor.role == Role.LIAISON and actor.township_id is None):
            return None
        return scope, actor.target
    if actor.role in READ_ONLY_ROLES:
        return scope, None
    if actor.township_id is None:
        return None
    if actor.role == Role.OPERATOR:
        return scope, None
    return None


def can_read_call(actor: Actor, call: Call) -> bool:
    """Whether ``actor`` may read ``call`` (a liaison: only calls its target has or had a part in)."""
    return visible_to(actor, call.township_id, call.targets())


# Roles that upload evidence (photos, PDFs) for the commands they send.
UPLOAD_ROLES = frozenset({Role.OPERATOR, Role.LIAISON, Role.GRID_WORKER, Role.INTEGRATION})


def can_read_attachment(actor: Actor, *, uploaded_by: int, township_id: int, step: str | None,
                        call_targets: Collection[str], step_audience: Collection[str]) -> bool:
    """Whether ``actor`` may see an uploaded file: its uploader always (a grid worker sees the photo of their
    own report); otherwise only once bound to a call, and then as the step it came with is read: a photo of
    the intake by whoever may read the call (the departments dispatched later too), a photo of a
    department's 报到 or 办结 by whoever sees that department's events (not the call's other departments)."""
    if actor.user_id is not None and actor.user_id == uploaded_by:
        return True
    if step is None:
        return False
    if step == "intake":
        return visible_to(actor, township_id, call_targets)
    return visible_to(actor, township_id, step_audience)


def mask_phone(phone: str) -> str:
    """``13812345678`` → ``138****5678`` (mobile); any other number keeps only its last four digits."""
    digits = "".join(ch for ch in phone if ch.isdigit())
    if len(digits) == 11 and digits.startswith("1"):
        return digits[:3] + "****" + digits[-4:]
    if len(digits) < 8:
        return "*" * len(digits)
    return "****" + digits[-4:]


def mask_name(name: str) -> str:
    """``张三丰`` → ``张**``: only the first character stays."""
    if len(name) <= 1:
        return "*" * len(name)
    return name[0] + "*" * (len(name) - 1)


def _masked(value: Any) -> Any:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if key == "reporter_phone" and isinstance(item, str):
                out[key] = mask_phone(item)
            elif key == "reporter_name" and isinstance(item, str):
                out[key] = mask_name(item)
            else:
                out[key] = _masked(item)
        return out
    if isinstance(value, list):
        return [_masked(item) for item in value]
    return value


def _copied(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _copied(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copied(item) for item in value]
    return value


def sees_reporter(actor: Actor, township_id: int) -> bool:
    """Whether ``actor`` sees the reporter's name and phone of ``township_id``'s calls in full."""
    return actor.role == Role.OPERATOR and actor.township_id == township_id


def redact(body_or_call_dict: dict[str, Any], actor: Actor, township_id: int) -> dict[str, Any]:
    """A copy with the reporter's name and phone masked, unless ``actor`` operates ``township_id``."""
    if sees_reporter(actor, township_id):
        result: dict[str, Any] = _copied(body_or_call_dict)
    else:
        result = _masked(body_or_call_dict)
    return result


EVALUATION_ROLES = frozenset({Role.SUPERVISOR, Role.ADMIN, Role.LEADER, Role.DEPARTMENT_HEAD})


def evaluation_scope(actor: Actor, township_id: int | None, target: str | None) -> tuple[int | None, str | None]:
    """The township and target an evaluation request of ``actor`` covers (None: all), or ``Forbidden``.

    Scorecards, drill-downs, trends and their exports share this rule: a county supervisor and an admin see
    every township; a township leader (or a supervisor attached to a township) only theirs; a department
    head only their department, in every township. Operators and liaisons are evaluated, they do not read
    the evaluation."""
    if actor.role not in EVALUATION_ROLES:
        raise Forbidden(f"a {actor.role.value} cannot read the evaluation (supervisors, township leaders and "
                        "department heads can)")
    own_township = township_scope(actor)
    if own_township is not None:
        if township_id is not None and township_id != own_township:
            raise Forbidden(f"township_id: your evaluation scope is township {own_township}", field="township_id")
        township_id = own_township
    own_target = target_scope(actor)
    if own_target is not None:
        if target is not None and target != own_target:
            raise Forbidden(f"target: your evaluation scope is {own_target or 'no department'}", field="target")
        target = own_target
    return township_id, target
