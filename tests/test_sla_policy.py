"""The pure SLA rules: the next rung an assignment waits for, and the deadline lookup (no I/O, no clock)."""

from __future__ import annotations

import tomllib
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest

from dispatch.core.config import DEFAULT_CONFIG_PATH, Config
from dispatch.core.domain import DeadlineKind, Priority
from dispatch.core.records import Assignment
from dispatch.core.sla_policy import deadline_of, next_escalation
from dispatch.core.transitions import AssignmentState

T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
A = AssignmentState
ACK, ARRIVE, RESOLVE = DeadlineKind.ACK, DeadlineKind.ARRIVE, DeadlineKind.RESOLVE


def raw_config() -> dict[str, Any]:
    return tomllib.loads(DEFAULT_CONFIG_PATH.read_text(encoding="utf-8"))


def config_with(**sla: Any) -> Config:
    raw = raw_config()
    raw["sla"].update(sla)
    return Config.model_validate(raw)


def assignment(state: AssignmentState = A.DISPATCHED, ack: int = 120, arrive: int = 1200, resolve: int = 14400,
               levels: dict[str, int] | None = None) -> Assignment:
    return Assignment(id=uuid4(), call_id=uuid4(), target="police", state=state, dispatched_at=T0,
                      ack_due=T0 + timedelta(seconds=ack), arrive_due=T0 + timedelta(seconds=arrive),
                      resolve_due=T0 + timedelta(seconds=resolve), updated_at=T0,
                      levels={"ack": 0, "arrive": 0, "resolve": 0, **(levels or {})})


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_a_fresh_assignment_waits_for_the_first_ack_level_at_the_deadline(cfg: Config) -> None:
    nxt = next_escalation(assignment(), cfg)
    assert nxt is not None
    assert (nxt.kind, nxt.level, nxt.due, nxt.deadline) == (ACK, 1, at(120), at(120))


def test_the_next_level_falls_after_s_after_the_deadline(cfg: Config) -> None:
    second = next_escalation(assignment(levels={"ack": 1}), cfg)
    third = next_escalation(assignment(levels={"ack": 2}), cfg)
    assert second is not None and third is not None
    assert (second.kind, second.level, second.due, second.deadline) == (ACK, 2, at(240), at(120))
    assert (third.kind, third.level, third.due) == (ACK, 3, at(420))


def test_the_last_rung_stops_that_kind_and_the_next_kind_follows(cfg: Config) -> None:
    nxt = next_escalation(assignment(levels={"ack": 3}), cfg)
    assert nxt is not None and (nxt.kind, nxt.level, nxt.due) == (ARRIVE, 1, at(1200))
    done = next_escalation(assignment(A.ON_SCENE, levels={"resolve": 2}), cfg)
    assert done is None


def test_the_earliest_rung_of_any_kind_wins(cfg: Config) -> None:
    # ack level 3 would fall at 100 + 300 s, after the arrive deadline at 200 s
    nxt = next_escalation(assignment(ack=100, arrive=200, resolve=300, levels={"ack": 2}), cfg)
    assert nxt is not None and (nxt.kind, nxt.level, nxt.due) == (ARRIVE, 1, at(200))


@pytest.mark.parametrize(("state", "kind"), [(A.ACKNOWLEDGED, ARRIVE), (A.ON_SCENE, RESOLVE)])
def test_a_met_deadline_no_longer_escalates(cfg: Config, state: AssignmentState, kind: DeadlineKind) -> None:
    nxt = next_escalation(assignment(state), cfg)
    assert nxt is not None and nxt.kind == kind and nxt.level == 1


@pytest.mark.parametrize("state", [A.REPORTED, A.ACCEPTED, A.DECLINED, A.TRANSFERRED, A.WITHDRAWN])
def test_nothing_escalates_once_the_department_is_done_or_gone(cfg: Config, state: AssignmentState) -> None:
    assert next_escalation(assignment(state), cfg) is None


def test_a_sent_back_assignment_waits_for_its_new_result_deadline(cfg: Config) -> None:
    reopened = replace(assignment(A.ON_SCENE, levels={"resolve": 2}), resolve_due=at(90000),
                       levels={"ack": 0, "arrive": 0, "resolve": 0})
    nxt = next_escalation(reopened, cfg)
    assert nxt is not None and (nxt.kind, nxt.level, nxt.due) == (RESOLVE, 1, at(90000))


def test_a_changed_ladder_applies_to_the_next_level() -> None:
    ladder = raw_config()["sla"]["ladder"]
    ladder["ack"] = [{"after_s": 0, "notify": ["liaisons"]}, {"after_s": 30, "notify": ["county"]}]
    cfg = config_with(ladder=ladder)
    nxt = next_escalation(assignment(levels={"ack": 1}), cfg)
    assert nxt is not None and (nxt.level, nxt.due) == (2, at(150))
    after_last = next_escalation(assignment(levels={"ack": 2}), cfg)
    assert after_last is not None and after_last.kind == ARRIVE


def test_deadline_of_reads_the_kind(cfg: Config) -> None:
    a = assignment()
    assert [deadline_of(a, k) for k in (ACK, ARRIVE, RESOLVE)] == [at(120), at(1200), at(14400)]


def test_deadline_lookup_category_beats_department_beats_priority() -> None:
    cfg = config_with(department={"fire": {"urgent": {"ack": 60, "arrive": 900}}},
                      category={"fire_hazard": {"urgent": {"ack": 30}}})
    urgent = Priority.URGENT
    assert cfg.within(ACK, urgent, "fire", "fire_hazard") == timedelta(seconds=30)  # category
    assert cfg.within(ARRIVE, urgent, "fire", "fire_hazard") == timedelta(seconds=900)  # department
    assert cfg.within(RESOLVE, urgent, "fire", "fire_hazard") == timedelta(seconds=14400)  # priority
    assert cfg.within(ACK, urgent, "fire", "parking") == timedelta(seconds=60)
    assert cfg.within(ACK, urgent, "police", "fire_hazard") == timedelta(seconds=30)
    assert cfg.within(ACK, urgent, "police", "parking") == timedelta(seconds=120)
    assert cfg.within(ACK, Priority.LOW, "fire", "fire_hazard") == timedelta(seconds=1800)  # other priority
