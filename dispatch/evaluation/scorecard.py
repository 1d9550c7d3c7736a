"""Scorecards: verdicts per clock, figures per group, the composite score, ranks and the change.

Input rows are assignment facts (``Facts.to_row()`` or database rows with the same names). Every rule
here is written down, with its edge cases, in docs/EVALUATION.md; a change here changes that page."""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar

from dispatch.evaluation import facts as F

T = TypeVar("T", datetime, int)


class Row(Protocol):
    """A facts row: ``Facts.to_row()`` or a database record with the same names."""

    def __getitem__(self, key: str, /) -> Any: ...


# Verdicts of one clock of one assignment.
ON_TIME = "on_time"  # the department stopped the clock by its deadline (to the microsecond, inclusive)
LATE = "late"  # stopped after its deadline
MISSED = "missed"  # not stopped and the deadline has passed (still open, or ended after the deadline)
PENDING = "pending"  # not stopped, deadline still ahead (or a transfer request made in time awaits review)
EXCLUDED = "excluded"  # ended by the operator or approved as "not our remit" before the deadline
VERDICTS = (ON_TIME, LATE, MISSED, PENDING, EXCLUDED)
CLOCKS = {"response": ("ack_due", "responded_at"), "arrive": ("arrive_due", "arrived_at"),
          "result": ("resolve_due", "reported_at")}
CLOCK_KIND = {"response": "ack", "arrive": "arrive", "result": "resolve"}
CLOCK_OF_KIND = {kind: clock for clock, kind in CLOCK_KIND.items()}
ESC_COLUMN = {kind: f"esc_{kind}" for kind in F.KINDS}
# Escalations count only on a clock whose deadline was missed (docs/EVALUATION.md, escalations).
MISSED_DEADLINE = frozenset({LATE, MISSED})
DURATION: dict[str, Callable[[F.Facts], int | None]] = {
    "response": F.response_ms, "arrive": F.arrive_ms, "result": F.result_ms}

# The named rates a composite score may weigh (configuration: [evaluation.presets.*]).
MS = timedelta(milliseconds=1)
RATES = ("response_rate", "arrive_rate", "result_rate", "resolution_rate", "satisfaction_rate")
RATE_OF_CLOCK = {"response": "response_rate", "arrive": "arrive_rate", "result": "result_rate"}


def judge(due: T, stop: T | None, requested: T | None, ended: T | None, as_of: T, response: bool) -> str:
    """Rules 2-5 of docs/EVALUATION.md (Verdicts) on one clock's times (datetimes, or µs as in scoring rows)."""
    if stop is not None:
        return ON_TIME if stop <= due else LATE
    if requested is not None:  # a transfer request waits for the operator: the clock is paused
        if requested <= due:
            return PENDING
        return LATE if response else MISSED
    if ended is not None:
        return EXCLUDED if ended <= due else MISSED
    return MISSED if as_of > due else PENDING


def verdict(row: Row, clock: str, as_of: datetime) -> str:
    """The verdict on one clock (``response``, ``arrive`` or ``result``) of one assignment at ``as_of``."""
    due_name, stop_name = CLOCKS[clock]
    if clock == "result" and row["late_cycles"]:
        return LATE  # rule 1: an earlier result cycle was late; a send-back does not cure it
    return judge(row[due_name], row[stop_name], row["requested_at"], row["ended_at"], as_of, clock == "response")


def verdicts(row: Row, as_of: datetime) -> dict[str, str]:
    return {clock: verdict(row, clock, as_of) for clock in CLOCKS}


def _net_ms(stop: int, start: int, paused_ms: int) -> int:
    """``stop − start − paused`` (times in µs) in whole milliseconds, never below 0 (as ``facts.response_ms``)."""
    return max(0, (stop - start) // 1000 - paused_ms)


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
US = timedelta(microseconds=1)
# The times a scoring row carries, as integer microseconds since 1970 (exact, and cheap to read and compare).
SCORING_TIMES = ("dispatched_at", "ack_due", "arrive_due", "resolve_due", "responded_at", "arrived_at", "reported_at",
                 "first_reported_at", "requested_at", "ended_at", "visited_at")
SCORING_COLUMNS = (*SCORING_TIMES, "township_id", "target", "state", "ended_how", "lead", "late_cycles",
                   "paused_ack_ms", "paused_arrive_ms", "paused_resolve_ms", "requests_approved", "requests_rejected",
                   "send_backs", "reopened", "adjusted", "esc_ack", "esc_arrive", "esc_resolve", "visit_resolved",
                   "visit_satisfaction")


def micros(at: datetime) -> int:
    return (at - EPOCH) // US


def scoring_row(row: Row) -> dict[str, Any]:
    """A facts row in the form ``tally`` reads: its times as integer microseconds since 1970."""
    out = {name: row[name] for name in SCORING_COLUMNS}
    for name in SCORING_TIMES:
        if out[name] is not None:
            out[name] = micros(out[name])
    return out


def percentile(sorted_values: Sequence[int], p: float) -> int | None:
    """Nearest rank: the value at position ceil(p/100 × n) (1-based) of the sorted sample; None if empty."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def ratio(num: int, den: int) -> float | None:
    return None if den == 0 else num / den


@dataclass
class Clock:
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(VERDICTS, 0))
    times: list[int] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        c = self.counts
        due = c[ON_TIME] + c[LATE] + c[MISSED]
        times = sorted(self.times)
        return {**c, "due": due, "rate": ratio(c[ON_TIME], due), "timed": len(times),
                "p50_ms": percentile(times, 50), "p90_ms": percentile(times, 90),
                "box_ms": None if not times else [times[0], percentile(times, 25), percentile(times, 50),
                                                  percentile(times, 75), times[-1]]}


@dataclass
class Tally:
    """The figures of one group (a department, a township × department, a township) being added up."""

    received: int = 0
    open: int = 0
    clocks: dict[str, Clock] = field(default_factory=lambda: {c: Clock() for c in CLOCKS})
    requests_approved: int = 0
    requests_rejected: int = 0
    not_our_remit: int = 0
    send_backs: int = 0
    reopened: int = 0
    adjusted: int = 0
    escalations: dict[str, dict[int, int]] = field(default_factory=lambda: {k: {} for k in F.KINDS})
    visited: int = 0
    resolved: int = 0
    satisfied: int = 0
    lead: int = 0

    def add(self, row: Row, as_of: int) -> None:
        """Add one assignment: a scoring row (times in µs, ``scoring_row``), judged at ``as_of`` (µs). The hot
        loop of a year's scorecards: every field is read once."""
        self.received += 1
        ended, state = row["ended_at"], row["state"]
        how = row["ended_how"]
        if how is None and state != "accepted":
            self.open += 1
        if row["lead"]:
            self.lead += 1
        requested, dispatched = row["requested_at"], row["dispatched_at"]
        responded, arrived, reported = row["responded_at"], row["arrived_at"], row["reported_at"]
        response = judge(row["ack_due"], responded, requested, ended, as_of, True)
        arrive = judge(row["arrive_due"], arrived, requested, ended, as_of, False)
        result = LATE if row["late_cycles"] else judge(row["resolve_due"], reported, requested, ended, as_of, False)
        clocks = self.clocks
        clocks["response"].counts[response] += 1
        clocks["arrive"].counts[arrive] += 1
        clocks["result"].counts[result] += 1
        if responded is not None:
            clocks["response"].times.append(_net_ms(responded, dispatched, row["paused_ack_ms"]))
        if arrived is not None:
            clocks["arrive"].times.append(_net_ms(arrived, dispatched, row["paused_arrive_ms"]))
        first = row["first_reported_at"]
        if first is not None:
            clocks["result"].times.append(_net_ms(first, dispatched, row["paused_resolve_ms"]))
        self.requests_approved += row["requests_approved"]
        self.requests_rejected += row["requests_rejected"]
        if how == F.NOT_OUR_REMIT:
            self.not_our_remit += 1
        self.send_backs += row["send_backs"]
        self.reopened += row["reopened"]
        self.adjusted += row["adjusted"]
        for kind, judged in (("ack", response), ("arrive", arrive), ("resolve", result)):
            if judged not in MISSED_DEADLINE:
                continue  # a rung written at the very instant the clock was stopped in time: not a miss
            levels = row[ESC_COLUMN[kind]]
            if levels:
                bucket = self.escalations[kind]
                for level in levels:
                    bucket[level] = bucket.get(level, 0) + 1
        if row["visited_at"] is not None:
            self.visited += 1
            if row["visit_resolved"]:
                self.resolved += 1
            if (row["visit_satisfaction"] or 0) >= 4:
                self.satisfied += 1

    def rates(self) -> dict[str, float | None]:
        out: dict[str, float | None] = {}
        for clock, name in RATE_OF_CLOCK.items():
            c = self.clocks[clock].counts
            out[name] = ratio(c[ON_TIME], c[ON_TIME] + c[LATE] + c[MISSED])
        out["resolution_rate"] = ratio(self.resolved, self.visited)
        out["satisfaction_rate"] = ratio(self.satisfied, self.visited)
        return out


class _FactsView:
    """Attribute access over a row, for the duration functions of ``facts``."""

    __slots__ = ("_row",)

    def __init__(self, row: Row) -> None:
        self._row = row

    def __getattr__(self, name: str) -> Any:
        return self._row[name]


def _facts_view(row: Row) -> F.Facts:
    return _FactsView(row)  # type: ignore[return-value]


def score(rates: Mapping[str, float | None], weights: Mapping[str, float]) -> dict[str, Any]:
    """The composite score 综合得分: 100 × Σ wᵢ·rateᵢ ÷ Σ wᵢ over the weighted rates that have a denominator.

    A rate without one (nothing due, nobody visited) is left out and its weight shared by the others in
    proportion (``effective_weight``); with none left the score is None."""
    used = {name: w for name, w in weights.items() if w > 0 and rates.get(name) is not None}
    total = sum(used.values())
    components = []
    for name, w in weights.items():
        if w <= 0:
            continue
        rate = rates.get(name)
        eff = used[name] / total if name in used and total > 0 else 0.0
        components.append({"rate": name, "weight": w, "effective_weight": round(eff, 6), "value": rate,
                           "points": None if rate is None or total == 0 else round(100 * eff * rate, 2)})
    value = None if total == 0 else round(100 * sum(used[n] * (rates[n] or 0.0) for n in used) / total, 2)
    terms = " + ".join(f"{w:g}×{name}" for name, w in weights.items() if w > 0)
    return {"value": value, "components": components, "formula": f"100 × ({terms}) ÷ (sum of the weights of "
                                                                  "the rates that have a denominator)"}


def card(tally: Tally, weights: Mapping[str, float]) -> dict[str, Any]:
    rates = tally.rates()
    return {
        "received": tally.received, "open": tally.open, "lead": tally.lead,
        **{clock: c.to_dict() for clock, c in tally.clocks.items()},
        "excluded": tally.clocks["response"].counts[EXCLUDED],
        "transfers": {"approved": tally.requests_approved, "rejected": tally.requests_rejected,
                      "not_our_remit": tally.not_our_remit},
        "send_backs": tally.send_backs, "reopened": tally.reopened, "adjusted_times": tally.adjusted,
        "escalations": {kind: {str(level): n for level, n in sorted(levels.items())}
                        for kind, levels in tally.escalations.items()},
        "visits": {"visited": tally.visited, "resolved": tally.resolved, "satisfied": tally.satisfied},
        "rates": rates, "score": score(rates, weights),
    }


def tally(rows: Iterable[Row], as_of: datetime, key: Callable[[Row], Hashable | None]) -> dict[Hashable, Tally]:
    """Add scoring ``rows`` (``scoring_row``, or the store's ``period_scoring_rows``) up per ``key(row)`` (rows
    whose key is None are left out), judged at ``as_of``."""
    out: dict[Hashable, Tally] = {}
    now = micros(as_of)
    for row in rows:
        k = key(row)
        if k is None:
            continue
        t = out.get(k)
        if t is None:
            t = out[k] = Tally()
        t.add(row, now)
    return out


def rank(scores: Mapping[Hashable, float | None]) -> dict[Hashable, int | None]:
    """Competition ranking by score, highest first (1, 2, 2, 4); no score, no rank."""
    ranked = sorted((s for s in scores.values() if s is not None), reverse=True)
    return {k: None if s is None else 1 + sum(1 for x in ranked if x > s) for k, s in scores.items()}


def with_ranks(cards: dict[Hashable, dict[str, Any]], previous: Mapping[Hashable, dict[str, Any]]) -> None:
    """Set ``rank``, ``previous`` and ``change`` on every card (in place); the previous period's cards are
    ranked among themselves."""
    now = rank({k: c["score"]["value"] for k, c in cards.items()})
    before = rank({k: c["score"]["value"] for k, c in previous.items()})
    for k, c in cards.items():
        c["rank"] = now[k]
        p = previous.get(k)
        prev_score = None if p is None else p["score"]["value"]
        prev_rank = before.get(k)
        rank_now = now[k]
        c["previous"] = {"score": prev_score, "rank": prev_rank, "received": 0 if p is None else p["received"]}
        c["change"] = {
            "score": None if prev_score is None or c["score"]["value"] is None
            else round(c["score"]["value"] - prev_score, 2),
            "rank": None if prev_rank is None or rank_now is None else prev_rank - rank_now}


# --------------------------------------------------------------------------------- drill-down


def members(row: Row, figure: str, as_of: datetime) -> bool:
    """Whether the assignment ``row`` is one of those behind ``figure`` (see FIGURES)."""
    head, _, tail = figure.partition(".")
    if head == "received":
        return True
    if head == "open":
        return row["ended_how"] is None and row["state"] != "accepted"
    if head == "excluded":
        return verdict(row, "response", as_of) == EXCLUDED
    if head in CLOCKS:
        if tail == "due":
            return verdict(row, head, as_of) in (ON_TIME, LATE, MISSED)
        if tail == "timed":
            return DURATION[head](_facts_view(row)) is not None
        return verdict(row, head, as_of) == tail
    if head == "transfers":
        if tail == "not_our_remit":
            return bool(row["ended_how"] == F.NOT_OUR_REMIT)
        return bool(row[f"requests_{tail}"])
    if head in ("send_backs", "reopened", "adjusted"):
        return bool(row[head])
    if head == "escalations":
        kind, _, level = tail.partition(".")
        if verdict(row, CLOCK_OF_KIND[kind], as_of) not in MISSED_DEADLINE:
            return False
        return int(level) in (row[f"esc_{kind}"] or ()) if level else bool(row[f"esc_{kind}"])
    if head == "visits":
        if row["visited_at"] is None:
            return False
        if tail == "visited":
            return True
        if tail in ("resolved", "unresolved"):
            return bool(row["visit_resolved"]) == (tail == "resolved")
        return ((row["visit_satisfaction"] or 0) >= 4) == (tail == "satisfied")
    return False


FIGURES: tuple[str, ...] = (
    "received", "open", "excluded",
    *(f"{clock}.{v}" for clock in CLOCKS for v in (*VERDICTS, "due", "timed")),
    "transfers.approved", "transfers.rejected", "transfers.not_our_remit", "send_backs", "reopened", "adjusted",
    *(f"escalations.{k}" for k in F.KINDS), *(f"escalations.{k}.{n}" for k in F.KINDS for n in range(1, 10)),
    "visits.visited", "visits.resolved", "visits.unresolved", "visits.satisfied", "visits.unsatisfied",
)


def explain(row: Row, as_of: datetime) -> dict[str, Any]:
    """One assignment as the drill-down shows it: each clock's deadline, stop, duration and verdict."""
    view = _facts_view(row)
    clocks = {}
    for clock, (due_name, stop_name) in CLOCKS.items():
        clocks[clock] = {"due": _iso(row[due_name]), "stopped_at": _iso(row[stop_name]),
                         "ms": DURATION[clock](view), "verdict": verdict(row, clock, as_of)}
    clocks["response"]["by"] = row["responded_by"]
    clocks["result"].update(first_reported_at=_iso(row["first_reported_at"]), cycles=row["result_cycles"],
                            late_cycles=row["late_cycles"])
    return {
        "assignment_id": str(row["assignment_id"]), "call_id": str(row["call_id"]), "number": row["number"],
        "township_id": row["township_id"], "target": row["target"], "category": row["category"],
        "priority": row["priority"], "lead": row["lead"], "state": row["state"],
        "dispatched_at": _iso(row["dispatched_at"]), "clocks": clocks,
        "requested_at": _iso(row["requested_at"]),
        "ended": None if row["ended_how"] is None else {"how": row["ended_how"], "at": _iso(row["ended_at"])},
        "transfers": {"approved": row["requests_approved"], "rejected": row["requests_rejected"]},
        "send_backs": row["send_backs"], "reopened": row["reopened"], "adjusted_times": row["adjusted"],
        "escalations": {k: list(row[f"esc_{k}"] or ()) for k in F.KINDS},
        "visit": None if row["visited_at"] is None else {
            "at": _iso(row["visited_at"]), "resolved": row["visit_resolved"],
            "satisfaction": row["visit_satisfaction"]},
    }


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()
