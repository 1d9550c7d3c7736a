"""Whether the notification channels deliver: per channel what waits, what is retrying since when and why,
and what was given up lately (the operator console's warning when SMS or a robot is unreachable)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from dispatch.core import policy
from dispatch.core.config import Channel
from dispatch.store import outbox
from dispatch.web.routing import Req, endpoint
from dispatch.web.schemas import NotifyStatusOut

# Messages given up within this window count as failures in the status (and keep the warning on).
RECENT_FAILURES = timedelta(hours=1)
CHANNEL_ORDER: tuple[Channel, ...] = ("webpush", "sms", "wecom", "dingtalk", "webhook")


class NotifyStatusQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    township_id: int | None = Field(default=None, ge=1, le=2**31 - 1,
                                    description="one township (an account attached to one: that one by default); "
                                                "county-wide accounts without it: every township")


@endpoint("GET", "/api/v1/notify/status", tags=["notify"], query=NotifyStatusQuery, response=NotifyStatusOut,
          roles=policy.NOTIFY_STATUS_ROLES,
          summary="Whether the notification channels deliver: pending, retrying and failed messages per channel",
          errors={404: "no such township, or outside your scope"})
async def notify_status(call: Req) -> dict[str, Any]:
    query: NotifyStatusQuery = call.query
    township_id = policy.township_read(call.actor, query.township_id, policy.NOTIFY_STATUS_ROLES,
                                       "the notification status")
    now = call.hub.clock.now()
    since = now - RECENT_FAILURES
    async with call.hub.pool.acquire() as conn:
        rows = {r["channel"]: r for r in await outbox.channel_status(conn, township_id, since)}
    configured = set(call.hub.cfg.notify.channels)
    channels = []
    for name in CHANNEL_ORDER:
        r = rows.get(name)
        if r is None and name not in configured:
            continue
        channels.append({
            "channel": name, "configured": name in configured,
            "pending": int(r["pending"]) if r else 0, "retrying": int(r["retrying"]) if r else 0,
            "failed": int(r["failed"]) if r else 0, "last_error": r["last_error"] if r else None,
            "failing_since": r["failing_since"].isoformat() if r and r["failing_since"] else None,
        })
    return {"township_id": township_id, "as_of": now.isoformat(), "since": since.isoformat(),
            "failing": any(c["retrying"] or c["failed"] for c in channels), "channels": channels}
