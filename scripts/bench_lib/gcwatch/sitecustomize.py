"""Loaded by the bench's hubs (on their PYTHONPATH, never the product's): records every pause of the cyclic
garbage collector of 1 ms or more — wall time at its end, generation, milliseconds, the thread's CPU
milliseconds in it (less than the pause: the process was preempted), objects collected — into the file named by
``XIANGHU_BENCH_GC_LOG``, so each scenario can say how much of its tail the collector's pauses explain."""

from __future__ import annotations

import gc
import os
import time
from typing import Any

_path = os.environ.get("XIANGHU_BENCH_GC_LOG")
if _path:
    _out = open(_path, "a", buffering=1, encoding="utf-8")  # open for the process's life
    _started = [0.0, 0.0]

    def _watch(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            _started[0] = time.perf_counter()
            _started[1] = time.thread_time()
            return
        ms = (time.perf_counter() - _started[0]) * 1000
        if ms >= 1.0:
            cpu = (time.thread_time() - _started[1]) * 1000
            _out.write(f"{time.time():.3f} {info['generation']} {ms:.1f} {cpu:.1f} {info['collected']}\n")

    gc.callbacks.append(_watch)
