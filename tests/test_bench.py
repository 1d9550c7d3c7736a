"""``./scripts/bench --quick`` runs end to end: the harness works. No timing is asserted here — the figures are
measured by the bench against the machine's limits (docs/PERFORMANCE.md), never as timed assertions."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
KEYS = {
    "fanout_p99_ms", "fanout_ratio", "calls_per_s", "commit_ceiling_per_s", "connections", "kb_per_conn",
    "escalation_late_p99_ms", "rearm_100k_s", "resume_10k_s", "scorecards_month_s", "scorecards_year_s",
    "msgpack_json_ratio",
}


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_quick_bench_ends_with_the_json_line(tmp_path: Path) -> None:
    out = tmp_path / "bench-results.json"
    proc = subprocess.run([str(ROOT / "scripts" / "bench"), "--quick", "--output", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=840)
    assert proc.returncode == 0, proc.stderr[-4000:]
    last = proc.stdout.strip().splitlines()[-1]
    figures = json.loads(last)
    assert set(figures) == KEYS
    for key, value in figures.items():
        assert isinstance(value, int | float) and not isinstance(value, bool), key
        assert math.isfinite(value), (key, value, proc.stderr[-4000:])
    saved = json.loads(out.read_text(encoding="utf-8"))
    assert saved["results"] == figures
    for field in ("cpu_model", "cores", "memory_gib", "python", "postgres", "date"):
        assert field in saved["machine"]
    print(proc.stdout, file=sys.stderr)
