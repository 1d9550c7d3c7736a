"""REST export of a township's raw event log for a period, as JSON Lines (docs/EXPORT.md)."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from starlette.responses import Response, StreamingResponse

from dispatch.core import policy
from dispatch.evaluation.period import date_range
from dispatch.store import export
from dispatch.store.logfile import MEDIA_TYPE
from dispatch.web.routing import Req, endpoint
from dispatch.web.schemas import ExportedEventOut
from protocols.errors import NotFound

DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")


def iso_date(value: Any) -> date:
    """Exactly ``YYYY-MM-DD`` (no timestamp, no time of day), in years 1970–2200."""
    if not isinstance(value, str) or not DATE_RE.fullmatch(value):
        raise ValueError("expected a date as YYYY-MM-DD")
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value} is not a calendar date") from None
    if not 1970 <= day.year <= 2200:
        raise ValueError("year must be between 1970 and 2200")
    return day


IsoDate = Annotated[date, BeforeValidator(iso_date)]


class ExportQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    township_id: int = Field(ge=1, le=2**31 - 1, description="the township whose log to export")
    first: IsoDate = Field(alias="from", description="first day, YYYY-MM-DD (from 00:00 Asia/Shanghai)")
    last: IsoDate = Field(alias="to", description="last day, inclusive, YYYY-MM-DD (until 24:00 Asia/Shanghai)")


@endpoint("GET", "/api/v1/export/events.jsonl", tags=["export"], query=ExportQuery, response=ExportedEventOut,
          summary="Export a township's raw event log for a period as JSON Lines",
          roles=policy.LOG_EXPORT_ROLES, media=MEDIA_TYPE,
          headers={"Content-Disposition": 'attachment; filename="xianghu-<township code>-<from>-<to>.jsonl"'},
          errors={404: "no such township, or outside your scope"})
async def export_events(call: Req) -> Response:
    query: ExportQuery = call.query
    policy.authorize_log_export(call.actor, query.township_id)
    period = date_range(query.first, query.last)
    township = await export.fetch_township(call.hub.pool, township_id=query.township_id)
    if township is None:
        raise NotFound(f"no township {query.township_id}", field="township_id")
    rng = await export.fetch_range(call.hub.pool, township, period)
    return StreamingResponse(export.iter_lines(call.hub.pool, rng), media_type=MEDIA_TYPE,
                             headers={"Content-Disposition": f'attachment; filename="{rng.filename}"'})
