"""``python -m scripts.bench_lib.profiler OUT -- serve ARGS…``: ``xianghu serve`` with a built-in CPU profiler.

A daemon thread samples the main thread's Python stack (``sys._current_frames``) up to ``RATE_HZ`` times a second
while the file ``OUT.on`` exists (the bench creates it when the profiled scenario starts, or before the spawn when
the scenario starts the hub), and writes what it saw when ``OUT.on`` is removed. A thread gets the GIL when the
main thread lets it go: mostly when the event loop waits for I/O, which would put nearly every sample there. So the
profiled hub runs with a 50 µs switch interval: a waiting sampler makes the main thread drop the GIL at its next
bytecode boundary, and samples land where the main thread is, in proportion to the time it spends there. A sample
whose top frame is the event loop's own (waiting for I/O, or C code it calls without a Python frame: uvloop's
transports, asyncpg's protocol parsing) counts as ``LOOP``. The main thread's CPU time over the window is read
from ``time.pthread_getcpuclockid`` and printed beside.

- ``OUT.collapsed``: one line per distinct stack, ``frame;frame;… samples`` (the format flame-graph tools read);
- ``OUT.txt``: the top functions by self and by inclusive share of the samples, of all and of the busy ones.

Sampling costs the hub a little CPU (the thread takes the GIL up to RATE_HZ times a second); the bench's figures
are taken from runs without ``--profile``. py-spy is not needed.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import Counter
from pathlib import Path
from types import FrameType

RATE_HZ = 200.0
SWITCH_INTERVAL_S = 0.00005
LOOP = "[the event loop: waiting for I/O, or C code it calls (uvloop transports, asyncpg's protocol)]"


def _stack(frame: FrameType | None) -> tuple[str, ...]:
    out: list[str] = []
    while frame is not None:
        code = frame.f_code
        out.append(f"{code.co_name} ({Path(code.co_filename).name}:{code.co_firstlineno})")
        frame = frame.f_back
    out.reverse()
    return tuple(out)


def write_report(out: Path, stacks: Counter[tuple[str, ...]], seconds: float, cpu_s: float) -> None:
    """``stacks``: stack → samples."""
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
    busy = max(1, total - own[LOOP])
    lines = [f"{total} samples in {seconds:.1f} s (up to {RATE_HZ:g} Hz) of the hub's main thread, which used "
             f"{cpu_s:.2f} s of CPU meanwhile; {100 * own[LOOP] / max(1, total):.1f}% of the samples in the event "
             "loop itself; 'busy %' is the share of the other samples", "",
             "busy %  all %   function", "------  ------  --------"]
    lines += [f"{100 * n / busy:6.1f}  {100 * n / max(1, total):6.1f}  {fn}"
              for fn, n in own.most_common(41) if fn != LOOP][:40]
    lines += ["", "inclusive", "busy %  all %   function", "------  ------  --------"]
    lines += [f"{100 * min(n, busy) / busy:6.1f}  {100 * n / max(1, total):6.1f}  {fn}"
              for fn, n in inclusive.most_common(100) if n < 0.95 * total and fn != LOOP][:60]
    out.with_suffix(".txt").write_text("\n".join(lines) + "\n", encoding="utf-8")


def sampler(out: Path, main_id: int) -> None:
    """Forever: wait for ``OUT.on``; sample while it exists; write the report when it is removed."""
    switch = out.with_suffix(".on")
    clock = time.pthread_getcpuclockid(main_id)
    period = 1.0 / RATE_HZ
    while True:
        while not switch.exists():
            time.sleep(0.05)
        stacks: Counter[tuple[str, ...]] = Counter()
        t0, cpu0 = time.monotonic(), time.clock_gettime(clock)
        while switch.exists():
            frame = sys._current_frames().get(main_id)
            stack = _stack(frame)
            del frame
            if stack and stack[-1].startswith("run (runners.py"):
                stack = (*stack, LOOP)
            stacks[stack] += 1
            time.sleep(period)
        write_report(out, stacks, time.monotonic() - t0, time.clock_gettime(clock) - cpu0)


def main() -> None:
    out = Path(sys.argv[1])
    if sys.argv[2] != "--":
        raise SystemExit("usage: python -m scripts.bench_lib.profiler OUT -- serve ARGS…")
    main_id = threading.main_thread().ident
    assert main_id is not None
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    threading.Thread(target=sampler, args=(out, main_id), daemon=True, name="bench-profiler").start()
    from dispatch.cli.command import main as xianghu

    sys.argv = ["xianghu", *sys.argv[3:]]
    xianghu()


if __name__ == "__main__":
    main()
