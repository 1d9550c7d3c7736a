"""Generator processes and the small message channel the orchestrator drives them with."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import multiprocessing as mp
import os
import resource
import sys
import time
import traceback
from collections.abc import Sequence
from typing import Any


def raise_nofile() -> int:
    """Raise the soft open-file limit to the hard limit (10,000 sockets need it); return the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 1_048_576
    if soft < want:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class Chan:
    """Both ends of a ``multiprocessing`` pipe, awaitable from an asyncio loop (bounded waits only)."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def send(self, *msg: Any) -> None:
        self.conn.send(msg)

    async def recv(self, timeout: float) -> tuple[Any, ...]:
        # Polled, not registered with the loop: uvloop would make the pipe non-blocking, and a large
        # message would then fail half-read.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        delay = 0.001
        while not self.conn.poll():
            if loop.time() >= deadline:
                raise TimeoutError("no message from the other process in time")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.01)
        msg: tuple[Any, ...] = self.conn.recv()
        if msg and msg[0] == "error":
            raise RuntimeError(f"generator process failed: {msg[1]}")
        return msg


def _child(module: str, function: str, conn: Any, args: Sequence[Any]) -> None:
    raise_nofile()
    import uvloop

    fn = getattr(importlib.import_module(module), function)
    chan = Chan(conn)
    try:
        uvloop.run(fn(chan, *args))
    except BaseException as exc:  # reported to the orchestrator, which stops the run
        with contextlib.suppress(Exception):
            conn.send(("error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"))
        raise SystemExit(1) from None


class Worker:
    """One generator process running ``module.function(chan, *args)`` under uvloop."""

    def __init__(self, module: str, function: str, *args: Any, name: str = "gen") -> None:
        ctx = mp.get_context("spawn")
        self.chan_conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_child, args=(module, function, child, args), name=name, daemon=True)
        self.proc.start()
        child.close()
        self.chan = Chan(self.chan_conn)
        self.name = name

    @property
    def pid(self) -> int:
        assert self.proc.pid is not None
        return self.proc.pid

    def send(self, *msg: Any) -> None:
        self.chan.send(*msg)

    async def recv(self, timeout: float = 120.0) -> tuple[Any, ...]:
        if not self.proc.is_alive() and not self.chan_conn.poll():
            raise RuntimeError(f"generator process {self.name} exited with {self.proc.exitcode}")
        return await self.chan.recv(timeout)

    async def call(self, *msg: Any, timeout: float = 120.0) -> tuple[Any, ...]:
        self.send(*msg)
        return await self.recv(timeout)

    def stop(self, timeout: float = 15.0) -> None:
        """Ask it to finish (it closes its sockets), then make sure the process is gone."""
        if self.proc.is_alive():
            with contextlib.suppress(Exception):
                self.send("exit")
            self.proc.join(timeout)
        if self.proc.is_alive():
            self.proc.terminate()
            self.proc.join(5)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(5)
        with contextlib.suppress(Exception):
            self.chan_conn.close()


async def gather_calls(workers: Sequence[Worker], msg: tuple[Any, ...], timeout: float) -> list[tuple[Any, ...]]:
    for w in workers:
        w.send(*msg)
    return list(await asyncio.gather(*(w.recv(timeout) for w in workers)))


def pct(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100); nan for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, int(-(-p * len(ordered) // 100)) - 1))
    return float(ordered[k])


def cpu_seconds(pid: int) -> float:
    """User+system CPU seconds of a process (and its reaped children) from /proc."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks
    except (OSError, IndexError, ValueError):
        return float("nan")


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0
