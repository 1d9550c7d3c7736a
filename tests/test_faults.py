"""``./scripts/faults --quick``: the fault harness runs end to end, prints its table and JSON line, and the figures
that the hub already meets are on target. Figures held off target by known hub bugs are xfail (not strict):
flip them when the fixes merge. The detector itself is checked on made-up deliveries (it must see a loss)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from scripts.faults_lib.harness import config_text
from scripts.faults_lib.scenarios import ALL, analyse

ROOT = Path(__file__).resolve().parent.parent
CHEAP = ("crash", "failover", "pg-outage", "fuzz", "never-reads", "soak", "tamper")

XFAIL: dict[tuple[str, str], str] = {}  # figures held off target by a known hub bug (none now)
TARGETED = [
    ("crash", "lost"), ("crash", "duplicated"), ("crash", "time to gapless (s)"),
    ("failover", "lost"), ("failover", "duplicated"), ("failover", "time to gapless (s)"),
    ("pg-outage", "lost"), ("pg-outage", "duplicated"), ("pg-outage", "rungs missed"),
    ("pg-outage", "time to recover (s)"),
    ("fuzz", "frames read by the hub"), ("fuzz", "hub crashes"), ("fuzz", "internal errors"),
    ("fuzz", "live after WS fuzz"), ("fuzz", "REST big-int 5xx"), ("fuzz", "live after big ints"),
    ("fuzz", "watchers' missing events"), ("fuzz", "watchers' duplicated"),
    ("never-reads", "others' p99 with (ms)"), ("never-reads", "stuck reader cut off"),
    ("never-reads", "stuck reader told to resume"), ("never-reads", "others' missing events"),
    ("soak", "lost"), ("soak", "duplicated"), ("soak", "RSS growth (MiB)"),
    ("tamper", "clean log verifies"), ("tamper", "edited row found"), ("tamper", "deleted row found"),
    ("tamper", "whole log refused"),
]


def run_faults(*args: str, timeout: float = 840) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "scripts.faults_lib", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="module")
def quick() -> dict[str, Any]:
    proc = run_faults("--quick", "--only", ",".join(CHEAP), "--seed", "12")
    lines = proc.stdout.strip().splitlines()
    assert lines, proc.stderr[-4000:]
    out: dict[str, Any] = json.loads(lines[-1])
    return {"proc": proc, "json": out,
            "figures": {(f["scenario"], f["figure"]): f for f in out["figures"]}}


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_quick_run_prints_a_table_then_one_json_line(quick: dict[str, Any]) -> None:
    proc, out = quick["proc"], quick["json"]
    assert "scenario" in proc.stdout and "target" in proc.stdout
    assert out["mode"] == "quick" and out["seed"] == 12
    assert {f["scenario"] for f in out["figures"]} == set(CHEAP)
    assert ("crash", "scenario ran") not in quick["figures"], proc.stderr[-4000:]
    for f in out["figures"]:
        assert set(f) >= {"scenario", "figure", "value", "target", "ok", "detail", "known_bug"}
        assert isinstance(f["value"], int | float) and math.isfinite(f["value"]), f
        assert f["ok"] is None or f["ok"] == _on_target(f), f
    missed = [f for f in out["figures"] if f["ok"] is False]
    assert out["ok"] == (not missed)
    assert proc.returncode == (1 if missed else 0), proc.stderr[-4000:]
    for key in TARGETED:
        assert key in quick["figures"], (key, proc.stderr[-4000:])


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("key", [
    pytest.param(k, marks=pytest.mark.xfail(reason=XFAIL[k], strict=False)) if k in XFAIL else k for k in TARGETED
], ids=lambda k: f"{k[0]}:{k[1]}")
def test_figure_on_target(quick: dict[str, Any], key: tuple[str, str]) -> None:
    f = quick["figures"].get(key)
    assert f is not None, quick["proc"].stderr[-4000:]
    assert f["ok"] is True, f


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_schemathesis_finds_no_5xx() -> None:
    proc = run_faults("--quick", "--only", "schemathesis", "--seed", "12", timeout=540)
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    figures = {f["figure"]: f for f in out["figures"]}
    assert figures["requests"]["value"] > 100, proc.stderr[-4000:]
    assert figures["5xx"]["value"] == 0, figures["5xx"]
    assert figures["hub crashes"]["value"] == 0


def _on_target(f: dict[str, Any]) -> bool:
    op, t, v = f["target"]["op"], f["target"]["value"], f["value"]
    return bool({"==": v == t, "<=": v <= t, ">=": v >= t}[op])


# -- fast: the options and the detector ----------------------------------------------------------------


def test_unknown_scenario_is_refused_with_the_list() -> None:
    proc = run_faults("--only", "crash,nope", timeout=60)
    assert proc.returncode == 2
    assert "unknown scenario nope" in proc.stderr and all(name in proc.stderr for name in ALL)


def test_soak_minutes_must_be_positive() -> None:
    proc = run_faults("--soak-minutes", "0", timeout=60)
    assert proc.returncode == 2 and "minutes must be > 0" in proc.stderr


def test_config_text_replaces_keys_and_refuses_unknown_ones() -> None:
    text = config_text(**{"sla.within.normal": {"ack": "2"}, "sla.ladder.ack#2": {"after_s": "2"}})
    assert "[sla.within.normal]\nack = 2\n" in text
    with pytest.raises(RuntimeError, match="no such keys"):
        config_text(realtime={"no_such_key": "1"})


def test_the_detector_sees_a_lost_a_repeated_and_a_late_event() -> None:
    op = {"kind": "operator", "township_id": 1, "target": None}
    police = {"kind": "liaison", "township_id": 1, "target": "police"}
    events = {1: [(1, "c1", ["police"], 1000.0), (2, "c1", ["police"], 1000.0), (3, "c1", ["police"], 1000.0),
                  (4, "c2", ["fire"], 1000.0)]}
    reports = [
        {"seen": {1: [(1, 1010.0), (2, 1015.0), (3, 1020.0)]}, "dups": 1, "reordered": 0, "resyncs": {},
         "connections": 2, "caught": [1500.0], "drops": [(1200.0, 1006)], "errors": {}},
        {"seen": {1: [(1, 1005.0), (2, 1006.0), (3, 1900.0)]}, "dups": 0, "reordered": 0, "resyncs": {},
         "connections": 1, "caught": [], "drops": [], "errors": {}},
    ]
    d = analyse([op, police], reports, events, {"c1", "c2"}, t_ref_ms=1100.0, heads_ref={1: 3}, fault_ms=1150.0)
    assert d.lost_calls == 1  # c2: the operator never got seq 4 (the police liaison may not see it)
    assert d.missing_events == 1 and d.expected_events == 7
    assert d.duplicated == 1 and d.reconnects == 1
    assert d.gapless_s == pytest.approx(0.8)  # the liaison's seq 3 at 1900 ms, 800 ms after the reference
