import asyncpg
import pytest

from dispatch.store import pool as db
from protocols.errors import SchemaTooNew
from tests.conftest import with_database


async def test_fresh_database_gets_every_migration(pg_admin_dsn: str) -> None:
    admin = await asyncpg.connect(pg_admin_dsn)
    await admin.execute("drop database if exists t_fresh")
    await admin.execute("create database t_fresh")
    conn = await db.connect(with_database(pg_admin_dsn, "t_fresh"))
    try:
        applied = await db.migrate(conn)
        assert applied == list(range(1, db.code_version() + 1))
        assert await conn.fetchval("select count(*) from schema_migrations") == db.code_version()
        assert await db.schema_current(conn) == (True, "ok")
    finally:
        await conn.close()
        await admin.execute("drop database t_fresh with (force)")
        await admin.close()


async def test_migrate_is_idempotent(conn: asyncpg.Connection) -> None:
    assert await db.migrate(conn) == []
    assert await db.migrate(conn) == []


async def test_database_newer_than_code_is_refused(conn: asyncpg.Connection) -> None:
    newer = db.code_version() + 1
    await conn.execute("insert into schema_migrations (version, name) values ($1, 'from_the_future')", newer)
    with pytest.raises(SchemaTooNew, match=f"version {newer}"):
        await db.migrate(conn)
    ok, reason = await db.schema_current(conn)
    assert not ok and "newer" in reason


async def test_events_refuse_update_and_delete(conn: asyncpg.Connection) -> None:
    await conn.execute(
        "insert into events (township_id, seq, type, actor_role, actor_name, at, body, audience, prev_hash, hash)"
        " values (1, 1, 'call.noted', 'operator', 'x', now(), '{}', '{}', '', '\\x00')")
    with pytest.raises(asyncpg.RaiseError, match="append-only"):
        await conn.execute("update events set type = 'x'")
    with pytest.raises(asyncpg.RaiseError, match="append-only"):
        await conn.execute("delete from events")
    with pytest.raises(asyncpg.RaiseError, match="append-only"):
        await conn.execute("truncate events")


async def test_call_numbers_migration_keeps_existing_calls(pg_admin_dsn: str) -> None:
    """Calls numbered before the per-year counter keep their numbers; their phones become searchable."""
    admin = await asyncpg.connect(pg_admin_dsn)
    await admin.execute("drop database if exists t_numbers")
    await admin.execute("create database t_numbers")
    conn = await db.connect(with_database(pg_admin_dsn, "t_numbers"))
    try:
        await conn.execute(db.CREATE_MIGRATIONS_TABLE)
        before = [m for m in db.migrations() if m.version < 3]
        for mig in before:
            await conn.execute(mig.sql)
            await conn.execute(db.INSERT_APPLIED, mig.version, mig.name)
        tid = await conn.fetchval("insert into townships (code, name_zh, name_en) values ('yiqiao', '义桥镇', 'Yiqiao')"
                                  " returning id")
        await conn.execute(
            "insert into calls (id, township_id, number, state, category, priority, source, title, address,"
            " created_at, updated_at, last_seq, doc) values (gen_random_uuid(), $1, 'YIQIAO-0000019', 'closed',"
            " 'parking', 'normal', 'walk_in', 't', 'a', now(), now(), 19, $2)",
            tid, {"reporter_phone": "138-1234 5678"})
        applied = await db.migrate(conn)
        assert applied[0] == 3
        row = await conn.fetchrow("select number, reporter_digits from calls")
        assert (row["number"], row["reporter_digits"]) == ("YIQIAO-0000019", "13812345678")
        assert await conn.fetchval("select count(*) from call_numbers") == 0  # this year's numbers start at 1
    finally:
        await conn.close()
        await admin.execute("drop database t_numbers with (force)")
        await admin.close()
