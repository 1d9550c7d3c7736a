"""``./scripts/bench [--quick] [--only S,…] [--profile S]``: run the scenarios, print every figure with its goal
and the limit beside it, end with one JSON line; ``--write-docs`` regenerates docs/PERFORMANCE.md's figures.

Everything runs on 127.0.0.1. The hub is ``xianghu serve`` in its own process (uvicorn, uvloop, websockets
sans-I/O) on an embedded PostgreSQL that this script starts in a temporary folder and removes at the end. Load
comes from separate generator processes (``scripts/bench_lib/gen.py``). What each figure measures:
docs/PERFORMANCE.md and ``scripts/bench_lib/goals.py``.
"""

# ruff: noqa: ASYNC240  (a bench orchestrator: short blocking steps are fine)
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
import resource
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
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg

from dispatch.store.pool import with_database
from scripts.bench_lib import goals, pgstats
from scripts.bench_lib.procs import Worker, cpu_seconds, gather_calls, log, pct, raise_nofile, rss_bytes

ROOT = Path(__file__).resolve().parents[2]
GEN = "scripts.bench_lib.gen"
DEPARTMENTS = ("enforcement", "police", "justice", "market", "land", "transport", "fire")
PAIRS = [(a, b) for i, a in enumerate(DEPARTMENTS) for b in DEPARTMENTS[i + 1:]]
SCENARIOS = ("connections", "fanout", "calls", "churn", "frames", "resume", "msgpack", "ceiling", "sla", "scorecards")


def xianghu_command() -> list[str]:
    """The ``xianghu`` of this checkout's .venv, or this interpreter's ``dispatch.cli`` (a worktree, a CI venv)."""
    exe = ROOT / ".venv" / "bin" / "xianghu"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "dispatch.cli"]


@dataclasses.dataclass(frozen=True)
class Sizes:
    conn_max: int  # connections: ramp up to this many (capped by the hub's open-file limit)
    conn_step: int  # sockets per ramp step (one generator process each)
    conn_hold_s: float  # every socket is held this long, then must answer a ping
    fanout_idle: int  # idle sockets kept connected during the fan-out latency and calls runs
    p99_townships: int
    p99_liaisons: int  # liaisons per department per township (HubClients)
    p99_rate: float  # calls/s during the latency run
    p99_seconds: float
    ratio_clients: int
    ratio_procs: int
    ratio_calls: int  # calls → 3 events each, to every client
    calls_seconds: float
    calls_concurrency: int  # requests in flight (pipelined over 16 keep-alive connections)
    resume_events: int  # one HubClient: missed events
    resume_clients: int  # many sockets resuming at once after a restart
    resume_missed: int  # events each of them missed
    ceiling_seconds: float
    sla_deadlines: int  # open deadlines (2 per call)
    sla_overdue: int  # overdue at start-up
    sla_lead_s: float  # spawn → the steady deadlines begin: room for arming the window at start and connecting
    sla_steady_rate: float
    sla_steady_s: float
    sla_burst: int  # deadlines due in the same second
    sla_burst_rate: float  # calls/s created around the burst
    sla_horizon_s: float  # the bench hub's arming window (every open deadline inside it)
    score_months: int  # months of simulated county history the scorecards are timed on
    score_scale: float  # the history's volume (scale 2, 12 months: about 1,000,000 events)
    churn_rounds: int  # sockets coming and going: rounds of ...
    churn_sockets: int  # ... this many sockets opened, caught up and closed


FULL = Sizes(conn_max=20_000, conn_step=2_500, conn_hold_s=45, fanout_idle=10_000, p99_townships=15, p99_liaisons=2,
             p99_rate=50, p99_seconds=20, ratio_clients=2_000, ratio_procs=2, ratio_calls=50, calls_seconds=30,
             calls_concurrency=32, resume_events=10_000, resume_clients=1_000, resume_missed=100,
             ceiling_seconds=10, sla_deadlines=100_000, sla_overdue=1_000, sla_lead_s=120, sla_steady_rate=100,
             sla_steady_s=30, sla_burst=10_000, sla_burst_rate=50, sla_horizon_s=3_600, score_months=12,
             score_scale=2.0, churn_rounds=10, churn_sockets=2_000)
QUICK = Sizes(conn_max=400, conn_step=200, conn_hold_s=3, fanout_idle=200, p99_townships=3, p99_liaisons=1,
              p99_rate=20, p99_seconds=3, ratio_clients=200, ratio_procs=2, ratio_calls=10, calls_seconds=3,
              calls_concurrency=8, resume_events=300, resume_clients=60, resume_missed=9, ceiling_seconds=1,
              sla_deadlines=4_000, sla_overdue=40, sla_lead_s=20, sla_steady_rate=50, sla_steady_s=2, sla_burst=300,
              sla_burst_rate=10, sla_horizon_s=3_600, score_months=2, score_scale=0.3,
              churn_rounds=3, churn_sockets=100)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


fmt = goals.fmt
BENCH_SOCKETS_PER_USER = 100_000


class Hub:
    """``xianghu serve`` as a separate process, with the open-file limit raised to the hard limit. With
    ``profile``, it runs under ``scripts.bench_lib.profiler`` (sampling while ``<profile>.on`` exists)."""

    def __init__(self, dsn: str, logdir: Path, name: str, settings: dict[str, str] | None = None,
                 profile: Path | None = None, sample_now: bool = False) -> None:
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}/ws"
        env = {k: v for k, v in os.environ.items() if k not in ("XIANGHU_TEST_CLOCK", "XIANGHU_CONFIG")}
        env["DATABASE_URL"] = dsn
        # gcwatch: the collector's pauses, logged for the scenarios' details (``Bench.gc_pauses``)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT / "scripts" / "bench_lib" / "gcwatch"), str(ROOT),
                                                        env.get("PYTHONPATH", "")) if p)
        env["XIANGHU_BENCH_GC_LOG"] = str(logdir / f"gc-{name}.log")
        self.log_path = logdir / f"hub-{name}.log"
        self._log = self.log_path.open("wb")
        # The generators hold thousands of sockets on a few accounts: lift the per-account cap (a phone's
        # limit, not a hub's), everything else as shipped unless a scenario says otherwise.
        config = logdir / f"hub-{name}.toml"
        text = (ROOT / "dispatch" / "core" / "default.toml").read_text(encoding="utf-8")
        for key, value in {"max_sockets_per_user": str(BENCH_SOCKETS_PER_USER), **(settings or {})}.items():
            lines = text.split("\n")
            hits = [i for i, line in enumerate(lines) if line.startswith(f"{key} = ")]
            if len(hits) != 1:
                raise RuntimeError(f"default.toml has {len(hits)} `{key} = ` lines; the bench sets exactly one")
            lines[hits[0]] = f"{key} = {value}"
            text = "\n".join(lines)
        config.write_text(text, encoding="utf-8")
        args = ["serve", "--host", "127.0.0.1", "--port", str(self.port), "--config", str(config)]
        self.profile = profile
        if profile is not None:
            if sample_now:
                profile.with_suffix(".on").touch()
            cmd = [sys.executable, "-m", "scripts.bench_lib.profiler", str(profile), "--", *args]
        else:
            cmd = [*xianghu_command(), *args]
        self.t_spawn = time.time()
        self.proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT,
                                     preexec_fn=raise_nofile, start_new_session=True)
        self.t_ready = float("nan")

    async def ready(self, timeout: float = 120) -> float:
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

    def open_files_limit(self) -> int:
        with contextlib.suppress(OSError, ValueError, IndexError):
            for line in Path(f"/proc/{self.pid}/limits").read_text().splitlines():
                if line.startswith("Max open files"):
                    return int(line.split()[3])
        return 0

    def open_files(self) -> int:
        try:
            return len(os.listdir(f"/proc/{self.pid}/fd"))
        except OSError:
            return 0

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
    """CPU seconds of the PostgreSQL server, its live backends and those it has reaped."""
    import psutil

    try:
        pid = int((pgdata / "postmaster.pid").read_text().split()[0])
        main = psutil.Process(pid)
        t = main.cpu_times()
        total = t.user + t.system + t.children_user + t.children_system  # backends that exited meanwhile too
        for p in main.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                t = p.cpu_times()
                total += t.user + t.system
        return total
    except (OSError, ValueError, psutil.Error):
        return float("nan")


def kernel_socket_bytes(port: int) -> tuple[int, int]:
    """(sockets, bytes of kernel memory) of the established TCP sockets on the server side of ``port``, from
    ``ss -tmn``'s skmem: receive + send queue allocations, forward allocation, option memory, backlog."""
    try:
        out = subprocess.run(["ss", "-tmnH", "state", "established", f"( sport = :{port} )"], capture_output=True,
                             text=True, timeout=120).stdout
    except (OSError, subprocess.SubprocessError):
        return 0, -1  # no `ss` (iproute2): the caller falls back to /proc/net/sockstat
    n = total = 0
    for part in out.split("skmem:(")[1:]:
        fields = dict((k.rstrip("0123456789"), int(k[len(k.rstrip("0123456789")):]))
                      for k in part.split(")", 1)[0].split(","))
        total += sum(fields.get(k, 0) for k in ("r", "w", "f", "o", "bl"))
        n += 1
    return n, total


SOCKET_SLABS = ("TCP", "sock_inode_cache", "eventpoll_epi", "filp")


def socket_slab_bytes() -> int:
    """Kernel objects a TCP socket takes outside its buffers (the tcp_sock, its inode, file and epoll entry), from
    /proc/slabinfo: active objects × object size, machine-wide; 0 where it cannot be read."""
    total = 0
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/slabinfo").read_text().splitlines():
            parts = line.split()
            if parts and parts[0] in SOCKET_SLABS:
                total += int(parts[1]) * int(parts[3])
    return total


def sockstat_bytes() -> int:
    """The kernel's TCP memory for every socket on the machine (pages in /proc/net/sockstat)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/net/sockstat").read_text().splitlines():
            if line.startswith("TCP:"):
                parts = line.split()
                return int(parts[parts.index("mem") + 1]) * os.sysconf("SC_PAGE_SIZE")
    return 0


class Bench:
    def __init__(self, sizes: Sizes, quick: bool, keep: bool, only: set[str], profile: str | None,
                 profile_dir: Path, pg_stats: str | None = None) -> None:
        self.s = sizes
        self.pg_stats = pg_stats
        self.quick = quick
        self.keep = keep
        self.only = only
        self.profile = profile
        self.profile_dir = profile_dir
        self.root = Path(tempfile.mkdtemp(prefix="xianghu-bench-"))
        self.results: dict[str, float] = {}
        self.notes: dict[str, str] = {}
        self.extra: dict[str, Any] = {}
        self.load: dict[str, dict[str, list[float]]] = {}
        self.workers: list[Worker] = []
        self.hubs: list[Hub] = []
        self.pg: Any = None
        self.pgdata = self.root / "pgdata"
        self.current: str | None = None
        self.idle_kept: list[Worker] = []
        self.idle_kept_n = 0

    def wanted(self, name: str) -> bool:
        return not self.only or name in self.only

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

    def hub(self, dsn: str, name: str, settings: dict[str, str] | None = None) -> Hub:
        profile = self.root / f"profile-{name}" if self.profile else None
        h = Hub(dsn, self.root, name, settings, profile, sample_now=self.current == self.profile)
        self.hubs.append(h)
        return h

    def stop_hub(self, hub: Hub) -> None:
        self._profile_done(hub)
        hub.stop()
        if hub in self.hubs:
            self.hubs.remove(hub)

    def _profile_done(self, hub: Hub) -> None:
        """If ``hub`` is being sampled: stop, wait for its report, copy it to the profile folder."""
        if hub.profile is None or not hub.profile.with_suffix(".on").exists():
            return
        report = hub.profile.with_suffix(".txt")
        report.unlink(missing_ok=True)
        hub.profile.with_suffix(".on").unlink()
        end = time.monotonic() + 30
        while not report.exists() and time.monotonic() < end and hub.proc.poll() is None:
            time.sleep(0.1)
        time.sleep(0.2)
        if report.exists():
            self.profile_dir.mkdir(parents=True, exist_ok=True)
            for suffix in (".txt", ".collapsed"):
                shutil.copy(hub.profile.with_suffix(suffix),
                            self.profile_dir / f"{self.current}-hub-{hub.name}{suffix}")
            log(f"   profile of hub {hub.name} during {self.current}: {self.profile_dir}/{self.current}-hub-"
                f"{hub.name}.txt")

    @contextlib.asynccontextmanager
    async def scenario(self, name: str) -> AsyncIterator[None]:
        """Load average at the start and the end (a polluted run is visible); ``--profile name`` samples every
        hub running meanwhile."""
        self.current = name
        self.load[name] = {"start": [round(x, 2) for x in os.getloadavg()]}
        if self.profile == name:
            for h in self.hubs:
                if h.profile is not None:
                    h.profile.with_suffix(".on").touch()
        stats = self.pg_stats == name
        if stats:
            await pgstats.reset(self.dsn)
            calls0, cpu0 = await pgstats.created_calls(self.dsn), pg_cpu(self.pgdata)
        t0 = time.monotonic()
        wall0 = time.time()
        try:
            yield
        finally:
            if stats:
                await asyncio.sleep(1.5)  # an idle backend flushes its table counts within a second
                out = self.profile_dir / f"{name}-pg-stats.txt"
                head = await pgstats.report(self.dsn, out, await pgstats.created_calls(self.dsn) - calls0,
                                            pg_cpu(self.pgdata) - cpu0)
                log(f"   PostgreSQL during {name}: {head}; {out}")
            self.gc_pauses(name, wall0, time.time())
            if self.profile == name:
                for h in list(self.hubs):
                    self._profile_done(h)
            self.load[name]["end"] = [round(x, 2) for x in os.getloadavg()]
            self.load[name]["seconds"] = [round(time.monotonic() - t0, 1)]
            log(f"   [{name}] {time.monotonic() - t0:.0f} s; load average {self.load[name]['start'][0]:.2f} → "
                f"{self.load[name]['end'][0]:.2f}")
            self.current = None

    def gc_pauses(self, name: str, start: float, end: float) -> None:
        """The hubs' garbage-collector pauses during scenario ``name`` (logged by ``gcwatch``): how many of
        10 ms or more, the longest of each generation, the total — a tail latency's usual suspect."""
        pauses: list[tuple[int, float, float, int]] = []  # generation, wall ms, CPU ms, objects collected
        for path in self.root.glob("gc-*.log"):
            for line in path.read_text(encoding="utf-8").splitlines():
                at, gen, ms, cpu, collected = line.split()
                if start <= float(at) <= end:
                    pauses.append((int(gen), float(ms), float(cpu), int(collected)))
        longest = {f"gen{g}": max((p[1] for p in pauses if p[0] == g), default=0.0) for g in (0, 1, 2)}
        self.extra[f"gc_{name}"] = {"pauses_10ms": sum(p[1] >= 10 for p in pauses),
                                    "total_ms": round(sum(p[1] for p in pauses), 1),
                                    "cpu_ms": round(sum(p[2] for p in pauses), 1),
                                    "collected": sum(p[3] for p in pauses), "longest_ms": longest}
        if pauses:
            log(f"   [{name}] the hubs' GC pauses: {sum(p[1] >= 10 for p in pauses)} of 10 ms or more, "
                f"{sum(p[1] for p in pauses):,.0f} ms in all ({sum(p[2] for p in pauses):,.0f} ms of it on the CPU, "
                f"{sum(p[3] for p in pauses):,} objects collected); longest gen0 {longest['gen0']:.0f} ms, "
                f"gen1 {longest['gen1']:.0f} ms, gen2 {longest['gen2']:.0f} ms")

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
        f = goals.BY_KEY[key]
        log(f"==> {key} = {fmt(value)} {f.unit}   (goal {goals.goal_text(f)}) {note}")

    async def start_pg(self) -> None:
        from dispatch.store.embedded import EmbeddedPostgres

        log(f"starting embedded PostgreSQL in {self.pgdata}")
        self.pg = EmbeddedPostgres(self.pgdata)  # durable, as `xianghu serve` runs it
        self.pg._initdb()
        with (self.pgdata / "postgresql.conf").open("a", encoding="utf-8") as conf:
            # Bench-only: commit timestamps, so escalation lateness can also be measured to the commit.
            conf.write("track_commit_timestamp = on\n")
            if self.pg_stats:
                conf.write(pgstats.CONF)
        self.admin_dsn = self.pg.start()
        admin = await asyncpg.connect(self.admin_dsn)
        try:
            await admin.execute("create database xianghu")
            self.pg_version = await admin.fetchval("show server_version")
            for setting in ("fsync", "synchronous_commit", "wal_sync_method", "full_page_writes", "shared_buffers"):
                self.extra[setting] = await admin.fetchval(f"show {setting}")
        finally:
            await admin.close()
        self.dsn = with_database(self.admin_dsn, "xianghu")

    def cli(self, *args: str, dsn: str) -> None:
        env = {**os.environ, "DATABASE_URL": dsn}
        out = subprocess.run([*xianghu_command(), *args], env=env, capture_output=True, text=True, timeout=300)
        if out.returncode != 0:
            raise RuntimeError(f"xianghu {' '.join(args)} failed: {out.stderr[-2000:]}")

    async def mint_tokens(self) -> None:
        """Bearer tokens for the demo accounts, written as sessions rows (a login per socket is not needed,
        and each login costs ~150 ms of argon2 on the hub's loop). One real login is done through the API."""
        from dispatch.store.accounts import token_hash

        conn = await asyncpg.connect(self.dsn)
        try:
            rows = await conn.fetch("select id, username from users")
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
        self.minted_op_tokens = dict(self.op_tokens)  # also in the copies of the database (bench_sla)
        self.unit_tokens = [self.tokens[f"unit{i}.{code}"] for _, code in self.townships for i in (1, 2, 3)]

    async def bulk_accounts(self, prefix: str, role: str, n: int) -> list[str]:
        """``n`` distinct accounts, each with its own bearer token, written in bulk (not ``n`` logins): unit
        liaisons (``role`` liaison) or operators, spread over the townships."""
        from dispatch.store.accounts import token_hash

        conn = await asyncpg.connect(self.dsn)
        try:
            units = [(r["id"], r["township_id"]) for r in await conn.fetch("select id, township_id from units")]
            users = []
            for i in range(n):
                if role == "liaison":
                    unit, tid = units[i % len(units)]
                else:
                    unit, tid = None, self.tids[i % len(self.tids)]
                users.append((f"{prefix}{i}", f"bench {prefix}{i}", "!bench-no-password", role, tid, unit))
            cols = list(zip(*users, strict=True))
            ids = await conn.fetch("""
                insert into users (username, display_name, password_hash, role, township_id, unit_id)
                select * from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int[], $6::int[])
                returning id""", *cols)
            now = dt.datetime.now(dt.UTC)
            tokens = [secrets.token_urlsafe(32) for _ in ids]
            await conn.copy_records_to_table(
                "sessions", columns=["token_hash", "user_id", "kind", "created_at", "expires_at"],
                records=[(token_hash(t), r["id"], "token", now, now + dt.timedelta(days=1))
                         for t, r in zip(tokens, ids, strict=True)])
        finally:
            await conn.close()
        return tokens

    # -- the run -----------------------------------------------------------------------------------------

    async def run(self) -> None:
        t0 = time.monotonic()
        await self.start_pg()
        log("xianghu migrate && xianghu seed-demo")
        self.cli("migrate", dsn=self.dsn)
        self.cli("seed-demo", dsn=self.dsn)
        await self.mint_tokens()
        s = self.s
        if self.wanted("connections") or self.wanted("churn"):
            self.conn_tokens = await self.bulk_accounts("bench.c", "liaison", max(s.conn_max, s.churn_sockets))
        if self.wanted("resume"):
            self.resume_tokens = await self.bulk_accounts("bench.r", "operator", s.resume_clients)
        admin = await asyncpg.connect(self.admin_dsn)
        try:  # copies of the seeded county (tokens included) for the SLA and the replay; an empty one for history
            await admin.execute("create database bench_sla template xianghu")
            await admin.execute("create database bench_ceiling template xianghu")
            await admin.execute("create database bench_scores")
        finally:
            await admin.close()

        main_scenarios = ("connections", "fanout", "calls", "churn", "frames", "resume", "msgpack")
        if any(self.wanted(n) for n in main_scenarios):
            hub = self.hub(self.dsn, "main")
            log(f"hub ready in {await hub.ready():.2f} s (pid {hub.pid}, {hub.url})")
            from dispatch.cli.client import login

            self.tokens["op1.yiqiao"] = self.op_tokens[self.tid_of("yiqiao")] = await login(
                hub.url, "op1.yiqiao", "xianghu-demo")
            self.creator_w = self.worker("http_creator", "127.0.0.1", hub.port, self.op_tokens, name="creator")
            await self.creator_w.recv()
            out = await self.creator_w.call("count", {"n": 20, "tids": self.tids, "pairs": [("police", "fire")],
                                                      "concurrency": 4})
            if len(out[1]) != 20:
                raise RuntimeError(f"warm-up calls failed: {out[2]}")
            if self.wanted("connections"):
                async with self.scenario("connections"):
                    await self.connections(hub)
            if self.wanted("fanout"):
                async with self.scenario("fanout"):
                    await self.fanout_latency(hub)
            if self.wanted("calls"):
                async with self.scenario("calls"):
                    await self.calls_per_s(hub)
            self.stop_workers(self.idle_kept)
            self.idle_kept = []
            if self.wanted("churn"):
                async with self.scenario("churn"):
                    await self.churn(hub)
            if self.wanted("frames"):
                async with self.scenario("frames"):
                    await self.frames(hub)
            if self.wanted("msgpack"):
                async with self.scenario("msgpack"):
                    await self.msgpack_ratio()
            if self.wanted("resume"):
                async with self.scenario("resume"):
                    await self.resume(hub)
                    hub = await self.resume_many(hub)  # restarts the hub
            self.stop_workers(list(self.workers))
            self.stop_hub(hub)
        if self.wanted("ceiling"):
            async with self.scenario("ceiling"):
                await self.commit_ceiling()
        if self.wanted("sla"):
            async with self.scenario("sla"):
                await self.sla()
        if self.wanted("scorecards"):
            async with self.scenario("scorecards"):
                await self.scorecards()
        self.extra["bench_seconds"] = round(time.monotonic() - t0, 1)

    def tid_of(self, code: str) -> int:
        return int(next(t for t, c in self.townships if c == code))

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
                           compression: str | None = None) -> tuple[list[Worker], int]:
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
        """Ramp distinct-account idle sockets up to the first failure or the hub's open-file limit, hold them,
        then every one must answer a ping; memory = RSS delta + the hub's sockets' kernel memory."""
        s = self.s
        limit = hub.open_files_limit()
        reserve = 64  # the hub's own files: PostgreSQL connections, its log, the listening socket, …
        target = min(len(self.conn_tokens), limit - hub.open_files() - reserve)
        log(f"[connections] ramp to {target:,} idle sockets (distinct accounts and tokens; hub open-file limit "
            f"{limit:,}) in steps of {s.conn_step:,}, hold {s.conn_hold_s:g} s, then ping every one")
        warm, _ = await self.idle_workers(hub.ws_url, 20, 1, self.unit_tokens)
        self.stop_workers(warm)
        await asyncio.sleep(1.0)
        base_rss = rss_bytes(hub.pid)
        base_kernel = sockstat_bytes()
        base_slab = socket_slab_bytes()
        t0 = time.monotonic()
        cpu0 = cpu_seconds(hub.pid)
        ws: list[Worker] = []
        opened = 0
        stop_reason = "the open-file limit" if target < len(self.conn_tokens) else "the accounts prepared"
        while opened < target:
            n = min(s.conn_step, target - opened)
            w = self.worker("raw_sockets", hub.ws_url, self.conn_tokens[opened:opened + n], "idle", None,
                            name=f"idle-{len(ws)}")
            ws.append(w)
            reply = await w.recv(timeout=600)
            opened += n
            log(f"   {opened:,} sockets: {reply[1]:,} caught up in this step, {reply[2]} failed; hub files "
                f"{hub.open_files():,}, RSS {rss_bytes(hub.pid) / 2**20:,.0f} MiB")
            if reply[2]:
                stop_reason = f"the first failure ({reply[3]})"
                break
        took = time.monotonic() - t0
        statuses = await gather_calls(ws, ("status",), 60)
        connected = sum(st[1] for st in statuses)
        self.record("connections_max", connected, f"(ramp ended by {stop_reason}; {took:.1f} s to connect, hub CPU "
                    f"{cpu_seconds(hub.pid) - cpu0:.1f} s)")
        log(f"   holding {connected:,} sockets for {s.conn_hold_s:g} s")
        await asyncio.sleep(s.conn_hold_s)
        rss = rss_bytes(hub.pid)
        n_kernel, kernel = kernel_socket_bytes(hub.port)
        if kernel < 0:  # half of the machine's TCP memory growth: both ends of each loopback connection count
            n_kernel, kernel = connected, max(0, sockstat_bytes() - base_kernel) // 2
        # the sockets' kernel objects: half of the machine-wide growth (the client ends are on this machine too)
        slab = max(0, socket_slab_bytes() - base_slab) // 2
        self.extra["hub_kernel_socket_buffers_kb"] = round(kernel / 1024, 1)
        self.extra["hub_kernel_socket_objects_kb"] = round(slab / 1024, 1)
        kernel += slab
        statuses = await gather_calls(ws, ("status",), 60)
        still_open = sum(st[4] for st in statuses)
        pings = await gather_calls(ws, ("ping", 30.0), 240)
        answered = sum(p[1] for p in pings)
        closed: Counter[str] = Counter()
        for st in statuses:
            closed.update(st[5])
        kb = (rss - base_rss + kernel) / max(1, connected) / 1024
        self.extra["open_files_limit"] = limit
        self.extra["connect_rate_per_s"] = round(connected / took, 1)
        self.extra["hub_rss_mb_idle"] = round(rss / 2**20, 1)
        self.extra["hub_rss_mb_base"] = round(base_rss / 2**20, 1)
        self.extra["hub_kernel_socket_kb"] = round(kernel / 1024, 1)
        self.extra["kernel_tcp_mem_delta_mb_all_sockets"] = round((sockstat_bytes() - base_kernel) / 2**20, 1)
        self.record("connections", answered,
                    f"({answered:,} of {connected:,} answered a ping after {s.conn_hold_s:g} s; {still_open:,} open; "
                    f"closed by the hub {dict(closed) or 0})")
        self.record("kb_per_conn", kb, f"(hub RSS {base_rss / 2**20:.0f} → {rss / 2**20:.0f} MiB + kernel "
                    f"{kernel / 2**20:.1f} MiB: buffers of {n_kernel:,} sockets {(kernel - slab) / 2**20:.1f}, "
                    f"socket objects {slab / 2**20:.1f})")
        # Keep `fanout_idle` of them for the fan-out latency and the calls runs.
        keep, kept = [], 0
        for w, st in zip(ws, statuses, strict=True):
            if kept < s.fanout_idle:
                keep.append(w)
                kept += st[4]
        self.stop_workers([w for w in ws if w not in keep])
        self.extra["hub_busy_after_disconnects_s"] = round(await self.settle(hub.pid, "the disconnects"), 1)
        self.idle_kept, self.idle_kept_n = keep, kept

    async def churn(self, hub: Hub) -> None:
        """Sockets coming and going (phones reconnecting all day, compressed): rounds of ``churn_sockets`` idle
        sockets opened, caught up and closed; the hub's RSS once it is idle after each round. Flat after the first
        round: a closed socket leaves nothing behind (``server.gc_thresholds`` only delays when its cycles go)."""
        s = self.s
        tokens = self.conn_tokens
        log(f"[churn] {s.churn_rounds} rounds of {s.churn_sockets:,} sockets opened, caught up and closed")
        rss: list[int] = []
        cpu0 = cpu_seconds(hub.pid)
        for _ in range(s.churn_rounds):
            ws, _caught = await self.idle_workers(hub.ws_url, s.churn_sockets, 1, tokens)
            self.stop_workers(ws)
            await self.settle(hub.pid, "the disconnects")
            rss.append(rss_bytes(hub.pid))
        self.extra["churn_rss_mb"] = [round(r / 2**20, 1) for r in rss]
        self.record("churn_rss_growth_mb", (rss[-1] - rss[0]) / 2**20,
                    f"(hub RSS after each round {', '.join(f'{r / 2**20:.0f}' for r in rss)} MiB; hub CPU "
                    f"{cpu_seconds(hub.pid) - cpu0:.1f} s)")

    async def ensure_idle(self, hub: Hub) -> None:
        if not self.idle_kept:  # the connections scenario did not run: connect the idle sockets here
            self.idle_kept, self.idle_kept_n = await self.idle_workers(
                hub.ws_url, self.s.fanout_idle, max(1, math.ceil(self.s.fanout_idle / self.s.conn_step)),
                self.unit_tokens)

    async def fanout_latency(self, hub: Hub) -> None:
        s = self.s
        await self.ensure_idle(hub)
        tids = self.tids[: s.p99_townships]
        socks = [(self.tokens[f"{dep}{n}.{self.code[tid]}"], f"{tid}:{dep}:{n}")
                 for tid in tids for dep in DEPARTMENTS for n in range(1, s.p99_liaisons + 1)]
        log(f"[fanout] {len(socks)} liaison HubClients, {self.idle_kept_n:,} idle sockets, "
            f"{s.p99_rate:g} calls/s for {s.p99_seconds:g} s")
        procs = 2
        hw = [self.worker("hub_clients", hub.url, socks[i::procs], name=f"hubclients-{i}") for i in range(procs)]
        replies = await asyncio.gather(*(w.recv(timeout=400) for w in hw))
        await self.settle(hub.pid, "the HubClients connected")
        ok = sum(r[1] for r in replies)
        if ok != len(socks):
            log(f"   only {ok}/{len(socks)} HubClients caught up")
        out = await self.creator_w.call("paced", {"rate": s.p99_rate, "duration": s.p99_seconds, "tids": tids,
                                                  "pairs": PAIRS, "seed": 7}, timeout=s.p99_seconds + 120)
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
                    f"({len(lat_commit)} calls × {2 * s.p99_liaisons} liaison sockets, {self.idle_kept_n:,} idle "
                    f"sockets, p50 {pct(lat_commit, 50):.1f}, max {max(lat_commit, default=float('nan')):.1f}; "
                    f"{missing} incomplete, errors {errs or 0})")
        self.record("fanout_p999_ms", pct(lat_commit, 99.9) if not missing else 10_000.0)
        self.stop_workers(hw)
        await self.settle(hub.pid, "the disconnects")

    async def calls_per_s(self, hub: Hub) -> None:
        """Closed loop at the maximum rate: CPU per call of hub, PostgreSQL and generator; then paced at 80% of
        that rate: the fan-out p99 there."""
        s = self.s
        await self.ensure_idle(hub)
        socks = [self.tokens[f"{dep}1.{code}"] for _, code in self.townships for dep in DEPARTMENTS]
        log(f"[calls] pipelined raw HTTP/1.1, {s.calls_concurrency} in flight for {s.calls_seconds:g} s; "
            f"{len(socks)} liaison sockets record deliveries; {self.idle_kept_n:,} idle sockets")
        ws = [self.worker("raw_sockets", hub.ws_url, socks[i::2], "record", None, name=f"record-{i}")
              for i in range(2)]
        replies = await asyncio.gather(*(w.recv(timeout=120) for w in ws))
        if sum(r[1] for r in replies) != len(socks):
            log(f"   only {sum(r[1] for r in replies)} of {len(socks)} liaison sockets caught up")
        gens = [self.creator_w, *ws]
        cpu_hub0, cpu_pg0 = cpu_seconds(hub.pid), pg_cpu(self.pgdata)
        cpu_gen0 = sum(cpu_seconds(w.pid) for w in gens)
        t0 = time.monotonic()
        out = await self.creator_w.call("closed", {"duration": s.calls_seconds, "concurrency": s.calls_concurrency,
                                                   "tids": self.tids, "pairs": PAIRS, "seed": 11},
                                        timeout=s.calls_seconds + 120)
        wall = time.monotonic() - t0
        created, errs, t_start = out[1], Counter(out[2]), out[3]
        recs = await self._collect_deliveries(ws, len(created) * 2)
        cpu_hub = cpu_seconds(hub.pid) - cpu_hub0
        cpu_pg = pg_cpu(self.pgdata) - cpu_pg0
        cpu_gen = sum(cpu_seconds(w.pid) for w in gens) - cpu_gen0
        delivered, lat = self._deliveries(created, recs)
        t_end = max((t for t in lat.values()), default=t_start + 1)
        rate = len(delivered) / ((t_end - t_start) / 1000)
        n = max(1, len(created))
        self.extra["calls_cpu_s"] = {"hub": round(cpu_hub, 2), "postgres": round(cpu_pg, 2),
                                     "generators": round(cpu_gen, 2), "wall": round(wall, 1)}
        self.record("calls_per_s", rate,
                    f"({len(delivered):,} of {len(created):,} calls delivered to both departments in "
                    f"{(t_end - t_start) / 1000:.1f} s; errors {dict(errs) or 0}; CPU s hub {cpu_hub:.1f}, "
                    f"PostgreSQL {cpu_pg:.1f}, generators {cpu_gen:.1f} over {wall:.1f} s wall)")
        self.record("hub_cpu_ms_per_call", 1000 * cpu_hub / n)
        self.record("pg_cpu_ms_per_call", 1000 * cpu_pg / n)
        self.record("gen_cpu_ms_per_call", 1000 * cpu_gen / n)
        await self.settle(hub.pid, "the closed loop")
        paced = max(1.0, 0.8 * rate)
        log(f"[calls] paced at 80% of that: {paced:.0f} calls/s for {s.calls_seconds:g} s")
        out = await self.creator_w.call("paced", {"rate": paced, "duration": s.calls_seconds, "tids": self.tids,
                                                  "pairs": PAIRS, "seed": 12}, timeout=s.calls_seconds + 120)
        created = out[1]
        recs = await self._collect_deliveries(ws, len(created) * 2)
        delivered, _ = self._deliveries(created, recs)
        at_of = {r[0]: r[1] for r in recs}
        last: dict[str, float] = {}
        for call_id, _at, t_arr in recs:
            last[call_id] = max(last.get(call_id, 0.0), t_arr)
        lat_ms = [last[c[0]] - at_of[c[0]] for c in delivered]
        missing = len(created) - len(delivered)
        p99 = pct(lat_ms, 99) if not missing else max(pct(lat_ms, 99), 10_000.0)
        self.record("fanout_p99_at_80pct_ms", p99,
                    f"({len(delivered):,} of {len(created):,} calls at {paced:.0f}/s, 2 liaison sockets each; p50 "
                    f"{pct(lat_ms, 50):.1f}; errors {out[2] or 0})")
        self.stop_workers(ws)

    async def _collect_deliveries(self, ws: list[Worker], want: int) -> list[Any]:
        deadline = time.monotonic() + 30
        recs: list[Any] = []
        while time.monotonic() < deadline:
            for reply in await gather_calls(ws, ("collect",), 60):
                recs.extend(reply[1])
            if len(recs) >= want:
                break
            await asyncio.sleep(0.5)
        return recs

    @staticmethod
    def _deliveries(created: list[Any], recs: list[Any]) -> tuple[list[Any], dict[str, float]]:
        per_call = Counter(r[0] for r in recs)
        last: dict[str, float] = {}
        for call_id, _at, t_arr in recs:
            last[call_id] = max(last.get(call_id, 0.0), t_arr)
        delivered = [c for c in created if per_call.get(c[0], 0) >= 2]
        return delivered, {c[0]: last[c[0]] for c in delivered}

    async def frames(self, hub: Hub) -> None:
        """Server CPU per delivered frame, the hub ÷ a bare ``websockets`` ``broadcast()`` server: the same
        harness, compression off on both servers and on every client."""
        s = self.s
        yiqiao = self.tid_of("yiqiao")
        ops = [self.tokens["op1.yiqiao"], self.tokens["op2.yiqiao"]]
        per_client = 3 * s.ratio_calls
        log(f"[frames] {s.ratio_clients:,} operator sockets, {s.ratio_calls} calls → {per_client} events each; "
            "no compression anywhere")
        ws, caught = await self.idle_workers(hub.ws_url, s.ratio_clients, s.ratio_procs, ops, mode="count")
        await self.settle(hub.pid, "the operator sockets connected")
        await gather_calls(ws, ("reset",), 30)
        cpu0 = cpu_seconds(hub.pid)
        t_start = time.time() * 1000
        self.creator_w.send("count", {"n": s.ratio_calls, "tids": [yiqiao], "pairs": [("police", "fire")],
                                      "concurrency": 4})
        shares = [s.ratio_clients // s.ratio_procs + (1 if i < s.ratio_clients % s.ratio_procs else 0)
                  for i in range(s.ratio_procs)]
        got = await asyncio.gather(*(w.call("expect", n * per_client, 300, timeout=320)
                                     for w, n in zip(ws, shares, strict=True)))
        await self.creator_w.recv()
        await self.settle(hub.pid, "the burst")
        hub_cpu = cpu_seconds(hub.pid) - cpu0
        events = sum(g[1] for g in got)
        nbytes = sum(g[2] for g in got)
        t_last = max(g[4] for g in got)
        hub_rate = events / ((t_last - t_start) / 1000)
        frame_size = round(nbytes / max(1, events))
        self.stop_workers(ws)
        await self.settle(hub.pid, "the operator sockets left")
        log(f"   hub: {events:,}/{caught * per_client:,} events in {(t_last - t_start) / 1000:.2f} s = "
            f"{hub_rate:,.0f}/s, frames {frame_size} B, hub CPU {hub_cpu:.2f} s")

        port = free_port()
        bare = self.worker("bare_server", port, None, name="bare")
        await bare.recv()
        ws, _ = await self.idle_workers(f"ws://127.0.0.1:{port}", s.ratio_clients, s.ratio_procs, ["-"],
                                        mode="count")
        import msgpack

        pad = msgpack.packb({"type": "event", "pad": ""}, use_bin_type=True)
        frame = msgpack.packb({"type": "event", "pad": "x" * max(0, frame_size - len(pad) - 2)}, use_bin_type=True)
        cpu0 = cpu_seconds(bare.pid)
        t_start = time.time() * 1000
        bare.send("broadcast", [frame] * per_client)
        got = await asyncio.gather(*(w.call("expect", n * per_client, 300, timeout=320)
                                     for w, n in zip(ws, shares, strict=True)))
        await bare.recv()
        await asyncio.sleep(0.5)
        bare_cpu = cpu_seconds(bare.pid) - cpu0
        events_b = sum(g[1] for g in got)
        t_last = max(g[4] for g in got)
        bare_rate = events_b / ((t_last - t_start) / 1000)
        log(f"   bare websockets broadcast(): {events_b:,} events ({len(frame)} B) in {(t_last - t_start) / 1000:.2f}"
            f" s = {bare_rate:,.0f}/s, server CPU {bare_cpu:.2f} s")
        self.stop_workers([*ws, bare])
        ok = events == caught * per_client and caught == s.ratio_clients and events_b == events
        hub_us, bare_us = 1e6 * hub_cpu / max(1, events), 1e6 * bare_cpu / max(1, events_b)
        self.extra["hub_cpu_us_per_frame"] = round(hub_us, 2)
        self.extra["bare_cpu_us_per_frame"] = round(bare_us, 2)
        self.extra["hub_events_per_s"] = round(hub_rate)
        self.extra["bare_events_per_s"] = round(bare_rate)
        incomplete = "" if ok else f"; INCOMPLETE: hub {events:,}, bare {events_b:,} of {caught * per_client:,}"
        self.record("frame_cpu_ratio", hub_us / bare_us if ok else float("nan"),
                    f"(hub {hub_us:.1f} µs ÷ bare {bare_us:.1f} µs of server CPU per delivered frame, {caught:,} "
                    f"clients; the hub's includes committing the {s.ratio_calls} calls{incomplete})")
        self.record("fanout_ratio", hub_rate / bare_rate if ok else float("nan"),
                    f"(hub {hub_rate:,.0f}/s ÷ bare {bare_rate:,.0f}/s, no compression)")

    async def resume_many(self, hub: Hub) -> Hub:
        """``resume_clients`` sockets (distinct operator accounts over the townships) note their cursors and
        leave; each township gets ``resume_missed`` events; the hub restarts; every socket reconnects at once."""
        s = self.s
        per_proc = math.ceil(s.resume_clients / 2)
        log(f"[resume] {s.resume_clients:,} sockets, {s.resume_missed} missed events each, resuming at once after a "
            "hub restart")
        ws = [self.worker("resume_sockets", hub.ws_url, self.resume_tokens[i:i + per_proc], name=f"resume-{i}")
              for i in range(0, s.resume_clients, per_proc)]
        replies = await asyncio.gather(*(w.recv(timeout=300) for w in ws))
        ready = sum(r[1] for r in replies)
        if ready != s.resume_clients:
            log(f"   only {ready} of {s.resume_clients} noted their cursors: {[r[2] for r in replies]}")
        n_calls = math.ceil(s.resume_missed / 3)  # call.created + 2 × assignment.dispatched
        for tid in self.tids:
            out = await self.creator_w.call("count", {"n": n_calls, "tids": [tid], "pairs": [("police", "fire")],
                                                      "concurrency": 4}, timeout=300)
            if out[2]:
                log(f"   creation errors: {out[2]}")
        self.stop_workers([self.creator_w])
        self.stop_hub(hub)
        hub = self.hub(self.dsn, "restarted")
        ready_s = await hub.ready()
        got = await asyncio.gather(*(w.call("resume", hub.ws_url, timeout=300) for w in ws))
        t0 = min(g[1] for g in got)
        results = [r for g in got for r in g[2]]
        errors: Counter[str] = Counter()
        for g in got:
            errors.update(g[3])
        events = [r[1] for r in results]
        resyncs = sum(r[2] for r in results)
        t_last = max((r[0] for r in results), default=float("nan"))
        complete = len(results) == s.resume_clients and min(events, default=0) >= s.resume_missed and not resyncs
        self.extra["resume_1000_events"] = sum(events)
        self.record("resume_1000_clients_s", (t_last - t0) / 1000 if complete else float("nan"),
                    f"({len(results):,} of {s.resume_clients:,} caught up; events each min {min(events, default=0)}, "
                    f"max {max(events, default=0)}; {resyncs} resyncs; errors {dict(errors) or 0}; hub restarted, "
                    f"ready in {ready_s:.2f} s)")
        self.stop_workers(ws)
        return hub
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
        """The hub's own create-call transaction replayed from raw asyncpg (scripts/bench_lib/replay.py) on as
        many connections as the hub's pool (10) across the same townships; and the WAL-flush floor."""
        from scripts.bench_lib import gen, replay

        s = self.s
        dsn = with_database(self.admin_dsn, "bench_ceiling")
        concurrency = 10  # dispatch.web.app.create_app's pool_size: the hub's own concurrency at the database
        log(f"[ceiling] recording the hub's create-call transaction in {len(self.tids)} townships, replaying it on "
            f"{concurrency} connections for {s.ceiling_seconds:g} s")
        templates, numbers, heads = await replay.record(dsn, self.tids, gen.call_body(("police", "fire"), 1))
        statements = len(next(iter(templates.values())))
        cpu0: list[float] = []

        def started() -> None:
            cpu0[:] = [pg_cpu(self.pgdata), cpu_seconds(os.getpid())]
        done, wall, errors = await replay.replay(dsn, templates, numbers, heads, concurrency, s.ceiling_seconds,
                                                  started)
        cpu_pg, cpu_me = pg_cpu(self.pgdata) - cpu0[0], cpu_seconds(os.getpid()) - cpu0[1]
        self.extra["ceiling_statements_per_call"] = statements
        self.extra["ceiling_pg_cpu_ms_per_call"] = round(1000 * cpu_pg / max(1, done), 3)
        self.extra["ceiling_client_cpu_ms_per_call"] = round(1000 * cpu_me / max(1, done), 3)
        self.record("commit_ceiling_per_s", done / wall,
                    f"({done:,} create-call transactions of {statements} statements in {wall:.1f} s on {concurrency} "
                    f"connections; PostgreSQL {1000 * cpu_pg / max(1, done):.2f} ms CPU each, replaying client "
                    f"{1000 * cpu_me / max(1, done):.2f} ms; errors {errors or 0}; fsync={self.extra['fsync']}, "
                    f"synchronous_commit={self.extra['synchronous_commit']})")
        conn = await asyncpg.connect(dsn)
        await conn.execute("create table bench_commit_floor (id bigserial primary key, at timestamptz not null,"
                           " payload text not null)")
        await conn.close()
        rates = {}
        for n in (1, 10):
            conns = [await asyncpg.connect(dsn) for _ in range(n)]
            end = time.monotonic() + s.ceiling_seconds / 2
            counts = [0] * n

            async def lane(i: int, c: asyncpg.Connection, end: float = end, counts: list[int] = counts) -> None:
                while time.monotonic() < end:
                    await c.execute("insert into bench_commit_floor (at, payload) values (now(), $1)", "x" * 200)
                    counts[i] += 1
            t0 = time.monotonic()
            await asyncio.gather(*(lane(i, c) for i, c in enumerate(conns)))
            rates[n] = sum(counts) / (time.monotonic() - t0)
            for c in conns:
                await c.close()
        self.extra["wal_flush_floor_1conn_per_s"] = round(rates[1])
        self.record("wal_flush_floor_per_s", rates[10],
                    f"(autocommit one-row insert on 10 connections; 1 connection {rates[1]:,.0f}/s)")

    async def sla(self) -> None:
        """A dedicated hub on a copy of the county holding ``sla_deadlines`` open deadlines, all inside its arming
        window: ``sla_overdue`` overdue at spawn (start-up), a steady ``sla_steady_rate``/s stream, then a burst of
        ``sla_burst`` due in the same second while calls are created at ``sla_burst_rate``/s. Lateness as a client
        sees it: the escalation's arrival on the target department's liaison socket − the deadline."""
        s = self.s
        from dispatch.core.records import Call
        from dispatch.core.transitions import AssignmentState, CallState

        dsn = with_database(self.admin_dsn, "bench_sla")
        conn = await asyncpg.connect(dsn)
        try:
            sample = json.loads(await conn.fetchval(
                "select doc::text from calls where jsonb_array_length(doc->'assignments') = 2"
                " order by (state = 'dispatched') desc limit 1"))
        finally:
            await conn.close()
        call0 = dataclasses.replace(Call.from_dict(sample), state=CallState.DISPATCHED, closed_at=None)
        a0 = [dataclasses.replace(a, state=AssignmentState.DISPATCHED, acknowledged_at=None, on_scene_at=None,
                                  reported_at=None, accepted_at=None, closed_at=None, result=None,
                                  levels={"ack": 0, "arrive": 0, "resolve": 0})
              for a in call0.assignments.values()]
        n_steady = int(s.sla_steady_rate * s.sla_steady_s)
        log(f"[sla] {s.sla_deadlines:,} open deadlines inside a {s.sla_horizon_s:g} s arming window: {s.sla_overdue:,} "
            f"overdue at spawn, {n_steady:,} due at {s.sla_steady_rate:g}/s, {s.sla_burst:,} due in one second "
            f"during {s.sla_burst_rate:g} calls/s, the rest later in the window")

        def build(i: int, dues: tuple[dt.datetime, dt.datetime], created: dt.datetime,
                  ids: list[uuid.UUID]) -> tuple[tuple[Any, ...], list[tuple[Any, ...]]]:
            cid = uuid.uuid4()
            tid = self.tids[i % len(self.tids)]
            asg = {}
            arows = []
            for a, due in zip(a0, dues, strict=True):
                aid = uuid.uuid4()
                ids.append(aid)
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
            return crow, arows

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

        # Deadlines relative to the planned spawn: written last, just before the hub starts.
        spawn = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=3 + s.sla_deadlines / 2_000)
        sec = dt.timedelta(seconds=1)
        w0 = spawn + s.sla_lead_s * sec
        w1 = w0 + s.sla_steady_s * sec
        b0 = w1 + 5 * sec
        groups: dict[str, list[dt.datetime]] = {
            "overdue": [spawn - (1 + 29 * j / max(1, s.sla_overdue)) * sec for j in range(s.sla_overdue)],
            "steady": [w0 + (j / s.sla_steady_rate) * sec for j in range(n_steady)],
            "burst": [b0 + (j / max(1, s.sla_burst)) * sec for j in range(s.sla_burst)],
        }
        n_rest = s.sla_deadlines - sum(len(v) for v in groups.values())
        far0, far1 = b0 + 120 * sec, spawn + (s.sla_horizon_s - 300) * sec
        groups["rest"] = [far0 + (far1 - far0) * (j / max(1, n_rest)) for j in range(n_rest)]
        ids: dict[str, list[uuid.UUID]] = {k: [] for k in groups}
        created = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=15)
        conn = await asyncpg.connect(dsn)
        try:
            i = 0
            for name, dues in groups.items():
                calls, asgs = [], []
                for k in range(0, len(dues) - 1, 2):
                    crow, arows = build(i, (dues[k], dues[k + 1]), created, ids[name])
                    i += 1
                    calls.append(crow)
                    asgs += arows
                    if len(calls) == 5_000:
                        await insert(conn, calls, asgs)
                        calls, asgs = [], []
                if calls:
                    await insert(conn, calls, asgs)
            await conn.execute("analyze assignments")
            open_total = await conn.fetchval("select count(*) from assignments where next_due is not null")
            late_start = (dt.datetime.now(dt.UTC) - spawn).total_seconds()
            if late_start > 0:
                log(f"   (writing took {late_start:.1f} s longer than planned: the lead shrinks by as much)")
            await asyncio.sleep(max(0.0, (spawn - dt.datetime.now(dt.UTC)).total_seconds()))
            in_window = await conn.fetchval("select count(*) from assignments where next_due > now() and "
                                            "next_due <= now() + $1::float8 * interval '1 second'", s.sla_horizon_s)
        finally:
            await conn.close()
        hub = self.hub(dsn, "sla", {"horizon_s": f"{s.sla_horizon_s:.1f}"})
        t_spawn = dt.datetime.fromtimestamp(hub.t_spawn, dt.UTC)
        ready_s = await hub.ready()
        log(f"   {open_total:,} open deadlines ({in_window:,} inside the window, to be armed at start); hub ready "
            f"{ready_s:.2f} s after spawn")
        socks = [self.tokens[f"{dep}1.{code}"] for _, code in self.townships for dep in DEPARTMENTS]
        ws = [self.worker("raw_sockets", hub.ws_url, socks[i::2], "escalations", None, name=f"esc-{i}")
              for i in range(2)]
        replies = await asyncio.gather(*(w.recv(timeout=120) for w in ws))
        lead = (w0 - dt.datetime.now(dt.UTC)).total_seconds()
        log(f"   {sum(r[1] for r in replies)} liaison sockets listening; {lead:.1f} s before the steady deadlines")
        if dt.datetime.now(dt.UTC) > w0:
            log("   WARNING: the liaison sockets connected after the first steady deadline")
        creator = self.worker("http_creator", "127.0.0.1", hub.port, self.minted_op_tokens, name="sla-creator")
        await creator.recv()
        await asyncio.sleep(max(0.0, (b0 - 5 * sec - dt.datetime.now(dt.UTC)).total_seconds()))
        # CPU over the burst's window (the calls created around it included), for details
        cpu0 = (cpu_seconds(hub.pid), pg_cpu(self.pgdata), time.monotonic())
        out = await creator.call("paced", {"rate": s.sla_burst_rate, "duration": 10.0, "tids": self.tids,
                                           "pairs": PAIRS, "seed": 3}, timeout=200)
        log(f"   {len(out[1])} calls created around the burst (errors {out[2] or 0})")
        # every measured escalation must arrive; wait for them (bounded)
        wanted = set(ids["steady"]) | set(ids["burst"])
        arrived: dict[str, float] = {}
        end = time.monotonic() + (120 if not self.quick else 30)
        while time.monotonic() < end:
            for reply in await gather_calls(ws, ("collect",), 60):
                for aid, _due, level, kind, t_arr in reply[1]:
                    if level == 1 and kind == "ack":
                        arrived[aid] = min(arrived.get(aid, t_arr), t_arr)
            if all(str(a) in arrived for a in wanted):
                break
            await asyncio.sleep(1.0)
        t_stop = time.time() * 1000
        window = (time.monotonic() - cpu0[2], cpu_seconds(hub.pid) - cpu0[0], pg_cpu(self.pgdata) - cpu0[1])
        self.extra["escalation_burst_window_s"] = round(window[0], 1)
        self.extra["escalation_burst_hub_cpu_s"] = round(window[1], 2)
        self.extra["escalation_burst_pg_cpu_s"] = round(window[2], 2)
        log(f"   burst window {window[0]:.1f} s (from 5 s before it, {len(out[1])} calls created meanwhile): hub CPU "
            f"{window[1]:.2f} s, PostgreSQL CPU {window[2]:.2f} s; load {os.getloadavg()[0]:.2f}")
        # and every overdue escalation committed (bounded: the start-up figure is then a lower bound)
        overdue_sql = ("select count(distinct assignment_id) from events where type = 'assignment.escalated' "
                       "and assignment_id = any($1::uuid[])")
        conn = await asyncpg.connect(dsn)
        try:
            end = time.monotonic() + (120 if not self.quick else 30)
            while time.monotonic() < end:
                if await conn.fetchval(overdue_sql, ids["overdue"]) >= len(ids["overdue"]):
                    break
                await asyncio.sleep(1.0)
        finally:
            await conn.close()
        t_overdue_stop = dt.datetime.now(dt.UTC)
        self.stop_workers([creator, *ws])
        self.stop_hub(hub)
        conn = await asyncpg.connect(dsn)
        try:
            rows = await conn.fetch("""
                select a.id, a.ack_due, min(pg_xact_commit_timestamp(e.xmin)) as committed
                  from assignments a
                  left join events e on e.assignment_id = a.id and e.type = 'assignment.escalated'
                                    and e.body->>'deadline_kind' = 'ack' and (e.body->>'level')::int = 1
                 where a.id = any($1::uuid[])
                 group by a.id, a.ack_due""", [*ids["overdue"], *ids["steady"], *ids["burst"]])
        finally:
            await conn.close()
        committed = {r["id"]: (r["committed"], r["ack_due"]) for r in rows}
        committed_due = {aid: due for g in ("steady", "burst") for aid, due in zip(ids[g], groups[g], strict=False)}

        def client_late(group: str) -> tuple[list[float], int]:
            late, missing = [], 0
            for aid in ids[group]:
                due_ms = committed_due[aid].timestamp() * 1000
                t = arrived.get(str(aid))
                if t is None:
                    missing += 1
                    t = t_stop
                late.append(t - due_ms)
            return late, missing

        steady, miss_s = client_late("steady")
        burst, miss_b = client_late("burst")
        self.extra["escalation_steady_n"] = len(steady)
        self.extra["escalation_burst_n"] = len(burst)
        self.record("escalation_steady_p99_ms", pct(steady, 99),
                    f"({len(steady):,} deadlines at {s.sla_steady_rate:g}/s among {open_total:,} open; p50 "
                    f"{pct(steady, 50):.1f}, max {max(steady, default=float('nan')):.0f}; {miss_s} never arrived)")
        self.record("escalation_burst_p99_ms", pct(burst, 99) if not miss_b else max(pct(burst, 99), 60_000.0),
                    f"({len(burst):,} due in one second during {s.sla_burst_rate:g} calls/s; p50 {pct(burst, 50):.0f}, "
                    f"max {max(burst, default=float('nan')):.0f}; {miss_b} never arrived)")
        to_commit = [(committed[a][0] - committed[a][1]).total_seconds() * 1000 for a in ids["steady"]
                     if committed.get(a, (None,))[0] is not None]
        # the burst split at the commit: written (commit − due), then delivered (arrival − commit)
        b_commit = [(committed[a][0] - committed[a][1]).total_seconds() * 1000 for a in ids["burst"]
                    if committed.get(a, (None,))[0] is not None]
        b_deliver = [arrived[str(a)] - committed[a][0].timestamp() * 1000 for a in ids["burst"]
                     if committed.get(a, (None,))[0] is not None and str(a) in arrived]
        self.extra["escalation_burst_commit_p99_ms"] = round(pct(b_commit, 99), 1)
        self.extra["escalation_burst_delivery_p99_ms"] = round(pct(b_deliver, 99), 1)
        log(f"   burst: commit − due p50 {pct(b_commit, 50):.0f}, p99 {pct(b_commit, 99):.0f} ms "
            f"({len(b_commit):,} committed); arrival − commit p50 {pct(b_deliver, 50):.0f}, "
            f"p99 {pct(b_deliver, 99):.0f} ms")
        self.record("escalation_late_p99_ms", pct(to_commit, 99),
                    f"({len(to_commit):,} of {len(ids['steady']):,} steady deadlines committed; commit − due, p50 "
                    f"{pct(to_commit, 50):.1f})")
        overdue = [committed[a][0] for a in ids["overdue"] if committed.get(a, (None,))[0] is not None]
        first = (min(overdue) - t_spawn).total_seconds() if overdue else float("nan")
        complete = len(overdue) == len(ids["overdue"])
        last = (max(overdue) - t_spawn).total_seconds() if complete else (t_overdue_stop - t_spawn).total_seconds()
        self.extra["startup_armed"] = in_window
        self.extra["startup_overdue_complete"] = complete
        self.extra["sla_hub_ready_s"] = round(ready_s, 3)
        self.record("startup_overdue_s", last,
                    f"(spawn → the last of {len(ids['overdue']):,} overdue escalations committed"
                    + ("" if complete else f"; INCOMPLETE: only {len(overdue):,} committed by the end, a lower bound")
                    + f"; {in_window:,} deadlines inside the window armed at start; /readyz at {ready_s:.2f} s)")
        self.record("rearm_100k_s", first, "(spawn → the first overdue escalation committed)")
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
            self.extra["scorecards_events"] = n_events
            self.extra["history_seconds"] = round(time.monotonic() - t0, 1)
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
                    # a plain recount from the event log itself, not from the facts the scorecards read
                    from_log = await c.fetchval("select count(*) from events where type = 'assignment.dispatched' "
                                                "and at >= $1 and at < $2 and body->>'target' not like 'unit:%'",
                                                period.start, period.end)
                if received != expected or received == 0:
                    raise RuntimeError(f"{key}: the scorecards count {received} assignments, the facts {expected}")
                self.extra[f"{key}_recount"] = {"scorecards": received, "facts": expected, "event_log": from_log}
                if from_log != received:
                    log(f"   {key}: the event log counts {from_log:,} dispatches in the period, the scorecards "
                        f"{received:,}")
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


    return {"cpu_model": cpu, "cores": os.cpu_count(), "memory_gib": round(mem / 2**30, 1),
            "python": platform.python_version(), "postgres": pg_version, "platform": platform.platform(),
            "open_files_hard_limit": resource.getrlimit(resource.RLIMIT_NOFILE)[1],
            "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}




async def main_async(args: argparse.Namespace) -> int:
    raise_nofile()
    only = set(args.only.split(",")) if args.only else set()
    bad = only - set(SCENARIOS) | ({args.profile} - set(SCENARIOS) if args.profile else set())
    if bad:
        raise SystemExit(f"unknown scenario(s) {sorted(bad)}; choose from {', '.join(SCENARIOS)}")
    sizes = QUICK if args.quick else FULL
    for item in args.set or []:
        key, _, value = item.partition("=")
        if key not in Sizes.__dataclass_fields__:
            raise SystemExit(f"--set {item}: no size {key!r}; sizes: {', '.join(Sizes.__dataclass_fields__)}")
        sizes = dataclasses.replace(sizes, **{key: type(getattr(sizes, key))(float(value))})
    bench = Bench(sizes, args.quick or sizes != FULL, args.keep, only, args.profile, Path(args.profile_dir),
                  args.pg_stats)
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
    keys = [k for k in goals.KEYS if not only or k in bench.results]
    results: dict[str, float | int] = {k: (round(bench.results[k], 3) if k in bench.results else float("nan"))
                                       for k in keys}
    for k in ("connections", "connections_max"):
        if k in results and math.isfinite(results[k]):
            results[k] = int(results[k])
    info = machine(getattr(bench, "pg_version", "?"))
    info["mode"] = "quick" if args.quick else ("full" if bench.s == FULL else "custom sizes")
    info["sizes"] = dataclasses.asdict(bench.s)
    info["only"] = sorted(only) or None
    info["seconds"] = round(time.monotonic() - t0, 1)
    print(goals.table(results, bench.extra | {"open_files_limit": info["open_files_hard_limit"]}, bench.notes,
                      args.quick, keys=keys), flush=True)
    if args.quick:
        print("--quick: small sizes; verdicts in brackets do not hold for the goals' conditions", flush=True)
    out = {"results": results,
           "goals": {f.key: (None if f.op is None else {"op": f.op, "value": f.goal}) for f in goals.FIGURES},
           "machine": info, "load": bench.load, "details": bench.extra, "notes": bench.notes}
    Path(args.output).write_text(json.dumps(out, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    print(f"machine: {info['cpu_model']}, {info['cores']} cores, {info['memory_gib']} GiB, Python {info['python']},"
          f" PostgreSQL {info['postgres']}; {info['seconds']} s; written to {args.output}", flush=True)
    print(json.dumps(results), flush=True)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="every scenario at small sizes (a couple of minutes)")
    parser.add_argument("--output", default=str(ROOT / "bench-results.json"), help="where the JSON goes")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs, data)")
    parser.add_argument("--set", action="append", metavar="SIZE=N",
                        help="override one size of the run (e.g. conn_max=5000); the run is then not a full one")
    parser.add_argument("--only", metavar="S[,S…]", help=f"run these scenarios only: {', '.join(SCENARIOS)}")
    parser.add_argument("--profile", metavar="SCENARIO", choices=SCENARIOS,
                        help="sample the hub(s) during this scenario (built-in sampler, scripts/bench_lib/profiler.py)")
    parser.add_argument("--pg-stats", metavar="SCENARIO", choices=SCENARIOS,
                        help="PostgreSQL's statements, WAL and table writes per created call during this scenario "
                             "(pg_stat_statements; scripts/bench_lib/pgstats.py) → PROFILE_DIR/SCENARIO-pg-stats.txt")
    parser.add_argument("--profile-dir", default=str(ROOT / "bench-profiles"), help="where --profile writes")
    parser.add_argument("--write-docs", nargs="?", const=str(ROOT / "bench-results.json"), metavar="RESULTS",
                        help="regenerate docs/PERFORMANCE.md's figures section from RESULTS (bench-results.json) "
                             "and exit; runs nothing")
    args = parser.parse_args()
    if args.write_docs:
        goals.write_docs(Path(args.write_docs), ROOT / "docs" / "PERFORMANCE.md")
        print(f"docs/PERFORMANCE.md: figures regenerated from {args.write_docs}")
        return 0
    import uvloop

    return uvloop.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
