"""The shapes of REST responses, for the OpenAPI document (``response=`` on each endpoint).

Handlers build plain dicts on the hot path; ``tests/test_openapi.py`` validates real responses against
these models, so the document and the hub cannot drift apart. Calls allow extra fields: later event
types add fields to a call's document, and clients must ignore what they do not know.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


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
    retired: bool = False  # kept for the calls that name it; new calls cannot use it


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


class AttachmentOut(_Out):
    """An uploaded photo or PDF (``POST /api/v1/attachments``): name its ``id`` in a command."""

    id: str
    sha256: str = Field(description="SHA-256 of the bytes, hex; recorded in the event that attaches it")
    content_type: Literal["image/jpeg", "image/png", "image/webp", "application/pdf"] = Field(
        description="told from the bytes, never from the file name or the request's Content-Type")
    size: int
    width: int | None
    height: int | None
    url: str
    thumbnail_url: str | None = Field(description="a JPEG at most [attachments] thumbnail_px wide; null for a PDF")


class CallAttachmentOut(AttachmentOut):
    """An attachment of a call, with the step it came with."""

    step: Literal["intake", "arrive", "report_result"]
    assignment_id: str | None = Field(description="the department's assignment for arrive / report_result")
    seq: int = Field(description="the event (of the township's log) that recorded its digest")
    uploaded_at: str


class CallDetailOut(CallOut):
    timeline: list[TimelineOut]
    # Earlier calls of the township from the same reporter phone (repeat caller); null without a phone or
    # for liaisons.
    repeat_calls: int | None
    # The photos and PDFs of the steps the reader may see (the intake's, and each visible department's).
    attachments: list[CallAttachmentOut]


class StateNameOut(_Out):
    zh: str
    en: str


class ReportOut(_Out):
    """One of my reports (a call I created), as its reporter follows it."""

    call_id: str
    number: str
    title: str
    category: str
    address: str
    grid_id: int | None
    state: str
    state_name: StateNameOut = Field(description="the state in the glossary's words")
    created_at: str
    updated_at: str
    attachments: list[AttachmentOut]


class ReportListOut(_Out):
    reports: list[ReportOut]
    limit: int


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


# -- evaluation (docs/EVALUATION.md) ------------------------------------------------------------

class PeriodOut(_Out):
    from_: str = Field(alias="from")
    to: str
    month: str | None
    label: str
    start: str
    end: str


class EvalScopeOut(_Out):
    township_id: int | None
    target: str | None


class TownshipNameOut(_Out):
    township_id: int
    code: str
    name_zh: str
    name_en: str


class ClockOut(_Out):
    on_time: int
    late: int
    missed: int
    pending: int
    excluded: int
    due: int
    rate: float | None
    timed: int
    p50_ms: int | None
    p90_ms: int | None
    box_ms: list[int | None] | None


class ComponentOut(_Out):
    rate: str
    weight: float
    effective_weight: float
    value: float | None
    points: float | None


class ScoreOut(_Out):
    value: float | None
    components: list[ComponentOut]
    formula: str


class ScorecardRowOut(BaseModel):
    model_config = ConfigDict(extra="allow")  # the row's label: a target's or a township's names
    key: EvalScopeOut
    name_zh: str
    name_en: str
    received: int
    open: int
    lead: int
    response: ClockOut
    arrive: ClockOut
    result: ClockOut
    excluded: int
    transfers: dict[str, int]
    send_backs: int
    reopened: int
    adjusted_times: int
    escalations: dict[str, dict[str, int]]
    visits: dict[str, int]
    rates: dict[str, float | None]
    score: ScoreOut
    rank: int | None
    previous: dict[str, Any]
    change: dict[str, float | int | None]


class ScorecardsOut(_Out):
    period: PeriodOut
    previous_period: PeriodOut
    as_of: str
    group: Literal["target", "township"]
    scope: EvalScopeOut
    township: TownshipNameOut | None
    preset: str
    weights: dict[str, float]
    presets: list[str]
    figures: list[str]
    rows: list[ScorecardRowOut]


class DrillAssignmentOut(BaseModel):
    model_config = ConfigDict(extra="allow")
    assignment_id: str
    call_id: str
    number: str
    township_id: int
    target: str
    dispatched_at: str
    clocks: dict[str, dict[str, Any]]
    ended: dict[str, Any] | None
    escalations: dict[str, list[int]]
    visit: dict[str, Any] | None


class DrillDownOut(_Out):
    period: PeriodOut
    as_of: str
    figure: str
    scope: EvalScopeOut
    total: int
    limit: int
    offset: int
    assignments: list[DrillAssignmentOut]


class ScoreSeriesOut(BaseModel):
    model_config = ConfigDict(extra="allow")
    target: str
    name_zh: str
    name_en: str
    scores: list[float | None]


class ScoreTrendOut(_Out):
    months: list[str]
    as_of: str
    preset: str
    scope: EvalScopeOut
    series: list[ScoreSeriesOut]


class TrendsOut(_Out):
    months: list[str]
    as_of: str
    scope: EvalScopeOut
    last_month: str
    categories: list[dict[str, Any]]
    townships: list[dict[str, Any]]
    grids: list[dict[str, Any]]
    places: list[dict[str, Any]]


# -- the exported event log (docs/EXPORT.md) ----------------------------------------------------

class ExportedEventOut(_Out):
    """One line of an exported event log (docs/EXPORT.md): every column of the event, as hashed. Reporters'
    names and phones are not in it: ``call.created`` carries their salted ``reporter_digest``."""

    township_id: int
    seq: int
    call_id: str | None
    assignment_id: str | None
    type: str
    actor_id: int | None
    actor_role: str
    actor_name: str
    at: str  # UTC, YYYY-MM-DDTHH:MM:SS.ffffffZ
    body: dict[str, Any]  # as chained: call.created has reporter_digest, never the reporter's name or phone
    audience: list[str]
    call_state: str | None
    assignment_state: str | None
    command_id: str | None
    prev_hash: str  # lowercase hex; "" for the township's first event
    hash: str  # lowercase hex SHA-256 of the raw prev_hash bytes followed by the canonical encoding


class PushKeyOut(_Out):
    enabled: bool  # this hub sends Web Push and this account wants it: the page may offer to subscribe
    public_key: str | None  # the VAPID public key (base64url): PushManager.subscribe's applicationServerKey
    reason: Literal["off", "not_for_this_account"] | None  # why not, when not enabled


class PushSubscribedOut(_Out):
    ok: bool
    id: int
    created: bool  # false: the same endpoint was stored already (now bound to this account)


class PushUnsubscribedOut(_Out):
    ok: bool
    removed: bool  # false: this account had no such subscription


# -- who is on duty, and whether the notification channels deliver ------------------------------

class DutyLiaisonOut(_Out):
    id: int
    name: str
    team_lead: bool
    phone: str | None  # in full for the township's operators, masked (138****5678) for everyone else
    online: bool  # connected to the hub now (any node)


class DutyTargetOut(_Out):
    target: str  # department code or unit:<id>
    kind: Literal["department", "unit"]
    name_zh: str
    name_en: str
    online: int  # liaisons connected now
    liaisons: list[DutyLiaisonOut]


class DutyOut(_Out):
    township_id: int
    as_of: str
    phones: Literal["full", "masked"]
    targets: list[DutyTargetOut]


class ChannelStatusOut(_Out):
    channel: Literal["webpush", "sms", "wecom", "dingtalk", "webhook"]
    configured: bool  # on in this deployment's [notify].channels
    pending: int  # waiting to go out (including those retrying)
    retrying: int  # pending after at least one failed attempt
    failed: int  # given up since `since`
    last_error: str | None
    failing_since: str | None  # when the oldest message still retrying was written


class NotifyStatusOut(_Out):
    township_id: int | None  # null: the whole county
    as_of: str
    since: str  # failures given up after this count in `failed`
    failing: bool  # some channel is retrying or gave up on a message since `since`
    channels: list[ChannelStatusOut]


# -- the admin log (DESIGN.md idea 11) -----------------------------------------------------------

class AdminLogEntryOut(_Out):
    """One entry of the admin log: who changed what, before → after, chained like the events."""

    seq: int
    at: str  # UTC, YYYY-MM-DDTHH:MM:SS.ffffffZ (as hashed)
    actor_id: int | None
    actor_name: str  # an account's name, "cli:<os user>" for the command line, "system" for the hub itself
    action: str  # user.add, user.passwd, user.disable, privacy.rechain, privacy.erase, …
    target: str  # what it changed: user:<username>, township:<code>, reporters, …
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    prev_hash: str  # lowercase hex; "" for the first entry
    hash: str  # lowercase hex SHA-256 of the raw prev_hash bytes followed by the canonical encoding


class AdminLogOut(_Out):
    entries: list[AdminLogEntryOut]  # newest first
    total: int
    limit: int
    offset: int
