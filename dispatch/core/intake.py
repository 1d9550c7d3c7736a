"""What an outside system that reported a matter is told about it: its state in Chinese, who handles it, by
when (shared by Open311 and the 12345 hotline; docs/INTAKE.md)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from dispatch.core.records import Assignment, Call
from dispatch.core.transitions import ASSIGNMENT_TERMINAL, CallState

C = CallState
# The glossary's words for the call states (/work/shared/GLOSSARY.md).
STATE_ZH: dict[CallState, str] = {
    C.INTAKE: "待派单", C.DISPATCHED: "已派单", C.IN_PROGRESS: "处置中", C.REVIEW: "待审核",
    C.ACCEPTED: "已审核", C.VISITED: "已回访", C.CLOSED: "已结案", C.CANCELLED: "已撤销",
}
FINISHED = frozenset({C.CLOSED, C.CANCELLED})


def lead_assignment(call: Call) -> Assignment | None:
    """The lead (主办) assignment still on the call, else the first one dispatched that is."""
    live = [a for a in call.assignments.values() if a.state not in ASSIGNMENT_TERMINAL]
    live.sort(key=lambda a: a.dispatched_at)
    return next((a for a in live if a.lead), live[0] if live else None)


def agency(call: Call, names: Mapping[str, str]) -> str | None:
    """The lead department's (or unit's) name, None before dispatch."""
    a = lead_assignment(call)
    return None if a is None else names.get(a.target, a.target)


def expected(call: Call) -> datetime | None:
    """When the matter should be resolved: the lead's resolve deadline while the call is open."""
    a = lead_assignment(call)
    return None if a is None or call.state in FINISHED else a.resolve_due


def status_text(call: Call, names: Mapping[str, str]) -> str:
    """One Chinese sentence for the reporter's system: the state, who works on it, the closing result."""
    word = STATE_ZH[call.state]
    who = agency(call, names)
    if call.state == C.INTAKE:
        return f"{word}：指挥中心正在安排处置部门"
    if call.state == C.DISPATCHED:
        return f"{word}：已派{who}，等待响应"
    if call.state == C.IN_PROGRESS:
        return f"{word}：{who}正在处置"
    if call.state == C.REVIEW:
        return f"{word}：{who}已办结，指挥中心审核中"
    if call.state == C.ACCEPTED:
        return f"{word}：处置结果已审核通过"
    if call.state == C.VISITED:
        return f"{word}：已回访，即将结案"
    if call.state == C.CANCELLED:
        return f"{word}：{call.cancel_reason}" if call.cancel_reason else word
    lead = lead_assignment(call)
    result = lead.result if lead is not None else None
    return f"{word}：{result}" if result else word
