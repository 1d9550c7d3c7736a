"""The shapes of REST responses, for the OpenAPI document (``response=`` on each endpoint).

Handlers build plain dicts on the hot path; ``tests/test_openapi.py`` validates real responses against
these models, so the document and the hub cannot drift apart. Calls allow extra fields: later event
types add fields to a call's document, and clients must ignore what they do not know.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ScopeOut(_Out):
    township_ids: list[int] | Literal["all"]
    target: str | None
    read_only: bool


class UserOut(_Out):
    id: int | None
    username: str
    name: str
    role: str
    township_id: int | None
    department: str | None
    unit_id: int | None
    target: str | None
    team_lead: bool
    scope: ScopeOut


class LoginOut(_Out):
    user: UserOut
    token: str | None = None  # only with "client": "token"


class OkOut(_Out):
    ok: bool


class NamedOut(_Out):
    code: str
    name_zh: str
    name_en: str


class CategoryOut(NamedOut):
    route: list[str]


class TownshipOut(_Out):
    id: int
    code: str
    name_zh: str
    name_en: str
    departments: list[str]
    units: list[dict[str, Any]]


class ReferenceOut(_Out):
    townships: list[TownshipOut]
    departments: list[NamedOut]
    categories: list[CategoryOut]
    priorities: list[str]
    sources: list[str]
    sla: dict[str, Any]


class AssignmentOut(BaseModel):
    """A liaison sees other departments' parts as ``id``, ``call_id``, ``target`` and ``state`` only."""

    model_config = ConfigDict(extra="allow")
    id: str
    call_id: str
    target: str
    state: str


class CallOut(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str
    township_id: int
    number: str
    state: str
    source: str
    category: str
    title: str
    description: str
    address: str
    priority: str
    created_at: str
    updated_at: str
    closed_at: str | None
    reporter_name: str | None
    reporter_phone: str | None  # masked for everyone but the township's operators
    assignments: list[AssignmentOut]
    last_seq: int


class ActorOut(_Out):
    id: int | None
    role: str
    name: str


class TimelineOut(_Out):
    seq: int
    type: str
    assignment_id: str | None
    actor: ActorOut
    at: str
    body: dict[str, Any]
    call_state: str | None
    assignment_state: str | None


class CallDetailOut(CallOut):
    timeline: list[TimelineOut]
    # Earlier calls of the township from the same reporter phone (repeat caller); null without a phone or
    # for liaisons.
    repeat_calls: int | None


class CallListOut(_Out):
    calls: list[CallOut]
    limit: int
    offset: int


class EventRefOut(_Out):
    seq: int
    type: str
    assignment_id: str | None


class CommandResultOut(_Out):
    """The answer to every command: 201/200 the first time, 200 with ``replayed: true`` for a retry."""

    command_id: str
    call_id: str
    number: str
    call_state: str
    events: list[EventRefOut]
    replayed: bool
