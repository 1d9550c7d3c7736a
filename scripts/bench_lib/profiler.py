"""``python -m scripts.bench_lib.profiler OUT -- serve ARGS…``: ``xianghu serve`` with a built-in sampling profiler.

A daemon thread samples the main thread's Python stack (``sys._current_frames``) every ``1/RATE`` s while the file
``OUT.on`` exists, and writes what it saw when ``OUT.on`` is removed (or at exit):

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
    lines = [f"{total} samples in {seconds:.1f} s at {RATE_HZ:g} Hz (the main thread; idle = the event loop's select)",
             "", "self %   function", "------   --------"]
    lines += [f"{100 * n / max(1, total):6.1f}   {fn}" for fn, n in own.most_common(40)]
    lines += ["", "incl %   function", "------   --------"]
    lines += [f"{100 * n / max(1, total):6.1f}   {fn}" for fn, n in inclusive.most_common(60)]
    out.with_suffix(".txt").write_text("\n".join(lines) + "\n", encoding="utf-8")


def sampler(out: Path, main_id: int) -> None:
    switch = out.with_suffix(".on")
    stacks: Counter[tuple[str, ...]] = Counter()
    t0 = time.monotonic()
    period = 1.0 / RATE_HZ
    while switch.exists():
        frame = sys._current_frames().get(main_id)
        stacks[_stack(frame)] += 1
        del frame
        time.sleep(period)
    write_report(out, stacks, time.monotonic() - t0)


def main() -> None:
    out = Path(sys.argv[1])
    if sys.argv[2] != "--":
        raise SystemExit("usage: python -m scripts.bench_lib.profiler OUT -- serve ARGS…")
    out.with_suffix(".on").touch()
    threading.Thread(target=sampler, args=(out, threading.main_thread().ident), daemon=True,
                     name="bench-profiler").start()
    from dispatch.cli.command import main as xianghu

    sys.argv = ["xianghu", *sys.argv[3:]]
    xianghu()


if __name__ == "__main__":
    main()
