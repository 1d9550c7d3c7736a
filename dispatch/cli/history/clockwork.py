"""The simulation's clock and its one write path: a heap of scheduled actions run in time order, each command
through the real ``decide``/``evolve`` at its simulated time, and the SLA engine's escalations.

Sans-I/O like the core: commands in, ``Step`` records out (what the store's writer would append for each
command). One heap for every township, so each township's events come out in time order."""

from __future__ import annotations

import heapq
import itertools
import random
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from dispatch.cli.history.scenery import Place
from dispatch.core.commands import Command, Escalate
from dispatch.core.config import Config
from dispatch.core.domain import SYSTEM_ACTOR, Actor
from dispatch.core.lifecycle import DecideContext, decide, evolve
from dispatch.core.numbering import format_number, numbering_year
from dispatch.core.records import Call, Event
from dispatch.core.sla_policy import next_escalation
from dispatch.core.transitions import CALL_FINAL
from dispatch.timers.engine import claim_id
from protocols.errors import InternalError

MINUTE, HOUR = timedelta(minutes=1), timedelta(hours=1)


@dataclass(frozen=True)
class Township:
    """A township as the simulation acts in it: its people (real accounts), targets and grids."""

    id: int
    code: str
    name_zh: str
    operators: tuple[Actor, ...]
    liaisons: Mapping[str, tuple[Actor, ...]]  # target → its liaisons, the team lead first (who can be called)
    targets: frozenset[str]  # its stations and units, as the writer gives them to ``decide``
    grids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Step:
    """One command as the writer would append it: its events and the call after each of them."""

    township_id: int
    actor: Actor
    command_id: UUID
    events: list[Event]
    calls: list[Call]


@dataclass
class Case:
    """A call while it is open, with what its people have planned for it."""

    call: Call
    town: Township
    place: Place | None
    tokens: dict[UUID, int] = field(default_factory=dict)  # the liaison's latest plan per assignment
    sent_back: dict[UUID, int] = field(default_factory=dict)
    reopened: frozenset[UUID] = frozenset()
    visits: int = 0
    review_pending: bool = False
    dispatch_pending: bool = False


Action = Callable[..., None]


class Clockwork:
    """Runs scheduled actions in time order until ``end``; subclasses decide what people do (``react``)."""

    def __init__(self, cfg: Config, townships: list[Township], start: datetime, end: datetime, seed: int) -> None:
        if end <= start:
            raise InternalError("history: the end must come after the start")
        self.cfg = cfg
        self.start, self.end, self.now = start, end, start
        self.rng = random.Random(seed)
        self._ids = random.Random(f"ids:{seed}")
        self.towns = {t.id: t for t in townships}
        self.cases: dict[UUID, Case] = {}
        self._heap: list[tuple[datetime, int, Action, tuple[Any, ...]]] = []
        self._order = itertools.count()
        self._armed: dict[UUID, tuple[Any, ...]] = {}
        self._out: list[Step] = []
        self._numbers: dict[tuple[int, int], int] = {}
        self._number: str | None = None
        self._ctx = {t.id: self._context(t) for t in townships}
        self.commands = 0

    def _context(self, town: Township) -> DecideContext:
        """What the writer's ``_context`` gives ``decide`` for this township."""
        cfg = self.cfg
        return DecideContext(
            new_id=self.new_id, sla=cfg, known_targets=town.targets, categories=frozenset(cfg.categories),
            township_id=town.id, next_number=self._next_number,
            transfer_review=timedelta(seconds=cfg.sla.transfer_review_s),
            close_reason_sources=frozenset(s.value for s in cfg.lifecycle.close_without_visit_reason),
            offline_window=timedelta(seconds=cfg.lifecycle.offline_window_s), rung_after=cfg.rung_after)

    def new_id(self) -> UUID:
        return uuid.UUID(int=self._ids.getrandbits(128), version=4)

    def _next_number(self) -> str:
        if self._number is None:
            raise InternalError("history: only create_call is given a call number")
        return self._number

    # -- the heap -------------------------------------------------------------------------------------------

    def at(self, when: datetime, action: Action, *args: Any) -> None:
        """Run ``action(when, *args)`` at ``when`` (never before the simulated now)."""
        heapq.heappush(self._heap, (max(when, self.now), next(self._order), action, args))

    def run(self) -> Iterator[Step]:
        """Every command up to ``end``, in time order; what is planned for later stays undone (open work)."""
        self.begin()
        heap = self._heap
        while heap and heap[0][0] <= self.end:
            when, _, action, args = heapq.heappop(heap)
            self.now = when
            action(when, *args)
            if self._out:
                out, self._out = self._out, []
                yield from out

    def begin(self) -> None:
        """Schedule the first actions."""

    # -- the write path ---------------------------------------------------------------------------------------

    def execute(self, town: Township, actor: Actor, cmd: Command, case: Case | None, now: datetime) -> Call:
        """``decide`` and fold, as the writer does, then let the people react to what happened."""
        call = None if case is None else case.call
        if cmd.kind == "create_call":
            year = numbering_year(now)
            n = self._numbers.get((town.id, year), 0) + 1
            self._number = format_number(town.code, year, n)
        events = decide(call, cmd, actor, now, self._ctx[town.id])
        if cmd.kind == "create_call":
            self._numbers[(town.id, year)] = n
            self._number = None
        calls = []
        for ev in events:
            call = evolve(call, ev)
            calls.append(call)
        assert call is not None
        self._out.append(Step(town.id, actor, cmd.command_id, events, calls))
        self.commands += 1
        if case is None:
            case = self.open_case(call, town)
        case.call = call
        if call.state in CALL_FINAL:
            del self.cases[call.id]
            for aid in call.assignments:
                self._armed.pop(aid, None)
            return call
        self.react(case, events, now)
        for aid in {ev.assignment_id for ev in events if ev.assignment_id is not None}:
            self._arm(case, aid)
        return call

    def open_case(self, call: Call, town: Township) -> Case:
        case = self.cases[call.id] = Case(call, town, None)
        return case

    def react(self, case: Case, events: list[Event], now: datetime) -> None:
        """What the people do next about ``case`` after ``events`` (scheduled with ``at``)."""

    # -- the SLA engine ---------------------------------------------------------------------------------------

    def _arm(self, case: Case, aid: UUID) -> None:
        """Schedule the rung the engine would fire next (``next_escalation``, the projection's ``next_due``)."""
        nxt = next_escalation(case.call.assignments[aid], self.cfg)
        key = None if nxt is None else (nxt.kind, nxt.level, nxt.deadline, nxt.due)
        if key == self._armed.get(aid):
            return
        if key is None or nxt is None:
            self._armed.pop(aid, None)
            return
        self._armed[aid] = key
        self.at(nxt.due, self._escalate, case.call.id, aid, key)

    def _escalate(self, now: datetime, call_id: UUID, aid: UUID, key: tuple[Any, ...]) -> None:
        """The engine's fire: the rung still due, with the engine's command id, as the system actor."""
        case = self.cases.get(call_id)
        if case is None or self._armed.get(aid) != key:
            return  # the call closed, or the assignment moved on and was armed again
        nxt = next_escalation(case.call.assignments[aid], self.cfg)
        if nxt is None or (nxt.kind, nxt.level, nxt.deadline, nxt.due) != key:
            raise InternalError(f"history: assignment {aid} changed without being armed again")
        del self._armed[aid]
        cmd = Escalate(command_id=claim_id(aid, nxt.kind, nxt.level, nxt.deadline), assignment_id=aid,
                       deadline_kind=nxt.kind, level=nxt.level, deadline=nxt.deadline, due=nxt.due, fired_at=now)
        self.execute(case.town, SYSTEM_ACTOR, cmd, case, now)
