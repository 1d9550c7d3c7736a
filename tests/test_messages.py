"""Codec of protocol v1: every message over literal msgpack bytes, and every way a frame can be wrong."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import msgpack
import pytest

from protocols import messages as m
from protocols.errors import Forbidden, InternalError, InvalidMessage, ProtocolViolation

CMD = "0e9d1c3b-5a7f-4e21-9c8d-7b6a5f4e3d2c"
CALL = "3c2b1a09-8f7e-4d6c-b5a4-93827160f5e4"

# (literal frame, the message it is). The hex is the contract: a change here is a wire change.
FRAMES: dict[str, tuple[str, m.Message]] = {
    "subscribe": (
        # {type: "subscribe", cursors: [[1, 300], [2, 0]], epoch: "e1"}
        "83 a4 74797065 a9 737562736372696265 a7 637572736f7273 92 92 01 cd012c 92 02 00"
        " a5 65706f6368 a2 6531",
        m.Subscribe(cursors=[(1, 300), (2, 0)], epoch="e1"),
    ),
    "command": (
        "84a474797065a7636f6d6d616e64aa636f6d6d616e645f6964d92430653964316333622d356137662d346532312d"
        "396338642d376236613566346533643263a46e616d65a46e6f7465a46172677383a763616c6c5f6964d9243363"
        "3262316130392d386637652d346436632d623561342d393338323731363066356534a474657874a6e588b0e59cba"
        "a16e9401cb4004000000000000c0c3",
        m.Command(
            command_id=CMD, name="note", args={"call_id": CALL, "text": "到场", "n": [1, 2.5, None, True]}
        ),
    ),
    "ping": ("82 a4 74797065 a4 70696e67 a5 6e6f6e6365 ff", m.Ping(nonce=-1)),
    "pong": ("82 a4 74797065 a4 706f6e67 a5 6e6f6e6365 cf0000000100000000", m.Pong(nonce=2**32)),
    "welcome": (
        "88a474797065a777656c636f6d65a870726f746f636f6c01ab7365727665725f74696d65cf0000018bcfe56800a475"
        "73657283a2696401a46e616d65a26f70a4726f6c65a86f70657261746f72a573636f706584a4726f6c65a86f7065"
        "7261746f72ac746f776e736869705f696473920102a6746172676574c0a9726561645f6f6e6c79c2a56865616473"
        "929201cd012c920200a565706f6368a26531a66c696d69747385af6d61785f6672616d655f6279746573cd0400aa"
        "726174655f7065725f73cb3ff8000000000000a5627572737403ab6865617274626561745f73cb40240000000000"
        "00ad6f7574626f785f6672616d657308",
        m.Welcome(
            server_time=1700000000000,
            user=m.User(id=1, name="op", role="operator"),
            scope=m.Scope(role="operator", township_ids=[1, 2], target=None, read_only=False),
            heads=[(1, 300), (2, 0)],
            epoch="e1",
            limits=m.Limits(max_frame_bytes=1024, rate_per_s=1.5, burst=3, heartbeat_s=10.0, outbox_frames=8),
        ),
    ),
    "event": (
        "8ba474797065a56576656e74ab746f776e736869705f696401a3736571cd012daa6576656e745f74797065b46173"
        "7369676e6d656e742e657363616c61746564a763616c6c5f6964d92433633262316130392d386637652d34643663"
        "2d623561342d393338323731363066356534ad61737369676e6d656e745f6964c0a26174cf0000018bcfe5687ba5"
        "6163746f7283a26964c0a46e616d65a673797374656da4726f6c65a673797374656daa63616c6c5f7374617465aa"
        "64697370617463686564b061737369676e6d656e745f7374617465c0a4626f647981a56c6576656c02",
        m.Event(
            township_id=1,
            seq=301,
            event_type="assignment.escalated",
            call_id=CALL,
            assignment_id=None,
            at=1700000000123,
            actor=m.Actor(id=None, name="system", role="system"),
            call_state="dispatched",
            assignment_state=None,
            body={"level": 2},
        ),
    ),
    "caught_up": (
        "82 a4 74797065 a9 6361756768745f7570 a5 6865616473 91 92 01 cd012d",
        m.CaughtUp(heads=[(1, 301)]),
    ),
    "resync": (
        "84 a4 74797065 a6 726573796e63 ab 746f776e736869705f6964 02 a6 726561736f6e"
        " ad 65706f63685f6368616e676564 a4 68656164 09",
        m.Resync(township_id=2, reason="epoch_changed", head=9),
    ),
    "result": (
        "83a474797065a6726573756c74aa636f6d6d616e645f6964d92430653964316333622d356137662d346532312d39"
        "6338642d376236613566346533643263a6726573756c7480",
        m.Result(command_id=CMD, result={}),
    ),
    "error": (
        "85 a4 74797065 a5 6572726f72 aa 636f6d6d616e645f6964 c0 a4 636f6465 a8 70726f746f636f6c"
        " a7 6d657373616765 a3 626164 a5 6669656c64 c0",
        m.Error(command_id=None, code="protocol", message="bad", field=None),
    ),
    "presence": (
        "83 a4 74797065 a8 70726573656e6365 ab 746f776e736869705f6964 01 a6 6f6e6c696e65 80",
        m.Presence(township_id=1, online={}),
    ),
}


def test_every_message_type_has_a_literal_frame() -> None:
    assert {msg.TYPE for _, msg in FRAMES.values()} == set(m.MESSAGE_TYPES)


@pytest.mark.parametrize("name", sorted(FRAMES))
def test_decode_literal_frame(name: str) -> None:
    data, msg = FRAMES[name]
    assert m.decode(bytes.fromhex(data)) == msg


@pytest.mark.parametrize("name", sorted(FRAMES))
def test_encode_gives_literal_frame(name: str) -> None:
    data, msg = FRAMES[name]
    assert m.encode(msg) == bytes.fromhex(data)
    assert msg.encode() == bytes.fromhex(data)


def test_message_types_map_names_to_classes() -> None:
    assert m.MESSAGE_TYPES["caught_up"] is m.CaughtUp
    assert m.CLIENT_TYPES == {"subscribe", "command", "ping", "pong"}
    assert m.SERVER_TYPES == set(m.MESSAGE_TYPES) - {"subscribe", "command"}


def test_optional_fields_take_their_defaults() -> None:
    # {type: "subscribe"}
    assert m.decode(bytes.fromhex("81a474797065a9737562736372696265")) == m.Subscribe(cursors=[], epoch=None)


def test_unknown_keys_are_ignored() -> None:
    # {type: "ping", nonce: 7, later: 1}
    assert m.decode(bytes.fromhex("83a474797065a470696e67a56e6f6e636507a56c6174657201")) == m.Ping(nonce=7)


def test_float_field_accepts_an_integer() -> None:
    frame = {"type": "welcome", **FRAMES["welcome"][1].model_dump()}
    frame["limits"]["rate_per_s"] = 20
    welcome = m.decode(msgpack.packb(frame))
    assert isinstance(welcome, m.Welcome)
    assert welcome.limits.rate_per_s == 20.0


def test_messages_are_immutable() -> None:
    with pytest.raises(ValueError):
        m.Ping(nonce=1).nonce = 2  # type: ignore[misc]


# --- decode errors: (literal frame, message, field) --------------------------------------------------

BAD_FRAMES: dict[str, tuple[str, str, str | None]] = {
    "not msgpack": ("c1", "not a msgpack value", None),
    "truncated": ("81a474797065", "not a msgpack value", None),  # {type: <missing>
    "extra bytes": ("0102", "not a msgpack value", None),
    "empty": ("", "not a msgpack value", None),
    "integer map key": ("8101a3616263", "not a msgpack value", None),  # {1: "abc"}
    "extension type": ("d40100", "extension type 1 is not allowed", None),
    "timestamp extension": ("d6ff00000001", "extension type -1 is not allowed", None),
    "not a map": ("93010203", "frame is not a map but array", None),  # [1, 2, 3]
    "string frame": ("a3616263", "frame is not a map but string", None),
    "missing type": ("81a56e6f6e636507", "missing field 'type'", "type"),  # {nonce: 7}
    "type not a string": ("81a47479706501", "type: expected string, got integer", "type"),  # {type: 1}
    "unknown type": ("81a474797065a568656c6c6f", "unknown message type 'hello'", "type"),
    # {type: "ping"}
    "missing field": ("81a474797065a470696e67", "ping.nonce: missing field", "nonce"),
    # {type: "ping", nonce: "7"}
    "string for int": ("82a474797065a470696e67a56e6f6e6365a137", "ping.nonce: expected integer", "nonce"),
    # {type: "ping", nonce: true}
    "bool for int": ("82a474797065a470696e67a56e6f6e6365c3", "ping.nonce: expected integer", "nonce"),
    # {type: "ping", nonce: 7.0}
    "float for int": (
        "82a474797065a470696e67a56e6f6e6365cb401c000000000000",
        "ping.nonce: expected integer",
        "nonce",
    ),
    # {type: "subscribe", cursors: [[1, "x"]]}
    "nested wrong type": (
        "82a474797065a9737562736372696265a7637572736f7273919201a178",
        "subscribe.cursors[0][1]: expected integer",
        "cursors[0][1]",
    ),
    # {type: "subscribe", cursors: [[1, 2, 3]]}
    "triple for pair": (
        "82a474797065a9737562736372696265a7637572736f727391930102 03",
        "subscribe.cursors[0]: expected [township_id, seq] pair",
        "cursors[0]",
    ),
    # {type: "subscribe", cursors: [[1, -1]]}
    "negative seq": (
        "82a474797065a9737562736372696265a7637572736f7273919201ff",
        "subscribe.cursors[0][1]: expected integer >= 0",
        "cursors[0][1]",
    ),
    # {type: "subscribe", cursors: {}}
    "map for array": (
        "82a474797065a9737562736372696265a7637572736f727380",
        "subscribe.cursors: expected array",
        "cursors",
    ),
    # {type: "subscribe", epoch: <bin "e1">}
    "binary for string": (
        "82a474797065a9737562736372696265a565706f6368c4026531",
        "subscribe.epoch: expected string",
        "epoch",
    ),
    # {type: "resync", township_id: 1, reason: "x", head: nil}
    "nil where not allowed": (
        "84a474797065a6726573796e63ab746f776e736869705f696401a6726561736f6ea178a468656164c0",
        "resync.head: expected integer",
        "head",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_FRAMES))
def test_decode_error_names_the_problem(case: str) -> None:
    data, message, field = BAD_FRAMES[case]
    with pytest.raises(ProtocolViolation) as info:
        m.decode(bytes.fromhex(data))
    assert message in info.value.message
    assert info.value.field == field
    assert info.value.code == "protocol"


def _bad(frame: dict[str, object]) -> ProtocolViolation:
    with pytest.raises(ProtocolViolation) as info:
        m.decode(msgpack.packb(frame, use_bin_type=True))
    return info.value


def test_nested_model_field_is_named() -> None:
    frame = {"type": "welcome", **FRAMES["welcome"][1].model_dump()}
    frame["user"] = {"id": "1", "name": "op", "role": "operator"}
    exc = _bad(frame)
    assert exc.message == "welcome.user.id: expected integer"
    assert exc.field == "user.id"


def test_nested_map_key_type_is_named() -> None:
    exc = _bad({"type": "presence", "township_id": 1, "online": {"police": "2"}})
    assert exc.message == "presence.online.police: expected integer"


def test_unsupported_protocol_version_is_refused() -> None:
    frame = {"type": "welcome", **FRAMES["welcome"][1].model_dump(), "protocol": 2}
    assert "welcome.protocol: unsupported protocol version 2" in _bad(frame).message


def test_non_finite_float_is_refused() -> None:
    frame = {"type": "welcome", **FRAMES["welcome"][1].model_dump()}
    frame["limits"]["heartbeat_s"] = float("nan")
    assert _bad(frame).field == "limits.heartbeat_s"


def test_command_id_must_be_a_uuid() -> None:
    exc = _bad({"type": "command", "command_id": "1234", "name": "note", "args": {}})
    assert exc.message.startswith("command.command_id: expected UUID string")
    assert exc.field == "command_id"


def test_unknown_command_keeps_its_command_id() -> None:
    exc = _bad({"type": "command", "command_id": CMD, "name": "launch", "args": {}})
    assert exc.message == "command.name: unknown command 'launch'"
    assert isinstance(exc, InvalidMessage)
    assert exc.command_id == CMD


def test_args_must_be_json_compatible() -> None:
    exc = _bad({"type": "command", "command_id": CMD, "name": "note", "args": {"photo": [1, b"\x89PNG"]}})
    assert exc.message.startswith("command.args.photo[1]: expected nil, boolean")
    assert exc.field == "args.photo[1]"


def test_extension_nested_in_args_is_refused() -> None:
    frame = msgpack.packb({"type": "command", "command_id": CMD, "name": "note", "args": {"x": 1}})
    frame = frame[:-1] + bytes.fromhex("d40100")  # args.x = ext(1, b"\0")
    with pytest.raises(ProtocolViolation, match="extension type 1"):
        m.decode(frame)


def test_first_error_is_reported_with_a_count() -> None:
    exc = _bad({"type": "event"})
    assert exc.message.startswith("event.township_id: missing field (and ")


def test_to_ms_and_back() -> None:
    when = datetime(2026, 1, 1, 8, 0, 0, 123000, tzinfo=timezone(timedelta(hours=8)))
    assert m.to_ms(when) == 1767225600123
    assert m.from_ms(1767225600123) == when.astimezone(UTC)
    with pytest.raises(ValueError):
        m.to_ms(datetime(2026, 1, 1))


def test_error_frame_from_client_error() -> None:
    frame = m.Error.from_exception(Forbidden("read-only scope", field="name"), CMD, lang="en")
    assert frame == m.Error(command_id=CMD, code="forbidden", message="read-only scope", field="name")
    zh = m.Error.from_exception(Forbidden("read-only scope", field="name"), CMD)  # zh-CN by default
    assert (zh.code, zh.field) == ("forbidden", "name") and zh.message != "read-only scope"


def test_error_frame_hides_internal_errors() -> None:
    for exc in (InternalError("db password wrong"), KeyError("secret")):
        frame = m.Error.from_exception(exc, lang="en")
        assert (frame.code, frame.message) == ("internal", "internal error")
        assert m.Error.from_exception(exc).message == "平台内部错误，请稍后重试"
