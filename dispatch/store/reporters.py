"""The ``reporters`` table: a call's reporter name and phone, written by the write path in the command's
transaction and kept out of the hash chain (``dispatch.core.reporter``); joined back for delivery."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from typing import Any

from dispatch.core.reporter import SALT_BYTES, Reporter, has_plaintext, separate, without_snapshot_reporter
from dispatch.store.eventlog import EventRecord
from dispatch.store.pool import Conn

# In ``reporter_row`` order (the bulk loader copies them).
REPORTER_COLUMNS = ("call_id", "township_id", "name", "phone", "salt", "digest", "created_at")
INSERT_REPORTER = """
insert into reporters (call_id, township_id, name, phone, salt, digest, created_at)
values ($1, $2, $3, $4, $5, $6, $7)
"""

Salts = Callable[[], bytes]


def new_salt() -> bytes:
    return secrets.token_bytes(SALT_BYTES)


def reporter_row(rec: EventRecord, reporter: Reporter) -> tuple[Any, ...]:
    """The ``reporters`` row of a ``call.created`` record, in ``REPORTER_COLUMNS`` order."""
    return (rec.call_id, rec.township_id, reporter.name, reporter.phone, reporter.salt, reporter.digest, rec.at)


def set_aside(rec: EventRecord, salt: Salts = new_salt) -> tuple[EventRecord, Reporter | None]:
    """``rec`` as it is chained (a ``call.created`` body with the digest in place of the name and phone, a call
    snapshot without them) and the reporter kept aside (``call.created`` only)."""
    if rec.type != "call.created":
        return (replace(rec, body=without_snapshot_reporter(rec.body)) if has_plaintext(rec.type, rec.body)
                else rec), None
    body, reporter = separate(rec.body, salt())
    return replace(rec, body=body), reporter


def set_aside_all(records: Iterable[EventRecord],
                  salt: Salts = new_salt) -> tuple[list[EventRecord], list[tuple[EventRecord, Reporter]]]:
    """``set_aside`` over a command's records: the records to chain, and each kept reporter with its record."""
    out: list[EventRecord] = []
    kept: list[tuple[EventRecord, Reporter]] = []
    for rec in records:
        chained, reporter = set_aside(rec, salt)
        out.append(chained)
        if reporter is not None:
            kept.append((chained, reporter))
    return out, kept


async def save(conn: Conn, kept: Sequence[tuple[EventRecord, Reporter]]) -> None:
    """Insert the kept reporters (after their call's projection row: the foreign key)."""
    if kept:
        await conn.executemany(INSERT_REPORTER, [reporter_row(rec, rep) for rec, rep in kept])
