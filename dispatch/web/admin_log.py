"""REST reading of the admin log (DESIGN.md idea 11): administrators only, newest first, paged."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from dispatch.core.domain import Role
from dispatch.store import adminlog
from dispatch.web.routing import Req, endpoint
from dispatch.web.schemas import AdminLogOut


class AdminLogVerifyOut(BaseModel):
    ok: bool
    count: int = Field(description="entries verified (before the broken one, if any)")
    seq: int | None = Field(description="the first broken entry")
    reason: str


class AdminLogQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    action: Annotated[str | None, Field(max_length=64, json_schema_extra={"enum": list(adminlog.ACTIONS)},
                                        description="only entries of this action")] = None
    limit: Annotated[int, Field(ge=1, le=500)] = 100
    offset: Annotated[int, Field(ge=0, le=1_000_000)] = 0

    @field_validator("action")
    @classmethod
    def _known(cls, value: str | None) -> str | None:
        if value is not None and value not in adminlog.ACTIONS:
            raise ValueError(f"unknown action {value!r} (one of {', '.join(adminlog.ACTIONS)})")
        return value


@endpoint("GET", "/api/v1/admin/log", summary="Read the admin log, newest first", tags=["admin"],
          query=AdminLogQuery, response=AdminLogOut, roles=[Role.ADMIN])
async def admin_log(call: Req) -> dict[str, Any]:
    query: AdminLogQuery = call.query
    async with call.hub.pool.acquire() as conn:
        total, entries = await adminlog.fetch_page(conn, action=query.action, limit=query.limit, offset=query.offset)
    return {"entries": [e.to_json() for e in entries], "total": total, "limit": query.limit, "offset": query.offset}


@endpoint("GET", "/api/v1/admin/log/verify", summary="Recompute the admin log's hash chain (as xianghu verify-log)",
          tags=["admin"], response=AdminLogVerifyOut, roles=[Role.ADMIN])
async def admin_log_verify(call: Req) -> dict[str, Any]:
    async with call.hub.pool.acquire() as conn:
        report = await adminlog.verify(conn)
    return {"ok": report.ok, "count": report.count, "seq": report.seq, "reason": report.reason}
