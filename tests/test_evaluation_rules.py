"""The pure rules of the evaluation (docs/EVALUATION.md), one by one: periods at 00:00 Asia/Shanghai,
verdicts, nearest-rank percentiles, competition ranking, the composite score with missing denominators."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from dispatch.evaluation import period as P
from dispatch.evaluation import scorecard as S
from dispatch.evaluation.facts import _without_last
from protocols.errors import ValidationFailed

NOW = datetime(2026, 11, 30, 4, 0, tzinfo=UTC)
D = datetime(2026, 10, 10, 2, 0, tzinfo=UTC)


def test_a_month_runs_from_midnight_in_shanghai() -> None:
    oct_ = P.parse_month("2026-10")
    assert oct_.start == datetime(2026, 9, 30, 16, tzinfo=UTC) and oct_.end == datetime(2026, 10, 31, 16, tzinfo=UTC)
    assert P.month_of(datetime(2026, 10, 31, 15, 59, 59, 999999, tzinfo=UTC)) == "2026-10"
    assert P.month_of(datetime(2026, 10, 31, 16, tzinfo=UTC)) == "2026-11"
    assert P.last_month(NOW).label == "2026-10"
    assert P.last_month(datetime(2026, 1, 1, 0, tzinfo=UTC)).label == "2025-12"  # 08:00 on 1 January in Shanghai
    assert P.previous(P.parse_month("2026-01")).label == "2025-12"
    assert [m.label for m in P.months_ending(P.parse_month("2026-02"), 3)] == ["2025-12", "2026-01", "2026-02"]


def test_a_date_range_and_its_previous_period() -> None:
    r = P.date_range(date(2026, 10, 5), date(2026, 10, 11))
    assert r.month is None and r.days == 7 and r.label == "2026-10-05..2026-10-11"
    before = P.previous(r)
    assert (before.first, before.last) == (date(2026, 9, 28), date(2026, 10, 4))
    assert P.date_range(date(2026, 2, 1), date(2026, 2, 28)).month == "2026-02"  # a whole month is a month


@pytest.mark.parametrize(("month", "first", "last", "field"), [
    ("2026-13", None, None, "month"), ("26-10", None, None, "month"), ("2026-10", date(2026, 10, 1), None, "month"),
    (None, date(2026, 10, 2), date(2026, 10, 1), "to"), (None, date(2026, 10, 2), None, "to"),
    (None, date(2020, 1, 1), date(2026, 1, 1), "to"),
])
def test_a_bad_period_names_its_field(month: str | None, first: date | None, last: date | None, field: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        P.resolve(month, first, last, NOW)
    assert info.value.field == field


S_ = timedelta(seconds=1)


@pytest.mark.parametrize(("stop", "requested", "ended", "as_of", "response", "expected"), [
    (D, None, None, NOW, True, S.ON_TIME),  # stopped exactly at the deadline
    (D + S_, None, None, NOW, True, S.LATE),  # a second late
    (None, D - S_, None, NOW, True, S.PENDING),  # a request in time waits for the operator
    (None, D + S_, None, NOW, True, S.LATE),  # a request after the deadline: answered, late
    (None, D + S_, None, NOW, False, S.MISSED),
    (None, None, D, NOW, True, S.EXCLUDED),  # withdrawn at the deadline, not after it
    (None, None, D + S_, NOW, True, S.MISSED),  # withdrawn a second after it
    (None, None, None, D, True, S.PENDING),  # still running, deadline not passed
    (None, None, None, D + S_, True, S.MISSED),
    (D - S_, None, D + timedelta(hours=1), NOW, True, S.ON_TIME),  # answered, then withdrawn: the answer counts
])
def test_verdicts(stop: datetime | None, requested: datetime | None, ended: datetime | None, as_of: datetime,
                  response: bool, expected: str) -> None:
    assert S.judge(D, stop, requested, ended, as_of, response) == expected


def test_percentiles_are_nearest_rank() -> None:
    assert S.percentile([], 50) is None
    assert S.percentile([7], 90) == 7
    values = list(range(1, 11))
    assert (S.percentile(values, 50), S.percentile(values, 90), S.percentile(values, 91)) == (5, 9, 10)


def test_ranks_are_competition_ranks() -> None:
    assert S.rank({"a": 90.0, "b": 95.5, "c": 90.0, "d": 80.0, "e": None}) == \
        {"a": 2, "b": 1, "c": 2, "d": 4, "e": None}


def test_the_score_shares_the_weight_of_a_rate_without_denominator() -> None:
    weights = {"response_rate": 0.3, "arrive_rate": 0.0, "resolution_rate": 0.35, "satisfaction_rate": 0.35}
    full = S.score({"response_rate": 0.5, "resolution_rate": 1.0, "satisfaction_rate": 0.8}, weights)
    assert full["value"] == 100 * (0.3 * 0.5 + 0.35 * 1.0 + 0.35 * 0.8)
    assert [c["rate"] for c in full["components"]] == ["response_rate", "resolution_rate", "satisfaction_rate"]
    partial = S.score({"response_rate": 0.5, "resolution_rate": None, "satisfaction_rate": None}, weights)
    assert partial["value"] == 50.0 and partial["components"][0]["effective_weight"] == 1.0
    assert S.score({"response_rate": None}, weights)["value"] is None


def test_voided_levels_remove_the_current_cycles_occurrence() -> None:
    assert _without_last((1, 2, 1, 2, 3), [2, 3]) == (1, 2, 1)
    assert _without_last((1,), [2]) == (1,)
