"""``./scripts/bench [--quick]``: run every scenario once, print a table, end with one JSON line.

Everything runs on 127.0.0.1. The hub is ``xianghu serve`` in its own process (uvicorn, uvloop, wsproto) on an
embedded PostgreSQL that this script starts in a temporary folder and removes at the end. Load comes from
separate generator processes (``scripts/bench_lib/gen.py``). What each figure measures: docs/PERFORMANCE.md.
"""

# ruff: noqa: ASYNC220, ASYNC240  (a bench orchestrator: short blocking steps are fine)
from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import datetime as dt
import json
import math
import os
import platform
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import asyncpg

from dispatch.store.pool import with_database
from scripts.bench_lib.procs import Worker, cpu_seconds, gather_calls, log, pct, raise_nofile, rss_bytes

ROOT = Path(__file__).resolve().parents[2]
XIANGHU = str(ROOT / ".venv" / "bin" / "xianghu")
GEN = "scripts.bench_lib.gen"
DEPARTMENTS = ("enforcement", "police", "justice", "market", "land", "transport", "fire")

# key -> (comparison, target); None: reported, no target.
TARGETS: dict[str, tuple[str, float] | None] = {
    "fanout_p99_ms": ("<=", 30),
    "fanout_ratio": (">=", 0.8),
    "calls_per_s": (">=", 1000),
    "commit_ceiling_per_s": None,
    "connections": (">=", 10_000),
    "kb_per_conn": ("<=", 30),
    "escalation_late_p99_ms": ("<=", 100),
    "rearm_100k_s": ("<=", 2),
    "resume_10k_s": ("<=", 1),
    "scorecards_month_s": ("<=", 0.5),
    "scorecards_year_s": ("<=", 2),
    "msgpack_json_ratio": ("<=", 0.6),
}


@dataclasses.dataclass(frozen=True)
class Sizes:
    idle_conns: int  # connections / kb_per_conn
    idle_procs: int
    fanout_idle: int  # idle clients kept during the fan-out latency run
    p99_townships: int
    p99_liaisons: int  # liaisons per department per township (HubClients)
    p99_rate: float  # calls/s during the latency run
    p99_seconds: float
    ratio_clients: int
    ratio_procs: int
    ratio_calls: int  # calls → 3 events each, to every client
    calls_seconds: float
    calls_concurrency: int  # requests in flight per creator process
    creators: int
    resume_events: int
    sla_deadlines: int
    sla_window_s: float
    sla_window_n: int
    sla_overdue: int
    score_months: int  # months of simulated county history the scorecards are timed on
    score_scale: float  # the history's volume (scale 2, 12 months: about 1,000,000 events)
    ceiling_seconds: float


FULL = Sizes(idle_conns=10_000, idle_procs=4, fanout_idle=5_000, p99_townships=15, p99_liaisons=2, p99_rate=50,
             p99_seconds=20, ratio_clients=2_000, ratio_procs=2, ratio_calls=50, calls_seconds=30,
             calls_concurrency=24, creators=2, resume_events=10_000, sla_deadlines=100_000, sla_window_s=30,
             sla_window_n=3_000, sla_overdue=200, score_months=12, score_scale=2.0, ceiling_seconds=5)
QUICK = Sizes(idle_conns=400, idle_procs=2, fanout_idle=200, p99_townships=3, p99_liaisons=1, p99_rate=20,
              p99_seconds=3, ratio_clients=200, ratio_procs=2, ratio_calls=10, calls_seconds=4,
              calls_concurrency=8, creators=1, resume_events=600, sla_deadlines=5_000, sla_window_s=5,
              sla_window_n=200, sla_overdue=20, score_months=2, score_scale=0.3, ceiling_seconds=1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def fmt(v: float) -> str:
    if isinstance(v, float) and math.isnan(v):
        return "n/a"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    if abs(v) >= 1:
        return f"{v:,.2f}"
    return f"{v:.3f}"


BENCH_SOCKETS_PER_USER = 100_000


class Hub:
    """``xianghu serve`` as a separate process, with the open-file limit raised to the hard limit."""

    def __init__(self, dsn: str, logdir: Path, name: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}/ws"
        env = {k: v for k, v in os.environ.items() if k not in ("XIANGHU_TEST_CLOCK", "XIANGHU_CONFIG")}
        env["DATABASE_URL"] = dsn
        self.log_path = logdir / f"hub-{name}.log"
        self._log = self.log_path.open("wb")
        # The generators hold thousands of sockets on a few accounts: lift the per-account cap (a phone's
        # limit, not a hub's), everything else as shipped.
        config = logdir / f"hub-{name}.toml"
        shipped = (ROOT / "dispatch" / "core" / "default.toml").read_text(encoding="utf-8")
        lifted = shipped.replace("\nmax_sockets_per_user = 5 ", f"\nmax_sockets_per_user = {BENCH_SOCKETS_PER_USER} ")
        if lifted == shipped:
            raise RuntimeError("default.toml has no `max_sockets_per_user = 5` line to lift for the bench")
        config.write_text(lifted, encoding="utf-8")
        self.t_spawn = time.time()
        self.proc = subprocess.Popen([XIANGHU, "serve", "--host", "127.0.0.1", "--port", str(self.port),
                                      "--config", str(config)], env=env,
                                     stdout=self._log, stderr=subprocess.STDOUT, preexec_fn=raise_nofile,
                                     start_new_session=True)
        self.t_ready = float("nan")

    async def ready(self, timeout: float = 60) -> float:
        import httpx

        end = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=2) as http:
            while time.monotonic() < end:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"the hub exited ({self.proc.returncode}); see {self.log_path}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get(self.url + "/readyz")).status_code == 200:
                        self.t_ready = time.time()
                        return self.t_ready - self.t_spawn
                await asyncio.sleep(0.02)
        raise TimeoutError("the hub did not become ready")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.terminate()
                try:
                    self.proc.wait(10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(10)
        self._log.close()


def pg_cpu(pgdata: Path) -> float:
    """CPU seconds of the PostgreSQL server and its live backends."""
    import psutil

    try:
        pid = int((pgdata / "postmaster.pid").read_text().split()[0])
        main = psutil.Process(pid)
        total = 0.0
        for p in [main, *main.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                t = p.cpu_times()
                total += t.user + t.system
        return total
    except (OSError, ValueError, psutil.Error):
        return float("nan")


class Bench:
    def __init__(self, sizes: Sizes, quick: bool, keep: bool, profile: str | None = None,
                 only: str | None = None) -> None:
        self.profile_dir = Path(profile).resolve() if profile else None
        self.only = only
        self.s = sizes
        self.quick = quick
        self.keep = keep
        self.root = Path(tempfile.mkdtemp(prefix="xianghu-bench-"))
        self.results: dict[str, float] = {}
        self.notes: dict[str, str] = {}
        self.extra: dict[str, Any] = {}
        self.workers: list[Worker] = []
        self.hubs: list[Hub] = []
        self.pg: Any = None
        self.pgdata = self.root / "pgdata"

    # -- plumbing ---------------------------------------------------------------------------------------

    def worker(self, fn: str, *args: Any, name: str = "gen") -> Worker:
        w = Worker(GEN, fn, *args, name=name)
        self.workers.append(w)
        return w

    def stop_workers(self, ws: list[Worker]) -> None:
        for w in ws:
            w.stop()
            if w in self.workers:
                self.workers.remove(w)

    @contextlib.asynccontextmanager
    async def profiled(self, pid: int, name: str) -> Any:
        """With --profile DIR: py-spy samples ``pid`` meanwhile (collapsed stacks in DIR/name.txt)."""
        spy = ROOT / ".venv" / "bin" / "py-spy"
        if self.profile_dir is None or not spy.exists():
            yield
            return
        self.profile_dir.mkdir(parents=True, exist_ok=True)
        proc = subprocess.Popen([str(spy), "record", "--pid", str(pid), "--format", "raw", "--rate", "250",
                                 "--output", str(self.profile_dir / f"{name}.txt"), "--nonblocking"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        await asyncio.sleep(0.5)
        try:
            yield
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    async def settle(self, pid: int, what: str, limit_s: float = 180.0) -> float:
        """Wait until the hub is idle again (< 15% of a core over half a second); return the wait."""
        t0 = time.monotonic()
        prev = cpu_seconds(pid)
        while time.monotonic() - t0 < limit_s:
            await asyncio.sleep(0.5)
            now = cpu_seconds(pid)
            if now - prev < 0.075:
                break
            prev = now
        waited = time.monotonic() - t0
        if waited > 2:
            log(f"   hub busy for {waited:.1f} s after {what}")
        return waited

    def record(self, key: str, value: float, note: str = "") -> None:
        self.results[key] = float(value)
        if note:
            self.notes[key] = note
        target = TARGETS.get(key)
        tgt = "report" if target is None else f"{target[0]} {fmt(target[1])}"
        log(f"==> {key} = {fmt(value)}   (target {tgt}) {note}")

    async def start_pg(self) -> None:
        from dispatch.store.embedded import EmbeddedPostgres

        log(f"starting embedded PostgreSQL in {self.pgdata}")
        self.pg = EmbeddedPostgres(self.pgdata)  # durable, as `xianghu serve` runs it
        self.pg._initdb()
        with (self.pgdata / "postgresql.conf").open("a", encoding="utf-8") as conf:
            # Bench-only: commit timestamps, so escalation lateness is measured to the commit.
            conf.write("track_commit_timestamp = on\n")
        self.admin_dsn = self.pg.start()
        admin = await asyncpg.connect(self.admin_dsn)
        try:
            await admin.execute("create database xianghu")
            self.pg_version = await admin.fetchval("show server_version")
        finally:
            await admin.close()
        self.dsn = with_database(self.admin_dsn, "xianghu")

    def cli(self, *args: str, dsn: str) -> None:
        env = {**os.environ, "DATABASE_URL": dsn}
        out = subprocess.run([XIANGHU, *args], env=env, capture_output=True, text=True, timeout=300)
        if out.returncode != 0:
            raise RuntimeError(f"xianghu {' '.join(args)} failed: {out.stderr[-2000:]}")

    async def mint_tokens(self) -> None:
        """Bearer tokens for the demo accounts, written as sessions rows (a login per socket is not needed,
        and each login costs ~150 ms of argon2 on the hub's loop). One real login is done through the API."""
        from dispatch.store.accounts import token_hash

        conn = await asyncpg.connect(self.dsn)
        try:
            rows = await conn.fetch("""select u.id, u.username, u.role, u.township_id, u.department, u.unit_id,
                                              t.code from users u left join townships t on t.id = u.township_id""")
            now = dt.datetime.now(dt.UTC)
            self.tokens: dict[str, str] = {}
            recs = []
            for r in rows:
                tok = secrets.token_urlsafe(32)
                self.tokens[r["username"]] = tok
                recs.append((token_hash(tok), r["id"], "token", now, now + dt.timedelta(days=1)))
            await conn.executemany("insert into sessions (token_hash, user_id, kind, created_at, expires_at)"
                                   " values ($1, $2, $3, $4, $5)", recs)
            rows = await conn.fetch("select id, code from townships order by id")
            self.townships = [(r["id"], r["code"]) for r in rows]
        finally:
            await conn.close()
        self.code = dict(self.townships)
        self.tids = [t for t, _ in self.townships]
        self.op_tokens = {tid: self.tokens[f"op1.{code}"] for tid, code in self.townships}
        self.unit_tokens = [self.tokens[f"unit{i}.{code}"] for _, code in self.townships for i in (1, 2, 3)]

    # -- the run -----------------------------------------------------------------------------------------

    async def run(self) -> dict[str, float]:
        t0 = time.monotonic()
        await self.start_pg()
        log("xianghu migrate && xianghu seed-demo")
        self.cli("migrate", dsn=self.dsn)
        self.cli("seed-demo", dsn=self.dsn)
        admin = await asyncpg.connect(self.admin_dsn)
        try:  # a copy of the seeded county for the SLA run; an empty database for the simulated history
            await admin.execute("create database bench_sla template xianghu")
            await admin.execute("create database bench_scores")
        finally:
            await admin.close()
        if self.only == "scorecards":
            await self.scorecards()
            return self.results
        await self.mint_tokens()

        hub = Hub(self.dsn, self.root, "main")
        self.hubs.append(hub)
        log(f"hub ready in {await hub.ready():.2f} s (pid {hub.pid}, {hub.url})")
        from dispatch.cli.client import login

        self.tokens["op1.yiqiao"] = self.op_tokens[self.tid_of("yiqiao")] = await login(
            hub.url, "op1.yiqiao", "xianghu-demo")
        self.creator_w = self.worker("creator", hub.url, self.op_tokens, name="creator")
        await self.creator_w.recv()
        out = await self.creator_w.call("count", {"n": 20, "tids": self.tids, "pairs": [("police", "fire")],
                                                  "concurrency": 4})
        if len(out[1]) != 20:
            raise RuntimeError(f"warm-up calls failed: {out[2]}")

        await self.connections(hub)
        await self.fanout_latency(hub)
        await self.fanout_ratio(hub)
        await self.calls_per_s(hub)
        await self.resume(hub)
        await self.msgpack_ratio()
        self.stop_workers(list(self.workers))
        hub.stop()
        self.hubs.remove(hub)
        await self.memory_no_deflate()
        await self.commit_ceiling()
        await self.sla()
        await self.scorecards()
        self.extra["bench_seconds"] = round(time.monotonic() - t0, 1)
        return self.results

    def tid_of(self, code: str) -> int:
        return next(t for t, c in self.townships if c == code)

    async def teardown(self) -> None:
        for w in list(self.workers):
            w.stop(5)
        self.workers.clear()
        for h in self.hubs:
            h.stop()
        self.hubs.clear()
        if self.pg is not None:
            with contextlib.suppress(Exception):
                self.pg.stop()
            self.pg = None
        if not self.keep:
            shutil.rmtree(self.root, ignore_errors=True)

    # -- scenarios -----------------------------------------------------------------------------------------

    async def idle_workers(self, url: str, n: int, procs: int, tokens: list[str], mode: str = "idle",
                           compression: str | None = "deflate") -> tuple[list[Worker], int]:
        per = [n // procs + (1 if i < n % procs else 0) for i in range(procs)]
        ws = []
        k = 0
        for i, m in enumerate(per):
            toks = [tokens[(k + j) % len(tokens)] for j in range(m)]
            k += m
            ws.append(self.worker("raw_sockets", url, toks, mode, compression, name=f"{mode}-{i}"))
        replies = await asyncio.gather(*(w.recv(timeout=400) for w in ws))
        caught = sum(r[1] for r in replies)
        failed = sum(r[2] for r in replies)
        if failed:
            errs: Counter[str] = Counter()
            for r in replies:
                errs.update(r[3])
            log(f"   {failed} sockets failed: {dict(errs)}")
        return ws, caught

    async def connections(self, hub: Hub) -> None:
        s = self.s
        log(f"[connections] warm-up, then {s.idle_conns:,} idle authenticated sockets in {s.idle_procs} processes")
        warm, _ = await self.idle_workers(hub.ws_url, 20, 1, self.unit_tokens)
        self.stop_workers(warm)
        await asyncio.sleep(1.0)
        base = rss_bytes(hub.pid)
        t0 = time.monotonic()
        cpu0 = cpu_seconds(hub.pid)
        ws, caught = await self.idle_workers(hub.ws_url, s.idle_conns, s.idle_procs, self.unit_tokens)
        took = time.monotonic() - t0
        await asyncio.sleep(3.0)  # let buffers settle
        statuses = await gather_calls(ws, ("status",), 30)
        held = sum(st[4] - sum(st[5].values()) for st in statuses)
        rss = rss_bytes(hub.pid)
        kb = (rss - base) / max(1, caught) / 1024
        self.extra["connect_rate_per_s"] = round(caught / took, 1)
        self.extra["hub_rss_mb_idle"] = round(rss / 2**20, 1)
        self.extra["hub_rss_mb_base"] = round(base / 2**20, 1)
        self.record("connections", min(caught, held),
                    f"({caught:,} welcomed+caught up, {held:,} still open; {took:.1f} s to connect, "
                    f"hub CPU {cpu_seconds(hub.pid) - cpu0:.1f} s)")
        self.record("kb_per_conn", kb, f"(hub RSS {base / 2**20:.0f} → {rss / 2**20:.0f} MiB)")
        # Keep `fanout_idle` of them for the fan-out latency run.
        keep = max(1, round(len(ws) * s.fanout_idle / max(1, s.idle_conns)))
        self.stop_workers(ws[keep:])
        self.extra["hub_busy_after_5000_disconnects_s"] = round(await self.settle(hub.pid, "the disconnects"), 1)
        self.idle_kept = ws[:keep]
        self.idle_kept_n = sum(st[1] for st in statuses[:keep])

    async def memory_no_deflate(self) -> None:
        """Diagnostic: memory per idle connection when clients do not offer permessage-deflate (fresh hub)."""
        n = min(self.s.idle_conns, 2_000)
        hub = Hub(self.dsn, self.root, "mem")
        self.hubs.append(hub)
        await hub.ready()
        warm, _ = await self.idle_workers(hub.ws_url, 20, 1, self.unit_tokens, compression=None)
        self.stop_workers(warm)
        await asyncio.sleep(1.0)
        base = rss_bytes(hub.pid)
        ws, caught = await self.idle_workers(hub.ws_url, n, 1, self.unit_tokens, compression=None)
        await asyncio.sleep(2.0)
        kb = (rss_bytes(hub.pid) - base) / max(1, caught) / 1024
        self.stop_workers(ws)
        hub.stop()
        self.hubs.remove(hub)
        self.extra["kb_per_conn_no_deflate"] = round(kb, 1)
        log(f"   (diagnostic) kb_per_conn without permessage-deflate = {kb:.1f} ({caught:,} connections)")

    async def fanout_latency(self, hub: Hub) -> None:
        s = self.s
        tids = self.tids[: s.p99_townships]
        socks = [(self.tokens[f"{dep}{n}.{self.code[tid]}"], f"{tid}:{dep}:{n}")
                 for tid in tids for dep in DEPARTMENTS for n in range(1, s.p99_liaisons + 1)]
        log(f"[fanout_p99] {len(socks)} liaison HubClients, {self.idle_kept_n:,} idle sockets, "
            f"{s.p99_rate:g} calls/s for {s.p99_seconds:g} s")
        procs = 2
        hw = [self.worker("hub_clients", hub.url, socks[i::procs], name=f"hubclients-{i}") for i in range(procs)]
        replies = await asyncio.gather(*(w.recv(timeout=400) for w in hw))
        await self.settle(hub.pid, "the HubClients connected")
        ok = sum(r[1] for r in replies)
        if ok != len(socks):
            log(f"   only {ok}/{len(socks)} HubClients caught up")
        pairs = [(a, b) for i, a in enumerate(DEPARTMENTS) for b in DEPARTMENTS[i + 1:]]
        async with self.profiled(hub.pid, "hub-p99"):
            out = await self.creator_w.call("paced", {"rate": s.p99_rate, "duration": s.p99_seconds, "tids": tids,
                                                      "pairs": pairs, "seed": 7}, timeout=s.p99_seconds + 120)
        created, errs = out[1], out[2]
        await asyncio.sleep(2.0)
        recs = [r for reply in await gather_calls(hw, ("collect",), 60) for r in reply[1]]
        arrivals: dict[str, dict[str, tuple[int, float]]] = {}
        for call_id, at, t_arr, label in recs:
            arrivals.setdefault(call_id, {})[label] = (at, t_arr)
        lat_commit, lat_return, missing = [], [], 0
        for call_id, tid, pair, _t_send, t_ret in created:
            want = [f"{tid}:{dep}:{n}" for dep in pair for n in range(1, s.p99_liaisons + 1)]
            got = arrivals.get(call_id, {})
            if any(w not in got for w in want):
                missing += 1
                continue
            at = min(got[w][0] for w in want)
            last = max(got[w][1] for w in want)
            lat_commit.append(last - at)
            lat_return.append(last - t_ret)
        p99 = pct(lat_commit, 99) if not missing else max(pct(lat_commit, 99), 10_000.0)
        self.extra["fanout_p50_ms"] = round(pct(lat_commit, 50), 1)
        self.extra["fanout_p99_after_api_return_ms"] = round(pct(lat_return, 99), 1)
        self.record("fanout_p99_ms", p99,
                    f"({len(lat_commit)} calls × {2 * s.p99_liaisons} liaison sockets, p50 {pct(lat_commit, 50):.1f}, "
                    f"max {max(lat_commit, default=float('nan')):.1f}; {missing} incomplete, errors {errs or 0})")
        self.stop_workers(hw)
        self.stop_workers(self.idle_kept)
        await self.settle(hub.pid, "the disconnects")

    async def fanout_ratio(self, hub: Hub) -> None:
        key_rate = await self._fanout_ratio(hub, "deflate")
        # Diagnostic: the same run with clients that do not offer permessage-deflate (neither server compresses).
        self.extra["fanout_ratio_no_deflate"] = round((await self._fanout_ratio(hub, None))[0], 3)
        self.record("fanout_ratio", key_rate[0], key_rate[1])
        log(f"   (diagnostic) fanout_ratio without permessage-deflate = {self.extra['fanout_ratio_no_deflate']}")

    async def _fanout_ratio(self, hub: Hub, compression: str | None) -> Any:
        s = self.s
        tag = "" if compression else "no-deflate "
        yiqiao = self.tid_of("yiqiao")
        ops = [self.tokens["op1.yiqiao"], self.tokens["op2.yiqiao"]]
        per_client = 3 * s.ratio_calls
        log(f"[fanout_ratio] {tag}{s.ratio_clients:,} operator sockets, {s.ratio_calls} calls → {per_client} events"
            " each")
        ws, caught = await self.idle_workers(hub.ws_url, s.ratio_clients, s.ratio_procs, ops, mode="count",
                                             compression=compression)
        await asyncio.sleep(1.0)
        await gather_calls(ws, ("reset",), 30)
        cpu0 = cpu_seconds(hub.pid)
        t_start = time.time() * 1000
        self.creator_w.send("count", {"n": s.ratio_calls, "tids": [yiqiao], "pairs": [("police", "fire")],
                                      "concurrency": 4})
        shares = [s.ratio_clients // s.ratio_procs + (1 if i < s.ratio_clients % s.ratio_procs else 0)
                  for i in range(s.ratio_procs)]
        async with self.profiled(hub.pid, f"hub-fanout-{compression}"):
            got = await asyncio.gather(*(w.call("expect", n * per_client, 300, timeout=320)
                                         for w, n in zip(ws, shares, strict=True)))
        await self.creator_w.recv()
        hub_cpu = cpu_seconds(hub.pid) - cpu0
        events = sum(g[1] for g in got)
        nbytes = sum(g[2] for g in got)
        t_last = max(g[4] for g in got)
        hub_rate = events / ((t_last - t_start) / 1000)
        closed: Counter[str] = Counter()
        for g in got:
            closed.update(g[5])
        frame_size = round(nbytes / max(1, events))
        self.stop_workers(ws)
        await self.settle(hub.pid, "the operator sockets left")
        log(f"   hub: {events:,}/{caught * per_client:,} events in {(t_last - t_start) / 1000:.2f} s = "
            f"{hub_rate:,.0f}/s, frames {frame_size} B, hub CPU {hub_cpu:.1f} s, closed {dict(closed) or 0}")

        port = free_port()
        bare = self.worker("bare_server", port, name="bare")
        await bare.recv()
        ws, _ = await self.idle_workers(f"ws://127.0.0.1:{port}", s.ratio_clients, s.ratio_procs, ["-"],
                                               mode="count", compression=compression)
        import msgpack

        pad = msgpack.packb({"type": "event", "pad": ""}, use_bin_type=True)
        filler = "x" * max(0, frame_size - len(pad) - 2)
        frame = msgpack.packb({"type": "event", "pad": filler}, use_bin_type=True)
        frames = [frame] * per_client
        cpu0 = cpu_seconds(bare.pid)
        t_start = time.time() * 1000
        bare.send("broadcast", frames)
        got = await asyncio.gather(*(w.call("expect", n * per_client, 300, timeout=320)
                                     for w, n in zip(ws, shares, strict=True)))
        await bare.recv()
        bare_cpu = cpu_seconds(bare.pid) - cpu0
        events_b = sum(g[1] for g in got)
        t_last = max(g[4] for g in got)
        bare_rate = events_b / ((t_last - t_start) / 1000)
        log(f"   bare websockets broadcast(): {events_b:,} events ({len(frame)} B) in {(t_last - t_start) / 1000:.2f} s"
            f" = {bare_rate:,.0f}/s, server CPU {bare_cpu:.1f} s")
        self.stop_workers([*ws, bare])
        self.extra[f"fanout_{tag.strip() or 'deflate'}_hub_events_per_s"] = round(hub_rate)
        self.extra[f"fanout_{tag.strip() or 'deflate'}_bare_events_per_s"] = round(bare_rate)
        self.extra[f"fanout_{tag.strip() or 'deflate'}_cpu_s"] = {"hub": round(hub_cpu, 2), "bare": round(bare_cpu, 2)}
        ok = events == caught * per_client and caught == s.ratio_clients
        return (hub_rate / bare_rate if ok else 0.0,
                f"(hub {hub_rate:,.0f}/s ÷ bare {bare_rate:,.0f}/s to {caught:,} clients, permessage-deflate offered"
                + ("" if ok else f"; INCOMPLETE: {events:,} of {s.ratio_clients * per_client:,} delivered") + ")")

    async def calls_per_s(self, hub: Hub) -> None:
        s = self.s
        socks = [self.tokens[f"{dep}1.{code}"] for _, code in self.townships for dep in DEPARTMENTS]
        log(f"[calls_per_s] {s.creators} creator processes × {s.calls_concurrency} in flight for {s.calls_seconds:g} s;"
            f" {len(socks)} liaison sockets record deliveries")
        # one liaison socket per (township, department): labels follow the token order
        ws = [self.worker("raw_sockets", hub.ws_url, socks[i::2], "record", "deflate", name=f"record-{i}")
              for i in range(2)]
        replies = await asyncio.gather(*(w.recv(timeout=120) for w in ws))
        if sum(r[1] for r in replies) != len(socks):
            log(f"   only {sum(r[1] for r in replies)} of {len(socks)} liaison sockets caught up")
        creators = [self.creator_w] + [self.worker("creator", hub.url, self.op_tokens, name=f"creator-{i}")
                                       for i in range(1, s.creators)]
        for c in creators[1:]:
            await c.recv()
        pairs = [(a, b) for i, a in enumerate(DEPARTMENTS) for b in DEPARTMENTS[i + 1:]]
        cpu_hub0, cpu_pg0 = cpu_seconds(hub.pid), pg_cpu(self.pgdata)
        cpu_gen0 = sum(cpu_seconds(w.pid) for w in [*creators, *ws])
        t0 = time.monotonic()
        async with self.profiled(hub.pid, "hub-calls"):
            outs = await gather_calls(creators, ("closed", {"duration": s.calls_seconds,
                                                            "concurrency": s.calls_concurrency,
                                                            "tids": self.tids, "pairs": pairs, "seed": 11}),
                                      s.calls_seconds + 120)
        wall = time.monotonic() - t0
        created = [c for o in outs for c in o[1]]
        errs: Counter[str] = Counter()
        for o in outs:
            errs.update(o[2])
        t_start = min(o[3] for o in outs)
        # deliveries: both departments' liaison sockets got their assignment.dispatched
        want = len(created) * 2
        deadline = time.monotonic() + 30
        recs: list[Any] = []
        while time.monotonic() < deadline:
            for reply in await gather_calls(ws, ("collect",), 60):
                recs.extend(reply[1])
            if len(recs) >= want:
                break
            await asyncio.sleep(0.5)
        cpu_hub = cpu_seconds(hub.pid) - cpu_hub0
        cpu_pg = pg_cpu(self.pgdata) - cpu_pg0
        cpu_gen = sum(cpu_seconds(w.pid) for w in [*creators, *ws]) - cpu_gen0
        per_call = Counter(r[0] for r in recs)
        last: dict[str, float] = {}
        for call_id, _at, t_arr in recs:
            last[call_id] = max(last.get(call_id, 0.0), t_arr)
        delivered = [c for c in created if per_call.get(c[0], 0) >= 2]
        t_end = max((last[c[0]] for c in delivered), default=t_start + 1)
        rate = len(delivered) / ((t_end - t_start) / 1000)
        self.extra["calls_cpu_s"] = {"hub": round(cpu_hub, 1), "postgres": round(cpu_pg, 1),
                                     "generators": round(cpu_gen, 1), "wall": round(wall, 1)}
        self.record("calls_per_s", rate,
                    f"({len(delivered):,} of {len(created):,} calls delivered to both departments in "
                    f"{(t_end - t_start) / 1000:.1f} s; errors {dict(errs) or 0}; CPU s hub {cpu_hub:.1f}, "
                    f"PostgreSQL {cpu_pg:.1f}, generators {cpu_gen:.1f} over {wall:.1f} s wall)")
        self.stop_workers([*ws, *creators[1:]])

    async def resume(self, hub: Hub) -> None:
        s = self.s
        yiqiao = self.tid_of("yiqiao")
        n_calls = math.ceil(s.resume_events / 3)
        log(f"[resume] operator HubClient disconnects, misses {n_calls * 3:,} events ({n_calls:,} calls), resumes")
        w = self.worker("resumer", hub.url, self.tokens["op2.yiqiao"], name="resumer")
        await w.recv()
        first = await w.call("first", timeout=60)
        out = await self.creator_w.call("count", {"n": n_calls, "tids": [yiqiao], "pairs": [("police", "fire")],
                                                  "concurrency": 16}, timeout=600)
        if out[2]:
            log(f"   creation errors: {out[2]}")
        await asyncio.sleep(1.0)
        async with self.profiled(hub.pid, "hub-resume"), self.profiled(w.pid, "client-resume"):
            res = await w.call("resume", timeout=180)
        elapsed, events, resyncs = res[1], res[2], res[3]
        missed = res[4].get(yiqiao, 0) - first[1].get(yiqiao, 0)
        self.stop_workers([w])
        self.extra["resume_welcome_s"] = round(res[5], 3)
        self.record("resume_10k_s", elapsed if events >= missed and not resyncs else float("nan"),
                    f"({events:,} events replayed of {missed:,} missed, {resyncs} resyncs; welcome after "
                    f"{res[5]:.3f} s, replay {elapsed - res[5]:.3f} s)")

    async def msgpack_ratio(self) -> None:
        """msgpack bytes ÷ compact UTF-8 JSON bytes of the frames of calls (call.created + 2 dispatches)."""
        import msgpack

        from dispatch.realtime.fanout import event_frame
        from dispatch.store.eventlog import EventRecord

        conn = await asyncpg.connect(self.dsn)
        try:
            await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
            rows = await conn.fetch("""select * from events where type in ('call.created', 'assignment.dispatched')
                                        order by township_id, seq desc limit 300""")
        finally:
            await conn.close()
        mp_bytes = js_bytes = js_ascii = 0
        for row in rows:
            frame = event_frame(EventRecord.from_row(row), row["body"])
            doc = msgpack.unpackb(frame)
            mp_bytes += len(frame)
            js_bytes += len(json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode())
            js_ascii += len(json.dumps(doc).encode())
        self.extra["msgpack_vs_default_json_dumps"] = round(mp_bytes / js_ascii, 3)
        self.record("msgpack_json_ratio", mp_bytes / js_bytes,
                    f"({len(rows)} frames, {mp_bytes / len(rows):.0f} B msgpack vs {js_bytes / len(rows):.0f} B compact"
                    f" UTF-8 JSON; vs json.dumps defaults (\\u-escaped) {mp_bytes / js_ascii:.3f})")

    async def commit_ceiling(self) -> None:
        s = self.s
        log(f"[commit_ceiling] raw asyncpg insert+commit, {s.ceiling_seconds:g} s on 1 and on 10 connections")
        conn = await asyncpg.connect(self.dsn)
        await conn.execute("create table bench_commit_ceiling (id bigserial primary key, at timestamptz not null,"
                           " payload text not null)")
        await conn.close()
        rates = {}
        for n in (1, 10):
            conns = [await asyncpg.connect(self.dsn) for _ in range(n)]
            end = time.monotonic() + s.ceiling_seconds
            counts = [0] * n

            async def lane(i: int, c: asyncpg.Connection, end: float = end, counts: list[int] = counts) -> None:
                while time.monotonic() < end:
                    await c.execute("insert into bench_commit_ceiling (at, payload) values (now(), $1)", "x" * 200)
                    counts[i] += 1
            t0 = time.monotonic()
            await asyncio.gather(*(lane(i, c) for i, c in enumerate(conns)))
            rates[n] = sum(counts) / (time.monotonic() - t0)
            for c in conns:
                await c.close()
        self.extra["commit_ceiling_1conn_per_s"] = round(rates[1])
        self.record("commit_ceiling_per_s", rates[10],
                    f"(10 connections; 1 connection {rates[1]:,.0f}/s; autocommit single-row insert, fsync on)")

    async def sla(self) -> None:
        """100,000 open deadlines in a copy of the county; a dedicated hub; lateness to the commit."""
        s = self.s
        from dispatch.core.records import Call
        from dispatch.core.transitions import AssignmentState, CallState

        dsn = with_database(self.admin_dsn, "bench_sla")
        main = await asyncpg.connect(self.dsn)
        try:
            sample = json.loads(await main.fetchval(
                "select doc::text from calls where jsonb_array_length(doc->'assignments') = 2"
                " order by (state = 'dispatched') desc limit 1"))
        finally:
            await main.close()
        # A freshly dispatched call: both assignments waiting for their acknowledgement.
        call0 = dataclasses.replace(Call.from_dict(sample), state=CallState.DISPATCHED, closed_at=None)
        a0 = [dataclasses.replace(a, state=AssignmentState.DISPATCHED, acknowledged_at=None, on_scene_at=None,
                                  reported_at=None, accepted_at=None, closed_at=None, result=None,
                                  levels={"ack": 0, "arrive": 0, "resolve": 0})
              for a in call0.assignments.values()]
        n_calls = s.sla_deadlines // 2
        log(f"[sla] {n_calls * 2:,} open deadlines: {s.sla_overdue} overdue at start, {s.sla_window_n:,} due within "
            f"{s.sla_window_s:g} s after start, the rest within 2 days")

        def build(i: int, dues: tuple[dt.datetime, dt.datetime], created: dt.datetime) -> tuple[list[Any], list[Any]]:
            cid = uuid.uuid4()
            tid = self.tids[i % len(self.tids)]
            asg = {}
            arows = []
            for a, due in zip(a0, dues, strict=True):
                aid = uuid.uuid4()
                na = dataclasses.replace(a, id=aid, call_id=cid, dispatched_at=created, updated_at=created,
                                         ack_due=due, arrive_due=due + dt.timedelta(hours=1),
                                         resolve_due=due + dt.timedelta(days=1))
                asg[aid] = na
                arows.append((aid, cid, tid, na.target, "dispatched", due, na.arrive_due, na.resolve_due, due, "ack",
                              1, created, json.dumps(na.to_dict())))
            c = dataclasses.replace(call0, id=cid, township_id=tid, number=f"SLA-{i:07d}", created_at=created,
                                    updated_at=created, assignments=asg)
            crow = (cid, tid, c.number, c.state.value, c.category, c.priority.value, c.source.value, c.title,
                    c.address, created, created, None, 0, json.dumps(c.to_dict(), ensure_ascii=False))
            return [crow], arows

        async def insert(conn: asyncpg.Connection, calls: list[Any], asgs: list[Any]) -> None:
            cols = list(zip(*calls, strict=True))
            await conn.execute("""
                insert into calls (id, township_id, number, state, category, priority, source, title, address,
                                   created_at, updated_at, closed_at, last_seq, doc)
                select * from unnest($1::uuid[], $2::int[], $3::text[], $4::text[], $5::text[], $6::text[],
                                     $7::text[], $8::text[], $9::text[], $10::timestamptz[], $11::timestamptz[],
                                     $12::timestamptz[], $13::bigint[], $14::text[]::jsonb[])""", *cols)
            cols = list(zip(*asgs, strict=True))
            await conn.execute("""
                insert into assignments (id, call_id, township_id, target, state, ack_due, arrive_due, resolve_due,
                                         next_due, next_kind, next_level, updated_at, doc)
                select * from unnest($1::uuid[], $2::uuid[], $3::int[], $4::text[], $5::text[], $6::timestamptz[],
                                     $7::timestamptz[], $8::timestamptz[], $9::timestamptz[], $10::text[],
                                     $11::int[], $12::timestamptz[], $13::text[]::jsonb[])""", *cols)

        conn = await asyncpg.connect(dsn)
        try:
            now = dt.datetime.now(dt.UTC)
            n_near_calls = (s.sla_window_n + s.sla_overdue + 1) // 2
            far_calls, far_asgs = [], []
            span = 2 * 86400.0
            for i in range(n_calls - n_near_calls):
                d1 = now + dt.timedelta(seconds=600 + span * (2 * i) / (2 * n_calls))
                d2 = now + dt.timedelta(seconds=600 + span * (2 * i + 1) / (2 * n_calls))
                c, a = build(i, (d1, d2), now)
                far_calls += c
                far_asgs += a
            for k in range(0, len(far_calls), 10_000):
                await insert(conn, far_calls[k:k + 10_000], far_asgs[k * 2:(k + 10_000) * 2])
            await conn.execute("analyze assignments")
            # The near deadlines are written last, just before the hub starts, relative to that moment.
            lead = 6.0
            now = dt.datetime.now(dt.UTC)
            w0 = now + dt.timedelta(seconds=lead)
            dues = [now - dt.timedelta(seconds=1 + 29 * j / max(1, s.sla_overdue)) for j in range(s.sla_overdue)]
            dues += [w0 + dt.timedelta(seconds=s.sla_window_s * j / s.sla_window_n) for j in range(s.sla_window_n)]
            dues += [w0 + dt.timedelta(days=1)] * (2 * n_near_calls - len(dues))
            near_calls, near_asgs = [], []
            for j in range(n_near_calls):
                c, a = build(n_calls + j, (dues[2 * j], dues[2 * j + 1]), now - dt.timedelta(minutes=15))
                near_calls += c
                near_asgs += a
            await insert(conn, near_calls, near_asgs)
            total = await conn.fetchval("select count(*) from assignments where next_due is not null")
        finally:
            await conn.close()
        w1 = w0 + dt.timedelta(seconds=s.sla_window_s)
        log(f"   {total:,} open deadlines written; starting a hub on them")
        hub = Hub(dsn, self.root, "sla")
        self.hubs.append(hub)
        t_spawn = dt.datetime.fromtimestamp(hub.t_spawn, dt.UTC)
        ready_s = await hub.ready()
        wait = (w1 - dt.datetime.now(dt.UTC)).total_seconds() + 3.0
        log(f"   hub ready {ready_s:.2f} s after spawn; waiting {wait:.1f} s for the window to pass")
        await asyncio.sleep(max(0.0, wait))
        t_stop = dt.datetime.now(dt.UTC)
        hub.stop()
        self.hubs.remove(hub)
        conn = await asyncpg.connect(dsn)
        try:
            track = await conn.fetchval("show track_commit_timestamp")
            committed = "pg_xact_commit_timestamp(e.xmin)" if track == "on" else "e.at"
            rows = await conn.fetch(f"""
                select a.id, a.ack_due, min({committed}) as committed, min((e.body->>'lateness_ms')::bigint) as fired
                  from assignments a
                  left join events e on e.assignment_id = a.id and e.type = 'assignment.escalated'
                                    and e.body->>'deadline_kind' = 'ack' and (e.body->>'level')::int = 1
                 where a.ack_due >= $1 and a.ack_due < $2
                 group by a.id, a.ack_due""", w0, w1)
            first_overdue = await conn.fetchval(f"""
                select min({committed}) from events e
                 where e.type = 'assignment.escalated' and (e.body->>'due')::timestamptz < $1""", t_spawn)
            n_esc = await conn.fetchval("select count(*) from events where type = 'assignment.escalated'")
        finally:
            await conn.close()
        late, fired, never = [], [], 0
        for r in rows:
            if r["committed"] is None:
                never += 1
                late.append((t_stop - r["ack_due"]).total_seconds() * 1000)
            else:
                late.append((r["committed"] - r["ack_due"]).total_seconds() * 1000)
                fired.append(r["fired"])
        self.extra["escalation_fire_late_p99_ms"] = pct(fired, 99)
        self.extra["escalation_late_p50_ms"] = round(pct(late, 50), 1)
        self.record("escalation_late_p99_ms", pct(late, 99),
                    f"({len(rows):,} deadlines due while up, commit − due; p50 {pct(late, 50):.1f}; "
                    f"fire − due p99 {pct(fired, 99):.0f}; {never} not escalated by the end; {n_esc:,} escalations)")
        rearm = (first_overdue - t_spawn).total_seconds() if first_overdue else float("nan")
        self.extra["sla_hub_ready_s"] = round(ready_s, 3)
        self.record("rearm_100k_s", rearm,
                    f"(process spawn → first overdue escalation committed; /readyz at {ready_s:.2f} s)")

    async def scorecards(self) -> None:
        """The product's own scorecards (``compute_scorecards``: the REST endpoint's work) on months of simulated,
        time-ordered county history written by the product's own history generator (``seed-demo --history``);
        last month's and the whole year's, 5 runs each, each answer checked against the facts it covers."""
        from dispatch.cli.demo import seed_demo
        from dispatch.cli.history.seed import seed_history
        from dispatch.core.config import load_config
        from dispatch.evaluation import period as P
        from dispatch.store import facts
        from dispatch.store import pool as db
        from dispatch.store.reference import sync_reference
        from dispatch.web.evaluation import compute_scorecards

        s = self.s
        cfg = load_config()
        dsn = with_database(self.admin_dsn, "bench_scores")
        end = dt.datetime.now(dt.UTC)
        conn = await db.connect(dsn)
        try:  # the demo county without its sample calls: a history is loaded only into a county without calls
            await db.migrate(conn)
            await facts.ensure_current(conn)
            await sync_reference(conn, cfg)
            await seed_demo(conn)
            log(f"[scorecards] simulating {s.score_months} months of county history at scale {s.score_scale:g}")
            t0 = time.monotonic()
            await seed_history(conn, cfg, s.score_months, end=end, scale=s.score_scale, seed=7)
            await conn.execute("analyze")
            n_events = await conn.fetchval("select count(*) from events")
            log(f"   {n_events:,} events in {time.monotonic() - t0:.1f} s; timing the scorecards")
        finally:
            await conn.close()
        month = P.last_month(end)
        first = P.months_ending(month, min(12, s.score_months))[0]
        year = P.date_range(first.first, month.last)
        weights = cfg.evaluation.weights()
        pool = await db.create_pool(dsn, min_size=1, max_size=2)
        try:
            for key, period in (("scorecards_month_s", month), ("scorecards_year_s", year)):
                times: list[float] = []
                answer: dict[str, Any] = {}
                for _ in range(5):
                    t0 = time.perf_counter()
                    answer = await compute_scorecards(pool, cfg, end, period, None, None, "target",
                                                      cfg.evaluation.preset, weights)
                    times.append(time.perf_counter() - t0)
                received = sum(r["received"] for r in answer["rows"])
                async with pool.acquire() as c:
                    expected = await c.fetchval("select count(*) from assignment_facts where dispatched_at >= $1 "
                                                "and dispatched_at < $2 and target not like 'unit:%'",
                                                period.start, period.end)
                if received != expected or received == 0:
                    raise RuntimeError(f"{key}: the scorecards count {received} assignments, the facts {expected}")
                ranked = sum(1 for r in answer["rows"] if r["rank"] is not None)
                self.extra[f"{key}_runs"] = [round(t, 3) for t in times]
                self.record(key, statistics.median(times),
                            f"(median of 5: {', '.join(f'{t:.3f}' for t in times)} s; {period.label}: "
                            f"{received:,} assignments, {ranked} ranked rows; {n_events:,} events in the log)")
        finally:
            await pool.close()


def machine(pg_version: str) -> dict[str, Any]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = 0
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) * 1024
    import resource

    return {"cpu_model": cpu, "cores": os.cpu_count(), "memory_gib": round(mem / 2**30, 1),
            "python": platform.python_version(), "postgres": pg_version, "platform": platform.platform(),
            "open_files_hard_limit": resource.getrlimit(resource.RLIMIT_NOFILE)[1],
            "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}


def table(results: dict[str, float], notes: dict[str, str], quick: bool) -> str:
    lines = [f"{'key':<24} {'figure':>12}  {'target':>10}  {'':4}  detail", "-" * 100]
    for key, target in TARGETS.items():
        v = results.get(key, float("nan"))
        if target is None:
            tgt, verdict = "report", ""
        else:
            op, t = target
            tgt = f"{op} {fmt(t)}"
            ok = (v <= t) if op == "<=" else (v >= t)
            verdict = "ok" if ok and not math.isnan(v) else "MISS"
            if quick:
                verdict = "(" + verdict.lower() + ")"  # small sizes: not the targets' conditions
        lines.append(f"{key:<24} {fmt(v):>12}  {tgt:>10}  {verdict:4}  {notes.get(key, '')}")
    return "\n".join(lines)


async def main_async(args: argparse.Namespace) -> int:
    raise_nofile()
    bench = Bench(QUICK if args.quick else FULL, args.quick, args.keep, args.profile, args.only)
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, lambda: task.cancel() if task else None)
    t0 = time.monotonic()
    try:
        await bench.run()
    finally:
        log("tearing down (workers, hubs, PostgreSQL)")
        await bench.teardown()
    keys = [k for k in TARGETS if not args.only or k in bench.results]
    results = {k: (round(bench.results[k], 3) if k in bench.results else float("nan")) for k in keys}
    if "connections" in results:
        results["connections"] = int(results["connections"])
    print(table(bench.results, bench.notes, args.quick), flush=True)
    if args.quick:
        print("--quick: small sizes; verdicts in brackets do not hold for the targets' conditions", flush=True)
    info = machine(getattr(bench, "pg_version", "?"))
    info["mode"] = "quick" if args.quick else "full"
    info["seconds"] = round(time.monotonic() - t0, 1)
    out = {"results": results, "targets": {k: (None if v is None else {"op": v[0], "value": v[1]})
                                           for k, v in TARGETS.items()},
           "machine": info, "details": bench.extra, "notes": bench.notes}
    Path(args.output).write_text(json.dumps(out, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    print(f"machine: {info['cpu_model']}, {info['cores']} cores, {info['memory_gib']} GiB, Python {info['python']},"
          f" PostgreSQL {info['postgres']}; {info['seconds']} s; written to {args.output}", flush=True)
    print(json.dumps(results), flush=True)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="every scenario at small sizes (under two minutes)")
    parser.add_argument("--output", default=str(ROOT / "bench-results.json"), help="where the JSON goes")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs, data)")
    parser.add_argument("--only", choices=["scorecards"], help="run one scenario only (its figures alone)")
    parser.add_argument("--profile", metavar="DIR", help="sample the hub with py-spy (if installed in .venv) during"
                        " the calls, fan-out and resume scenarios; collapsed stacks go to DIR")
    args = parser.parse_args()
    import uvloop

    return uvloop.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
