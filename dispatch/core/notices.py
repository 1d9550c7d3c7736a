"""Who must be told what, for the events of one command (pure): the notices the store writes to the outbox in
the same transaction as the events (docs/NOTIFICATIONS.md)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from dispatch.core.config import Config
from dispatch.core.domain import DeadlineKind
from dispatch.core.records import Call, Event
from dispatch.core.transitions import CallState

TZ = ZoneInfo("Asia/Shanghai")

# Why someone is told (the outbox's `reason`).
DISPATCHED, ESCALATED, NUDGED = "dispatched", "escalated", "nudged"
SENT_BACK, REOPENED, WITHDRAWN, CANCELLED, REJECTED = "sent_back", "reopened", "withdrawn", "cancelled", "rejected"
REASONS = (DISPATCHED, ESCALATED, NUDGED, SENT_BACK, REOPENED, WITHDRAWN, CANCELLED, REJECTED)

LEVEL_ZH = {1: "一级督办", 2: "二级督办", 3: "三级督办"}
KIND_ZH = {"ack": "响应超时", "arrive": "到场超时", "resolve": "办结超时", "review": "转派审核超时"}
PRIORITY_ZH = {"urgent": "紧急", "normal": "一般", "low": "较低"}


@dataclass(frozen=True, slots=True)
class Notice:
    """One message to the audiences of one event (the store turns it into one row per person and channel)."""

    event_index: int  # which of the command's events caused it
    reason: str
    audiences: tuple[str, ...]
    township_id: int
    call_id: UUID
    assignment_id: UUID | None
    target: str | None
    title: str
    text: str
    deadline_kind: str | None = None
    level: int | None = None
    repeats: tuple[timedelta, ...] = ()  # more sends after these delays, while the clock still runs

    def payload(self, call: Call) -> dict[str, Any]:
        return {"reason": self.reason, "title": self.title, "text": self.text, "call_id": str(self.call_id),
                "number": call.number, "assignment_id": None if self.assignment_id is None else str(self.assignment_id),
                "target": self.target, "deadline_kind": self.deadline_kind, "level": self.level,
                "priority": call.priority.value}


def _hhmm(value: str | datetime | None) -> str:
    if value is None:
        return ""
    at = datetime.fromisoformat(value) if isinstance(value, str) else value
    return at.astimezone(TZ).strftime("%Y-%m-%d %H:%M")


def _name(cfg: Config, target: str | None) -> str:
    if target is None:
        return ""
    dep = cfg.departments.get(target)
    return dep.zh if dep else target


def _minutes(ms: int) -> str:
    minutes = max(0, ms) // 60000
    return f"{minutes // 60}小时{minutes % 60}分" if minutes >= 60 else f"{minutes}分"


def _escalation(cfg: Config, call: Call, e: Event, i: int, target: str | None) -> Notice | None:
    b = e.body
    kind, level = str(b["deadline_kind"]), int(b["level"])
    if b.get("late_record"):
        return None  # recorded after the department answered: nobody needs waking for it
    a = call.assignments.get(e.assignment_id) if e.assignment_id is not None else None
    ladder = cfg.ladder(DeadlineKind(kind), a.sla_version(kind) if a is not None else None)
    rung = ladder[min(level, len(ladder)) - 1]
    repeats = tuple(timedelta(seconds=rung.repeat_every_s * n) for n in range(1, rung.repeat_count + 1))
    label = LEVEL_ZH.get(level, f"{level}级督办")
    who = _name(cfg, target)
    return Notice(
        i, ESCALATED, tuple(rung.notify), call.township_id, call.id, e.assignment_id, target,
        f"【{label}】{KIND_ZH.get(kind, kind)}：{call.number}",
        f"{call.title}｜{call.address}｜{who}已超时 {_minutes(int(b.get('overdue_ms') or 0))}，请立即处理",
        deadline_kind=kind, level=level, repeats=repeats)


def notices_for(events: Sequence[Event], calls_after: Sequence[Call], cfg: Config) -> list[Notice]:
    """The notices of one command's events; ``calls_after[i]`` is the call after ``events[i]``."""
    out: list[Notice] = []
    n = cfg.notify
    for i, (e, call) in enumerate(zip(events, calls_after, strict=True)):
        a = call.assignments.get(e.assignment_id) if e.assignment_id is not None else None
        target = a.target if a is not None else None
        b: Mapping[str, Any] = e.body
        head = f"{call.number} {call.title}"
        if e.type == "assignment.dispatched":
            due = _hhmm(b.get("ack_due"))
            out.append(Notice(i, DISPATCHED, tuple(n.on_dispatch), call.township_id, call.id, e.assignment_id,
                              target, f"【新派单·{PRIORITY_ZH.get(call.priority.value, '')}】{call.number}",
                              f"{call.title}｜{call.address}｜请于 {due} 前响应"))
        elif e.type == "assignment.escalated":
            notice = _escalation(cfg, call, e, i, target)
            if notice is not None:
                out.append(notice)
        elif e.type == "assignment.nudged":
            text = b.get("text") or "请尽快处理"
            out.append(Notice(i, NUDGED, tuple(n.on_nudge), call.township_id, call.id, e.assignment_id, target,
                              f"【催办】{call.number}", f"{call.title}｜{text}"))
        elif e.type == "assignment.reopened":
            again = b.get("cause") == "return_visit"
            out.append(Notice(i, REOPENED if again else SENT_BACK, tuple(n.on_return), call.township_id, call.id,
                              e.assignment_id, target, f"【{'重办' if again else '退回重办'}】{call.number}",
                              f"{head}｜原因：{b.get('reason') or ''}"))
        elif e.type == "assignment.withdrawn":
            cancelled = e.call_state == CallState.CANCELLED
            out.append(Notice(i, CANCELLED if cancelled else WITHDRAWN, tuple(n.on_return), call.township_id,
                              call.id, e.assignment_id, target,
                              f"【{'呼叫已撤销' if cancelled else '已撤回'}】{call.number}",
                              f"{head}｜原因：{b.get('reason') or ''}"))
        elif e.type == "assignment.transfer_rejected":
            out.append(Notice(i, REJECTED, tuple(n.on_return), call.township_id, call.id, e.assignment_id, target,
                              f"【转派申请被驳回】{call.number}", f"{head}｜原因：{b.get('reason') or ''}，请继续办理"))
    return out
