"""Scorecards and drill-down lists as spreadsheets: XLSX (openpyxl) laid out for printing at the
evaluation meeting (title, period, formula, generated time), and CSV (UTF-8 with BOM, for Excel)."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter

from dispatch.evaluation.period import TZ

XLSX_MEDIA = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV_MEDIA = "text/csv; charset=utf-8"

RATE_NAMES = {
    "response_rate": ("响应率", "response rate"), "arrive_rate": ("到场及时率", "on-scene on time"),
    "result_rate": ("办结及时率", "result on time"), "resolution_rate": ("解决率", "resolution rate"),
    "satisfaction_rate": ("满意率", "satisfaction rate"),
}
VERDICT_NAMES = {"on_time": ("按时", "on time"), "late": ("超时", "late"), "missed": ("未完成且已超时", "missed"),
                 "pending": ("未到时限", "not yet due"), "excluded": ("不计入", "excluded")}
ENDING_NAMES = {"withdrawn": ("已撤回", "withdrawn"), "cancelled": ("呼叫已撤销", "call cancelled"),
                "rerouted": ("值班员转派", "rerouted by operator"),
                "not_our_remit": ("非本部门职责", "not our remit"), "transferred": ("同意转派", "transfer approved")}


def _t(pair: tuple[str, str], lang: str) -> str:
    return pair[1] if lang == "en" else pair[0]


def when(value: str | datetime | None) -> str:
    """``2026-11-30 09:23`` in Asia/Shanghai (the glossary's one date format)."""
    if value is None:
        return ""
    at = datetime.fromisoformat(value) if isinstance(value, str) else value
    return at.astimezone(TZ).strftime("%Y-%m-%d %H:%M")


def minutes(ms: int | None) -> float | None:
    return None if ms is None else round(ms / 60000, 1)


def pct(rate: float | None) -> float | None:
    return None if rate is None else round(100 * rate, 1)


Column = tuple[tuple[str, str], Callable[[dict[str, Any]], Any]]


def _name(row: dict[str, Any], lang: str) -> str:
    return str(row["name_en"] if lang == "en" else row["name_zh"])


def scorecard_columns(group: str) -> list[Column]:
    who = ("镇街", "township") if group == "township" else ("部门/单位", "department / unit")

    def esc(level: int) -> Callable[[dict[str, Any]], Any]:
        return lambda r: sum(int(levels.get(str(level), 0)) for levels in r["escalations"].values())

    cols: list[Column] = [
        (("排名", "rank"), lambda r: r["rank"]),
        (who, lambda r: r["_name"]),
        (("综合得分", "composite score"), lambda r: r["score"]["value"]),
        (("环比(分)", "change (points)"), lambda r: r["change"]["score"]),
        (("名次变化", "rank change"), lambda r: r["change"]["rank"]),
        (("派单数", "assignments"), lambda r: r["received"]),
        (("不计入", "excluded"), lambda r: r["excluded"]),
    ]
    for rate, (zh, en) in RATE_NAMES.items():
        cols.append(((f"{zh}%", f"{en} %"), lambda r, rate=rate: pct(r["rates"][rate])))  # type: ignore[misc]
    cols += [
        (("应响应", "due for response"), lambda r: r["response"]["due"]),
        (("按时响应", "responded on time"), lambda r: r["response"]["on_time"]),
        (("超时响应", "responded late"), lambda r: r["response"]["late"]),
        (("未响应", "never responded"), lambda r: r["response"]["missed"]),
        (("响应用时P50(分)", "response p50 (min)"), lambda r: minutes(r["response"]["p50_ms"])),
        (("响应用时P90(分)", "response p90 (min)"), lambda r: minutes(r["response"]["p90_ms"])),
        (("到场用时P50(分)", "on scene p50 (min)"), lambda r: minutes(r["arrive"]["p50_ms"])),
        (("办结用时P50(分)", "result p50 (min)"), lambda r: minutes(r["result"]["p50_ms"])),
        (("回访数", "visited"), lambda r: r["visits"]["visited"]),
        (("同意转派", "transfers approved"), lambda r: r["transfers"]["approved"]),
        (("驳回", "transfers rejected"), lambda r: r["transfers"]["rejected"]),
        (("退回重办", "sent back"), lambda r: r["send_backs"]),
        (("重办", "reopened"), lambda r: r["reopened"]),
        (("一级督办", "level 1 escalations"), esc(1)),
        (("二级督办", "level 2 escalations"), esc(2)),
        (("三级督办", "level 3 escalations"), esc(3)),
    ]
    return cols


def drill_columns() -> list[Column]:
    def clock(name: str, part: str) -> Callable[[dict[str, Any]], Any]:
        if part == "verdict":
            return lambda r: r["_verdict"][name]
        if part == "ms":
            return lambda r: minutes(r["clocks"][name]["ms"])
        return lambda r: when(r["clocks"][name][part])

    return [
        (("呼叫编号", "call number"), lambda r: r["number"]),
        (("镇街", "township"), lambda r: r["_township"]),
        (("部门/单位", "department / unit"), lambda r: r["_name"]),
        (("派单时间", "dispatched"), lambda r: when(r["dispatched_at"])),
        (("响应时限", "response deadline"), clock("response", "due")),
        (("响应时间", "responded"), clock("response", "stopped_at")),
        (("响应", "response"), clock("response", "verdict")),
        (("到场时限", "on-scene deadline"), clock("arrive", "due")),
        (("到场时间", "on scene"), clock("arrive", "stopped_at")),
        (("到场", "on scene verdict"), clock("arrive", "verdict")),
        (("办结时限", "result deadline"), clock("result", "due")),
        (("办结时间", "result"), clock("result", "stopped_at")),
        (("办结", "result verdict"), clock("result", "verdict")),
        (("不计入原因", "exclusion reason"), lambda r: r["_ended"]),
        (("退回重办", "sent back"), lambda r: r["send_backs"]),
        (("重办", "reopened"), lambda r: r["reopened"]),
        (("督办", "escalations"), lambda r: sum(len(v) for v in r["escalations"].values())),
        (("回访满意度", "visit satisfaction"), lambda r: None if r["visit"] is None else r["visit"]["satisfaction"]),
    ]


def _prepare_cards(result: dict[str, Any], lang: str) -> list[dict[str, Any]]:
    return [{**r, "_name": _name(r, lang)} for r in result["rows"]]


def _prepare_drill(result: dict[str, Any], lang: str) -> list[dict[str, Any]]:
    out = []
    for r in result["assignments"]:
        ended = r["ended"]
        out.append({**r, "_name": _name(r["target_name"], lang), "_township": _name(r["township"], lang),
                    "_verdict": {k: _t(VERDICT_NAMES[c["verdict"]], lang) for k, c in r["clocks"].items()},
                    "_ended": "" if ended is None else f"{_t(ENDING_NAMES[ended['how']], lang)} {when(ended['at'])}"})
    return out


def formula_text(result: dict[str, Any], lang: str) -> str:
    terms = " + ".join(f"{w:g}×{_t(RATE_NAMES[n], lang)}" for n, w in result["weights"].items() if w > 0)
    if lang == "en":
        return (f"Composite score = 100 × ({terms}) ÷ the sum of the weights of the rates that have a "
                f"denominator (preset {result['preset']})")
    return f"综合得分 = 100 × ({terms}) ÷ 有分母的各率权重之和（权重方案 {result['preset']}）"


def _scope_title(result: dict[str, Any], lang: str) -> str:
    town = result.get("township")
    scope = (town["name_en"] if lang == "en" else town["name_zh"]) if town else ("County" if lang == "en" else "全县")
    return scope


def _period_text(result: dict[str, Any], lang: str) -> str:
    p = result["period"]
    if lang == "en":
        return f"Period: {p['label']} ({p['from']} to {p['to']}, Asia/Shanghai); figures as of {when(result['as_of'])}"
    return f"考核期间：{p['label']}（{p['from']} 至 {p['to']}，北京时间）；数据截至 {when(result['as_of'])}"


def _table(columns: Sequence[Column], rows: list[dict[str, Any]], lang: str) -> tuple[list[str], list[list[Any]]]:
    return [_t(name, lang) for name, _ in columns], [[fn(r) for _, fn in columns] for r in rows]


def _csv(header: list[str], body: list[list[Any]]) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows([["" if v is None else v for v in row] for row in body])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def _xlsx(title: str, lines: list[str], header: list[str], body: list[list[Any]], generated: datetime,
          lang: str) -> bytes:
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "考核" if lang != "en" else "evaluation"
    width = len(header)
    thin = Side(style="thin", color="999999")
    stamp = ("Generated: " if lang == "en" else "生成时间：") + when(generated)
    for i, text in enumerate([title, *lines, stamp], start=1):
        ws.cell(row=i, column=1, value=text)
        ws.merge_cells(start_row=i, start_column=1, end_row=i, end_column=width)
        ws.cell(row=i, column=1).font = Font(bold=i == 1, size=16 if i == 1 else 10)
        ws.cell(row=i, column=1).alignment = Alignment(horizontal="center" if i == 1 else "left", wrap_text=True)
    top = len(lines) + 4  # title, the lines, the generated time, a blank row
    for j, name in enumerate(header, start=1):
        cell = ws.cell(row=top, column=j, value=name)
        cell.font = Font(bold=True)
        cell.fill = PatternFill("solid", fgColor="DDE5F0")
        cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
        cell.border = Border(top=thin, bottom=thin, left=thin, right=thin)
    for i, row in enumerate(body, start=top + 1):
        for j, value in enumerate(row, start=1):
            cell = ws.cell(row=i, column=j, value=value)
            cell.border = Border(top=thin, bottom=thin, left=thin, right=thin)
    for j, name in enumerate(header, start=1):
        longest = max([len(str(name))] + [len(str(r[j - 1])) for r in body if r[j - 1] is not None])
        ws.column_dimensions[get_column_letter(j)].width = min(28, max(7, longest * 1.6))
    ws.freeze_panes = f"C{top + 1}"
    ws.print_title_rows = f"{top}:{top}"
    ws.page_setup.orientation = "landscape"
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    if ws.sheet_properties.pageSetUpPr is not None:
        ws.sheet_properties.pageSetUpPr.fitToPage = True
    footer = ws.oddFooter
    if footer is not None and footer.center is not None:
        footer.center.text = "&P / &N"
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def scorecards(result: dict[str, Any], fmt: str, lang: str, generated: datetime) -> bytes:
    header, body = _table(scorecard_columns(result["group"]), _prepare_cards(result, lang), lang)
    if fmt == "csv":
        return _csv(header, body)
    kind = ("Evaluation of townships" if result["group"] == "township" else "Evaluation of stationed departments") \
        if lang == "en" else ("镇街考核评分表" if result["group"] == "township" else "派驻部门考核评分表")
    title = f"{_scope_title(result, lang)} {kind}"
    return _xlsx(title, [_period_text(result, lang), formula_text(result, lang)], header, body, generated, lang)


def drill_down(result: dict[str, Any], fmt: str, lang: str, generated: datetime) -> bytes:
    header, body = _table(drill_columns(), _prepare_drill(result, lang), lang)
    if fmt == "csv":
        return _csv(header, body)
    title = (f"Assignments behind {result['figure']}" if lang == "en" else f"考核明细：{result['figure']}")
    total = (f"{result['total']} assignments" if lang == "en" else f"共 {result['total']} 条派单")
    return _xlsx(title, [_period_text(result, lang), total], header, body, generated, lang)
