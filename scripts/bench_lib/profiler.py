"""``python -m scripts.bench_lib.profiler OUT -- serve ARGS…``: ``xianghu serve`` with a built-in sampling profiler.

A daemon thread samples the main thread's Python stack (``sys._current_frames``) every ``1/RATE_HZ`` s while the
file ``OUT.on`` exists (the bench creates it when the profiled scenario starts, or before the spawn when the
scenario starts the hub), and writes what it saw when ``OUT.on`` is removed:

- ``OUT.collapsed``: one line per distinct stack, ``frame;frame;… count`` (the format flame-graph tools read);
- ``OUT.txt``: the top functions by self and by inclusive share of the samples.

Sampling from a thread costs the hub a little CPU (the thread takes the GIL ~RATE times a second); the bench's
figures are taken from runs without ``--profile``. py-spy is not needed.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import Counter
from pathlib import Path
from types import FrameType

RATE_HZ = 200.0
IDLE = "[the event loop: waiting for I/O, or in C code such as uvloop's transports]"


def _stack(frame: FrameType | None) -> tuple[str, ...]:
    out: list[str] = []
    while frame is not None:
        code = frame.f_code
        out.append(f"{code.co_name} ({Path(code.co_filename).name}:{code.co_firstlineno})")
        frame = frame.f_back
    out.reverse()
    return tuple(out)


def write_report(out: Path, stacks: Counter[tuple[str, ...]], seconds: float) -> None:
    total = sum(stacks.values())
    with out.with_suffix(".collapsed").open("w", encoding="utf-8") as f:
        for stack, n in stacks.most_common():
            f.write(";".join(stack) + f" {n}\n")
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    for stack, n in stacks.items():
        if stack:
            own[stack[-1]] += n
        for fn in set(stack):
            inclusive[fn] += n
    busy = max(1, total - own[IDLE])
    lines = [f"{total} samples in {seconds:.1f} s at up to {RATE_HZ:g} Hz of the hub's main thread; "
             f"{100 * own[IDLE] / max(1, total):.1f}% idle; 'busy %' is the share of the other samples", "",
             "busy %   self %   function", "------   ------   --------"]
    lines += [f"{100 * n / busy:6.1f}   {100 * n / max(1, total):6.1f}   {fn}"
              for fn, n in own.most_common(41) if fn != IDLE][:40]
    lines += ["", "busy %   incl %   function", "------   ------   --------"]
    lines += [f"{100 * min(n, busy) / busy:6.1f}   {100 * n / max(1, total):6.1f}   {fn}"
              for fn, n in inclusive.most_common(80) if n < total and fn != IDLE][:60]
    out.with_suffix(".txt").write_text("\n".join(lines) + "\n", encoding="utf-8")


def sampler(out: Path, main_id: int) -> None:
    """Forever: wait for ``OUT.on``; sample while it exists; write the report when it is removed."""
    switch = out.with_suffix(".on")
    period = 1.0 / RATE_HZ
    while True:
        while not switch.exists():
            time.sleep(0.05)
        stacks: Counter[tuple[str, ...]] = Counter()
        t0 = time.monotonic()
        while switch.exists():
            frame = sys._current_frames().get(main_id)
            stack = _stack(frame)
            del frame
            if stack and stack[-1].startswith("run (runners.py"):
                stack = (*stack, IDLE)
            stacks[stack] += 1
            time.sleep(period)
        write_report(out, stacks, time.monotonic() - t0)


def main() -> None:
    out = Path(sys.argv[1])
    if sys.argv[2] != "--":
        raise SystemExit("usage: python -m scripts.bench_lib.profiler OUT -- serve ARGS…")
    threading.Thread(target=sampler, args=(out, threading.main_thread().ident), daemon=True,
                     name="bench-profiler").start()
    from dispatch.cli.command import main as xianghu

    sys.argv = ["xianghu", *sys.argv[3:]]
    xianghu()


if __name__ == "__main__":
    main()
