"""Sans-I/O sessions fed with literal frames and an injected time: no sockets, no sleeping."""

from __future__ import annotations

import random
from typing import Any

import pytest

from protocols import messages as m
from protocols.session import SUBPROTOCOL, ClientSession, CloseCode, ServerSession, State

CMD = "0e9d1c3b-5a7f-4e21-9c8d-7b6a5f4e3d2c"
CALL = "3c2b1a09-8f7e-4d6c-b5a4-93827160f5e4"

PING_7 = bytes.fromhex("82a474797065a470696e67a56e6f6e636507")  # {type: "ping", nonce: 7}
PONG_7 = bytes.fromhex("82a474797065a4706f6e67a56e6f6e636507")  # {type: "pong", nonce: 7}
SUBSCRIBE = bytes.fromhex("81a474797065a9737562736372696265")  # {type: "subscribe"}
# {type: "subscribe", cursors: [[1, 300]], epoch: "e1"}
SUBSCRIBE_1_300 = bytes.fromhex(
    "83a474797065a9737562736372696265a7637572736f7273919201cd012ca565706f6368a26531"
)
# {type: "command", command_id: CMD, name: "note", args: {}}
COMMAND = bytes.fromhex(
    "84a474797065a7636f6d6d616e64aa636f6d6d616e645f6964d92430653964316333622d356137662d346532312d3963"
    "38642d376236613566346533643263a46e616d65a46e6f7465a46172677380"
)
NOT_MSGPACK = bytes.fromhex("c1")
# {type: "caught_up", heads: [[1, 301]]}
CAUGHT_UP = bytes.fromhex("82a474797065a96361756768745f7570a56865616473919201cd012d")

USER = m.User(id=1, name="op", role="operator")
SCOPE = m.Scope(role="operator", township_ids=[1], target=None, read_only=False)


def errors(frames: list[bytes]) -> list[m.Error]:
    return [msg for msg in map(m.decode, frames) if isinstance(msg, m.Error)]


def welcomed(**kwargs: Any) -> ServerSession:
    kwargs.setdefault("lang", "en")  # these tests read the English messages (tests/test_localize.py: Chinese)
    session = ServerSession(**kwargs)
    session.send_welcome(user=USER, scope=SCOPE, heads=[(1, 301)], epoch="e1", server_time=1700000000000)
    session.data_to_send()
    return session


# --- server: the happy path --------------------------------------------------------------------------


def test_subprotocol_name() -> None:
    assert SUBPROTOCOL == "xianghu.v1"


def test_close_codes() -> None:
    expected = {1000, 1002, 1008, 1009, 1011, 1012, 4000, 4001, 4002, 4008, 4010, 4013, 4029}
    assert {c.value for c in CloseCode} == expected


def test_welcome_is_the_first_frame_and_carries_the_limits() -> None:
    session = ServerSession(max_frame_bytes=1024, rate_per_s=1.5, burst=3, outbox_frames=8, heartbeat_s=10.0, lang="en")
    session.send_welcome(user=USER, scope=SCOPE, heads=[(1, 301)], epoch="e1", server_time=1700000000000)
    [frame] = session.data_to_send()
    welcome = m.decode(frame)
    assert isinstance(welcome, m.Welcome)
    assert welcome.limits == m.Limits(
        max_frame_bytes=1024, rate_per_s=1.5, burst=3, heartbeat_s=10.0, outbox_frames=8
    )
    assert session.state is State.WELCOMED
    with pytest.raises(RuntimeError):
        session.send_welcome(user=USER, scope=SCOPE, heads=[], epoch="e1", server_time=0)


def test_subscribe_and_command_are_requests() -> None:
    session = welcomed()
    session.receive_data(COMMAND, now=0.0)  # a command before subscribe is fine
    session.receive_data(SUBSCRIBE_1_300, now=0.1)
    assert session.requests_received() == [
        m.Command(command_id=CMD, name="note", args={}),
        m.Subscribe(cursors=[(1, 300)], epoch="e1"),
    ]
    assert session.state is State.SUBSCRIBED
    assert session.data_to_send() == []
    assert session.requests_received() == []


def test_ping_is_answered_with_the_same_nonce() -> None:
    session = welcomed()
    session.receive_data(PING_7, now=0.0)
    assert session.data_to_send() == [PONG_7]
    assert session.requests_received() == []


def test_pong_is_a_request() -> None:
    session = welcomed()
    session.receive_data(PONG_7, now=0.0)
    assert session.requests_received() == [m.Pong(nonce=7)]


def test_send_result_and_encoded_frames_queue_in_order() -> None:
    session = welcomed()
    session.send_result(CMD, {"seq": 5})
    session.send_encoded(CAUGHT_UP)
    assert session.pending == 2
    assert session.data_to_send() == [m.encode(m.Result(command_id=CMD, result={"seq": 5})), CAUGHT_UP]


# --- server: bad input -------------------------------------------------------------------------------


def test_bad_frame_gets_an_error_and_the_session_goes_on() -> None:
    session = welcomed()
    session.receive_data(NOT_MSGPACK, now=0.0)
    [error] = errors(session.data_to_send())
    assert error.code == "protocol"
    assert error.message.startswith("not a msgpack value")
    assert session.close_requested is None
    session.receive_data(SUBSCRIBE, now=0.1)
    assert session.requests_received() == [m.Subscribe()]


def test_error_names_the_field() -> None:
    session = welcomed()
    # {type: "subscribe", cursors: [[1, "x"]]}
    session.receive_data(bytes.fromhex("82a474797065a9737562736372696265a7637572736f7273919201a178"), now=0.0)
    [error] = errors(session.data_to_send())
    assert (error.code, error.field) == ("protocol", "cursors[0][1]")
    assert error.message == "subscribe.cursors[0][1]: expected integer"
    assert session.state is State.WELCOMED


def test_error_for_a_bad_command_carries_its_command_id() -> None:
    session = welcomed()
    session.receive_data(m.encode(m.Command(command_id=CMD, name="note")).replace(b"note", b"nope"), now=0.0)
    [error] = errors(session.data_to_send())
    assert (error.command_id, error.field) == (CMD, "name")


def test_second_subscribe_is_a_protocol_error() -> None:
    session = welcomed()
    session.receive_data(SUBSCRIBE, now=0.0)
    session.receive_data(SUBSCRIBE_1_300, now=0.1)
    assert session.requests_received() == [m.Subscribe()]
    [error] = errors(session.data_to_send())
    assert error.code == "protocol"
    assert "already subscribed" in error.message


def test_server_message_from_a_client_is_a_protocol_error() -> None:
    session = welcomed()
    session.receive_data(CAUGHT_UP, now=0.0)
    [error] = errors(session.data_to_send())
    assert error.message == "'caught_up' is not sent by clients"
    assert session.requests_received() == []


def test_text_frame_is_a_protocol_error() -> None:
    session = welcomed()
    session.receive_text('{"type": "ping"}', now=0.0)
    [error] = errors(session.data_to_send())
    assert error.code == "protocol"


def test_repeated_violations_close_with_1002() -> None:
    session = welcomed()
    for i in range(5):
        session.receive_data(NOT_MSGPACK, now=i * 0.1)
    assert session.close_requested is None
    session.receive_data(NOT_MSGPACK, now=1.0)
    assert len(errors(session.data_to_send())) == 6
    assert session.close_requested == (CloseCode.PROTOCOL_ERROR, "too many protocol violations (6)")
    assert session.state is State.CLOSED


def test_oversize_frame_closes_with_1009() -> None:
    session = welcomed(max_frame_bytes=len(COMMAND))
    session.receive_data(COMMAND, now=0.0)  # exactly the limit is fine
    assert session.requests_received() == [m.Command(command_id=CMD, name="note")]
    session.receive_data(COMMAND + b"\x00", now=0.1)
    [error] = errors(session.data_to_send())
    assert error.code == "frame_too_large"
    assert session.close_requested == (1009, "frame too large")
    assert session.requests_received() == []


def test_nothing_happens_after_close() -> None:
    session = welcomed()
    session.close(CloseCode.SESSION_REVOKED, "session revoked")
    session.receive_data(PING_7, now=0.0)
    session.send(m.Ping(nonce=1))
    session.close(CloseCode.NORMAL, "bye")
    assert session.data_to_send() == []
    assert session.requests_received() == []
    assert session.close_requested == (4010, "session revoked")


def test_close_reason_fits_a_close_frame() -> None:
    session = welcomed()
    session.close(CloseCode.INTERNAL_ERROR, "内部错误" * 20)
    assert session.close_requested is not None
    reason = session.close_requested[1]
    assert len(reason.encode()) <= 123
    assert reason == "内部错误" * 10 + "内"


def test_full_outbox_closes_with_4008() -> None:
    session = welcomed(outbox_frames=3)
    for nonce in range(3):
        session.send(m.Ping(nonce=nonce))
    assert session.close_requested is None
    session.send(m.Ping(nonce=3))
    assert session.close_requested == (4008, "too slow: outbox full, resume from your cursor")
    assert session.data_to_send() == []


def test_draining_the_outbox_keeps_a_fast_client_open() -> None:
    session = welcomed(outbox_frames=3)
    for nonce in range(10):
        session.send(m.Ping(nonce=nonce))
        session.data_to_send()
    assert session.close_requested is None


# --- server: rate limit with an injected time ---------------------------------------------------------


def test_rate_limit_warns_then_closes_with_4029() -> None:
    session = welcomed(rate_per_s=1.0, burst=2)
    session.receive_data(PING_7, now=100.0)
    session.receive_data(PING_7, now=100.0)
    assert session.data_to_send() == [PONG_7, PONG_7]
    session.receive_data(PING_7, now=100.0)  # over the burst: dropped with a warning
    [error] = errors(session.data_to_send())
    assert error.code == "rate_limited"
    assert "retry after 1.000 s" in error.message
    assert session.close_requested is None
    session.receive_data(PING_7, now=100.5)  # still over, after the warning
    assert session.close_requested == (4029, "rate limit exceeded")
    assert session.data_to_send() == []


def test_rate_limit_refills_with_time() -> None:
    session = welcomed(rate_per_s=1.0, burst=2)
    for now in (0.0, 0.0, 1.0, 2.0, 3.0, 4.0):  # one a second is the sustained rate
        session.receive_data(PING_7, now=now)
    assert session.data_to_send() == [PONG_7] * 6
    assert session.close_requested is None


def test_rate_warning_is_forgotten_once_the_bucket_is_full() -> None:
    session = welcomed(rate_per_s=1.0, burst=2)
    for _ in range(3):
        session.receive_data(PING_7, now=0.0)
    assert [e.code for e in errors(session.data_to_send())] == ["rate_limited"]
    for _ in range(3):
        session.receive_data(PING_7, now=10.0)  # quiet for long enough: a new burst, a new warning
    assert [e.code for e in errors(session.data_to_send())] == ["rate_limited"]
    assert session.close_requested is None


# --- server: heartbeat ----------------------------------------------------------------------------------


def test_heartbeat_pings_an_idle_client_once() -> None:
    session = welcomed(heartbeat_s=10.0)
    session.receive_data(SUBSCRIBE, now=0.0)
    session.heartbeat(now=9.9)
    assert session.data_to_send() == []
    session.heartbeat(now=10.0)
    session.heartbeat(now=15.0)
    assert session.data_to_send() == [m.encode(m.Ping(nonce=1))]
    session.receive_data(m.encode(m.Pong(nonce=1)), now=16.0)
    session.heartbeat(now=25.0)
    assert session.data_to_send() == []
    session.heartbeat(now=26.0)
    assert session.data_to_send() == [m.encode(m.Ping(nonce=2))]
    assert session.close_requested is None


def test_heartbeat_timeout_closes_with_4000() -> None:
    session = welcomed(heartbeat_s=10.0)
    session.receive_data(SUBSCRIBE, now=50.0)
    session.heartbeat(now=60.0)
    session.heartbeat(now=69.9)
    assert session.close_requested is None
    session.heartbeat(now=70.0)
    assert session.close_requested == (4000, "heartbeat timeout")


def test_heartbeat_clock_starts_at_the_first_call() -> None:
    session = welcomed(heartbeat_s=10.0)
    session.heartbeat(now=1000.0)
    session.heartbeat(now=1010.0)  # pinged
    session.heartbeat(now=1019.0)
    assert session.close_requested is None
    session.heartbeat(now=1020.0)
    assert session.close_requested == (4000, "heartbeat timeout")


def test_a_late_ping_still_gives_the_client_heartbeat_s_to_answer() -> None:
    """Called late (a busy hub: here not between 1000 and 1019), the hub pings first and closes only when
    heartbeat_s has passed since that ping without a frame — not at once because 2 × heartbeat_s of silence
    passed while it was not looking."""
    session = welcomed(heartbeat_s=10.0)
    session.heartbeat(now=1000.0)
    session.data_to_send()
    session.heartbeat(now=1020.5)
    assert session.close_requested is None
    assert [type(m.decode(f)) for f in session.data_to_send()] == [m.Ping]
    assert session.heartbeat_due() == 1030.5
    session.heartbeat(now=1030.0)
    assert session.close_requested is None
    session.heartbeat(now=1030.5)
    assert session.close_requested == (4000, "heartbeat timeout")


@pytest.mark.parametrize("seed", range(20))
def test_heartbeat_called_only_when_due_acts_as_one_called_every_tick(seed: int) -> None:
    """The hub calls ``heartbeat`` only once ``heartbeat_due`` has come (not every second for every socket):
    the same pings at the same ticks and the same 4000, whatever the client sends when."""
    rnd = random.Random(seed)
    every, lazy = welcomed(heartbeat_s=10.0), welcomed(heartbeat_s=10.0)
    assert every.data_to_send() == lazy.data_to_send()
    acted = 0
    for tick in range(1, 150):
        now = float(tick)
        if rnd.random() < 0.06:  # the client answers a ping, or sends something else
            frame = m.encode(m.Pong(nonce=every._ping_nonce)) if rnd.random() < 0.7 else PING_7
            at = now - rnd.random()
            every.receive_data(frame, now=at)
            lazy.receive_data(frame, now=at)
        every.heartbeat(now)
        due = lazy.heartbeat_due()
        if due is not None and now >= due:
            lazy.heartbeat(now)
            acted += 1
        sent = every.data_to_send()
        assert lazy.data_to_send() == sent, tick
        assert lazy.close_requested == every.close_requested, tick
    assert acted < 20  # far fewer calls than ticks
    assert every.close_requested is not None or every._ping_nonce > 0


def test_any_frame_counts_as_alive() -> None:
    session = welcomed(heartbeat_s=10.0)
    for now in range(0, 100, 9):
        session.receive_data(NOT_MSGPACK if now % 2 else COMMAND, now=float(now))
        session.heartbeat(now=float(now) + 0.5)
    assert all(not isinstance(m.decode(f), m.Ping) for f in session.data_to_send())


# --- client --------------------------------------------------------------------------------------------


def event(township_id: int, seq: int) -> bytes:
    return m.encode(
        m.Event(
            township_id=township_id,
            seq=seq,
            event_type="assignment.acknowledged",
            call_id=CALL,
            assignment_id=None,
            at=1700000000000,
            actor=m.Actor(id=2, name="li", role="liaison"),
            call_state="in_progress",
            assignment_state="acknowledged",
        )
    )


def welcome(epoch: str) -> bytes:
    return m.encode(
        m.Welcome(
            server_time=1700000000000,
            user=USER,
            scope=SCOPE,
            heads=[(1, 301)],
            epoch=epoch,
            limits=ServerSession().limits,
        )
    )


def test_first_subscribe_has_no_cursors_and_no_epoch() -> None:
    # {type: "subscribe", cursors: [], epoch: nil}
    assert ClientSession().subscribe_frame() == bytes.fromhex(
        "83a474797065a9737562736372696265a7637572736f727390a565706f6368c0"
    )


def test_client_dedups_events_and_advances_cursors() -> None:
    client = ClientSession()
    client.receive_data(welcome("e1"))
    for seq in (5, 5, 4, 9):  # 9: a liaison sees a filtered subsequence, gaps are normal
        client.receive_data(event(1, seq))
    client.receive_data(event(2, 1))
    received = client.events_received()
    assert [(e.township_id, e.seq) for e in received if isinstance(e, m.Event)] == [(1, 5), (1, 9), (2, 1)]
    assert client.cursors == {1: 9, 2: 1}


def test_caught_up_moves_the_cursor_to_the_head() -> None:
    client = ClientSession(cursors={1: 290}, epoch="e1")
    client.receive_data(CAUGHT_UP)
    assert client.cursors == {1: 301}
    assert client.events_received() == [m.CaughtUp(heads=[(1, 301)])]


def test_resync_sets_the_cursor_to_the_head() -> None:
    client = ClientSession(cursors={2: 5000}, epoch="e1")
    client.receive_data(m.encode(m.Resync(township_id=2, reason="cursor_ahead", head=40)))
    assert client.cursors == {2: 40}
    client.receive_data(event(2, 41))
    assert len(client.events_received()) == 2


def test_resume_sends_cursors_and_epoch() -> None:
    client = ClientSession(cursors={1: 300}, epoch="e1")
    client.receive_data(welcome("e1"))
    assert client.cursors == {1: 300}
    assert client.subscribe_frame() == SUBSCRIBE_1_300


def test_epoch_change_clears_cursors() -> None:
    client = ClientSession(cursors={1: 300}, epoch="e0")
    client.receive_data(welcome("e1"))
    assert client.cursors == {}
    assert client.epoch == "e1"
    assert m.decode(client.subscribe_frame()) == m.Subscribe(cursors=[], epoch="e1")
    client.receive_data(event(1, 1))  # the new log starts again at 1
    assert client.cursors == {1: 1}


def test_client_answers_ping() -> None:
    client = ClientSession()
    client.receive_data(PING_7)
    assert client.data_to_send() == [PONG_7]
    assert client.events_received() == []


def test_malformed_server_frame_requests_close_1002() -> None:
    client = ClientSession()
    client.receive_data(NOT_MSGPACK)
    assert client.close_requested is not None
    assert client.close_requested[0] == CloseCode.PROTOCOL_ERROR
    client.receive_data(PING_7)  # nothing more is processed
    assert client.data_to_send() == []


def test_client_message_from_the_server_is_a_protocol_error() -> None:
    client = ClientSession()
    client.receive_data(SUBSCRIBE)
    assert client.protocol_error is not None
    assert client.protocol_error.message == "'subscribe' is not sent by servers"


def test_command_frame_retry_is_byte_identical() -> None:
    client = ClientSession()
    command_id, frame = client.command_frame("note", {"text": "到场"})
    assert m.decode(frame) == m.Command(command_id=command_id, name="note", args={"text": "到场"})
    assert client.command_frame("note", {"text": "到场"}, command_id=command_id) == (command_id, frame)
    assert client.command_frame("note", {}, command_id=CMD) == (CMD, COMMAND)
