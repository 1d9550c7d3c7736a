"""``./scripts/faults [--quick] [--only NAME[,NAME]] [--soak-minutes N]``: run the fault scenarios, print one
table (scenario, figure, value, target, ok), then one JSON line; exit 1 when any target is missed.

Everything runs on 127.0.0.1 against an embedded PostgreSQL in a temporary folder, and everything started is
stopped at the end, on failure and on Ctrl-C. What each figure measures: docs/FAULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import random
import signal
import sys
import time
import traceback
from pathlib import Path

from scripts.bench_lib.procs import raise_nofile
from scripts.faults_lib.harness import Env, Figure, log
from scripts.faults_lib.scenarios import ALL, FULL, QUICK, SCENARIOS


def fmt(v: float) -> str:
    if math.isnan(v):
        return "n/a"
    if math.isinf(v):
        return "never"
    if v == int(v) and abs(v) < 1e15:
        return f"{int(v):,}"
    return f"{v:,.2f}" if abs(v) >= 1 else f"{v:.3f}"


def table(figures: list[Figure]) -> str:
    rows = [("scenario", "figure", "value", "target", "ok", "detail")]
    for f in figures:
        tgt = "report" if f.target is None else f"{f.target[0]} {fmt(f.target[1])}"
        ok = "" if f.ok is None else ("ok" if f.ok else ("MISS*" if f.blocked else "MISS"))
        rows.append((f.scenario, f.name, fmt(f.value), tgt, ok, f.detail))
    w = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = []
    for i, r in enumerate(rows):
        lines.append(f"{r[0]:<{w[0]}}  {r[1]:<{w[1]}}  {r[2]:>{w[2]}}  {r[3]:>{w[3]}}  {r[4]:<{w[4]}}  {r[5]}")
        if i == 0:
            lines.append("-" * min(160, sum(w) + 40))
    notes = sorted({f.blocked for f in figures if f.blocked and f.ok is False})
    lines += [f"* {n}" for n in notes]
    return "\n".join(lines)


def parse_only(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    bad = [n for n in names if n not in ALL]
    if bad or not names:
        raise argparse.ArgumentTypeError(f"unknown scenario {', '.join(bad) or '(none)'}; choose from {', '.join(ALL)}")
    return names


def positive_minutes(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of minutes: {text!r}") from None
    if not 0 < v <= 24 * 60:
        raise argparse.ArgumentTypeError("minutes must be > 0 and at most 1440")
    return v


async def main_async(args: argparse.Namespace) -> int:
    raise_nofile()
    sizes = QUICK if args.quick else FULL
    if args.soak_minutes is not None:
        import dataclasses

        sizes = dataclasses.replace(sizes, soak_s=args.soak_minutes * 60)
    names = args.only or list(ALL)
    seed = args.seed if args.seed is not None else random.randrange(1, 2**31)
    log(f"{'quick' if args.quick else 'full'} sizes; scenarios: {', '.join(names)}; seed {seed}")
    env = Env(args.keep)
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, lambda: task.cancel() if task else None)
    t0 = time.monotonic()
    failed: dict[str, str] = {}
    interrupted = False
    try:
        await env.setup()
        for name in names:
            log(f"--- {name}")
            t = time.monotonic()
            try:
                await SCENARIOS[name](env, sizes, seed)
            except (Exception, TimeoutError) as exc:  # one scenario failing still reports the others
                failed[name] = f"{type(exc).__name__}: {exc}"
                log(f"!!! {name} failed: {failed[name]}\n{traceback.format_exc()}")
                env.figure(name, "scenario ran", 0, ("==", 1), failed[name][:120])
                for w in list(env.workers):
                    env.stop_worker(w)
                for h in list(env.hubs):
                    env.stop_hub(h)
                env.ensure_pg()  # a scenario that failed while PostgreSQL was stopped must not take the rest
            log(f"--- {name} took {time.monotonic() - t:.0f} s")
    except asyncio.CancelledError:
        interrupted = True
    finally:
        log(f"tearing down (clients, hubs, PostgreSQL){'; keeping ' + str(env.root) if args.keep else ''}")
        with contextlib.suppress(Exception):
            await env.teardown()
    if interrupted:
        log("interrupted: the figures so far")
        print(table(env.figures), flush=True)
        return 130
    print(table(env.figures), flush=True)
    missed = [f for f in env.figures if f.ok is False]
    print(f"{'quick' if args.quick else 'full'} sizes, seed {seed}, {time.monotonic() - t0:.0f} s: "
          f"{len(env.figures) - len(missed)} of {len(env.figures)} figures on target"
          + (f"; {len(missed)} missed" if missed else ""), flush=True)
    out = {"mode": "quick" if args.quick else "full", "seed": seed, "ok": not missed,
           "figures": [{"scenario": f.scenario, "figure": f.name, "value": None if math.isnan(f.value) else f.value,
                        "target": None if f.target is None else {"op": f.target[0], "value": f.target[1]},
                        "ok": f.ok, "detail": f.detail, "known_bug": f.blocked or None} for f in env.figures],
           "details": env.details}
    if args.output:
        Path(args.output).write_text(json.dumps(_finite(out), indent=2, ensure_ascii=False, default=str) + "\n",  # noqa: ASYNC240
                                     encoding="utf-8")
    print(json.dumps(_finite(out), ensure_ascii=False, default=str), flush=True)
    return 1 if missed else 0


def _finite(obj: object) -> object:
    """NaN and infinities as null: the JSON line stays strict JSON."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj


def main() -> int:
    parser = argparse.ArgumentParser(prog="faults", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="small sizes: 100 sockets at 20 calls/s, a 3 s outage, 5,000 fuzzed frames, a bounded "
                             "schemathesis run, a 10 s soak")
    parser.add_argument("--only", type=parse_only, metavar="NAME[,NAME]",
                        help=f"run only these scenarios, in this order: {', '.join(ALL)}")
    parser.add_argument("--soak-minutes", type=positive_minutes, metavar="N",
                        help="length of the soak (default 10 minutes; 10 s with --quick)")
    parser.add_argument("--seed", type=int, help="seed of the fuzzer and the load (default: random, printed)")
    parser.add_argument("--output", metavar="FILE", help="also write the JSON (indented, with details) here")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (hub logs, reports, data)")
    args = parser.parse_args()
    import uvloop

    return uvloop.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
