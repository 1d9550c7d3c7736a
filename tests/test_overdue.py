"""Overdue and escalated work (issue #13, item 5): the REST filters ``overdue`` and ``escalated``, computed on
the hub's clock from the assignments' running clocks, and escalation records that carry the department's
overdue time."""

from __future__ import annotations

from datetime import timedelta

from tests.conftest import Hub
from tests.helpers import assignment_of, new_call, post
from tests.test_sla import ACK, step


async def ids(client: object, query: str) -> set[str]:
    res = await client.get(f"/api/v1/calls?{query}")  # type: ignore[attr-defined]
    assert res.status_code == 200, res.text
    return {c["id"] for c in res.json()["calls"]}


async def test_calls_filter_by_overdue_and_escalated(hub: Hub) -> None:
    start = hub.clock.now()
    async with await hub.login("op1.yiqiao") as op, await hub.login("police1.yiqiao") as police, \
            await hub.login("market1.yiqiao") as market:
        late = (await post(op, "/api/v1/calls", new_call(targets=["police"]), expect=201))["call_id"]
        answered_late = (await post(op, "/api/v1/calls", new_call(targets=["market"]), expect=201))["call_id"]
        on_time = (await post(op, "/api/v1/calls", new_call(targets=["police"]), expect=201))["call_id"]
        on_time_a = assignment_of((await op.get(f"/api/v1/calls/{on_time}")).json(), "police")["id"]
        await post(police, f"/api/v1/assignments/{on_time_a}/acknowledge")
        assert await ids(op, "overdue=true") == set()

        assert await step(hub, ACK + 10) == 2  # level 1 of the response clock for `late` and `answered_late`
        market_a = assignment_of((await op.get(f"/api/v1/calls/{answered_late}")).json(), "market")["id"]
        await post(market, f"/api/v1/assignments/{market_a}/acknowledge")  # late, online: the escalation stands

        assert await ids(op, "overdue=true") == {late}
        assert await ids(op, "overdue=false") == {answered_late, on_time}
        assert await ids(op, "escalated=true") == {late, answered_late}
        assert await ids(op, "escalated=false") == {on_time}
        assert await ids(op, "overdue=true&escalated=true") == {late}
        # a liaison's filter looks at its own department's part only
        assert await ids(police, "overdue=true") == {late}
        assert await ids(market, "overdue=true") == set()
        assert await ids(market, "escalated=true") == {answered_late}
        bad = await op.get("/api/v1/calls?overdue=maybe")
        assert bad.status_code == 422 and bad.json()["field"] == "overdue", bad.text

        # the police phone was offline: it acknowledged before the deadline; the escalation is voided
        late_a = assignment_of((await op.get(f"/api/v1/calls/{late}")).json(), "police")["id"]
        await post(police, f"/api/v1/assignments/{late_a}/acknowledge",
                   {"acted_at": (start + timedelta(seconds=ACK - 5)).isoformat()})
        assert await ids(op, "escalated=true") == {answered_late}
        assert await ids(op, "overdue=true") == set()


async def test_an_escalation_records_the_departments_overdue_time_not_the_hubs_delay(hub: Hub) -> None:
    async with await hub.login("op1.yiqiao") as op:
        call_id = (await post(op, "/api/v1/calls", new_call(targets=["police"]), expect=201))["call_id"]
        # the hub was busy: level 2 (+120 s) is written 10 s after it fell due, 130 s past the deadline
        assert await step(hub, ACK + 130) == 2
        timeline = (await op.get(f"/api/v1/calls/{call_id}")).json()["timeline"]
    levels = [e["body"] for e in timeline if e["type"] == "assignment.escalated"]
    assert [(b["level"], b["overdue_ms"], b["delay_ms"]) for b in levels] == [(1, 130_000, 130_000),
                                                                             (2, 130_000, 10_000)]
