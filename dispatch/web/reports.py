"""A reporter's own matters: ``GET /api/v1/reports/mine`` lists the calls the caller created, newest first, with
their state in the glossary's words (a grid worker follows their reports here; they read no live stream)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from dispatch.core.domain import Role
from dispatch.store import attachments as attachment_store
from dispatch.web.routing import Req, endpoint
from dispatch.web.schemas import ReportListOut

# Through the partial index events_created_by (migration 0008): the creation events of one actor.
SELECT_MY_REPORTS = """
select c.id, c.number, c.title, c.category, c.address, c.state, c.created_at, c.updated_at,
       (c.doc->>'grid_id')::integer as grid_id,
       coalesce((select json_agg(json_build_object('id', a.id, 'sha256', encode(a.sha256, 'hex'),
                                                  'content_type', a.content_type, 'size', a.size,
                                                  'width', a.width, 'height', a.height)
                                 order by a.position)
                   from attachments a
                  where a.call_id = c.id and a.step = 'intake'), '[]'::json) as attachments
  from events e
  join calls c on c.id = e.call_id
 where e.actor_id = $1 and e.type = 'call.created'
 order by e.at desc, e.seq desc
 limit $2
"""
# The call states in the words of /work/shared/GLOSSARY.md (问派转办审回).
STATE_NAMES = {
    "intake": ("待派单", "awaiting dispatch"), "dispatched": ("已派单", "dispatched"),
    "in_progress": ("处置中", "in progress"), "review": ("待审核", "awaiting review"),
    "accepted": ("已审核", "reviewed"), "visited": ("已回访", "visited"), "closed": ("已结案", "closed"),
    "cancelled": ("已撤销", "cancelled"),
}


class ReportQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    limit: Annotated[int, Field(ge=1, le=200)] = 50


def _report(row: Any) -> dict[str, Any]:
    zh, en = STATE_NAMES.get(row["state"], (row["state"], row["state"]))
    files = row["attachments"]
    return {
        "call_id": str(row["id"]), "number": row["number"], "title": row["title"], "category": row["category"],
        "address": row["address"], "grid_id": row["grid_id"], "state": row["state"],
        "state_name": {"zh": zh, "en": en}, "created_at": row["created_at"].isoformat(),
        "updated_at": row["updated_at"].isoformat(),
        "attachments": [{**f, **attachment_store.urls(f["id"], f["content_type"])} for f in files],
    }


@endpoint("GET", "/api/v1/reports/mine", summary="The calls I reported, newest first, with their state",
          tags=["reports"], query=ReportQuery, response=ReportListOut,
          roles=[Role.GRID_WORKER, Role.INTEGRATION, Role.OPERATOR])
async def my_reports(call: Req) -> dict[str, Any]:
    query: ReportQuery = call.query
    rows = await call.hub.pool.fetch(SELECT_MY_REPORTS, call.actor.user_id, query.limit)
    return {"reports": [_report(r) for r in rows], "limit": query.limit}
