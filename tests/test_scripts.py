"""The two commands a new user runs: ./scripts/run serves and stops cleanly; the CLI validates its input."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from tests.conftest import ROOT, free_port


def postgres_processes(data_dir: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(attrs=["name", "cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if proc.info["name"] == "postgres" and str(data_dir) in cmdline:
            found.append(proc)
    return found


def wait_healthy(url: str, proc: subprocess.Popen[str], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"scripts/run exited early with {proc.returncode}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)  # polling another process for readiness
    raise AssertionError("no /healthz answer in time")


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_scripts_run_serves_then_stops_without_leaving_postgres(tmp_path: Path, sig: signal.Signals) -> None:
    port = free_port()
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["XIANGHU_DATA"] = str(data)
    proc = subprocess.Popen([str(ROOT / "scripts" / "run"), "--port", str(port)], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_healthy(f"http://127.0.0.1:{port}", proc, 240)
        assert postgres_processes(data), "the embedded PostgreSQL should be running"
        ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
        assert ready.json()["status"] == "ready"
        proc.send_signal(sig)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out
    assert "/operator/" in out and "xianghu-demo" in out  # the banner with URLs and demo logins
    deadline = time.monotonic() + 10
    while postgres_processes(data) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert postgres_processes(data) == []


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dispatch.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, env={**os.environ, **(env or {})})


def test_check_config_names_the_bad_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    default = (ROOT / "dispatch" / "core" / "default.toml").read_text(encoding="utf-8")
    bad.write_text(default.replace("burst = 40", "burst = 0"), encoding="utf-8")
    res = run_cli("check-config", "--config", str(bad))
    assert res.returncode == 2
    assert "realtime.burst" in res.stderr and str(bad) in res.stderr
    assert run_cli("check-config").returncode == 0


def test_cli_rejects_bad_arguments() -> None:
    res = run_cli("serve", "--port", "99999")
    assert res.returncode == 2 and "99999" in res.stderr
    assert run_cli("--help").returncode == 0 and "verify-log" in run_cli("--help").stdout


def test_serve_refuses_a_database_that_is_not_migrated(pg_admin_dsn: str) -> None:
    import asyncio

    import asyncpg

    from tests.conftest import with_database

    async def make() -> None:
        c = await asyncpg.connect(pg_admin_dsn)
        await c.execute("drop database if exists t_empty")
        await c.execute("create database t_empty")
        await c.close()
    asyncio.run(make())
    res = subprocess.run([sys.executable, "-m", "dispatch.cli", "serve", "--port", str(free_port())], cwd=ROOT,
                         capture_output=True, text=True, timeout=60,
                         env={**os.environ, "DATABASE_URL": with_database(pg_admin_dsn, "t_empty")})
    assert res.returncode != 0
    assert "migrations pending" in res.stderr or "xianghu migrate" in res.stderr


def test_user_commands_add_change_password_and_disable(dsn: str) -> None:
    env = {"DATABASE_URL": dsn}
    added = run_cli("user", "add", "zhang.san", "--name", "张三", "--role", "liaison", "--township", "yiqiao",
                    "--department", "fire", "--password", "a-long-password", env=env)
    assert added.returncode == 0, added.stderr
    twice = run_cli("user", "add", "zhang.san", "--name", "张三", "--role", "operator", "--township", "yiqiao",
                    "--password", "a-long-password", env=env)
    assert twice.returncode == 2 and "already exists" in twice.stderr
    short = run_cli("user", "passwd", "zhang.san", "--password", "short", env=env)
    assert short.returncode == 2 and "at least 8" in short.stderr
    assert run_cli("user", "passwd", "zhang.san", "--password", "another-long-one", env=env).returncode == 0
    unknown_township = run_cli("user", "add", "li.si", "--name", "李四", "--role", "operator", "--township", "nowhere",
                               "--password", "a-long-password", env=env)
    assert unknown_township.returncode == 2 and "nowhere" in unknown_township.stderr
    assert run_cli("user", "disable", "zhang.san", env=env).returncode == 0
    assert run_cli("user", "disable", "nobody", env=env).returncode == 2


def test_embedded_postgres_stops_even_after_a_killed_run(tmp_path: Path) -> None:
    from dispatch.store.embedded import EmbeddedPostgres

    data = tmp_path / "pgdata"
    pg = EmbeddedPostgres(data, durable=False)
    pg.start()
    pg.stop()
    # A previous hub killed with -9 left its process id among the server's handles.
    (data / ".handle_pids.json").write_text("[999999]")
    pg.start()
    assert postgres_processes(data)
    pg.stop()
    deadline = time.monotonic() + 10
    while postgres_processes(data) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert postgres_processes(data) == []


def test_integration_commands_add_list_rotate_and_disable(dsn: str) -> None:
    env = {"DATABASE_URL": dsn}
    added = run_cli("integration", "add", "city-app", "--kind", "open311", "--name", "市民App",
                    "--township", "yiqiao", "--rate", "30", env=env)
    assert added.returncode == 0, added.stderr
    assert "api_key of city-app (shown this once" in added.stdout
    twice = run_cli("integration", "add", "city-app", "--kind", "hotline", "--name", "x", env=env)
    assert twice.returncode == 2 and "already exists" in twice.stderr
    listed = run_cli("integration", "list", env=env)
    assert listed.stdout.startswith("city-app\topen311\tenabled\tyiqiao\t30/min\t市民App")
    assert added.stdout.rsplit(" ", 1)[1].strip() not in listed.stdout  # the key is never shown again
    rotated = run_cli("integration", "rotate", "city-app", env=env)
    assert rotated.returncode == 0 and "api_key of city-app" in rotated.stdout
    assert run_cli("integration", "disable", "city-app", env=env).returncode == 0
    assert "\tDISABLED\t" in run_cli("integration", "list", env=env).stdout
    assert run_cli("integration", "disable", "nobody", env=env).returncode == 2
