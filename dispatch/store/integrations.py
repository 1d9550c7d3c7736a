"""Integrations (outside systems feeding the intake): their accounts and credentials, the calls they created,
the hotline's seen signatures, and the county's boundaries (docs/INTAKE.md)."""

from __future__ import annotations

import hashlib
import json
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg

from dispatch.core import geography
from dispatch.core.domain import Actor, Role, Source
from dispatch.store import accounts, adminlog, changes
from dispatch.store.pool import Conn
from protocols.errors import Conflict, NotFound, ValidationFailed

KINDS = ("open311", "hotline")
DEFAULT_SOURCE = {"open311": Source.RESIDENT_APP, "hotline": Source.HOTLINE_12345}
# Integration accounts never log in: no argon2 hash verifies against this.
NO_PASSWORD = "!integration"

COLUMNS = """
i.id, i.kind, i.name, i.user_id, u.display_name, i.township_id, t.code as township_code, i.source,
i.secret, i.callback_url, i.rate_per_min, i.enabled, i.created_at
"""
SELECT_ALL = f"""
select {COLUMNS}
  from integrations i
  join users u on u.id = i.user_id
  left join townships t on t.id = i.township_id
 order by i.created_at, i.name
"""
SELECT_BY_KEY = f"""
select {COLUMNS}
  from integrations i
  join users u on u.id = i.user_id
  left join townships t on t.id = i.township_id
 where i.key_hash = $1
"""
SELECT_BY_NAME_OR_ID = f"""
select {COLUMNS}
  from integrations i
  join users u on u.id = i.user_id
  left join townships t on t.id = i.township_id
 where i.name = $1 or i.id::text = $1
"""
INSERT_INTEGRATION = """
insert into integrations (id, kind, name, user_id, township_id, source, key_hash, secret, callback_url,
                          rate_per_min, created_at)
values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
"""
SET_ENABLED = "update integrations set enabled = $2 where id = $1 returning user_id"
SET_USER_DISABLED = "update users set disabled = $2 where id = $1"
SET_KEY = "update integrations set key_hash = $2 where id = $1"
SET_SECRET = "update integrations set secret = $2 where id = $1"
SELECT_TOWNSHIP_BY_CODE = "select id from townships where code = $1"
INSERT_LINK = """
insert into integration_calls (call_id, integration_id, external_id, details, created_at)
values ($1, $2, $3, $4, $5)
on conflict do nothing
"""
SELECT_CALL_OF_EXTERNAL = """
select call_id from integration_calls where integration_id = $1 and external_id = $2
"""
SELECT_COMMAND_CALL = "select result->>'call_id' from commands where command_id = $1 and user_id = $2"
# A call of this integration by its number, with what the call has no field for.
SELECT_OWN_CALL = """
select c.doc, l.details, l.external_id
  from integration_calls l
  join calls c on c.id = l.call_id
 where l.integration_id = $1
   and c.number = $2
"""
SELECT_OWN_CALL_BY_ID = """
select c.doc, l.details, l.external_id
  from integration_calls l
  join calls c on c.id = l.call_id
 where l.integration_id = $1
   and l.call_id = $2
"""
SELECT_OWN_CALLS = """
select c.doc, l.details
  from integration_calls l
  join calls c on c.id = l.call_id
 where l.integration_id = $1
   and ($2::text[] is null or c.number = any($2))
   and ($3::text[] is null or c.category = any($3))
   and ($4::text[] is null or c.state = any($4))
   and ($5::timestamptz is null or c.created_at >= $5)
   and ($6::timestamptz is null or c.created_at < $6)
 order by c.created_at desc, c.number
 limit $7
"""
REMEMBER_SIGNATURE = """
insert into hotline_signatures (signature, seen_at) values ($1, $2)
on conflict (signature) do nothing
returning true
"""
PRUNE_SIGNATURES = "delete from hotline_signatures where seen_at < $1"
SELECT_TOWNSHIP_BOUNDARIES = "select id, boundary from townships where boundary is not null"
SELECT_GRID_BOUNDARIES = "select id, township_id, boundary from grids where boundary is not null"
SELECT_UNIT_NAMES = "select id, name_zh from units"


@dataclass(frozen=True)
class Integration:
    id: UUID
    kind: str
    name: str
    user_id: int
    display_name: str
    township_id: int | None
    township_code: str | None
    source: Source
    secret: str | None
    callback_url: str | None
    rate_per_min: int
    enabled: bool
    created_at: datetime

    def actor(self, township_id: int) -> Actor:
        """The integration acting for the township a report belongs to (its events name it)."""
        return Actor(user_id=self.user_id, role=Role.INTEGRATION, township_id=township_id, name=self.display_name)

    def public(self) -> dict[str, Any]:
        """What an admin reads: everything but the credential."""
        return {"id": str(self.id), "kind": self.kind, "name": self.name, "display_name": self.display_name,
                "township": self.township_code, "source": self.source.value, "callback_url": self.callback_url,
                "rate_per_min": self.rate_per_min, "enabled": self.enabled,
                "created_at": self.created_at.isoformat()}


def _integration(row: asyncpg.Record) -> Integration:
    return Integration(
        id=row["id"], kind=row["kind"], name=row["name"], user_id=row["user_id"],
        display_name=row["display_name"], township_id=row["township_id"], township_code=row["township_code"],
        source=Source(row["source"]), secret=row["secret"], callback_url=row["callback_url"],
        rate_per_min=row["rate_per_min"], enabled=row["enabled"], created_at=row["created_at"])


def key_hash(api_key: str) -> bytes:
    """An api_key is 32 random bytes: a plain sha256 of it is as good as a slow hash and needs no salt."""
    return hashlib.sha256(api_key.encode()).digest()


def _credential(kind: str) -> tuple[str, bytes | None, str | None]:
    """A new credential (shown once), and what is stored: the key's hash, or the hotline's secret itself."""
    token = secrets.token_urlsafe(32)
    if kind == "open311":
        return token, key_hash(token), None
    return token, None, token


async def township_id(conn: Conn, code: str, field: str = "township") -> int:
    tid: int | None = await conn.fetchval(SELECT_TOWNSHIP_BY_CODE, code)
    if tid is None:
        raise ValidationFailed(f"{field}: no township {code!r}", field=field)
    return tid


def _logged(found: Integration) -> dict[str, Any]:
    """What the admin log records of an integration: never its credential."""
    return {k: v for k, v in found.public().items() if k not in ("id", "created_at")}


async def _log(conn: Conn, actor: Actor, now: datetime, action: str, found: Integration,
               before: dict[str, Any] | None, after: dict[str, Any] | None) -> None:
    await adminlog.append(conn, actor=actor, action=action, target=f"integration:{found.name}", at=now,
                          before=before, after=after)
    await changes.announce(conn, "integrations")


async def add(conn: Conn, *, kind: str, name: str, display_name: str, township: str | None,
              source: Source | None, callback_url: str | None, rate_per_min: int,
              now: datetime, actor: Actor) -> tuple[Integration, str]:
    """A new integration with its account; returns it and its credential (api_key or secret), shown once.
    Logged (without the credential) and announced in the same transaction."""
    if kind not in KINDS:
        raise ValidationFailed(f"kind: must be one of {', '.join(KINDS)}", field="kind")
    async with conn.transaction():
        tid = await township_id(conn, township) if township else None
        try:
            user_id = await accounts.add_user(conn, username=f"integration.{name}", display_name=display_name,
                                              password="", password_hash=NO_PASSWORD, role=Role.INTEGRATION,
                                              township_id=tid)
        except Conflict:
            raise Conflict(f"name: an integration {name!r} (or its account) already exists", field="name") from None
        token, digest, secret = _credential(kind)
        try:
            await conn.execute(INSERT_INTEGRATION, uuid.uuid4(), kind, name, user_id, tid,
                               (source or DEFAULT_SOURCE[kind]).value, digest, secret, callback_url,
                               rate_per_min, now)
        except asyncpg.UniqueViolationError:
            raise Conflict(f"name: an integration {name!r} already exists", field="name") from None
        except asyncpg.CheckViolationError:
            raise ValidationFailed("name: 2-40 of a-z 0-9 _ -", field="name") from None
        found = await get(conn, name)
        await _log(conn, actor, now, "integration.add", found, None, {**_logged(found), "credential": "issued"})
    return found, token


async def all_integrations(conn: Conn) -> list[Integration]:
    return [_integration(r) for r in await conn.fetch(SELECT_ALL)]


async def find(conn: Conn, name_or_id: str) -> Integration | None:
    row = await conn.fetchrow(SELECT_BY_NAME_OR_ID, name_or_id)
    return None if row is None else _integration(row)


async def get(conn: Conn, name_or_id: str) -> Integration:
    found = await find(conn, name_or_id)
    if found is None:
        raise NotFound(f"no integration {name_or_id!r}", field="integration")
    return found


async def by_key(conn: Conn, api_key: str) -> Integration | None:
    row = await conn.fetchrow(SELECT_BY_KEY, key_hash(api_key))
    return None if row is None else _integration(row)


async def set_enabled(conn: Conn, name_or_id: str, enabled: bool, *, actor: Actor, now: datetime) -> Integration:
    """Disable (or enable again) an integration and its account."""
    async with conn.transaction():
        found = await get(conn, name_or_id)
        await conn.execute(SET_ENABLED, found.id, enabled)
        await conn.execute(SET_USER_DISABLED, found.user_id, not enabled)
        await _log(conn, actor, now, "integration.enable" if enabled else "integration.disable", found,
                   {"enabled": found.enabled}, {"enabled": enabled})
    return await get(conn, str(found.id))


async def rotate(conn: Conn, name_or_id: str, *, actor: Actor, now: datetime) -> tuple[Integration, str]:
    """A new credential; the old one stops working at once."""
    async with conn.transaction():
        found = await get(conn, name_or_id)
        token, digest, secret = _credential(found.kind)
        if digest is not None:
            await conn.execute(SET_KEY, found.id, digest)
        else:
            await conn.execute(SET_SECRET, found.id, secret)
        await _log(conn, actor, now, "integration.rotate", found, {"credential": "old"}, {"credential": "new"})
    return found, token


# -- the calls integrations created ----------------------------------------------------------------

async def link(conn: Conn, integration_id: UUID, call_id: UUID, external_id: str | None, details: dict[str, Any],
               now: datetime) -> None:
    await conn.execute(INSERT_LINK, call_id, integration_id, external_id, details, now)


async def call_of_external(conn: Conn, integration_id: UUID, external_id: str) -> UUID | None:
    found: UUID | None = await conn.fetchval(SELECT_CALL_OF_EXTERNAL, integration_id, external_id)
    return found


async def call_of_command(conn: Conn, command_id: UUID, user_id: int) -> UUID | None:
    """The call a recorded create_call command created (its result), if that command was this user's."""
    found = await conn.fetchval(SELECT_COMMAND_CALL, command_id, user_id)
    return None if found is None else UUID(found)


async def own_call(conn: Conn, integration_id: UUID, number: str) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(SELECT_OWN_CALL, integration_id, number)
    return row


async def own_call_by_id(conn: Conn, integration_id: UUID, call_id: UUID) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(SELECT_OWN_CALL_BY_ID, integration_id, call_id)
    return row


async def own_calls(conn: Conn, integration_id: UUID, *, numbers: list[str] | None, categories: list[str] | None,
                    states: list[str] | None, start: datetime | None, end: datetime | None,
                    limit: int) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(SELECT_OWN_CALLS, integration_id, numbers, categories, states,
                                                  start, end, limit)
    return rows


async def remember_signature(conn: Conn, signature: str, now: datetime, keep_s: float) -> bool:
    """Record a signature as used; False when it was seen before (a replay). Forgets old ones."""
    async with conn.transaction():
        await conn.execute(PRUNE_SIGNATURES, now - timedelta(seconds=keep_s))
        new = await conn.fetchval(REMEMBER_SIGNATURE, hashlib.sha256(signature.encode()).digest(), now)
    return bool(new)


# -- geography and names ---------------------------------------------------------------------------

async def county_map(conn: Conn) -> geography.CountyMap:
    """The townships' and grids' boundaries (a malformed one is skipped: it matches nothing)."""
    townships = []
    for r in await conn.fetch(SELECT_TOWNSHIP_BOUNDARIES):
        townships.append((r["id"], _doc(r["boundary"])))
    grids = [(r["id"], r["township_id"], _doc(r["boundary"])) for r in await conn.fetch(SELECT_GRID_BOUNDARIES)]
    ok_t = [t for t in townships if _valid(t[1])]
    ok_g = [g for g in grids if _valid(g[2])]
    return geography.county_map(ok_t, ok_g)


def _doc(value: Any) -> dict[str, Any]:
    out = json.loads(value) if isinstance(value, str) else value
    return out if isinstance(out, dict) else {}


def _valid(doc: dict[str, Any]) -> bool:
    try:
        geography.parse_boundary(doc)
    except ValueError:
        return False
    return True


async def unit_names(conn: Conn) -> dict[str, str]:
    """Target code → name of the township units (``unit:<id>``)."""
    return {f"unit:{r['id']}": r["name_zh"] for r in await conn.fetch(SELECT_UNIT_NAMES)}
