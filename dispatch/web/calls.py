"""REST API of calls: list and detail (with timeline), and one POST per lifecycle command."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator
from starlette.requests import Request
from starlette.responses import Response

from dispatch.core import phone_search, policy
from dispatch.core.commands import COMMANDS, Command, parse_command, parse_command_fast
from dispatch.core.domain import Actor, DeadlineKind, Role
from dispatch.core.transitions import WAITING_FOR
from dispatch.store import attachments as attachment_store
from dispatch.store.eventlog import DELIVERY_COLUMNS, DELIVERY_FROM
from dispatch.store.pool import Conn
from dispatch.web.attachments import listed
from dispatch.web.routing import Req, ZhJSONResponse, endpoint
from dispatch.web.schemas import CallDetailOut, CallListOut, CommandResultOut
from protocols.errors import NotFound

SELECT_CALL = "select township_id, doc, last_seq, reporter_digits, created_at, number from calls where id = $1"
# The call's events as clients get them: ``call.created`` with its reporter joined back (eventlog.DELIVERY_COLUMNS).
SELECT_TIMELINE = f"""
select {DELIVERY_COLUMNS}
  from {DELIVERY_FROM}
 where e.call_id = $1
 order by e.seq
"""
# Newest first; calls of the same instant by id, later first (new ids are time-ordered: writer.new_id).
LIST_CALLS = """
select c.township_id, c.doc, c.last_seq
  from calls c
 where {where}
 order by c.created_at desc, c.id desc
 limit ${limit} offset ${offset}
"""
# Earlier calls of the same township from the same reporter phone (repeat caller), in creation order.
COUNT_EARLIER_FROM_PHONE = """
select count(*)
  from calls
 where township_id = $1
   and reporter_digits = $2
   and (created_at, number) < ($3, $4)
"""
# Which stored numbers a phone query may consider (see dispatch/core/phone_search.py).
PHONE_SHAPES = {
    phone_search.Shape.ANY: "true",
    phone_search.Shape.MOBILE: "c.reporter_digits ~ '^1[0-9]{10}$'",
    phone_search.Shape.SHOWS_SUFFIX: "length(c.reporter_digits) >= 8",
}
OPEN_STATES = ("intake", "dispatched", "in_progress", "review", "accepted", "visited")
# An assignment whose clock of some kind is still running (WAITING_FOR) past that kind's deadline.
OVERDUE_ASSIGNMENT = "(" + " or ".join(
    f"(a.state = any('{{{','.join(sorted(s.value for s in states))}}}'::text[]) and a.{kind.value}_due < :now)"
    for kind, states in WAITING_FOR.items() if kind is not DeadlineKind.REVIEW) + ")"  # review: the operator's clock
# An assignment escalated at some level that still counts (levels voided by an acted time are lowered).
ESCALATED_ASSIGNMENT = ("exists (select 1 from jsonb_each_text(a.doc->'levels') l"
                        " where l.key <> 'review' and l.value::int > 0)")


class CallQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    state: list[str] = Field(default=[], description="call states to include (repeatable)")
    open: bool | None = Field(default=None, description="only calls that are not closed or cancelled")
    target: str | None = Field(default=None, description="department code or unit:<id> with a part in the call")
    category: str | None = None
    priority: Literal["urgent", "normal", "low"] | None = None
    township_id: int | None = Field(default=None, ge=1, le=2**31 - 1, description="supervisors: one township")
    since: datetime | None = Field(default=None, description="created at or after (ISO-8601, years 1970–2200)")
    until: datetime | None = Field(default=None, description="created before (ISO-8601, years 1970–2200)")

    @field_validator("since", "until")
    @classmethod
    def _sane_year(cls, value: datetime | None) -> datetime | None:
        if value is not None and not 1970 <= value.year <= 2200:
            raise ValueError("year must be between 1970 and 2200")
        return value
    overdue: bool | None = Field(default=None, description="true: only calls with an assignment still past a "
                                 "deadline of a running clock (now, on the hub's clock); false: none")
    escalated: bool | None = Field(default=None, description="true: only calls with an escalated assignment "
                                   "(督办, voided levels excluded); false: none")
    q: Annotated[str | None, Field(max_length=100, description="text in number, title, address or description")] = None
    phone: Annotated[str | None, Field(
        max_length=40, description="reporter phone (repeat callers): the full number, its masked form as shown"
        " (138****5678) or its last 4 digits; readers who see masked numbers are matched on the masked form only",
    )] = None

    @field_validator("phone")
    @classmethod
    def _phone_query(cls, value: str | None) -> str | None:
        return None if value is None else phone_search.normalize(value)
    limit: Annotated[int, Field(ge=1, le=500)] = 100
    offset: Annotated[int, Field(ge=0, le=100_000)] = 0


def _scope(actor: Actor, query: CallQuery, where: list[str], args: list[Any], now: datetime) -> None:
    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    scope = policy.township_scope(actor)  # the same rule as the WebSocket's
    target = policy.target_scope(actor)
    if actor.role in policy.INTAKE_ROLES:
        where.append("false")  # they report into the intake and read no call (their own: /api/v1/reports/mine)
    if actor.role in (Role.OPERATOR, Role.LIAISON) or scope is not None:
        # An operator or liaison without a township sees nothing: `township_id = null` matches no row.
        where.append(f"c.township_id = {arg(scope)}")
    if query.township_id is not None:
        where.append(f"c.township_id = {arg(query.township_id)}")
    if target is not None:
        where.append(f"exists (select 1 from assignments a where a.call_id = c.id and a.target = {arg(target)})")
    if query.state:
        where.append(f"c.state = any({arg(query.state)}::text[])")
    if query.open:
        where.append(f"c.state = any({arg(list(OPEN_STATES))}::text[])")
    if query.target:
        where.append(f"exists (select 1 from assignments a where a.call_id = c.id and a.target = {arg(query.target)})")
    if query.category:
        where.append(f"c.category = {arg(query.category)}")
    if query.priority:
        where.append(f"c.priority = {arg(query.priority)}")
    if query.since:
        where.append(f"c.created_at >= {arg(query.since)}")
    if query.until:
        where.append(f"c.created_at < {arg(query.until)}")
    if query.phone:
        # Operators see their township's numbers in full; everyone else is matched on the masked form only.
        full_view = actor.township_id is not None and policy.sees_reporter(actor, actor.township_id)
        match = phone_search.phone_match(query.phone, full_view=full_view)
        where.append(f"(c.reporter_digits like {arg(match.like)} and {PHONE_SHAPES[match.shape]})")
    wants = query.overdue is not None or query.escalated is not None
    mine = f" and a.target = {arg(target)}" if wants and target is not None else ""
    if query.overdue is not None:
        cond = OVERDUE_ASSIGNMENT.replace(":now", arg(now))
        where.append(f"{'' if query.overdue else 'not '}exists (select 1 from assignments a"
                     f" where a.call_id = c.id{mine} and {cond})")
    if query.escalated is not None:
        where.append(f"{'' if query.escalated else 'not '}exists (select 1 from assignments a"
                     f" where a.call_id = c.id{mine} and {ESCALATED_ASSIGNMENT})")
    if query.q:
        pattern = "%" + query.q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        p = arg(pattern)
        where.append(f"(c.number ilike {p} or c.title ilike {p} or c.address ilike {p}"
                     f" or c.doc->>'description' ilike {p})")


def call_json(actor: Actor, township_id: int, doc: dict[str, Any], last_seq: int) -> dict[str, Any]:
    out = policy.redact(doc, actor, township_id)
    if policy.target_scope(actor) is not None:
        # A liaison sees its own part in full and only who else is working on the call, not their work.
        out["assignments"] = [a if a["target"] == actor.target else
                              {"id": a["id"], "call_id": a["call_id"], "target": a["target"], "state": a["state"]}
                              for a in out["assignments"]]
    out["last_seq"] = last_seq
    return out


@endpoint("GET", "/api/v1/calls", summary="List calls in scope, newest first", query=CallQuery, response=CallListOut)
async def list_calls(call: Req) -> dict[str, Any]:
    query: CallQuery = call.query
    where: list[str] = ["true"]
    args: list[Any] = []
    _scope(call.actor, query, where, args, call.hub.clock.now())
    args += [query.limit, query.offset]
    sql = LIST_CALLS.format(where=" and ".join(where), limit=len(args) - 1, offset=len(args))
    rows = await call.hub.pool.fetch(sql, *args)
    return {"calls": [call_json(call.actor, r["township_id"], r["doc"], r["last_seq"]) for r in rows],
            "limit": query.limit, "offset": query.offset}


@endpoint("GET", "/api/v1/calls/{call_id:uuid}", summary="One call with its assignments and timeline",
          response=CallDetailOut)
async def get_call(call: Req) -> dict[str, Any]:
    call_id: UUID = call.request.path_params["call_id"]
    actor = call.actor
    async with call.hub.pool.acquire() as conn:
        row = await conn.fetchrow(SELECT_CALL, call_id)
        if row is None:
            raise NotFound(f"no call {call_id}", field="call_id")
        targets = {a["target"] for a in row["doc"]["assignments"]}
        if not policy.visible_to(actor, row["township_id"], targets):
            raise NotFound(f"no call {call_id}", field="call_id")  # do not confirm it exists
        events = await conn.fetch(SELECT_TIMELINE, call_id)
        evidence = await attachment_store.for_call(conn, call_id)
        repeat = await _earlier_from_phone(conn, actor, row["township_id"], row["reporter_digits"],
                                           row["created_at"], row["number"])
    timeline = [
        {"seq": e["seq"], "type": e["type"],
         "assignment_id": None if e["assignment_id"] is None else str(e["assignment_id"]),
         "actor": {"id": e["actor_id"], "role": e["actor_role"], "name": e["actor_name"]},
         "at": e["at"].isoformat(), "body": policy.redact(e["body"], actor, row["township_id"]),
         "call_state": e["call_state"], "assignment_state": e["assignment_state"]}
        for e in events if policy.visible_to(actor, row["township_id"], e["audience"])
    ]
    out = call_json(actor, row["township_id"], row["doc"], row["last_seq"])
    out["timeline"] = timeline
    out["repeat_calls"] = repeat
    out["attachments"] = listed(actor, row["township_id"], tuple(sorted(targets)), evidence)
    return out


async def _earlier_from_phone(conn: Conn, actor: Actor, township_id: int, digits: str | None, created_at: datetime,
                              number: str) -> int | None:
    """How many earlier calls of the township came from this call's reporter phone (a count, never a number);
    None without a phone, and for liaisons, who see only their own department's calls."""
    if actor.role == Role.LIAISON or digits is None:
        return None
    count: int = await conn.fetchval(COUNT_EARLIER_FROM_PHONE, township_id, digits, created_at, number)
    return count


# -- commands ----------------------------------------------------------------------------------

def _body_model(kind: str, path_field: str | None) -> type[BaseModel]:
    """The command's model without ``kind`` and the id that the path carries (for validation and OpenAPI)."""
    source = COMMANDS[kind]
    fields: dict[str, Any] = {name: (f.annotation, f) for name, f in source.model_fields.items()
                              if name not in ("kind", path_field)}
    name = "".join(p.capitalize() for p in kind.split("_")) + "Body"
    model: type[BaseModel] = create_model(name, __config__=ConfigDict(extra="forbid", str_strip_whitespace=True),
                                          **fields)
    model.__doc__ = source.__doc__
    return model


def _command_endpoint(kind: str, path: str, path_field: str | None, summary: str, status: int = 200) -> None:
    body_model = _body_model(kind, path_field)

    def fast(data: dict[str, Any], request: Request) -> Command | None:
        if path_field is not None:
            if path_field in data:
                return None  # refused by the body model, as before
            data = {**data, path_field: str(request.path_params[path_field])}
        return parse_command_fast(kind, data)

    async def run(call: Req) -> Response:
        if type(call.body) is body_model:  # the body model's, then the command's validation (and its errors)
            data = call.body.model_dump(exclude_unset=True)
            if path_field is not None:
                data[path_field] = str(call.request.path_params[path_field])
            cmd = parse_command(kind, data)
        else:
            cmd = call.body
        store = call.hub.store
        assert store is not None
        outcome = await store.execute(call.actor, cmd)
        return ZhJSONResponse({**outcome.result, "replayed": outcome.replayed},
                              status_code=200 if outcome.replayed else status)

    run.__name__ = kind
    # A grid worker reports (create_call only: dispatch.core.policy refuses the rest).
    roles = [Role.OPERATOR, Role.LIAISON, Role.GRID_WORKER] if kind == "create_call" else [Role.OPERATOR, Role.LIAISON]
    endpoint("POST", path, summary=summary, tags=["commands"], body=body_model, status=status,
             roles=roles, response=CommandResultOut, fast_body=fast)(run)


_command_endpoint("create_call", "/api/v1/calls", None, "Create a call (问), optionally dispatching it (派)", 201)
for _kind, _summary in (
    ("dispatch", "Dispatch the call to more departments or units (joint enforcement)"),
    ("accept", "Review: accept the reported results (审)"),
    ("send_back", "Review: send results back with a reason"),
    ("return_visit", "Record the return visit (回)"),
    ("close", "Close the call"),
    ("cancel", "Cancel the call with a reason"),
    ("note", "Add a note"),
    ("set_lead", "Make one assignment the lead (主办); the others are supporting (协办)"),
):
    _command_endpoint(_kind, f"/api/v1/calls/{{call_id:uuid}}/{_kind}", "call_id", _summary)
for _kind, _summary in (
    ("acknowledge", "Acknowledge the assignment (响应)"),
    ("arrive", "Report on scene (报到)"),
    ("report_result", "Report the result (办结)"),
    ("decline", "Decline: not ours, with a reason (转)"),
    ("reroute", "Approve a transfer request: re-route to another department, with a reason"),
    ("withdraw", "Withdraw the assignment"),
    ("reject_transfer", "Reject a transfer request with a reason (驳回); the department's clocks resume"),
    ("nudge", "Nudge the department on this assignment (催办): told through every channel, logged"),
    ("handle_alarm", "Take an escalation alarm: it stops sounding on the other operators' consoles"),
):
    _command_endpoint(_kind, f"/api/v1/assignments/{{assignment_id:uuid}}/{_kind}", "assignment_id", _summary)
