"""``xianghu backup`` / ``xianghu restore`` (issue #17): the whole database through the embedded server's own
pg_dump and pg_restore; a restore into a fresh database holds the same events, verifies, and refuses to
overwrite a database that has tables unless told to."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from dispatch.store.pool import with_database
from tests.conftest import ROOT, Hub
from tests.helpers import new_call, post


def run_cli(*args: str, dsn: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dispatch.cli", *args], env={**os.environ, "DATABASE_URL": dsn},
                          cwd=ROOT, capture_output=True, text=True, timeout=120)


async def snapshot(dsn: str) -> tuple[int, int, list[tuple[int, int, bytes]]]:
    conn = await asyncpg.connect(dsn)
    try:
        events = await conn.fetchval("select count(*) from events")
        calls = await conn.fetchval("select count(*) from calls")
        heads = [(r["township_id"], r["seq"], bytes(r["hash"]))
                 for r in await conn.fetch("select township_id, seq, hash from township_heads order by 1")]
        return events, calls, heads
    finally:
        await conn.close()


@pytest.fixture
async def empty_dsn(pg_admin_dsn: str) -> AsyncIterator[str]:
    name = f"r_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(pg_admin_dsn)
    try:
        await admin.execute(f"create database {name}")
    finally:
        await admin.close()
    yield with_database(pg_admin_dsn, name)
    admin = await asyncpg.connect(pg_admin_dsn)
    try:
        await admin.execute(f"drop database if exists {name} with (force)")
    finally:
        await admin.close()


async def test_backup_then_restore_elsewhere_holds_the_same_verified_log(hub: Hub, dsn: str, empty_dsn: str,
                                                                        tmp_path: Path) -> None:
    async with await hub.login("op1.yiqiao") as op, await hub.login("op1.zhongdu") as other:
        await post(op, "/api/v1/calls", new_call(), expect=201)
        await post(other, "/api/v1/calls", new_call(address="中都街道"), expect=201)
    before = await snapshot(dsn)
    assert before[0] >= 6 and before[1] == 2
    file = tmp_path / "county.dump"
    made = run_cli("backup", str(file), dsn=dsn)
    assert made.returncode == 0, made.stderr
    assert f"the database held {before[0]} events and {before[1]} calls" in made.stdout
    assert file.stat().st_size > 0 and not file.with_name("county.dump.part").exists()

    restored = run_cli("restore", str(file), dsn=empty_dsn)
    assert restored.returncode == 0, restored.stderr
    assert f"{before[0]} events and {before[1]} calls; OK: every hash chain intact" in restored.stdout
    assert await snapshot(empty_dsn) == before  # same count, same chain heads
    verified = run_cli("verify-log", dsn=empty_dsn)
    assert verified.returncode == 0 and f"OK: {before[0]} events" in verified.stdout

    again = run_cli("restore", str(file), dsn=empty_dsn)
    assert again.returncode == 2 and "already has tables" in again.stderr and "--replace" in again.stderr
    replaced = run_cli("restore", "--replace", str(file), dsn=empty_dsn)
    assert replaced.returncode == 0, replaced.stderr
    assert await snapshot(empty_dsn) == before


async def test_a_file_that_is_not_a_backup_changes_nothing(dsn: str, tmp_path: Path) -> None:
    before = await snapshot(dsn)
    junk = tmp_path / "photo.dump"
    junk.write_bytes(b"\xff\xd8\xff\xe0 not a pg_dump archive")
    res = run_cli("restore", "--replace", str(junk), dsn=dsn)
    assert res.returncode == 2
    assert "pg_restore failed" in res.stderr and "input file" in res.stderr
    assert await snapshot(dsn) == before  # --replace drops nothing when the file cannot be read


def test_bad_arguments_are_named(tmp_path: Path) -> None:
    nowhere = "postgresql://nowhere.invalid/x"
    missing = run_cli("restore", str(tmp_path / "absent.dump"), dsn=nowhere)
    assert missing.returncode == 2 and "absent.dump" in missing.stderr and "does not exist" in missing.stderr
    bin_dir = run_cli("backup", "--pg-bin", str(tmp_path), str(tmp_path / "x.dump"), dsn=nowhere)
    assert bin_dir.returncode != 0


def test_the_password_goes_through_the_environment_not_the_command_line() -> None:
    from dispatch.cli.backup import Connection

    conn = Connection.from_dsn("postgresql://xianghu:s%40cret@db.example:6432/county?sslmode=require")
    assert conn.uri == "postgresql://xianghu@db.example:6432/county?sslmode=require"
    assert conn.env == {"PGPASSWORD": "s@cret"}
    local = Connection.from_dsn("postgresql://postgres:@/t_1?host=/tmp/pg")
    assert local.uri == "postgresql://postgres@/t_1?host=/tmp/pg" and local.env == {"PGPASSWORD": ""}
    with pytest.raises(Exception, match="DATABASE_URL"):
        Connection.from_dsn("mysql://x@y/z")
