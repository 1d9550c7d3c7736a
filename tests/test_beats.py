"""Heartbeat scheduling: a tick takes out exactly the sockets due by then, each once."""

from __future__ import annotations

import pytest

from dispatch.realtime.beats import DueBuckets
from protocols import messages as m
from protocols.session import ServerSession


def test_items_come_out_at_the_tick_of_the_second_their_due_time_falls_in() -> None:
    buckets: DueBuckets[str] = DueBuckets(now=100.3)
    buckets.schedule("a", 101.0)
    buckets.schedule("b", 101.2)
    buckets.schedule("c", float("-inf"))  # at once: the next tick
    buckets.schedule("d", 102.7)
    assert buckets.due(100.9) == []
    # b is due at 101.2: the tick of 101 (which runs a little after 101, perhaps after 101.2) takes it
    assert sorted(buckets.due(101.3)) == ["a", "b", "c"]
    assert buckets.due(101.9) == []
    assert buckets.due(102.1) == ["d"]  # early: the caller finds it not yet due and schedules it again
    buckets.schedule("d", 102.7)
    assert buckets.due(102.9) == []
    assert buckets.due(103.0) == ["d"]
    assert len(buckets) == 0


def test_rescheduling_moves_and_discard_forgets() -> None:
    buckets: DueBuckets[str] = DueBuckets(now=0.0)
    buckets.schedule("a", 5.0)
    buckets.schedule("a", 9.0)  # it spoke meanwhile: later
    buckets.schedule("b", 3.0)
    buckets.discard("b")  # it left
    assert buckets.due(8.0) == []
    assert buckets.due(9.0) == ["a"]
    buckets.schedule("a", 4.0)  # already past: the next tick
    assert buckets.due(10.0) == ["a"]


def test_a_long_stall_takes_out_everything_overdue_in_order() -> None:
    buckets: DueBuckets[int] = DueBuckets(now=0.0)
    for i in range(5):
        buckets.schedule(i, 10.0 * i + 1)
    assert buckets.due(1_000_000.0) == [0, 1, 2, 3, 4]
    buckets.schedule(7, 2.0)
    assert buckets.due(1_000_001.0) == [7]


def test_steps_of_a_tenth_spread_the_items_of_one_second() -> None:
    """The hub ticks ten times a second (``hub.HEARTBEAT_TICK_S``): sockets due within one second come out at
    the tick of their tenth, not all at the second's."""
    buckets: DueBuckets[int] = DueBuckets(now=100.0, step=0.1)
    for i in range(10):
        buckets.schedule(i, 101.0 + i / 10 + 0.05)
    ticks = [sorted(buckets.due(101.0 + k / 10 + 0.01)) for k in range(10)]
    assert ticks == [[k] for k in range(10)]
    buckets.schedule(42, 101.93)  # a step already taken out: the next tick
    assert buckets.due(102.02) == [42]
    assert len(buckets) == 0


@pytest.mark.parametrize(("step", "lateness"), [(1.0, 0.3), (0.1, 0.03)])
def test_a_client_that_answers_every_ping_is_never_closed_by_late_ticks(step: float, lateness: float) -> None:
    """Ticks run a little after each step (here 30% of it); a client answers each ping 0.1 s after it was sent.
    Scheduled by buckets as the hub does (``heartbeat_due``), it is pinged every second or two and never closed
    4000: a ping due between a step and its tick goes out at that tick, not a step later."""
    session = ServerSession(max_frame_bytes=65536, rate_per_s=20, burst=40, outbox_frames=100, heartbeat_s=1.0)
    session.send_welcome(user=m.User(id=1, name="x", role="operator"),
                         scope=m.Scope(role="operator", township_ids=[1], target=None, read_only=False),
                         heads=[], epoch="e", server_time=0)
    session.data_to_send()
    buckets: DueBuckets[str] = DueBuckets(now=0.0, step=step)
    buckets.schedule("s", float("-inf"))
    pings = 0
    for tick in range(1, round(120 / step)):
        now = tick * step + lateness
        for _ in buckets.due(now):
            session.heartbeat(now)
            for frame in session.data_to_send():
                ping = m.decode(frame)
                assert isinstance(ping, m.Ping)
                pings += 1
                session.receive_data(m.encode(m.Pong(nonce=ping.nonce)), now=now + 0.1)
            due = session.heartbeat_due()
            assert due is not None
            buckets.schedule("s", due)
        assert session.close_requested is None, tick
    assert pings >= 50
