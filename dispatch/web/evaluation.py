"""The evaluation over REST: scorecards, drill-down, score trend, call trends, and their spreadsheets.

Read-only; every request is scoped by ``policy.evaluation_scope`` (the same rule for JSON and exports)."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.responses import Response

from dispatch.core import policy
from dispatch.core.config import Config
from dispatch.core.domain import DEPARTMENTS
from dispatch.evaluation import period as P
from dispatch.evaluation import scorecard as S
from dispatch.evaluation import sheets
from dispatch.store import facts as facts_store
from dispatch.store import trends as trends_store
from dispatch.store.pool import Conn, Pool
from dispatch.web.routing import Req, endpoint
from dispatch.web.schemas import (
    DrillDownOut,
    ScorecardsOut,
    ScoreTrendOut,
    TrendsOut,
)
from protocols.errors import ValidationFailed

SELECT_NAMES = """
select (select json_object_agg(id, json_build_array(code, name_zh, name_en)) from townships) as townships,
       (select json_object_agg('unit:' || id, json_build_array(township_id, name_zh, name_en)) from units) as units,
       (select json_object_agg(id, name) from grids) as grids
"""
TARGET_RE = r"^([a-z_]{2,32}|unit:[0-9]{1,9})$"


class PeriodQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    month: Annotated[str | None, Field(description="A calendar month, YYYY-MM (Asia/Shanghai). Default: last month.",
                                       max_length=7)] = None
    from_: Annotated[date | None, Field(alias="from", description="First day of a date range (inclusive).")] = None
    to: Annotated[date | None, Field(description="Last day of a date range (inclusive).")] = None
    township_id: Annotated[int | None, Field(ge=1, le=2_147_483_647)] = None
    target: Annotated[str | None, Field(pattern=TARGET_RE, description="A department code or unit:<id>.")] = None
    lang: Literal["zh-CN", "en"] = "zh-CN"


class ScorecardQuery(PeriodQuery):
    group: Literal["target", "township"] = "target"
    preset: Annotated[str | None, Field(max_length=50, description="A configured weight preset.")] = None


class DrillQuery(ScorecardQuery):
    figure: Annotated[str, Field(description="Which figure's assignments: see docs/EVALUATION.md (drill-down).")]
    limit: Annotated[int, Field(ge=1, le=5000)] = 200
    offset: Annotated[int, Field(ge=0, le=1_000_000)] = 0

    @field_validator("figure")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in S.FIGURES:
            raise ValueError(f"unknown figure {value!r}; figures are {', '.join(S.FIGURES[:12])}, …")
        return value


class TrendQuery(PeriodQuery):
    months: Annotated[int, Field(ge=1, le=24)] = 12
    preset: Annotated[str | None, Field(max_length=50)] = None
    top: Annotated[int, Field(ge=1, le=50)] = 10


class Names:
    """Display names of townships, targets and grids (loaded per request: a county has a few hundred)."""

    def __init__(self, cfg_departments: Mapping[str, Any], row: Mapping[str, Any]) -> None:
        self.townships: dict[int, list[str]] = {int(k): v for k, v in (row["townships"] or {}).items()}
        self.units: dict[str, list[Any]] = dict(row["units"] or {})
        self.grids: dict[int, str] = {int(k): v for k, v in (row["grids"] or {}).items()}
        self.departments = {code: (n.zh, n.en) for code, n in cfg_departments.items()}

    def target(self, code: str) -> dict[str, Any]:
        if code in self.departments:
            zh, en = self.departments[code]
            return {"target": code, "name_zh": zh, "name_en": en, "unit": False}
        unit = self.units.get(code)
        if unit is not None:
            return {"target": code, "name_zh": unit[1], "name_en": unit[2], "unit": True, "unit_township_id": unit[0]}
        return {"target": code, "name_zh": code, "name_en": code, "unit": code.startswith("unit:")}

    def township(self, tid: int) -> dict[str, Any]:
        code, zh, en = self.townships.get(tid, [str(tid), str(tid), str(tid)])
        return {"township_id": tid, "code": code, "name_zh": zh, "name_en": en}


async def _names(call: Req, conn: Conn) -> Names:
    return await load_names(call.hub.cfg, conn)


async def load_names(cfg: Config, conn: Conn) -> Names:
    row = await conn.fetchrow(SELECT_NAMES)
    assert row is not None
    return Names(cfg.departments, dict(row.items()))


def _period(q: PeriodQuery, now: datetime) -> P.Period:
    return P.resolve(q.month, q.from_, q.to, now)


def _weights(call: Req, preset: str | None) -> tuple[str, dict[str, float]]:
    ev = call.hub.cfg.evaluation
    name = preset or ev.preset
    if name not in ev.presets:
        raise ValidationFailed(f"preset: {name!r} is not one of {', '.join(ev.presets)}", field="preset")
    return name, ev.weights(name)


def _key_fn(group: str) -> Callable[[S.Row], Hashable]:
    if group == "township":
        return lambda r: r["township_id"]
    return lambda r: r["target"]


def _departments_only(key: Callable[[S.Row], Hashable]) -> Callable[[S.Row], Hashable | None]:
    def only(row: S.Row) -> Hashable | None:
        return None if str(row["target"]).startswith("unit:") else key(row)
    return only


def _keys(group: str, township_id: int | None, target: str | None, names: Names,
          found: set[Hashable]) -> list[Hashable]:
    """Every row the table shows: the seven departments (and, in one township, its units) even when they
    received nothing, or every township; plus anything found in the facts."""
    if group == "township":
        wanted: list[Hashable] = [t for t in sorted(names.townships) if township_id is None or t == township_id]
    else:
        units = [u for u, v in sorted(names.units.items(), key=lambda kv: int(kv[0][5:]))
                 if township_id is not None and v[0] == township_id]
        wanted = [d for d in (*DEPARTMENTS, *units) if target is None or d == target]
    return wanted + sorted((k for k in found if k not in wanted), key=str)


async def scorecards_of(call: Req, q: ScorecardQuery) -> dict[str, Any]:
    now = call.hub.clock.now()
    township_id, target = policy.evaluation_scope(call.actor, q.township_id, q.target)
    preset, weights = _weights(call, q.preset)
    return await compute_scorecards(call.hub.pool, call.hub.cfg, now, _period(q, now), township_id, target,
                                    q.group, preset, weights)


async def compute_scorecards(pool: Pool, cfg: Config, now: datetime, period: P.Period, township_id: int | None,
                             target: str | None, group: str, preset: str,
                             weights: Mapping[str, float]) -> dict[str, Any]:
    """The scorecards answer (what the endpoint returns, and what ``scripts/bench`` times): a period's facts
    and the previous period's, judged as of ``now``, ranked, labelled."""
    before = P.previous(period)
    key = _key_fn(group)
    async with pool.acquire() as conn:
        names = await load_names(cfg, conn)
        rows = await facts_store.period_scoring_rows(conn, period.start, period.end, township_id, target)
        prev_rows = await facts_store.period_scoring_rows(conn, before.start, before.end, township_id, target)
    if group == "target" and township_id is None:
        # County-wide, departments are compared; a township's own units ("N") only within their township.
        key = _departments_only(key)
    tallies = S.tally(rows, now, key)
    cards = {k: S.card(t, weights) for k, t in tallies.items()}
    previous = {k: S.card(t, weights) for k, t in S.tally(prev_rows, now, key).items()}
    for k in _keys(group, township_id, target, names, set(cards)):
        cards.setdefault(k, S.card(S.Tally(), weights))
    S.with_ranks(cards, previous)
    out_rows = []
    for k, c in cards.items():
        label = names.township(int(str(k))) if group == "township" else names.target(str(k))
        out_rows.append({"key": {"township_id": k if group == "township" else township_id,
                                 "target": target if group == "township" else k}, **label, **c})
    out_rows.sort(key=lambda r: (r["rank"] is None, r["rank"] or 0, str(r["key"]["target"] or r["key"]["township_id"])))
    return {
        "period": period.to_dict(), "previous_period": before.to_dict(), "as_of": now.isoformat(),
        "group": group, "scope": {"township_id": township_id, "target": target},
        "township": None if township_id is None else names.township(township_id),
        "preset": preset, "weights": dict(weights), "presets": sorted(cfg.evaluation.presets),
        "figures": list(S.FIGURES), "rows": out_rows,
    }


@endpoint("GET", "/api/v1/evaluation/scorecards", summary="Scorecards of departments or townships for a period",
          tags=["evaluation"], query=ScorecardQuery, response=ScorecardsOut)
async def get_scorecards(call: Req) -> dict[str, Any]:
    return await scorecards_of(call, call.query)


async def drill_of(call: Req, q: DrillQuery) -> dict[str, Any]:
    now = call.hub.clock.now()
    township_id, target = policy.evaluation_scope(call.actor, q.township_id, q.target)
    period = _period(q, now)
    async with call.hub.pool.acquire() as conn:
        names = await _names(call, conn)
        rows = await facts_store.period_rows(conn, period.start, period.end, township_id, target)
    chosen = sorted((r for r in rows if S.members(r, q.figure, now)), key=lambda r: (r["dispatched_at"], r["number"]))
    page = chosen[q.offset:q.offset + q.limit]
    return {
        "period": period.to_dict(), "as_of": now.isoformat(), "figure": q.figure,
        "scope": {"township_id": township_id, "target": target}, "total": len(chosen),
        "limit": q.limit, "offset": q.offset,
        "assignments": [{**S.explain(r, now), "target_name": names.target(r["target"]),
                         "township": names.township(r["township_id"])} for r in page],
    }


@endpoint("GET", "/api/v1/evaluation/assignments", summary="The assignments behind one figure of a scorecard",
          tags=["evaluation"], query=DrillQuery, response=DrillDownOut)
async def get_drill(call: Req) -> dict[str, Any]:
    return await drill_of(call, call.query)


@endpoint("GET", "/api/v1/evaluation/score-trend", summary="Composite scores month by month",
          tags=["evaluation"], query=TrendQuery, response=ScoreTrendOut)
async def get_score_trend(call: Req) -> dict[str, Any]:
    q: TrendQuery = call.query
    now = call.hub.clock.now()
    township_id, target = policy.evaluation_scope(call.actor, q.township_id, q.target)
    months = P.months_ending(_period(q, now), q.months)
    preset, weights = _weights(call, q.preset)
    async with call.hub.pool.acquire() as conn:
        names = await _names(call, conn)
        rows = await facts_store.period_scoring_rows(conn, months[0].start, months[-1].end, township_id, target)
    by_month: dict[Hashable, dict[Hashable, float | None]] = {}
    for m in months:
        start, end = S.micros(m.start), S.micros(m.end)
        inside = [r for r in rows if start <= r["dispatched_at"] < end]
        tallies = S.tally(inside, now, lambda r: r["target"])
        by_month[m.label] = {k: S.card(t, weights)["score"]["value"] for k, t in tallies.items()}
    keys = _keys("target", township_id, target, names, {k for v in by_month.values() for k in v})
    return {
        "months": [m.label for m in months], "as_of": now.isoformat(), "preset": preset,
        "scope": {"township_id": township_id, "target": target},
        "series": [{**names.target(str(k)), "scores": [by_month[m.label].get(k) for m in months]} for k in keys],
    }


@endpoint("GET", "/api/v1/evaluation/trends", summary="Calls by category, township and place, month by month",
          tags=["evaluation"], query=TrendQuery, response=TrendsOut)
async def get_trends(call: Req) -> dict[str, Any]:
    q: TrendQuery = call.query
    now = call.hub.clock.now()
    township_id, target = policy.evaluation_scope(call.actor, q.township_id, q.target)
    months = P.months_ending(_period(q, now), q.months)
    start, end = months[0].start, months[-1].end
    last = months[-1]
    before = P.previous(last)
    labels = [m.label for m in months]
    async with call.hub.pool.acquire() as conn:
        names = await _names(call, conn)
        cats = await trends_store.category_months(conn, start, end, township_id, target)
        towns = await trends_store.township_months(conn, start, end, township_id, target)
        grids = await trends_store.top_grids(conn, last.start, last.end, township_id, target, q.top)
        grids_before = await trends_store.grid_counts(conn, before.start, before.end, township_id, target,
                                                      [g["grid_id"] for g in grids])
        places = await trends_store.top_places(conn, last.start, last.end, township_id, target, q.top)
    cfg = call.hub.cfg
    series: dict[str, list[int]] = {}
    for r in cats:
        if r["month"] in labels:
            series.setdefault(r["category"], [0] * len(labels))[labels.index(r["month"])] = r["n"]
    categories: list[dict[str, Any]] = []
    for code, counts in series.items():
        names_ = cfg.categories.get(code)
        prev_n = counts[-2] if len(counts) > 1 else None
        categories.append({
            "code": code, "name_zh": names_.zh if names_ else code, "name_en": names_.en if names_ else code,
            "counts": counts, "total": sum(counts), "last": counts[-1], "previous": prev_n,
            "change": None if prev_n is None else counts[-1] - prev_n,
            "change_rate": None if not prev_n else round((counts[-1] - prev_n) / prev_n, 4)})
    categories.sort(key=lambda c: (-sum(c["counts"][-1:]), -sum(c["counts"]), str(c["code"])))
    town_series: dict[int, list[int]] = {}
    for r in towns:
        if r["month"] in labels:
            town_series.setdefault(r["township_id"], [0] * len(labels))[labels.index(r["month"])] = r["n"]
    return {
        "months": labels, "as_of": now.isoformat(), "scope": {"township_id": township_id, "target": target},
        "last_month": last.label, "categories": categories,
        "townships": [{**names.township(t), "counts": c, "total": sum(c)} for t, c in sorted(town_series.items())],
        "grids": [{"grid_id": g["grid_id"], "township_id": g["township_id"], "name": g["name"],
                   "township": names.township(g["township_id"]), "count": g["n"],
                   "previous": grids_before.get(g["grid_id"], 0)} for g in grids],
        "places": [{"address": p["address"], "township": names.township(p["township_id"]), "count": p["n"]}
                   for p in places],
    }


# ------------------------------------------------------------------------------------- exports

def _download(data: bytes, media: str, filename: str) -> Response:
    return Response(data, media_type=media, headers={
        "Content-Disposition": f"attachment; filename=\"{filename}\"", "Cache-Control": "no-store"})


def _file_stem(kind: str, result: dict[str, Any]) -> str:
    town = result.get("township") or {}
    scope = town.get("code") or "county"
    target = result["scope"].get("target")
    if target:
        scope += "-" + str(target).replace(":", "")
    return f"xianghu-{kind}-{scope}-{result['period']['label'].replace('..', '_')}"


for _fmt, _media in (("xlsx", sheets.XLSX_MEDIA), ("csv", sheets.CSV_MEDIA)):
    def _make(fmt: str, media: str) -> None:
        @endpoint("GET", f"/api/v1/evaluation/scorecards.{fmt}", tags=["evaluation"], query=ScorecardQuery, media=media,
                  summary=f"Scorecards as {fmt.upper()} (for printing at the evaluation meeting)")
        async def scorecards_file(call: Req) -> Response:
            q: ScorecardQuery = call.query
            result = await scorecards_of(call, q)
            data = sheets.scorecards(result, fmt, q.lang, call.hub.clock.now())
            return _download(data, media, f"{_file_stem('scorecards', result)}.{fmt}")

        scorecards_file.__name__ = f"get_scorecards_{fmt}"  # the OpenAPI operationId

        @endpoint("GET", f"/api/v1/evaluation/assignments.{fmt}", tags=["evaluation"], query=DrillQuery, media=media,
                  summary=f"The assignments behind one figure as {fmt.upper()}")
        async def drill_file(call: Req) -> Response:
            q: DrillQuery = call.query
            result = await drill_of(call, q.model_copy(update={"limit": 5000, "offset": 0}))
            data = sheets.drill_down(result, fmt, q.lang, call.hub.clock.now())
            return _download(data, media, f"{_file_stem('assignments', result)}-{q.figure}.{fmt}")

        drill_file.__name__ = f"get_drill_{fmt}"

    _make(_fmt, _media)

