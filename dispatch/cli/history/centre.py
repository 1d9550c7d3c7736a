"""The township's command centre in the simulated county: its operators dispatch by the configured routes,
decide transfer requests, review results (accept or send back), visit residents, close and cancel calls."""

from __future__ import annotations

import math
from datetime import datetime
from uuid import UUID

from dispatch.cli.history import scenery as S
from dispatch.cli.history.clockwork import HOUR, Case, Clockwork, Township
from dispatch.core.commands import (
    Accept,
    Cancel,
    Close,
    Dispatch,
    HandleAlarm,
    Note,
    Nudge,
    Rating,
    RejectTransfer,
    Reroute,
    ReturnVisit,
    SendBack,
    SetLead,
    Withdraw,
)
from dispatch.core.domain import DEPARTMENTS, Actor, DeadlineKind, Source
from dispatch.core.records import Assignment, Call
from dispatch.core.transitions import ASSIGNMENT_FINAL, ASSIGNMENT_TRANSITIONS, AssignmentState, CallState

A, C = AssignmentState, CallState


class CommandCentre(Clockwork):
    """What the operators do; the county (``County``) brings the calls and the liaisons."""

    def _route(self, town: Township, category: str) -> list[str]:
        """The configured route (cfg.route), the departments stationed here with someone to answer."""
        targets = [t for t in self.cfg.route(category) if t in town.liaisons]
        return targets or [min(town.liaisons)]

    def _operator(self, town: Township) -> Actor:
        return self.rng.choice(town.operators)

    def _do(self, case: Case, cmd: Accept | Cancel | Close | Dispatch | HandleAlarm | Note | Nudge | RejectTransfer
            | Reroute | ReturnVisit | SendBack | SetLead | Withdraw, now: datetime) -> None:
        self.execute(case.town, self._operator(case.town), cmd, case, now)

    def _open_targets(self, call: Call) -> set[str]:
        return {a.target for a in call.assignments.values() if a.state not in ASSIGNMENT_FINAL}

    def _dispatch(self, now: datetime, call_id: UUID) -> None:
        case = self.cases.get(call_id)
        if case is None:
            return
        case.dispatch_pending = False
        if case.call.state != C.INTAKE:
            return
        targets = [t for t in self._route(case.town, case.call.category) if t not in self._open_targets(case.call)]
        if targets:
            self._do(case, Dispatch(command_id=self.new_id(), call_id=call_id, targets=targets), now)

    def _review_transfer(self, now: datetime, call_id: UUID, aid: UUID, declined_at: datetime) -> None:
        """转: approve (reroute, some as "not our remit") or reject (驳回) the department's request."""
        case = self.cases.get(call_id)
        if case is None:
            return
        a = case.call.assignments[aid]
        if a.state != A.DECLINED or a.declined_at != declined_at:
            return
        to = self._other_target(case, a, a.suggested_target)
        if to is not None and self.rng.random() < 0.6:
            self._do(case, Reroute(command_id=self.new_id(), assignment_id=aid, target=to,
                                   reason=self.rng.choice(S.APPROVE_REASONS), not_our_remit=self.rng.random() < 0.5),
                     now)
        else:
            self._do(case, RejectTransfer(command_id=self.new_id(), assignment_id=aid,
                                          reason=self.rng.choice(S.REJECT_REASONS)), now)

    def _other_target(self, case: Case, a: Assignment, suggested: str | None) -> str | None:
        taken = self._open_targets(case.call) | {a.target}
        if suggested is not None and suggested in case.town.liaisons and suggested not in taken:
            return suggested
        free = [t for t in DEPARTMENTS if t in case.town.liaisons and t not in taken]
        return self.rng.choice(free) if free else None

    def _reroute(self, now: datetime, call_id: UUID, aid: UUID) -> None:
        """转派 by the operator: the call went to the wrong department, moved before it answered."""
        case = self.cases.get(call_id)
        if case is None or case.call.assignments[aid].state != A.DISPATCHED:
            return
        to = self._other_target(case, case.call.assignments[aid], None)
        if to is not None:
            self._do(case, Reroute(command_id=self.new_id(), assignment_id=aid, target=to,
                                   reason=self.rng.choice(S.REROUTE_REASONS)), now)

    def _withdraw(self, now: datetime, call_id: UUID, aid: UUID) -> None:
        case = self.cases.get(call_id)
        if case is None:
            return
        a = case.call.assignments[aid]
        others = self._open_targets(case.call) - {a.target}
        if a.lead or not others or a.state not in (A.DISPATCHED, A.ACKNOWLEDGED, A.ON_SCENE, A.DECLINED):
            return
        self._do(case, Withdraw(command_id=self.new_id(), assignment_id=aid,
                                reason=self.rng.choice(S.WITHDRAW_REASONS)), now)

    def _review(self, now: datetime, call_id: UUID) -> None:
        """审: accept the reported results, or send some back (a department's habit, at most twice each)."""
        case = self.cases.get(call_id)
        if case is None:
            return
        case.review_pending = False
        if case.call.state != C.REVIEW:
            return
        reported = [a for a in case.call.assignments.values() if a.state == A.REPORTED]
        back = [a.id for a in reported
                if case.sent_back.get(a.id, 0) < 2 and self.rng.random() < S.profile(a.target).send_back]
        if back:
            for aid in back:
                case.sent_back[aid] = case.sent_back.get(aid, 0) + 1
            self._do(case, SendBack(command_id=self.new_id(), call_id=call_id, assignment_ids=back,
                                    reason=self.rng.choice(S.SEND_BACK_REASONS)), now)
        else:
            self._do(case, Accept(command_id=self.new_id(), call_id=call_id), now)

    def _after_accept(self, case: Case, now: datetime) -> None:
        hotline = case.call.source == Source.HOTLINE_12345
        visit = self.rng.random() < (0.7 if case.visits else 0.95 if hotline else 0.6)
        if visit:
            self.at(now + self.rng.lognormvariate(math.log(6), 0.8) * HOUR, self._visit, case.call.id)
        else:
            self.at(now + self.rng.uniform(0.2, 12) * HOUR, self._close, case.call.id)

    def _visit(self, now: datetime, call_id: UUID) -> None:
        """回: each department rated; an unresolved or unsatisfied one is reopened (重办) by default."""
        case = self.cases.get(call_id)
        if case is None or case.call.state != C.ACCEPTED:
            return
        accepted = [a for a in case.call.assignments.values() if a.state == A.ACCEPTED]
        rated = [a for a in accepted if a.id in case.reopened] if case.visits else accepted
        ratings = [self._rating(a, again=case.visits > 0) for a in (rated or accepted)]
        case.visits += 1
        self._do(case, ReturnVisit(command_id=self.new_id(), call_id=call_id, ratings=ratings), now)

    def _rating(self, a: Assignment, again: bool) -> Rating:
        rng, p = self.rng, S.profile(a.target)
        resolved = again or rng.random() >= p.unresolved
        if again:
            satisfaction = rng.choice((4, 5, 5))
        elif resolved:
            satisfaction = rng.choices((5, 4, 3, 2, 1), p.satisfaction)[0]
        else:
            satisfaction = rng.choice((1, 2, 3))
        comment = rng.choice(S.VISIT_COMMENTS[satisfaction]) if rng.random() < 0.3 else None
        return Rating(assignment_id=a.id, resolved=resolved, satisfaction=satisfaction, comment=comment)

    def _close(self, now: datetime, call_id: UUID) -> None:
        case = self.cases.get(call_id)
        if case is None or case.call.state not in (C.ACCEPTED, C.VISITED):
            return
        reason = self.rng.choice(S.CLOSE_REASONS) if case.call.state == C.ACCEPTED else None
        self._do(case, Close(command_id=self.new_id(), call_id=call_id, reason=reason), now)

    def _cancel(self, now: datetime, call_id: UUID) -> None:
        case = self.cases.get(call_id)
        if case is not None and case.call.state in (C.INTAKE, C.DISPATCHED, C.IN_PROGRESS):
            self._do(case, Cancel(command_id=self.new_id(), call_id=call_id, reason=self.rng.choice(S.CANCEL_REASONS)),
                     now)

    def _set_lead(self, now: datetime, call_id: UUID) -> None:
        case = self.cases.get(call_id)
        if case is None:
            return
        supporting = [a for a in case.call.assignments.values() if not a.lead and a.state not in ASSIGNMENT_FINAL]
        if supporting:
            self._do(case, SetLead(command_id=self.new_id(), call_id=call_id, assignment_id=supporting[0].id,
                                   reason=S.LEAD_REASONS[0]), now)

    def _take_alarm(self, now: datetime, call_id: UUID, aid: UUID, kind: DeadlineKind, level: int) -> None:
        case = self.cases.get(call_id)
        if case is None:
            return
        a = case.call.assignments[aid]
        # an acted time may have voided the level meanwhile; a transferred or withdrawn one sounds no more
        if a.levels.get(kind.value, 0) >= level and (a.state, "handle_alarm") in ASSIGNMENT_TRANSITIONS:
            self._do(case, HandleAlarm(command_id=self.new_id(), assignment_id=aid, deadline_kind=kind, level=level),
                     now)

    def _nudge(self, now: datetime, call_id: UUID, aid: UUID) -> None:
        """催办: the department is pressed on work still running late."""
        case = self.cases.get(call_id)
        if case is not None and case.call.assignments[aid].state in (A.DISPATCHED, A.ACKNOWLEDGED, A.ON_SCENE):
            self._do(case, Nudge(command_id=self.new_id(), assignment_id=aid, text=self.rng.choice(S.NUDGE_TEXTS)),
                     now)

    def _operator_note(self, now: datetime, call_id: UUID) -> None:
        case = self.cases.get(call_id)
        if case is not None:
            self._do(case, Note(command_id=self.new_id(), call_id=call_id, text=self.rng.choice(S.OPERATOR_NOTES)),
                     now)
