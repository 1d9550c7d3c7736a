"""Heartbeat scheduling: a tick takes out exactly the sockets due by then, each once."""

from __future__ import annotations

from dispatch.realtime.beats import DueBuckets


def test_items_come_out_at_the_first_tick_at_or_after_their_due_time() -> None:
    buckets: DueBuckets[str] = DueBuckets(now=100.3)
    buckets.schedule("a", 101.0)
    buckets.schedule("b", 101.2)
    buckets.schedule("c", float("-inf"))  # at once: the next tick
    assert buckets.due(100.9) == []
    assert sorted(buckets.due(101.0)) == ["a", "c"]
    assert buckets.due(101.5) == []  # b is due at 101.2: the tick of 102 takes it (never early)
    assert buckets.due(102.0) == ["b"]
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
