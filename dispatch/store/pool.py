"""Connection pool and the migrations runner (numbered SQL files, one transaction each)."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from importlib import resources
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import orjson
from asyncpg.pool import PoolConnectionProxy

from protocols.errors import SchemaTooNew, Unavailable

Pool = asyncpg.Pool
# A plain connection or one borrowed from a pool: every store function accepts both.
Conn = asyncpg.Connection | PoolConnectionProxy

CREATE_MIGRATIONS_TABLE = """
create table if not exists schema_migrations (
    version    integer     primary key,
    name       text        not null,
    applied_at timestamptz not null default now()
)
"""
SELECT_APPLIED = "select version from schema_migrations order by version"
INSERT_APPLIED = "insert into schema_migrations (version, name) values ($1, $2)"
# Serialises concurrent `migrate` runs (two nodes starting at once).
MIGRATION_LOCK = "select pg_advisory_xact_lock(7420190001)"

# Seconds a client is told to wait before retrying while the database is unreachable.
RETRY_AFTER_S = 1.0
# What asyncpg raises when the server is gone, restarting or refusing connections (not a bad query).
_UNREACHABLE: tuple[type[BaseException], ...] = (
    OSError, TimeoutError, asyncpg.PostgresConnectionError, asyncpg.ConnectionDoesNotExistError,
    asyncpg.exceptions.OperatorInterventionError,
)


def unreachable(exc: BaseException) -> bool:
    """True when ``exc`` means the database cannot be reached now (retry later), not a fault of the query;
    also for the ``Unavailable`` the write path raises in its place."""
    return isinstance(exc, (*_UNREACHABLE, Unavailable))


def unavailable(exc: BaseException) -> Unavailable:
    """The client-facing error for an unreachable database, with a retry hint."""
    return Unavailable(f"database unavailable ({type(exc).__name__}); retry in {RETRY_AFTER_S:g} s",
                       retry_after=RETRY_AFTER_S)


_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def migrations() -> list[Migration]:
    """The migrations shipped with the code, in order."""
    found = []
    for entry in resources.files("dispatch.store.migrations").iterdir():
        m = _NAME.match(entry.name)
        if m:
            found.append(Migration(int(m.group(1)), m.group(2), entry.read_text(encoding="utf-8")))
    found.sort(key=lambda mig: mig.version)
    versions = [mig.version for mig in found]
    if versions != list(range(1, len(found) + 1)):
        raise RuntimeError(f"migration numbers must run 1..n without gaps, found {versions}")
    return found


def code_version() -> int:
    return len(migrations())


async def applied_versions(conn: Conn) -> list[int]:
    exists = await conn.fetchval("select to_regclass('schema_migrations') is not null")
    if not exists:
        return []
    return [r["version"] for r in await conn.fetch(SELECT_APPLIED)]


async def check_not_newer(conn: Conn) -> None:
    applied = await applied_versions(conn)
    newest = max(applied, default=0)
    if newest > code_version():
        raise SchemaTooNew(
            f"database schema is at version {newest} but this code knows only up to {code_version()}: "
            "upgrade Xianghu before starting it against this database"
        )


async def migrate(conn: Conn) -> list[int]:
    """Apply what is missing; return the versions applied now. Idempotent."""
    await conn.execute(CREATE_MIGRATIONS_TABLE)
    done: list[int] = []
    async with conn.transaction():
        await conn.execute(MIGRATION_LOCK)
        await check_not_newer(conn)
        already = set(await applied_versions(conn))
    for mig in migrations():
        if mig.version in already:
            continue
        async with conn.transaction():
            await conn.execute(MIGRATION_LOCK)
            if mig.version in set(await applied_versions(conn)):
                continue
            await conn.execute(mig.sql)
            await conn.execute(INSERT_APPLIED, mig.version, mig.name)
        done.append(mig.version)
    return done


async def schema_current(conn: Conn) -> tuple[bool, str]:
    applied = await applied_versions(conn)
    newest, want = max(applied, default=0), code_version()
    if newest == want:
        return True, "ok"
    if newest > want:
        return False, f"database schema {newest} is newer than the code ({want})"
    return False, f"migrations pending: database at {newest}, code at {want}"


# What the json module does not encode either (no ``default``) is left to it, to refuse as before.
_ORJSON_AS_JSON = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


class JsonText(str):
    """A json/jsonb parameter already encoded (``json_text``): the codec passes it on as it is."""

    __slots__ = ()


def json_text(value: Any) -> JsonText:
    """``value`` encoded for a json/jsonb parameter by orjson, several times faster than the json module on the
    write path's documents (docs/PERFORMANCE.md); what orjson refuses (a key that is not a string, an integer
    beyond 64 bits) by the json module, as before. Only for documents whose floats are finite (the domain's:
    coordinates are bounded): orjson writes NaN as null where the json module writes a token PostgreSQL refuses."""
    try:
        return JsonText(orjson.dumps(value, option=_ORJSON_AS_JSON).decode())
    except TypeError:
        return JsonText(_json_text(value))


def _json_text(value: Any) -> str:
    if type(value) is JsonText:
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


async def _init_connection(conn: Conn) -> None:
    for typename in ("json", "jsonb"):
        await conn.set_type_codec(typename, encoder=_json_text, decoder=json.loads, schema="pg_catalog")


def _jsonb_binary(value: Any) -> bytes:
    return b"\x01" + _json_text(value).encode()  # jsonb's binary form: a version byte, then the text


def _jsonb_from_binary(data: bytes) -> Any:
    return json.loads(data[1:])


@contextlib.asynccontextmanager
async def binary_jsonb(conn: Conn) -> AsyncIterator[None]:
    """The binary form of jsonb on ``conn`` for a while: COPY (``copy_records_to_table``) is binary only."""
    await conn.set_type_codec("jsonb", encoder=_jsonb_binary, decoder=_jsonb_from_binary, schema="pg_catalog",
                              format="binary")
    try:
        yield
    finally:
        await conn.set_type_codec("jsonb", encoder=_json_text, decoder=json.loads, schema="pg_catalog")


def with_database(dsn: str, name: str) -> str:
    """The same server's DSN for another database (tests and the bench create databases beside the first)."""
    parts = urlsplit(dsn)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


async def _no_reset(conn: Conn) -> None:
    """Skip asyncpg's per-release RESET ALL/UNLISTEN round trip: the hub sets no session state on pooled
    connections (its locks are transaction-scoped; LISTEN has its own connection)."""


async def create_pool(dsn: str, *, min_size: int = 2, max_size: int = 10, **kwargs: Any) -> Pool:
    pool = await asyncpg.create_pool(dsn, min_size=min_size, max_size=max_size, init=_init_connection,
                                     reset=_no_reset, **kwargs)
    assert pool is not None
    return pool


async def connect(dsn: str) -> asyncpg.Connection:
    conn = await asyncpg.connect(dsn)
    await _init_connection(conn)
    return conn
