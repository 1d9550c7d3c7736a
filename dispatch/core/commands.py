"""Every command as a pydantic model: the REST body and the WebSocket ``command.args`` are the same."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails, PydanticCustomError

from dispatch.core.domain import DeadlineKind, Priority, Source
from protocols.errors import ValidationFailed

TARGET_PATTERN = r"^(?:[a-z][a-z_]{0,31}|unit:[0-9]{1,12})$"
PHONE_PATTERN = r"^[0-9+\- ]{1,20}$"
# Ids are PostgreSQL bigints and msgpack int64s: anything larger is refused at the edge.
ID_MAX = 2**63 - 1

Target = Annotated[str, StringConstraints(strip_whitespace=True, pattern=TARGET_PATTERN)]
Title = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Description = Annotated[str, StringConstraints(max_length=4000)]
Address = Annotated[str, StringConstraints(max_length=500)]
NoteText = Annotated[str, StringConstraints(min_length=1, max_length=2000)]
Reason = Annotated[str, StringConstraints(min_length=1, max_length=500)]
ResultText = Annotated[str, StringConstraints(min_length=1, max_length=4000)]
CategoryCode = Annotated[str, StringConstraints(min_length=1, max_length=64)]
PersonName = Annotated[str, StringConstraints(min_length=1, max_length=50)]
Phone = Annotated[str, StringConstraints(pattern=PHONE_PATTERN)]
# Evidence uploaded first (POST /api/v1/attachments), named here by id; at most MAX_ATTACHMENTS a command.
MAX_ATTACHMENTS = 9
Lat = Annotated[float, Field(ge=-90, le=90)]
Lon = Annotated[float, Field(ge=-180, le=180)]



def _ms_to_datetime(value: Any) -> Any:
    """``acted_at`` may be epoch milliseconds (what a phone's ``Date.now()`` gives) or ISO-8601 with a zone."""
    if isinstance(value, bool):
        raise ValueError("must be an ISO-8601 datetime with a time zone, or epoch milliseconds")
    if isinstance(value, int | float):
        if not 0 <= value <= 7_258_118_400_000:  # 1970..2200
            raise ValueError("must be epoch milliseconds between 1970 and 2200")
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    return value


# When the person acted (a phone that was offline queues the command and sends it later); see LIFECYCLE.md.
ActedAt = Annotated[AwareDatetime, BeforeValidator(_ms_to_datetime)]

_MESSAGES_BY_PATTERN = {
    TARGET_PATTERN: "must be a department code or unit:<id>",
    PHONE_PATTERN: "must be at most 20 digits, +, - or spaces",
}


class _Base(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    command_id: UUID

    @model_validator(mode="before")
    @classmethod
    def _blank_is_none(cls, data: Any) -> Any:
        """An optional text sent as "" means "not given"."""
        if not isinstance(data, dict):
            return data
        blank = [name for name in _optional_texts(cls)
                 if isinstance(value := data.get(name), str) and not value.strip()]
        if not blank:
            return data  # the body as it came (pydantic does not change it); the common case, checked per field
        cleaned = dict(data)
        for name in blank:
            cleaned[name] = None
        return cleaned


@functools.cache
def _optional_texts(cls: type[BaseModel]) -> tuple[str, ...]:
    """The fields of a command that may be None and are by default: a blank text there is "not given"."""
    return tuple(name for name, field in cls.model_fields.items()
                 if not field.is_required() and field.default is None)


def _no_duplicates(targets: list[str]) -> list[str]:
    if len(set(targets)) != len(targets):
        raise ValueError("must not contain duplicates")
    return targets


def _unique_ids(ids: list[UUID]) -> list[UUID]:
    if len(set(ids)) != len(ids):
        raise ValueError("must not contain duplicates")
    return ids


Attachments = Annotated[list[UUID], Field(max_length=MAX_ATTACHMENTS)]


def _lat_lon_together(lat: float | None, lon: float | None) -> None:
    if (lat is None) != (lon is None):
        missing = "lat" if lat is None else "lon"
        raise PydanticCustomError("coordinates", "must be given together with {other}",
                                  {"field": missing, "other": "lon" if missing == "lat" else "lat"})


class CreateCall(_Base):
    kind: Literal["create_call"] = "create_call"
    source: Source
    category: CategoryCode
    title: Title
    description: Description = ""
    address: Address = ""
    lat: Lat | None = None
    lon: Lon | None = None
    grid_id: Annotated[int, Field(ge=1, le=ID_MAX)] | None = None
    priority: Priority = Priority.NORMAL
    reporter_name: PersonName | None = None
    reporter_phone: Phone | None = None
    targets: Annotated[list[Target], Field(max_length=20)] = []
    lead: Target | None = None  # 主办 among the targets (default: the first); the others are 协办
    attachments: Attachments = []  # photos / PDFs of the report, uploaded by the same user

    _check_targets = field_validator("targets")(_no_duplicates)
    _check_attachments = field_validator("attachments")(_unique_ids)

    @model_validator(mode="after")
    def _coordinates(self) -> CreateCall:
        _lat_lon_together(self.lat, self.lon)
        _lead_among(self.lead, self.targets)
        return self


def _lead_among(lead: str | None, targets: list[str]) -> None:
    if lead is not None and lead not in targets:
        raise PydanticCustomError("lead", "must be one of the targets", {"field": "lead"})


class Dispatch(_Base):
    kind: Literal["dispatch"] = "dispatch"
    call_id: UUID
    targets: Annotated[list[Target], Field(min_length=1, max_length=20)]
    # 主办 among the new targets; default: the first of them when the call has no open lead, else unchanged
    lead: Target | None = None

    _check_targets = field_validator("targets")(_no_duplicates)

    @model_validator(mode="after")
    def _lead(self) -> Dispatch:
        _lead_among(self.lead, self.targets)
        return self


class Acknowledge(_Base):
    kind: Literal["acknowledge"] = "acknowledge"
    assignment_id: UUID
    acted_at: ActedAt | None = None


class Arrive(_Base):
    kind: Literal["arrive"] = "arrive"
    assignment_id: UUID
    acted_at: ActedAt | None = None
    lat: Lat | None = None
    lon: Lon | None = None
    attachments: Attachments = []  # photos taken on scene (报到)

    _check_attachments = field_validator("attachments")(_unique_ids)

    @model_validator(mode="after")
    def _coordinates(self) -> Arrive:
        _lat_lon_together(self.lat, self.lon)
        return self


class ReportResult(_Base):
    kind: Literal["report_result"] = "report_result"
    assignment_id: UUID
    acted_at: ActedAt | None = None
    result: ResultText
    attachments: Attachments = []  # photos of the result (办结)

    _check_attachments = field_validator("attachments")(_unique_ids)


class Decline(_Base):
    kind: Literal["decline"] = "decline"
    assignment_id: UUID
    acted_at: ActedAt | None = None
    reason: Reason
    suggested_target: Target | None = None


class Reroute(_Base):
    """Approve a transfer request (or move an undeclined assignment): a new assignment for ``target``."""

    kind: Literal["reroute"] = "reroute"
    assignment_id: UUID
    target: Target
    reason: Reason
    # The request was right: the matter is not this department's remit (evaluation excludes it).
    not_our_remit: bool = False


class RejectTransfer(_Base):
    """驳回: refuse a transfer request; the department's clocks resume as if never stopped."""

    kind: Literal["reject_transfer"] = "reject_transfer"
    assignment_id: UUID
    reason: Reason


class SetLead(_Base):
    """Make one assignment of the call the lead (主办); the others become supporting (协办)."""

    kind: Literal["set_lead"] = "set_lead"
    call_id: UUID
    assignment_id: UUID
    reason: Reason | None = None


class Withdraw(_Base):
    kind: Literal["withdraw"] = "withdraw"
    assignment_id: UUID
    reason: Reason


class Accept(_Base):
    kind: Literal["accept"] = "accept"
    call_id: UUID


class SendBack(_Base):
    kind: Literal["send_back"] = "send_back"
    call_id: UUID
    reason: Reason
    assignment_ids: Annotated[list[UUID], Field(min_length=1, max_length=20)]

    @field_validator("assignment_ids")
    @classmethod
    def _unique(cls, ids: list[UUID]) -> list[UUID]:
        if len(set(ids)) != len(ids):
            raise ValueError("must not contain duplicates")
        return ids


Satisfaction = Annotated[int, Field(ge=1, le=5)]
VisitComment = Annotated[str, StringConstraints(max_length=2000)]


class Rating(BaseModel):
    """One department's return visit on a call: name its assignment (or its target)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    assignment_id: UUID | None = None
    target: Target | None = None
    resolved: bool
    satisfaction: Satisfaction
    comment: VisitComment | None = None

    @model_validator(mode="after")
    def _named(self) -> Rating:
        if (self.assignment_id is None) == (self.target is None):
            raise PydanticCustomError("rating", "must name exactly one of assignment_id or target",
                                      {"field": "assignment_id"})
        return self


class ReturnVisit(_Base):
    """回: either per department (``ratings``) or, the older form, one rating for the whole call."""

    kind: Literal["return_visit"] = "return_visit"
    call_id: UUID
    resolved: bool | None = None
    satisfaction: Satisfaction | None = None
    comment: VisitComment | None = None
    ratings: Annotated[list[Rating], Field(min_length=1, max_length=20)] | None = None
    # Which assignments to reopen (重办); default: every one rated unresolved or satisfaction <= 3.
    reopen: Annotated[list[UUID], Field(max_length=20)] | None = None

    @model_validator(mode="after")
    def _one_form(self) -> ReturnVisit:
        if self.ratings is None:
            for name in ("resolved", "satisfaction"):
                if getattr(self, name) is None:
                    raise PydanticCustomError("visit", "is required (or give per-department ratings)",
                                              {"field": name})
        elif self.resolved is not None or self.satisfaction is not None:
            raise PydanticCustomError("visit", "give either ratings or resolved/satisfaction, not both",
                                      {"field": "ratings"})
        if self.reopen is not None and len(set(self.reopen)) != len(self.reopen):
            raise PydanticCustomError("visit", "must not contain duplicates", {"field": "reopen"})
        return self


class Close(_Base):
    kind: Literal["close"] = "close"
    call_id: UUID
    # Why the call closes without a return visit (required for the sources in lifecycle.close_without_visit_reason)
    reason: Reason | None = None


class Cancel(_Base):
    kind: Literal["cancel"] = "cancel"
    call_id: UUID
    reason: Reason


class Note(_Base):
    kind: Literal["note"] = "note"
    call_id: UUID
    acted_at: ActedAt | None = None
    text: NoteText
    assignment_id: UUID | None = None


class Nudge(_Base):
    """催办: the operator presses a department on one assignment; it is told through every channel."""

    kind: Literal["nudge"] = "nudge"
    assignment_id: UUID
    text: NoteText | None = None


class HandleAlarm(_Base):
    """An operator takes an escalation alarm: it stops sounding on the other operators' consoles."""

    kind: Literal["handle_alarm"] = "handle_alarm"
    assignment_id: UUID
    deadline_kind: DeadlineKind
    level: Annotated[int, Field(ge=1, le=100)]


class Escalate(_Base):
    kind: Literal["escalate"] = "escalate"
    assignment_id: UUID
    deadline_kind: DeadlineKind
    level: Annotated[int, Field(ge=1, le=100)]
    deadline: AwareDatetime
    fired_at: AwareDatetime
    # When this level fell due (deadline + the rung's after_s); lateness is measured from it.
    due: AwareDatetime | None = None


Command = Annotated[
    CreateCall
    | Dispatch
    | Acknowledge
    | Arrive
    | ReportResult
    | Decline
    | Reroute
    | Withdraw
    | Accept
    | SendBack
    | ReturnVisit
    | Close
    | Cancel
    | Note
    | Escalate
    | RejectTransfer
    | SetLead
    | Nudge
    | HandleAlarm,
    Field(discriminator="kind"),
]

COMMANDS: dict[str, type[BaseModel]] = {
    "create_call": CreateCall,
    "dispatch": Dispatch,
    "acknowledge": Acknowledge,
    "arrive": Arrive,
    "report_result": ReportResult,
    "decline": Decline,
    "reroute": Reroute,
    "withdraw": Withdraw,
    "accept": Accept,
    "send_back": SendBack,
    "return_visit": ReturnVisit,
    "close": Close,
    "cancel": Cancel,
    "note": Note,
    "escalate": Escalate,
    "reject_transfer": RejectTransfer,
    "set_lead": SetLead,
    "nudge": Nudge,
    "handle_alarm": HandleAlarm,
}

_COMMAND_ADAPTER: TypeAdapter[Command] = TypeAdapter(Command)


def describe_error(error: ErrorDetails) -> str:
    """Turn one pydantic error into a short English sentence without the field name."""
    kind = error["type"]
    ctx: dict[str, Any] = dict(error.get("ctx") or {})
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return "is not an allowed field"
    if kind == "enum":
        expected = str(ctx.get("expected", "")).replace("'", "").replace(" or ", ", ")
        return f"must be one of {expected}"
    if kind == "literal_error":
        return f"must be {str(ctx.get('expected', '')).replace(chr(39), '')}"
    if kind == "string_too_short":
        n = ctx.get("min_length", 1)
        return "must not be empty" if n == 1 else f"must be at least {n} characters"
    if kind == "string_too_long":
        return f"must be at most {ctx.get('max_length')} characters"
    if kind == "too_short":
        n = ctx.get("min_length", 1)
        return f"must have at least {n} item{'s' if n != 1 else ''}"
    if kind == "too_long":
        return f"must have at most {ctx.get('max_length')} items"
    if kind == "greater_than":
        gt = ctx.get("gt")
        return f"must be more than {int(gt) if isinstance(gt, float) and gt.is_integer() else gt}"
    if kind == "greater_than_equal":
        return f"must be at least {ctx.get('ge')}"
    if kind == "less_than_equal":
        return f"must be at most {ctx.get('le')}"
    if kind == "string_pattern_mismatch":
        return _MESSAGES_BY_PATTERN.get(str(ctx.get("pattern")), "has an invalid format")
    if kind.startswith("uuid"):
        return "must be a UUID"
    if kind.startswith(("datetime", "timezone")):
        return "must be an ISO-8601 datetime with a time zone"
    if kind.startswith("bool"):
        return "must be true or false"
    if kind.startswith("int"):
        return "must be an integer"
    if kind.startswith("float"):
        return "must be a number"
    if kind.startswith("string") or kind == "str_type":
        return "must be a string"
    if kind.startswith("list"):
        return "must be a list"
    if kind in ("dict_type", "model_type"):
        return "must be an object"
    if kind == "value_error":
        return str(ctx.get("error", error["msg"]))
    return str(error["msg"])


def _field_path(error: ErrorDetails) -> str:
    path = ".".join(str(part) for part in error["loc"])
    if not path:  # a model-level check names its field in the error context
        path = str((error.get("ctx") or {}).get("field", "body"))
    return path


def nul_field(value: Any, path: str = "") -> str | None:
    """The dotted path of the first string holding a NUL character (PostgreSQL text cannot store one)."""
    if isinstance(value, str):
        return path or "body" if "\x00" in value else None
    if isinstance(value, Mapping):
        for key, item in value.items():
            found = nul_field(item, f"{path}.{key}" if path else str(key))
            if found:
                return found
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found = nul_field(item, f"{path}.{i}" if path else str(i))
            if found:
                return found
    return None


def parse_command(kind: str, data: Mapping[str, Any]) -> Command:
    """Validate a command body; raise ``ValidationFailed`` naming the first bad field."""
    if not isinstance(data, Mapping):
        raise ValidationFailed("body: must be an object", field="body")
    bad = nul_field(data)
    if bad:
        raise ValidationFailed(f"{bad}: must not contain a NUL character", field=bad)
    if kind not in COMMANDS:
        raise ValidationFailed(f"kind: unknown command {kind!r}; expected one of {', '.join(COMMANDS)}",
                               field="kind")
    if "kind" in data and data["kind"] != kind:
        raise ValidationFailed(f"kind: must be {kind}", field="kind")
    try:
        return _COMMAND_ADAPTER.validate_python({**data, "kind": kind})
    except ValidationError as exc:
        first = exc.errors()[0]
        # the discriminated union puts the tag first in the location; drop it
        loc = tuple(first["loc"])
        if loc and loc[0] == kind:
            first = {**first, "loc": loc[1:]}
        path = _field_path(first)
        raise ValidationFailed(f"{path}: {describe_error(first)}", field=path) from None


def parse_command_fast(kind: str, data: Mapping[str, Any]) -> Command | None:
    """``parse_command`` in one validation, for a body that the REST layer would otherwise validate twice (its
    body model, then the command): the command, or None when this body needs the full path to be answered as
    before — it is refused (the full path names the fault), or it holds what only the command model would take
    (``kind``, a blank text that ``_blank_is_none`` turns into None where the body model refuses it). Where the
    command model accepts, the body model (the same fields, without the command's validators) accepts too."""
    if "kind" in data or any(type(v) is str and not v.strip() for v in data.values()):
        return None
    try:
        cmd: Command = COMMANDS[kind].model_validate({**data, "kind": kind})  # type: ignore[assignment]
    except ValidationError:
        return None
    return cmd


def command_call_id(cmd: Command) -> UUID | None:
    """The call a command names directly (None for ``create_call`` and assignment commands)."""
    value = cmd.__dict__.get("call_id")  # a field, if the model has it (no AttributeError raised and caught)
    return value if isinstance(value, UUID) else None


def command_attachments(cmd: Command) -> list[UUID]:
    """The uploads a command binds to its call (create_call, arrive, report_result; else none)."""
    value = cmd.__dict__.get("attachments")  # a field, if the model has it (no AttributeError raised and caught)
    return list(value) if isinstance(value, list) else []


def command_assignment_id(cmd: Command) -> UUID | None:
    """The assignment a command names, if any (the store finds the call through it)."""
    value = cmd.__dict__.get("assignment_id")  # a field, if the model has it (no AttributeError raised and caught)
    return value if isinstance(value, UUID) else None
