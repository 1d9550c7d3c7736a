"""Every wire message of protocol v1 as a typed class, with the msgpack codec beside it.

A frame is one msgpack map whose ``type`` key names the message; the other keys are the fields of
the class. ``decode`` is strict (no int for a string, no bool for an int, no float for an int) and
raises ``ProtocolViolation`` naming the field; ``encode`` writes the keys in declaration order, so
the same message always gives the same bytes (the examples in PROTOCOL.md rely on it). Unknown keys
are ignored, so a v1 peer may add optional fields without breaking older ones.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar

import msgpack
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, JsonValue, Strict, ValidationError
from pydantic_core import ErrorDetails

from protocols.errors import ClientError, InvalidMessage, ProtocolViolation, Unavailable
from protocols.localize import DEFAULT_LANG, Lang, localize

PROTOCOL_VERSION = 1

# The command names of ARCHITECTURE.md; the hub validates each command's args.
COMMAND_NAMES: tuple[str, ...] = (
    "create_call", "dispatch", "acknowledge", "arrive", "report_result", "decline", "reroute",
    "withdraw", "accept", "send_back", "return_visit", "close", "cancel", "note", "escalate",
    "reject_transfer", "set_lead", "nudge", "handle_alarm",
)  # fmt: skip

# Event types the hub emits today (clients must tolerate new ones; bodies in docs/LIFECYCLE.md).
EVENT_TYPES: tuple[str, ...] = (
    "call.created", "call.accepted", "call.sent_back", "call.visited", "call.closed",
    "call.cancelled", "call.noted", "assignment.dispatched", "assignment.acknowledged",
    "assignment.arrived", "assignment.reported", "assignment.declined", "assignment.transferred",
    "assignment.withdrawn", "assignment.accepted", "assignment.reopened", "assignment.escalated",
    "assignment.transfer_rejected", "call.lead_changed", "call.reopened", "assignment.nudged",
    "assignment.alarm_handled", "notice.sent", "notice.failed",
)  # fmt: skip

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _check_uuid(value: str) -> str:
    if not _UUID.fullmatch(value):
        raise ValueError("expected UUID string (36 chars, lowercase hex 8-4-4-4-12)")
    return value


def _check_command_name(value: str) -> str:
    if value not in COMMAND_NAMES:
        raise ValueError(f"unknown command {value!r}")
    return value


def _check_version(value: int) -> int:
    if value != PROTOCOL_VERSION:
        raise ValueError(f"unsupported protocol version {value} (expected {PROTOCOL_VERSION})")
    return value


# Every integer on the wire fits PostgreSQL's bigint and msgpack's int64: larger ones are refused here.
INT64_MAX = 2**63 - 1
Int = Annotated[int, Strict(), Field(ge=-INT64_MAX - 1, le=INT64_MAX)]
Seq = Annotated[int, Strict(), Field(ge=0, le=INT64_MAX)]
Str = Annotated[str, Strict()]
Bool = Annotated[bool, Strict()]
Float = Annotated[float, Strict(), Field(allow_inf_nan=False)]  # an integer is accepted too
Uuid = Annotated[str, Strict(), AfterValidator(_check_uuid)]
Pair = tuple[Seq, Seq]  # [township_id, seq]
Map = dict[Str, JsonValue]  # JSON-compatible: the same body works over REST


def to_ms(when: datetime) -> int:
    """Wire time: integer milliseconds since the Unix epoch, UTC (naive datetimes are refused)."""
    if when.tzinfo is None:
        raise ValueError("naive datetime: wire times must be timezone-aware")
    return int(when.timestamp() * 1000)


def from_ms(ms: int) -> datetime:
    """Inverse of ``to_ms``: an aware UTC datetime."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class Message(_Model):
    """Base of every frame; ``TYPE`` is the value of the frame's ``type`` key."""

    TYPE: ClassVar[str]

    def encode(self) -> bytes:
        return encode(self)


# --- client → server -------------------------------------------------------------------------------


class Subscribe(Message):
    TYPE: ClassVar[str] = "subscribe"
    cursors: list[Pair] = []
    epoch: Str | None = None


class Command(Message):
    TYPE: ClassVar[str] = "command"
    command_id: Uuid
    name: Annotated[Str, AfterValidator(_check_command_name)]
    args: Map = {}


# --- either direction ------------------------------------------------------------------------------


class Ping(Message):
    TYPE: ClassVar[str] = "ping"
    nonce: Int


class Pong(Message):
    TYPE: ClassVar[str] = "pong"
    nonce: Int


# --- server → client -------------------------------------------------------------------------------


class User(_Model):
    id: Int
    name: Str
    role: Str


class Scope(_Model):
    role: Str
    township_ids: list[Seq]
    target: Str | None  # department code or unit:<id> for liaisons
    read_only: Bool


class Limits(_Model):
    max_frame_bytes: Int
    rate_per_s: Float
    burst: Int
    heartbeat_s: Float
    outbox_frames: Int


class Actor(_Model):
    id: Int | None
    name: Str
    role: Str


class Welcome(Message):
    TYPE: ClassVar[str] = "welcome"
    protocol: Annotated[Int, AfterValidator(_check_version)] = PROTOCOL_VERSION
    server_time: Int
    user: User
    scope: Scope
    heads: list[Pair]
    epoch: Str
    limits: Limits


class Event(Message):
    TYPE: ClassVar[str] = "event"
    township_id: Seq
    seq: Seq
    event_type: Str
    call_id: Str
    assignment_id: Str | None
    at: Int
    actor: Actor
    call_state: Str
    assignment_state: Str | None
    body: Map = {}


class CaughtUp(Message):
    TYPE: ClassVar[str] = "caught_up"
    heads: list[Pair]


class Resync(Message):
    TYPE: ClassVar[str] = "resync"
    township_id: Seq
    reason: Str
    head: Seq


class Result(Message):
    TYPE: ClassVar[str] = "result"
    command_id: Uuid
    result: Map = {}


class Error(Message):
    TYPE: ClassVar[str] = "error"
    command_id: Str | None
    code: Str
    message: Str
    field: Str | None = None

    @classmethod
    def from_exception(cls, exc: BaseException, command_id: str | None = None, lang: Lang = DEFAULT_LANG) -> Error:
        """The frame for ``exc`` with its message in ``lang``: a client error or ``unavailable`` as it is,
        anything else as ``internal``."""
        if isinstance(exc, (ClientError, Unavailable)):
            return cls(command_id=command_id, code=exc.code, message=exc.localized(lang), field=exc.field)
        return cls(command_id=command_id, code="internal", message=localize("internal", "internal error", None, lang),
                   field=None)


class Presence(Message):
    TYPE: ClassVar[str] = "presence"
    township_id: Seq
    online: dict[Str, Seq]  # target (department code or unit:<id>) → connected liaisons


_ALL: tuple[type[Message], ...] = (
    Subscribe, Command, Ping, Pong, Welcome, Event, CaughtUp, Resync, Result, Error, Presence,
)  # fmt: skip
MESSAGE_TYPES: dict[str, type[Message]] = {cls.TYPE: cls for cls in _ALL}
CLIENT_TYPES: frozenset[str] = frozenset({"subscribe", "command", "ping", "pong"})
SERVER_TYPES: frozenset[str] = frozenset(MESSAGE_TYPES) - {"subscribe", "command"}


# --- codec -----------------------------------------------------------------------------------------


def encode(msg: Message) -> bytes:
    """One frame: a msgpack map, ``type`` first, then the fields in declaration order."""
    payload: dict[str, Any] = {"type": msg.TYPE}
    payload.update(msg.model_dump(mode="python"))
    data: bytes = msgpack.packb(payload, use_bin_type=True)
    return data


def _no_ext(code: int, data: bytes) -> object:
    raise ProtocolViolation(f"msgpack extension type {code} is not allowed")


def unpack(data: bytes) -> object:
    """Parse one msgpack value; string map keys only, no extension types, nothing after it."""
    try:
        return msgpack.unpackb(data, raw=False, strict_map_key=True, ext_hook=_no_ext, timestamp=0)
    except ProtocolViolation:
        raise
    except (ValueError, TypeError, msgpack.UnpackException) as exc:
        raise ProtocolViolation(f"not a msgpack value: {exc or type(exc).__name__}") from None


def decode(data: bytes) -> Message:
    """Parse and validate one frame; raises ``ProtocolViolation`` naming the offending field."""
    obj = unpack(data)
    if isinstance(obj, msgpack.Timestamp):
        raise ProtocolViolation("msgpack extension type -1 is not allowed")
    if not isinstance(obj, dict):
        raise ProtocolViolation(f"frame is not a map but {_kind(obj)}")
    return from_map(obj)


def from_map(obj: Mapping[str, object]) -> Message:
    """Validate an already-unpacked frame map."""
    name = obj.get("type")
    if name is None:
        raise InvalidMessage("missing field 'type'", field="type")
    if not isinstance(name, str):
        raise InvalidMessage(f"type: expected string, got {_kind(name)}", field="type")
    cls = MESSAGE_TYPES.get(name)
    if cls is None:
        raise InvalidMessage(f"unknown message type {name!r}", field="type")
    fields = {k: v for k, v in obj.items() if k != "type"}
    try:
        return cls.model_validate(fields)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        path = _path(errors[0]["loc"])
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        command_id = obj.get("command_id") if name == "command" else None
        raise InvalidMessage(
            f"{name}.{path}: {_reason(errors[0])}{more}",
            field=path,
            command_id=command_id if isinstance(command_id, str) and _UUID.fullmatch(command_id) else None,
        ) from None


_UNION_TAGS = frozenset({"list", "dict", "str", "int", "float", "bool"})


def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part == "[key]":
            out += "(key)"
        elif part in _UNION_TAGS:
            continue  # pydantic's name for the branch of a union (JsonValue), not a wire key
        else:
            out += f".{part}" if out else part
    return out


_REASONS = {
    "missing": "missing field",
    "int_type": "expected integer",
    "string_type": "expected string",
    "bool_type": "expected boolean",
    "float_type": "expected number",
    "finite_number": "expected a finite number",
    "list_type": "expected array",
    "tuple_type": "expected array",
    "dict_type": "expected map",
    "model_type": "expected map",
    "model_attributes_type": "expected map",
    "invalid-json-value": "expected nil, boolean, number, string, array or map with string keys",
}


def _reason(error: ErrorDetails) -> str:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind in _REASONS:
        return _REASONS[kind]
    if kind == "greater_than_equal":
        return f"expected integer >= {ctx.get('ge')}"
    if kind in ("too_short", "too_long") and ctx.get("field_type") == "Tuple":
        return "expected [township_id, seq] pair"
    if kind == "value_error":
        return str(ctx.get("error", error["msg"]))
    return error["msg"][0].lower() + error["msg"][1:]


def _kind(value: object) -> str:
    names = {type(None): "nil", bool: "boolean", int: "integer", float: "float", str: "string"}
    names |= {bytes: "binary", list: "array", dict: "map"}
    return names.get(type(value), type(value).__name__)


def encode_event(
    township_id: int,
    seq: int,
    event_type: str,
    call_id: str,
    assignment_id: str | None,
    at: int,
    actor: Mapping[str, object],
    call_state: str,
    assignment_state: str | None,
    body: Mapping[str, object],
) -> bytes:
    """The bytes of ``encode(Event(...))`` without building a model: the fan-out's hot path.

    Trusted input only (rows the hub wrote itself); a test keeps it byte-identical to ``encode``.
    """
    payload = {
        "type": "event", "township_id": township_id, "seq": seq, "event_type": event_type,
        "call_id": call_id, "assignment_id": assignment_id, "at": at,
        "actor": {"id": actor.get("id"), "name": actor.get("name"), "role": actor.get("role")},
        "call_state": call_state, "assignment_state": assignment_state, "body": body,
    }
    data: bytes = msgpack.packb(payload, use_bin_type=True)
    return data
