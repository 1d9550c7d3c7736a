"""The figures ``./scripts/bench`` reports: each key's goal (issue #19's Goals table), the limit printed beside it,
and what it measures; and ``--write-docs``, which generates docs/PERFORMANCE.md's figures section from
``bench-results.json`` (no hand-typed numbers)."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any


@dataclasses.dataclass(frozen=True)
class Figure:
    key: str
    unit: str
    op: str | None  # "<=" / ">=" / None: reported, no goal
    goal: float | None
    limit: str  # the limit beside it: a key of the results (its value is printed) or a machine fact
    what: str


FIGURES: tuple[Figure, ...] = (
    Figure("fanout_p99_ms", "ms", "<=", 15, "hub_cpu_ms_per_call",
           "decide (`at`) → arrival on every targeted liaison socket, p99 over calls; 50 calls/s with the idle "
           "sockets connected"),
    Figure("fanout_p999_ms", "ms", None, None, "fanout_p99_ms", "the same run, p99.9"),
    Figure("fanout_p99_at_80pct_ms", "ms", "<=", 50, "calls_per_s",
           "the same, with calls paced at 80% of `calls_per_s` (lean generator)"),
    Figure("churn_rss_growth_mb", "MiB", None, None, "hub_rss_mb_idle",
           "sockets coming and going: hub RSS after the last of the rounds of sockets opened, caught up and closed − "
           "after the first (report; flat means a closed socket leaves nothing behind)"),
    Figure("frame_cpu_ratio", "×", "<=", 1.25, "bare_cpu_us_per_frame",
           "hub CPU µs per delivered frame ÷ a bare `websockets.broadcast()` server's, same harness, no compression "
           "on either side"),
    Figure("fanout_ratio", "×", None, None, "bare_events_per_s",
           "hub events/s ÷ bare `broadcast()` events/s, same run as `frame_cpu_ratio` (no compression)"),
    Figure("hub_cpu_ms_per_call", "ms", "<=", 1.0, "calls_per_s",
           "hub CPU per REST `create_call` (2 departments), committed and delivered, at the maximum rate"),
    Figure("pg_cpu_ms_per_call", "ms", "<=", 1.0, "commit_ceiling_per_s", "PostgreSQL CPU per call, same run"),
    Figure("gen_cpu_ms_per_call", "ms", None, None, "hub_cpu_ms_per_call",
           "load generator CPU per call (pipelined raw HTTP/1.1 + recording sockets), same run"),
    Figure("calls_per_s", "/s", None, None, "commit_ceiling_per_s",
           "calls committed and delivered to both departments per second, closed loop"),
    Figure("commit_ceiling_per_s", "/s", None, None, "wal_flush_floor_per_s",
           "the hub's own create-call transaction (recorded from `Store.execute`) replayed from raw asyncpg, "
           "same concurrency, same townships, hub stopped"),
    Figure("wal_flush_floor_per_s", "/s", None, None, "synchronous_commit",
           "WAL-flush floor: autocommit one-row insert, 10 connections"),
    Figure("connections", "", ">=", 19_000, "open_files_limit",
           "idle authenticated sockets, one distinct account and token each, all answering a ping after the hold"),
    Figure("connections_max", "", ">=", 19_000, "open_files_limit",
           "the ramp's end: sockets open before the first failure or the open-file limit"),
    Figure("kb_per_conn", "KB", "<=", 25, "hub_rss_mb_idle",
           "(hub RSS delta + the hub's sockets' kernel memory) ÷ connections"),
    Figure("escalation_burst_p99_ms", "ms", "<=", 1000, "escalation_burst_n",
           "10,000 deadlines due in the same second during 50 calls/s: event arrival on the liaison's socket − "
           "deadline, p99 (every one must arrive)"),
    Figure("escalation_steady_p99_ms", "ms", "<=", 50, "escalation_steady_n",
           "deadlines due at a steady 100/s among 100,000 open ones, all inside the arming window: arrival on the "
           "liaison's socket − deadline, p99"),
    Figure("escalation_late_p99_ms", "ms", None, None, "escalation_steady_p99_ms",
           "the steady run measured to the commit (`pg_xact_commit_timestamp` − deadline), p99"),
    Figure("startup_overdue_s", "s", "<=", 2, "startup_armed",
           "100,000 open deadlines, 1,000 overdue: process spawn → the last overdue escalation committed"),
    Figure("rearm_100k_s", "s", None, None, "startup_overdue_s", "the same start: spawn → the first one committed"),
    Figure("resume_1000_clients_s", "s", "<=", 3, "resume_1000_events",
           "1,000 sockets resuming at once after a hub restart, 100 missed events each: reconnect → the last "
           "`caught_up`"),
    Figure("resume_10k_s", "s", None, None, "resume_1000_clients_s",
           "one `HubClient` resuming after 10,000 missed events → `caught_up`"),
    Figure("scorecards_month_s", "s", "<=", 0.5, "scorecards_events",
           "the product's `compute_scorecards`, last month, 12 months of simulated history, median of 5"),
    Figure("scorecards_year_s", "s", "<=", 2, "scorecards_events", "the same, the whole year"),
    Figure("msgpack_json_ratio", "×", None, None, "msgpack_vs_default_json_dumps",
           "msgpack ÷ compact UTF-8 JSON bytes of a call's event frames (report only)"),
)
BY_KEY = {f.key: f for f in FIGURES}
KEYS = tuple(f.key for f in FIGURES)

BEGIN = "<!-- BEGIN GENERATED FIGURES (python -m scripts.bench_lib --write-docs) -->"
END = "<!-- END GENERATED FIGURES -->"


def fmt(v: Any) -> str:
    if isinstance(v, str):
        return v
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    if isinstance(v, bool):
        return str(v)
    if abs(v) >= 100:
        return f"{v:,.0f}"
    if abs(v) >= 1:
        return f"{v:,.2f}"
    return f"{v:.3f}"


def goal_text(f: Figure) -> str:
    return "report" if f.op is None or f.goal is None else f"{f.op} {fmt(f.goal)}"


def verdict(f: Figure, v: float | None) -> str:
    if f.op is None or f.goal is None:
        return ""
    if v is None or math.isnan(v):
        return "MISS"
    ok = v <= f.goal if f.op == "<=" else v >= f.goal
    return "met" if ok else "MISS"


def limit_text(f: Figure, results: dict[str, Any], details: dict[str, Any]) -> str:
    name = f.limit
    v = results.get(name, details.get(name))
    return f"{name} {fmt(v)}" if v is not None else name


def table(results: dict[str, Any], details: dict[str, Any], notes: dict[str, str], quick: bool,
          keys: list[str] | None = None) -> str:
    lines = [f"{'key':<26} {'figure':>10}  {'goal':>10}  {'':5} {'limit beside it':<36} detail", "-" * 130]
    for f in FIGURES:
        if keys is not None and f.key not in keys:
            continue
        v = results.get(f.key)
        ver = verdict(f, v)
        if quick and ver:
            ver = f"({ver.lower()})"  # small sizes: not the goals' conditions
        lines.append(f"{f.key:<26} {fmt(v):>10}  {goal_text(f):>10}  {ver:5} {limit_text(f, results, details):<36} "
                     f"{notes.get(f.key, '')}")
    return "\n".join(lines)


def docs_section(saved: dict[str, Any]) -> str:
    results: dict[str, Any] = saved["results"]
    details: dict[str, Any] = saved.get("details", {})
    machine: dict[str, Any] = saved.get("machine", {})
    loads: dict[str, Any] = saved.get("load", {})
    out = [BEGIN, "",
           f"Generated from `bench-results.json` ({machine.get('mode', '?')} run, {machine.get('date', '?')}; "
           f"{machine.get('cpu_model', '?')}, {machine.get('cores', '?')} cores, {machine.get('memory_gib', '?')} GiB, "
           f"Python {machine.get('python', '?')}, PostgreSQL {machine.get('postgres', '?')}, open-file limit "
           f"{machine.get('open_files_hard_limit', '?')}; {machine.get('seconds', '?')} s; PostgreSQL "
           f"fsync={details.get('fsync', '?')}, synchronous_commit={details.get('synchronous_commit', '?')}).", ""]
    if machine.get("mode") != "full":
        out += ["**Not a full run: small sizes, the verdicts do not hold for the goals' conditions.**", ""]
    out += ["| key | figure | goal | verdict | limit beside it | what is measured |", "|---|---|---|---|---|---|"]
    for f in FIGURES:
        v = results.get(f.key)
        out.append(f"| `{f.key}` | {fmt(v)} {f.unit} | {goal_text(f)} | {verdict(f, v)} | "
                   f"{limit_text(f, results, details)} | {f.what} |")
    if loads:
        busiest = max(loads.items(), key=lambda kv: max(kv[1].get("start", [0])[0], kv[1].get("end", [0])[0]))
        out += ["", "Load average (1 min) at the start → end of each scenario (a polluted run shows here): "
                + "; ".join(f"{k} {v['start'][0]:.2f} → {v['end'][0]:.2f}" for k, v in loads.items())
                + f". Busiest: {busiest[0]}."]
    out += ["", "The run's JSON line:", "", "```json", json.dumps(results), "```", "", END]
    return "\n".join(out)


def write_docs(results_path: Path, doc: Path) -> None:
    saved = json.loads(results_path.read_text(encoding="utf-8"))
    text = doc.read_text(encoding="utf-8")
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{doc} has no generated section ({BEGIN} … {END})")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    doc.write_text(head + docs_section(saved) + tail, encoding="utf-8")
