"""The people of the simulated county: residents who call, liaisons who acknowledge, arrive, report or ask for a
transfer, each at a time drawn from their department's habits; and what the command centre (``centre``) does
next when something happens to a call."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta
from uuid import UUID

from dispatch.cli.history import scenery as S
from dispatch.cli.history.centre import CommandCentre
from dispatch.cli.history.clockwork import HOUR, MINUTE, Case, Township
from dispatch.core.commands import (
    Acknowledge,
    Arrive,
    CreateCall,
    Decline,
    Note,
    ReportResult,
)
from dispatch.core.config import Config
from dispatch.core.domain import DEPARTMENTS, Actor, DeadlineKind, Source
from dispatch.core.numbering import NUMBERING_TZ
from dispatch.core.records import Assignment, Call, Event
from dispatch.core.transitions import ASSIGNMENT_FINAL, AssignmentState, CallState

A, C = AssignmentState, CallState
LATEST = 4.0  # the latest a department answers, in windows (a low-priority result: 12 days)
OFFLINE = 0.04  # liaison actions sent later from a phone that was offline, with the earlier acted time


def months_before(end: datetime, months: int) -> datetime:
    """The same local (Asia/Shanghai) day and time ``months`` calendar months earlier (clamped to the month)."""
    local = end.astimezone(NUMBERING_TZ)
    index = local.year * 12 + local.month - 1 - months
    year, month = divmod(index, 12)
    day = min(local.day, (datetime(year + (month + 1) // 12, (month + 1) % 12 + 1, 1) - timedelta(days=1)).day)
    return local.replace(year=year, month=month + 1, day=day).astimezone(UTC)


class County(CommandCentre):
    """The demo county's months of activity; ``scale`` multiplies how many calls come in."""

    def __init__(self, cfg: Config, townships: list[Township], start: datetime, end: datetime, *,
                 seed: int = 1, scale: float = 1.0) -> None:
        super().__init__(cfg, townships, start, end, seed)
        self.scale = scale
        self.places = {t.id: S.places_of(t.code, t.name_zh, t.grids) for t in townships}
        self._at_address = {t.id: {p.address: p for p in self.places[t.id]} for t in townships}
        self._residents = {t.id: [S.person(self.rng) for _ in range(150)] for t in townships}
        routed = [c for c in cfg.categories if any(d in DEPARTMENTS for d in cfg.route(c))]
        self.categories = routed or list(cfg.categories)

    # -- calls coming in -----------------------------------------------------------------------------------------

    def begin(self) -> None:
        local = self.start.astimezone(NUMBERING_TZ)
        self.at(self.start, self._day, local.replace(hour=0, minute=0, second=0, microsecond=0))

    def _day(self, now: datetime, midnight_local: datetime) -> None:
        """Every call of one local day, each township by its size, the weekday and the season."""
        day = midnight_local.astimezone(UTC)
        for town in self.towns.values():
            rate = S.BUSY.get(town.code, S.DEFAULT_BUSY) * S.WEEKDAY[midnight_local.weekday()] * self.scale
            weights = [self._weight(town, c, midnight_local.month) for c in self.categories]
            for _ in range(_poisson(self.rng, rate)):
                category = self.rng.choices(self.categories, weights)[0]
                hour = self.rng.choices(range(24), S.NIGHT_OWLS.get(category, S.HOURS))[0]
                when = day + timedelta(hours=hour, seconds=self.rng.uniform(0, 3600))
                if self.start <= when <= self.end:
                    self.at(when, self._create, town, category)
        self.at(day + timedelta(days=1), self._day, (midnight_local + timedelta(days=1)).replace(hour=0))

    def _weight(self, town: Township, category: str, month: int) -> float:
        bias = S.URBAN_BIAS if town.code in S.URBAN else S.RURAL_BIAS
        return S.CATEGORY_WEIGHT.get(category, S.DEFAULT_CATEGORY_WEIGHT) * bias.get(category, 1.0) * S.season(
            category, month)

    def _create(self, now: datetime, town: Township, category: str) -> None:
        rng = self.rng
        places = [p for p in self.places[town.id] if p.kind in S.AFFINITY.get(category, ())] or list(
            self.places[town.id])
        place = rng.choices(places, [p.weight for p in places])[0]
        source = rng.choices([s for s, _ in S.SOURCES], [w for _, w in S.SOURCES])[0]
        options = S.PRIORITY_BY_CATEGORY.get(category, S.PRIORITY)
        priority = rng.choices([p for p, _ in options], [w for _, w in options])[0]
        name = phone = None
        if source in S.RESIDENT_SOURCES:
            residents = self._residents[town.id]
            name, phone = residents[rng.randrange(15)] if rng.random() < 0.2 else rng.choice(residents)
        elif source == Source.GRID:
            name, phone = S.person(rng)
        title, description = S.title_of(rng, category, self.cfg.categories[category].zh, place.address)
        targets = self._route(town, category)
        units = sorted(t for t in town.liaisons if t.startswith("unit:"))
        if units and rng.random() < 0.06:  # the township's own forces help on the spot (the "N")
            targets.append(rng.choice(units))
        intake_first = rng.random() < 0.08
        cmd = CreateCall(
            command_id=self.new_id(), source=source, category=category, title=title, description=description,
            address=place.address, lat=place.lat, lon=place.lon, grid_id=place.grid_id, priority=priority,
            reporter_name=name, reporter_phone=phone, targets=[] if intake_first else targets)
        call = self.execute(town, self._operator(town), cmd, None, now)
        case = self.cases[call.id]
        if intake_first:
            case.dispatch_pending = True
            self.at(now + rng.uniform(1, 7) * MINUTE, self._dispatch, call.id)
        if rng.random() < 0.025:  # the resident calls back, before or well after the deadlines
            early = rng.random() < 0.5
            delay = (self.cfg.within(DeadlineKind.ACK, priority, targets[0] if targets else "", category)
                     * rng.uniform(0.2, 0.9)) if early else rng.uniform(2, 30) * HOUR
            self.at(now + delay, self._cancel, call.id)
        if len(targets) > 1 and rng.random() < 0.02:
            self.at(now + rng.uniform(20, 120) * MINUTE, self._set_lead, call.id)
        if rng.random() < 0.03:
            self.at(now + rng.uniform(0.5, 6) * HOUR, self._operator_note, call.id)

    def open_case(self, call: Call, town: Township) -> Case:
        case = super().open_case(call, town)
        case.place = self._at_address[town.id].get(call.address)
        return case

    def _liaison(self, town: Township, target: str) -> Actor:
        people = town.liaisons[target]
        return people[0] if len(people) == 1 or self.rng.random() < 0.55 else self.rng.choice(people[1:])

    # -- reactions ---------------------------------------------------------------------------------------------

    def react(self, case: Case, events: list[Event], now: datetime) -> None:
        call = case.call
        for ev in events:
            a = None if ev.assignment_id is None else call.assignments[ev.assignment_id]
            if ev.type == "assignment.dispatched" and a is not None:
                self._dispatched(case, a, now)
            elif ev.type == "assignment.acknowledged" and a is not None:
                self._plan(case, a, "arrive", self._arrival(a, now))
                if self.rng.random() < 0.05:
                    self.at(now + self.rng.uniform(5, 60) * MINUTE, self._liaison_note, call.id, a.id)
            elif ev.type in ("assignment.arrived", "assignment.reopened") and a is not None:
                self._plan(case, a, "report_result", self._result(a, now, ev.type == "assignment.reopened"))
            elif ev.type == "assignment.transfer_rejected" and a is not None:
                if a.state == A.DISPATCHED:
                    self._plan(case, a, "acknowledge", now + self._fraction(a, DeadlineKind.ACK))
                else:
                    self._plan(case, a, "arrive", self._arrival(a, now))
            elif ev.type == "assignment.declined" and a is not None:
                wait = self.rng.lognormvariate(math.log(12), 0.9) * MINUTE  # some wait past the review deadline
                self.at(now + wait, self._review_transfer, call.id, a.id, a.declined_at)
            elif ev.type == "assignment.escalated" and a is not None:
                self._escalated(case, a, ev, now)
            elif ev.type == "call.reopened":
                case.reopened = frozenset(UUID(x) for x in ev.body["assignment_ids"])
            elif ev.type == "call.accepted":
                self._after_accept(case, now)
            elif ev.type == "call.visited" and not ev.body.get("reopen"):
                self.at(now + self.rng.uniform(0.1, 6) * HOUR, self._close, call.id)
        if call.state == C.REVIEW and not case.review_pending:
            case.review_pending = True
            self.at(now + self.rng.lognormvariate(math.log(25), 1.0) * MINUTE, self._review, call.id)
        if call.state == C.INTAKE and not case.dispatch_pending:
            case.dispatch_pending = True
            self.at(now + self.rng.uniform(1, 10) * MINUTE, self._dispatch, call.id)

    def _escalated(self, case: Case, a: Assignment, ev: Event, now: datetime) -> None:
        """An operator takes the alarm of a rung that sounds on the console; a late department is pressed (催办)."""
        kind, level = DeadlineKind(ev.body["deadline_kind"]), int(ev.body["level"])
        ladder = self.cfg.sla.ladder[kind]
        if "operators" in ladder[min(level, len(ladder)) - 1].notify and self.rng.random() < 0.8:
            self.at(now + self.rng.uniform(0.25, 3) * MINUTE, self._take_alarm, case.call.id, a.id, kind, level)
        if kind != DeadlineKind.REVIEW and level >= 2 and self.rng.random() < 0.3:
            self.at(now + self.rng.uniform(1, 10) * MINUTE, self._nudge, case.call.id, a.id)

    def _dispatched(self, case: Case, a: Assignment, now: datetime) -> None:
        rng = self.rng
        p = S.profile(a.target)
        first = now + self._fraction(a, DeadlineKind.ACK)
        asks = a.transferred_from is None and a.target in S.DECLINE_REASONS and rng.random() < p.decline
        self._plan(case, a, "decline" if asks else "acknowledge", first)
        others = [x for x in case.call.assignments.values() if x.id != a.id and x.state not in ASSIGNMENT_FINAL]
        if others and not a.lead and rng.random() < 0.03:
            self.at(now + rng.uniform(0.25, 4) * HOUR, self._withdraw, case.call.id, a.id)
        elif a.transferred_from is None and rng.random() < 0.01:
            self.at(now + rng.uniform(1, 6) * MINUTE, self._reroute, case.call.id, a.id)

    def _fraction(self, a: Assignment, kind: DeadlineKind) -> timedelta:
        """A delay of this department's habit: a lognormal fraction of the window of ``kind``."""
        median, sigma = {DeadlineKind.ACK: S.profile(a.target).ack, DeadlineKind.ARRIVE: S.profile(a.target).arrive,
                         DeadlineKind.RESOLVE: S.profile(a.target).result}[kind]
        due = {DeadlineKind.ACK: a.ack_due, DeadlineKind.ARRIVE: a.arrive_due, DeadlineKind.RESOLVE: a.resolve_due}
        return (due[kind] - a.dispatched_at) * self._habit(median, sigma)

    def _habit(self, median: float, sigma: float) -> float:
        """A lognormal fraction of a window: mostly well within it, a tail of late ones (at most ``LATEST``×)."""
        return min(LATEST, self.rng.lognormvariate(math.log(median), sigma))

    def _arrival(self, a: Assignment, now: datetime) -> datetime:
        return max(now + self.rng.uniform(2, 15) * MINUTE, a.dispatched_at + self._fraction(a, DeadlineKind.ARRIVE))

    def _result(self, a: Assignment, now: datetime, again: bool) -> datetime:
        """When the result is reported: a fraction of the window from dispatch, or of the fresh one after a
        send-back or 重办."""
        if again:
            median, sigma = S.profile(a.target).result
            at = now + (a.resolve_due - now) * self._habit(median, sigma)
        else:
            at = a.dispatched_at + self._fraction(a, DeadlineKind.RESOLVE)
        return max(now + self.rng.uniform(10, 40) * MINUTE, at)

    # -- liaisons ----------------------------------------------------------------------------------------------

    def _plan(self, case: Case, a: Assignment, kind: str, when: datetime) -> None:
        """The liaison's next action on ``a`` (any earlier plan for it is void)."""
        token = case.tokens[a.id] = case.tokens.get(a.id, 0) + 1
        acted = when
        if self.rng.random() < OFFLINE:
            when = acted + self.rng.uniform(2, 45) * MINUTE
        self.at(when, self._liaison_act, case.call.id, a.id, token, kind, acted)

    def _liaison_act(self, now: datetime, call_id: UUID, aid: UUID, token: int, kind: str, acted: datetime) -> None:
        case = self.cases.get(call_id)
        if case is None or case.tokens.get(aid) != token:
            return
        a = case.call.assignments[aid]
        rng, cid = self.rng, self.new_id()
        cmd: Acknowledge | Decline | Arrive | ReportResult
        if kind == "acknowledge" and a.state == A.DISPATCHED:
            cmd = Acknowledge(command_id=cid, assignment_id=aid, acted_at=acted)
        elif kind == "decline" and a.state in (A.DISPATCHED, A.ACKNOWLEDGED):
            reason, suggested = rng.choice(S.DECLINE_REASONS.get(a.target, S.GENERIC_DECLINE))
            cmd = Decline(command_id=cid, assignment_id=aid, acted_at=acted, reason=reason,
                          suggested_target=suggested if suggested in case.town.targets else None)
        elif kind == "arrive" and a.state == A.ACKNOWLEDGED:
            lat = lon = None
            if case.place is not None:  # on the spot, give or take a few dozen metres
                lat = round(case.place.lat + rng.uniform(-5e-4, 5e-4), 6)
                lon = round(case.place.lon + rng.uniform(-5e-4, 5e-4), 6)
            cmd = Arrive(command_id=cid, assignment_id=aid, acted_at=acted, lat=lat, lon=lon)
        elif kind == "report_result" and a.state == A.ON_SCENE:
            cmd = ReportResult(command_id=cid, assignment_id=aid, acted_at=acted, result=rng.choice(S.RESULTS))
        else:
            return  # the assignment moved on meanwhile (withdrawn, transferred, cancelled)
        self.execute(case.town, self._liaison(case.town, a.target), cmd, case, now)

    def _liaison_note(self, now: datetime, call_id: UUID, aid: UUID) -> None:
        case = self.cases.get(call_id)
        if case is None or case.call.assignments[aid].state in ASSIGNMENT_FINAL:
            return
        target = case.call.assignments[aid].target
        cmd = Note(command_id=self.new_id(), call_id=call_id, assignment_id=aid, acted_at=now,
                   text=self.rng.choice(S.LIAISON_NOTES))
        self.execute(case.town, self._liaison(case.town, target), cmd, case, now)

def _poisson(rng: random.Random, lam: float) -> int:
    """A Poisson count (Knuth; a normal approximation for large rates)."""
    if lam <= 0:
        return 0
    if lam > 30:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1
