"""``./scripts/bench --quick`` runs end to end: the harness works. No timing is asserted here — the figures are
measured by the bench against the machine's limits (docs/PERFORMANCE.md), never as timed assertions. Also: the
bench imports only runtime dependencies (it must run from a fresh clone, which installs no test extras), the docs'
figures are generated from a results file, the create-call replay renumbers what it replays, and the hub's
CPU sampler finds where the CPU goes."""

from __future__ import annotations

import ast
import json
import math
import re
import subprocess
import sys
import threading
import time
import tomllib
import uuid
from collections import Counter
from pathlib import Path

import pytest

from scripts.bench_lib import goals, replay
from scripts.bench_lib.profiler import LOOP, sampler, write_report

ROOT = Path(__file__).resolve().parent.parent
OLD_KEYS = {
    "fanout_p99_ms", "fanout_ratio", "calls_per_s", "commit_ceiling_per_s", "connections", "kb_per_conn",
    "escalation_late_p99_ms", "rearm_100k_s", "resume_10k_s", "scorecards_month_s", "scorecards_year_s",
    "msgpack_json_ratio",
}
NEW_KEYS = {  # issue #19: at least these
    "hub_cpu_ms_per_call", "pg_cpu_ms_per_call", "gen_cpu_ms_per_call", "frame_cpu_ratio", "connections_max",
    "escalation_burst_p99_ms", "escalation_steady_p99_ms", "startup_overdue_s", "resume_1000_clients_s",
    "scorecards_month_s", "scorecards_year_s",
}
# import name → distribution name, where they differ
DISTRIBUTIONS = {"msgpack": "msgpack", "yaml": "pyyaml", "PIL": "pillow"}


def test_the_json_line_keeps_the_old_keys_and_adds_the_issues() -> None:
    assert OLD_KEYS <= set(goals.KEYS)
    assert NEW_KEYS <= set(goals.KEYS)
    assert len(goals.KEYS) == len(set(goals.KEYS))
    for f in goals.FIGURES:
        assert f.limit and f.what, f.key
        assert (f.op is None) == (f.goal is None), f.key


def test_the_bench_imports_only_runtime_dependencies() -> None:
    """A fresh clone's ``./scripts/bench`` installs the project without its test extras."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    runtime = {re.split(r"[<>=!~;\[ ]", d, maxsplit=1)[0].lower().replace("_", "-") for d in project["dependencies"]}
    stdlib = set(sys.stdlib_module_names)
    local = {"dispatch", "protocols", "scripts"}
    files = sorted((ROOT / "scripts" / "bench_lib").glob("*.py"))
    assert files
    seen = set()
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top in stdlib or top in local or top == "__future__":
                    continue
                seen.add(top)
                dist = DISTRIBUTIONS.get(top, top).lower().replace("_", "-")
                assert dist in runtime, f"{path.name} imports {top}, which is not a runtime dependency"
    assert {"asyncpg", "httpx", "msgpack", "websockets", "uvloop", "psutil"} <= seen


def test_the_docs_figures_are_generated_from_a_results_file(tmp_path: Path) -> None:
    results = {k: 1.5 for k in goals.KEYS} | {"connections": 19_321, "frame_cpu_ratio": 1.375}
    saved = {"results": results, "machine": {"mode": "full", "date": "2026-11-30T00:00:00+00:00", "cores": 2},
             "details": {"open_files_limit": 20_000, "fsync": "on", "synchronous_commit": "on"},
             "load": {"calls": {"start": [0.1, 0, 0], "end": [1.9, 0, 0]}}}
    src = tmp_path / "bench-results.json"
    src.write_text(json.dumps(saved), encoding="utf-8")
    doc = tmp_path / "PERFORMANCE.md"
    doc.write_text(f"# before\n\n{goals.BEGIN}\nold 13,584/s\n{goals.END}\n\n## after\n", encoding="utf-8")
    goals.write_docs(src, doc)
    text = doc.read_text(encoding="utf-8")
    assert text.startswith("# before\n") and text.endswith("\n## after\n")
    assert "13,584" not in text
    assert "| `connections` | 19,321  | >= 19,000 | met |" in text
    assert "| `frame_cpu_ratio` | 1.38 × | <= 1.25 | MISS |" in text
    assert "synchronous_commit=on" in text and "calls 0.10 → 1.90" in text
    assert json.dumps(results) in text


def test_the_shipped_doc_has_a_generated_section_and_no_stale_figures() -> None:
    text = (ROOT / "docs" / "PERFORMANCE.md").read_text(encoding="utf-8")
    assert text.count(goals.BEGIN) == 1 and text.count(goals.END) == 1
    outside = text.split(goals.BEGIN)[0] + text.split(goals.END)[1]
    for stale in ("13,584", "Targets met", "both servers accept", "1.216", "266.191"):
        assert stale not in outside, stale


def test_the_replay_renumbers_ids_sequence_numbers_and_the_call_number() -> None:
    cid, aid = uuid.uuid4(), uuid.uuid4()
    base = replay.SEQ_BASE
    args = (cid, [(base + 1, cid, aid, "level", 1), (base + 2, cid, aid, "x", 7)],
            {"call_id": str(cid), "seq": base + 3, "number": "YQ-2026-00001"}, f'{{"seq": {base + 2}}}')
    ids: dict[str, str] = {}
    out = replay._subst(args, ids, 40, ("YQ-2026-00001", "YQ-2026-00042"))
    new_cid, new_aid = uuid.UUID(ids[str(cid)]), uuid.UUID(ids[str(aid)])
    assert len({cid, aid, new_cid, new_aid}) == 4
    assert out[0] == new_cid
    assert out[1] == [(base + 41, new_cid, new_aid, "level", 1), (base + 42, new_cid, new_aid, "x", 7)]
    assert out[2] == {"call_id": str(new_cid), "seq": base + 43, "number": "YQ-2026-00042"}
    assert out[3] == f'{{"seq": {base + 42}}}'
    again = replay._subst(args, {}, 0, None)
    assert again[0] != new_cid  # a fresh map: fresh ids for every replayed transaction


def test_the_sampler_report_separates_the_loop_from_busy_code(tmp_path: Path) -> None:
    loop = "run (runners.py:86)"
    write_report(tmp_path / "p", Counter({("main", loop, LOOP): 6, ("main", loop, "deliver (fanout.py:1)"): 3,
                                          ("main", loop, "execute (writer.py:1)"): 1}), 2.0, 0.75)
    report = (tmp_path / "p.txt").read_text(encoding="utf-8")
    assert "used 0.75 s of CPU meanwhile; 60.0% of the samples in the event loop itself" in report
    assert "  75.0    30.0  deliver (fanout.py:1)" in report
    collapsed = (tmp_path / "p.collapsed").read_text(encoding="utf-8").splitlines()
    assert f"main;{loop};{LOOP} 6" in collapsed


def test_the_sampler_finds_the_busy_function(tmp_path: Path) -> None:
    """The sampler thread, run for real on this process: the main thread's busy function tops the report."""
    out = tmp_path / "q"
    out.with_suffix(".on").touch()
    main_id = threading.main_thread().ident
    assert main_id is not None
    threading.Thread(target=sampler, args=(out, main_id), daemon=True).start()
    end = time.thread_time() + 0.5

    def spin() -> int:
        n = 0
        while time.thread_time() < end:
            n += 1
        return n
    spin()
    out.with_suffix(".on").unlink()
    deadline = time.monotonic() + 10
    while not out.with_suffix(".txt").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    report = out.with_suffix(".txt").read_text(encoding="utf-8")
    cpu = float(report.split("which used ")[1].split(" s of CPU")[0])
    assert 0.3 <= cpu <= 2.0, report
    top = report.split("------  ------  --------\n")[1].splitlines()[0]
    assert "spin (test_bench.py:" in top, report  # the busy function, not the sampler's own sleeps


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_quick_bench_ends_with_the_json_line(tmp_path: Path) -> None:
    out = tmp_path / "bench-results.json"
    proc = subprocess.run([str(ROOT / "scripts" / "bench"), "--quick", "--output", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=1140)
    assert proc.returncode == 0, proc.stderr[-4000:]
    last = proc.stdout.strip().splitlines()[-1]
    figures = json.loads(last)
    assert set(figures) == set(goals.KEYS)
    for key, value in figures.items():
        assert isinstance(value, int | float) and not isinstance(value, bool), key
        assert math.isfinite(value), (key, value, proc.stderr[-4000:])
    saved = json.loads(out.read_text(encoding="utf-8"))
    assert saved["results"] == figures
    for field in ("cpu_model", "cores", "memory_gib", "python", "postgres", "date"):
        assert field in saved["machine"]
    for scenario in ("connections", "calls", "sla", "scorecards"):
        start, end = saved["load"][scenario]["start"], saved["load"][scenario]["end"]
        assert len(start) == 3 and len(end) == 3
    assert saved["details"]["fsync"] in ("on", "off")
    for f in goals.FIGURES:  # every figure is printed with its goal and its limit
        row = next(line for line in proc.stdout.splitlines() if line.startswith(f.key + " "))
        assert goals.goal_text(f) in row and f.limit in row, row
    doc = tmp_path / "PERFORMANCE.md"
    doc.write_text((ROOT / "docs" / "PERFORMANCE.md").read_text(encoding="utf-8"), encoding="utf-8")
    goals.write_docs(out, doc)
    assert json.dumps(figures) in doc.read_text(encoding="utf-8")
    print(proc.stdout, file=sys.stderr)


def test_pg_stats_lists_the_statements_per_created_call(tmp_path: Path) -> None:
    """``--pg-stats``: a cluster started with the extension reports each statement and the tables' writes per
    created call (here: two calls, each inserted by one statement)."""
    import asyncio

    import asyncpg

    from dispatch.store.embedded import EmbeddedPostgres
    from scripts.bench_lib import pgstats

    pg = EmbeddedPostgres(tmp_path / "pgdata", durable=False)
    pg._initdb()
    with (tmp_path / "pgdata" / "postgresql.conf").open("a", encoding="utf-8") as conf:
        conf.write(pgstats.CONF)
    dsn = pg.start()
    out = tmp_path / "calls-pg-stats.txt"

    async def run() -> str:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute("create table calls (id uuid primary key, doc jsonb not null)")
            await pgstats.reset(dsn)
            before = await pgstats.created_calls(dsn)
            for _ in range(2):
                await conn.execute("insert into calls (id, doc) values ($1, '{}')", uuid.uuid4())
        finally:
            await conn.close()  # its table counts are flushed when it ends (an idle backend's within a second)
        reader = await asyncpg.connect(dsn)
        try:
            async with asyncio.timeout(10):
                while not await reader.fetchval(  # counts flushed by another process
                        "select n_tup_ins = 2 from pg_stat_user_tables where relname = 'calls'"):
                    await reader.execute("select pg_stat_clear_snapshot()")
                    await asyncio.sleep(0.01)
        finally:
            await reader.close()
        return await pgstats.report(dsn, out, await pgstats.created_calls(dsn) - before, 0.004)

    try:
        head = asyncio.run(run())
    finally:
        pg.stop()
    assert head.startswith("2 calls created; PostgreSQL CPU 2.000 ms/call"), head
    text = out.read_text(encoding="utf-8")
    insert = next(line for line in text.splitlines() if "insert into calls" in line)
    assert insert.split()[1] == "1.00", insert  # calls/call: two executions for two calls
    table = next(line for line in text.splitlines() if line.endswith("  calls"))
    assert table.split()[0] == "1.00", table  # rows inserted per call
