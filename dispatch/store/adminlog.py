"""The admin log (DESIGN.md idea 11): administrative changes — accounts, the reporters' move out of the chain,
erasures, and later the reference data — as one county-wide hash chain, appended under a lock.

An entry's hash is SHA-256 over the previous entry's hash followed by the canonical JSON of every column but
``prev_hash`` and ``hash`` (the event log's encoding, docs/EXPORT.md "The admin log"). ``before`` and ``after``
say what changed; they never hold a password, a password hash, a token, a reporter's name or phone.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import asyncpg

from dispatch.core.domain import SYSTEM_ACTOR, Actor
from dispatch.core.reporter import canonical_json
from dispatch.store.eventlog import AT_FORMAT
from dispatch.store.pool import Conn

# Every action the admin log records, in the order the admin console lists them (its filter, tests/test_admin_log.py
# checks the console's list and its words against this one).
ACTIONS = (
    "township.add", "township.update", "grid.add", "grid.update", "station.add", "station.remove",
    "unit.add", "unit.update", "unit.retire",
    "user.add", "user.update", "user.disable", "user.enable", "user.passwd",
    "integration.add", "integration.disable", "integration.enable", "integration.rotate",
    "settings.categories", "settings.sla", "settings.evaluation",
    "privacy.erase", "privacy.rechain",
)

# One chain for the county: appends wait for each other (held until the transaction ends).
APPEND_LOCK = "select pg_advisory_xact_lock(7420190010)"
SELECT_HEAD = "select seq, hash from admin_log order by seq desc limit 1"
INSERT_ENTRY = """
insert into admin_log (seq, at, actor_id, actor_name, action, target, before, after, prev_hash, hash)
values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
"""
ENTRY_COLUMNS = "seq, at, actor_id, actor_name, action, target, before, after, prev_hash, hash"
SELECT_ENTRIES_AFTER = f"""
select {ENTRY_COLUMNS}
  from admin_log
 where seq > $1
 order by seq
 limit $2
"""
# Newest first, for reading (the REST page).
SELECT_PAGE = f"""
select {ENTRY_COLUMNS}
  from admin_log
 where ($1::text is null or action = $1)
 order by seq desc
 limit $2 offset $3
"""
COUNT_ENTRIES = "select count(*) from admin_log where ($1::text is null or action = $1)"


@dataclass(frozen=True, slots=True)
class AdminEntry:
    seq: int
    at: datetime
    actor_id: int | None
    actor_name: str
    action: str
    target: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    prev_hash: bytes = b""
    hash: bytes = b""

    def canonical_doc(self) -> dict[str, Any]:
        return {"seq": self.seq, "at": self.at.astimezone(UTC).strftime(AT_FORMAT), "actor_id": self.actor_id,
                "actor_name": self.actor_name, "action": self.action, "target": self.target,
                "before": self.before, "after": self.after}

    def chained(self, prev_hash: bytes) -> AdminEntry:
        return replace(self, prev_hash=prev_hash,
                       hash=hashlib.sha256(prev_hash + canonical_json(self.canonical_doc())).digest())

    def to_json(self) -> dict[str, Any]:
        return {**self.canonical_doc(), "prev_hash": self.prev_hash.hex(), "hash": self.hash.hex()}

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> AdminEntry:
        return cls(seq=row["seq"], at=row["at"], actor_id=row["actor_id"], actor_name=row["actor_name"],
                   action=row["action"], target=row["target"], before=row["before"], after=row["after"],
                   prev_hash=bytes(row["prev_hash"]), hash=bytes(row["hash"]))


def cli_actor() -> Actor:
    """Who runs a CLI command: the operating-system account (the CLI has no login of its own)."""
    import getpass

    try:
        who = getpass.getuser()
    except (KeyError, OSError):
        who = "unknown"
    return Actor(user_id=None, role=SYSTEM_ACTOR.role, name=f"cli:{who}")


async def append(conn: Conn, *, actor: Actor, action: str, target: str, at: datetime,
                 before: dict[str, Any] | None = None, after: dict[str, Any] | None = None) -> AdminEntry:
    """Chain one entry after the head, inside the caller's transaction (or one of its own)."""
    if action not in ACTIONS:
        raise ValueError(f"admin log: unknown action {action!r}; add it to adminlog.ACTIONS")
    async with conn.transaction():
        await conn.execute(APPEND_LOCK)
        head = await conn.fetchrow(SELECT_HEAD)
        seq, prev = (0, b"") if head is None else (head["seq"], bytes(head["hash"]))
        entry = AdminEntry(seq + 1, at, actor.user_id, actor.name, action, target, before, after).chained(prev)
        await conn.execute(INSERT_ENTRY, entry.seq, entry.at, entry.actor_id, entry.actor_name, entry.action,
                           entry.target, entry.before, entry.after, entry.prev_hash, entry.hash)
    return entry


@dataclass(frozen=True)
class AdminVerifyReport:
    ok: bool
    count: int
    seq: int | None = None
    reason: str = ""


async def verify(conn: Conn, batch: int = 5000) -> AdminVerifyReport:
    """Recompute the chain; report the first broken link."""
    prev, last, count = b"", 0, 0
    while True:
        rows = await conn.fetch(SELECT_ENTRIES_AFTER, last, batch)
        if not rows:
            return AdminVerifyReport(True, count)
        for row in rows:
            entry = AdminEntry.from_row(row)
            if entry.seq != last + 1:
                return AdminVerifyReport(False, count, last + 1,
                                         f"sequence gap: expected {last + 1}, found {entry.seq}")
            if entry.prev_hash != prev:
                return AdminVerifyReport(False, count, entry.seq, "prev_hash does not match the previous entry")
            if entry.chained(prev).hash != entry.hash:
                return AdminVerifyReport(False, count, entry.seq, "hash does not match the entry's content")
            prev, last = entry.hash, entry.seq
            count += 1


async def fetch_page(conn: Conn, *, action: str | None, limit: int, offset: int) -> tuple[int, list[AdminEntry]]:
    """The total and one page of entries, newest first."""
    total: int = await conn.fetchval(COUNT_ENTRIES, action)
    rows = await conn.fetch(SELECT_PAGE, action, limit, offset)
    return total, [AdminEntry.from_row(r) for r in rows]


# What the log records of an account: never its password hash, sessions or phone number (only whether it has one).
SELECT_ACCOUNT = """
select u.id, u.username, u.display_name, u.role, u.township_id, t.code as township, u.department, u.unit_id,
       u.grid_id, u.team_lead, u.disabled, u.phone is not null as has_phone
  from users u
  left join townships t on t.id = u.township_id
 where u.username = $1
"""


async def account_snapshot(conn: Conn, username: str) -> dict[str, Any] | None:
    row = await conn.fetchrow(SELECT_ACCOUNT, username)
    return None if row is None else dict(row)
