"""Who is on duty: per department and unit of a township, its liaisons (team lead first, phones for the
township's operators only) and who of them is connected now, from the real-time presence of every node."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from dispatch.core import policy
from dispatch.realtime.hub import Realtime
from dispatch.store import duty
from dispatch.web.routing import Req, endpoint
from dispatch.web.schemas import DutyOut
from protocols.errors import NotFound, ValidationFailed


class DutyQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    township_id: int | None = Field(default=None, ge=1, le=2**31 - 1,
                                    description="the township (an account attached to one: that one by default)")


@endpoint("GET", "/api/v1/duty", tags=["duty"], query=DutyQuery, response=DutyOut, roles=policy.DUTY_ROLES,
          summary="Who is on duty in each department and unit of a township, and who is online now",
          errors={404: "no such township, or outside your scope"})
async def duty_roster(call: Req) -> dict[str, Any]:
    query: DutyQuery = call.query
    actor = call.actor
    township_id = policy.township_read(actor, query.township_id, policy.DUTY_ROLES, "the duty roster")
    if township_id is None:
        raise ValidationFailed("township_id: required for a county-wide account", field="township_id")
    async with call.hub.pool.acquire() as conn:
        roster = await duty.fetch_roster(conn, township_id)
    if roster is None:
        raise NotFound(f"no township {township_id}", field="township_id")
    rt = call.hub.realtime
    online = rt.presence.people(township_id) if isinstance(rt, Realtime) else {}
    full = policy.sees_liaison_phones(actor, township_id)

    def phone(value: str | None) -> str | None:
        return value if value is None or full else policy.mask_phone(value)

    return {
        "township_id": township_id, "as_of": call.hub.clock.now().isoformat(), "phones": "full" if full else "masked",
        "targets": [
            {"target": t.target, "kind": t.kind, "name_zh": t.name_zh, "name_en": t.name_en,
             "online": sum(1 for p in t.liaisons if p.user_id in online.get(t.target, ())),
             "liaisons": [{"id": p.user_id, "name": p.name, "team_lead": p.team_lead, "phone": phone(p.phone),
                           "online": p.user_id in online.get(t.target, ())} for p in t.liaisons]}
            for t in roster
        ],
    }
