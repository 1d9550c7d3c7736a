"""Accounts: argon2 password hashes, signed session cookies, bearer tokens, login rate limiting."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from itsdangerous import BadSignature, URLSafeSerializer

from dispatch.core.config import ServerConfig
from dispatch.core.domain import Actor, Role
from dispatch.store.pool import Conn
from protocols.errors import Conflict, NotFound, RateLimited, Unauthenticated, ValidationFailed

COOKIE_NAME = "xianghu_session"
_hasher = PasswordHasher()
# Verifying against this keeps an unknown username as slow as a wrong password.
_DUMMY_HASH = _hasher.hash("not-a-real-password")

SELECT_USER_BY_NAME = """
select id, username, display_name, password_hash, role, township_id, department, unit_id,
       team_lead, disabled, grid_id
  from users
 where username = $1
"""
SELECT_USER_BY_SESSION = """
select u.id, u.username, u.display_name, u.role, u.township_id, u.department, u.unit_id,
       u.team_lead, u.grid_id, s.kind, s.expires_at
  from sessions s
  join users u on u.id = s.user_id
 where s.token_hash = $1
   and s.revoked_at is null
   and s.expires_at > $2
   and not u.disabled
"""
INSERT_SESSION = """
insert into sessions (token_hash, user_id, kind, created_at, expires_at)
values ($1, $2, $3, $4, $5)
"""
REVOKE_SESSION = "update sessions set revoked_at = $2 where token_hash = $1 and revoked_at is null"
# Open WebSockets of a revoked session are closed by whichever node holds them (4010).
REVOKED_CHANNEL = "xianghu_revoked"
# Each request looks its session up at most this often; a revocation notice clears it at once, and
# a lost notice (listener reconnecting) is bounded by this.
SESSION_CACHE_S = 5.0
SESSION_CACHE_MAX = 50_000
NOTIFY_REVOKED = "select pg_notify('xianghu_revoked', $1)"
REVOKE_USER_SESSIONS = "update sessions set revoked_at = $2 where user_id = $1 and revoked_at is null"
# Failures of one account in the window: from this address (count, latest) and from anywhere.
COUNT_FAILURES_ACCOUNT = """
select count(*) filter (where address = $2), max(at) filter (where address = $2), count(*)
  from login_failures
 where username = $1 and at > $3
"""
COUNT_FAILURES_ADDR = """
select count(*), max(at) from login_failures where address = $1 and at > $2
"""
LOCK_LOGIN = "select pg_advisory_xact_lock(742019, hashtext($1))"
INSERT_FAILURE = "insert into login_failures (username, address, at) values ($1, $2, $3)"
# A success forgets only this address's failures: it must not wipe the count of a guesser elsewhere.
CLEAR_FAILURES = "delete from login_failures where username = $1 and (address = $2 or at <= $3)"
INSERT_USER = """
insert into users (username, display_name, password_hash, role, township_id, department, unit_id, team_lead,
                   phone, grid_id)
values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
returning id
"""
SELECT_GRID_BY_NAME = "select id from grids where township_id = $1 and name = $2"
UPDATE_PASSWORD = "update users set password_hash = $2 where username = $1 returning id"
DISABLE_USER = "update users set disabled = true where username = $1 returning id"


def hash_password(password: str) -> str:
    if len(password) < 8:
        raise ValidationFailed("password must be at least 8 characters", field="password")
    return _hasher.hash(password)


def verify_password(stored: str, password: str) -> bool:
    try:
        return _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


@dataclass(frozen=True)
class Session:
    actor: Actor
    username: str
    kind: str
    token: str


def actor_from_row(row: asyncpg.Record) -> Actor:
    return Actor(
        user_id=row["id"], role=Role(row["role"]), township_id=row["township_id"],
        department=row["department"], unit_id=row["unit_id"], team_lead=row["team_lead"],
        name=row["display_name"], grid_id=row.get("grid_id"),
    )


class Auth:
    """Logins and sessions against the users/sessions tables."""

    def __init__(self, pool: asyncpg.Pool, cfg: ServerConfig, secret: str) -> None:
        self.pool = pool
        self.cfg = cfg
        self._signer = URLSafeSerializer(secret, salt="xianghu.session")
        self._cache: dict[bytes, tuple[float, Session, datetime]] = {}

    # -- cookies carry the signed token; bearer clients carry the raw token ----------------------

    def sign(self, token: str) -> str:
        return self._signer.dumps(token)

    def unsign(self, value: str) -> str | None:
        try:
            token = self._signer.loads(value)
        except BadSignature:
            return None
        return token if isinstance(token, str) else None

    async def login(self, username: str, password: str, address: str, kind: str, now: datetime) -> Session:
        window_start = now - timedelta(seconds=self.cfg.login_window_s)
        async with self.pool.acquire() as conn, conn.transaction():
            # One attempt per account at a time, on every node: parallel guesses cannot overshoot the limit.
            await conn.execute(LOCK_LOGIN, username)
            await self._throttle(conn, username, address, window_start, now)
            row = await conn.fetchrow(SELECT_USER_BY_NAME, username)
            # argon2 takes tens of milliseconds: off the event loop, so sockets keep flowing meanwhile.
            ok = await asyncio.to_thread(verify_password, row["password_hash"] if row else _DUMMY_HASH, password)
            if not row or not ok or row["disabled"]:
                await conn.execute(INSERT_FAILURE, username, address, now)
                failed = True
            else:
                failed = False
                await conn.execute(CLEAR_FAILURES, username, address, window_start)
                token = secrets.token_urlsafe(32)
                # A liaison logs in once on a phone: its browser session lasts as long as a token.
                long_lived = kind == "token" or row["role"] == Role.LIAISON.value
                days = self.cfg.token_days if long_lived else self.cfg.session_days
                await conn.execute(INSERT_SESSION, token_hash(token), row["id"], kind, now,
                                   now + timedelta(days=days))
        if failed:  # raised after commit, so the failure is recorded
            raise Unauthenticated("wrong username or password", field="password")
        assert row is not None
        return Session(actor_from_row(row), row["username"], kind, token)

    def _delay(self, failures: int, limit: int) -> float:
        """Seconds to wait after the latest failure: none below ``limit``, then 1 s doubling with each
        further failure, never more than the window."""
        if failures < limit:
            return 0.0
        return float(min(self.cfg.login_window_s, 2.0 ** min(failures - limit, 30)))

    async def _throttle(self, conn: Conn, username: str, address: str, window_start: datetime,
                        now: datetime) -> None:
        """Raise ``RateLimited`` when this address must wait before trying this account again.

        Nothing a wrong password from elsewhere does can make the owner's right password wait: failures
        count per (account, address) and per address; the per-account total (a distributed guess)
        slows only the addresses that themselves failed for the account.
        """
        row = await conn.fetchrow(COUNT_FAILURES_ACCOUNT, username, address, window_start)
        by_addr = await conn.fetchrow(COUNT_FAILURES_ADDR, address, window_start)
        assert row is not None and by_addr is not None  # aggregates always return one row
        pair, pair_last, account = row
        addr, addr_last = by_addr
        waits = [(pair_last, self._delay(pair, self.cfg.login_max_failures)),
                 (addr_last, self._delay(addr, self.cfg.login_address_max_failures))]
        if account >= self.cfg.login_account_max_failures and pair:
            waits.append((pair_last, self._delay(pair, 1)))
        retry = max([(last + timedelta(seconds=delay) - now).total_seconds()
                     for last, delay in waits if last is not None and delay], default=0.0)
        if retry > 0:
            raise RateLimited(f"too many failed logins; try again in {max(1, int(retry + 0.999))} s",
                              retry_after=max(1.0, retry))

    async def session(self, token: str, now: datetime, *, fresh: bool = False) -> Session | None:
        """The live session of ``token``; remembered for SESSION_CACHE_S (revocations clear it at once)
        unless ``fresh`` asks for the database's word (before a WebSocket command)."""
        digest = token_hash(token)
        cached = self._cache.get(digest)
        if not fresh and cached is not None and time.monotonic() - cached[0] < SESSION_CACHE_S and cached[2] > now:
            return cached[1]
        row = await self.pool.fetchrow(SELECT_USER_BY_SESSION, digest, now)
        if row is None:
            self._cache.pop(digest, None)
            return None
        session = Session(actor_from_row(row), row["username"], row["kind"], token)
        if len(self._cache) > SESSION_CACHE_MAX:
            self._cache.clear()
        self._cache[digest] = (time.monotonic(), session, row["expires_at"])
        return session

    def forget(self, revoked: str) -> None:
        """Drop cached sessions named by a revocation notice (``token:<hex>`` or ``user:<id>``)."""
        kind, _, value = revoked.partition(":")
        if kind == "token":
            self._cache.pop(bytes.fromhex(value), None)
        else:
            self._cache = {k: v for k, v in self._cache.items() if str(v[1].actor.user_id) != value}

    async def forget_users(self, topic: str) -> None:
        """Accounts changed (``changes`` topic ``users``): read every session's account again (names, team lead)."""
        if topic in ("users", "*"):
            self._cache.clear()

    async def logout(self, token: str, now: datetime) -> None:
        self._cache.pop(token_hash(token), None)
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(REVOKE_SESSION, token_hash(token), now)
            await conn.execute(NOTIFY_REVOKED, "token:" + token_hash(token).hex())


# -- account management (CLI and admin) ---------------------------------------------------------

# What each role needs, by the name of the constraint that enforces it (migration 0004).
ROLE_REQUIREMENTS = {
    "users_township_required": "operators, liaisons, township leaders and grid workers need a township",
    "users_grid_worker_grid": "only grid workers are attached to a grid",
    "users_liaison_target": "a liaison needs exactly one of a department or a township unit",
    "users_department_head_target": "a department head needs a department and no township or unit",
    "users_no_target": "only liaisons and department heads have a department or unit",
    "users_username_check": "the username must be 2-64 of a-z 0-9 _ . -",
    "users_phone_check": "the phone must be 5-20 of 0-9 + - and spaces",
}


async def add_user(conn: Conn, *, username: str, display_name: str, password: str,
                   role: Role, township_id: int | None = None, department: str | None = None,
                   unit_id: int | None = None, team_lead: bool = False,
                   password_hash: str | None = None, phone: str | None = None, grid_id: int | None = None) -> int:
    try:
        user_id: int = await conn.fetchval(
            INSERT_USER, username, display_name, password_hash or hash_password(password), role.value,
            township_id, department, unit_id, team_lead, phone, grid_id)
    except asyncpg.UniqueViolationError:
        raise Conflict(f"user {username!r} already exists", field="username") from None
    except asyncpg.CheckViolationError as exc:
        why = ROLE_REQUIREMENTS.get(exc.constraint_name or "", exc.constraint_name)
        raise ValidationFailed(f"user {username!r} is not valid for role {role}: {why}", field="role") from None
    except asyncpg.ForeignKeyViolationError as exc:
        raise ValidationFailed(f"unknown township, department, unit or grid: {exc.detail}", field="township") from None
    return user_id


async def grid_id(conn: Conn, township_id: int, name: str) -> int | None:
    """The id of the township's grid called ``name`` (None: no such grid)."""
    gid: int | None = await conn.fetchval(SELECT_GRID_BY_NAME, township_id, name)
    return gid


async def set_password(conn: Conn, username: str, password: str, now: datetime) -> None:
    user_id = await conn.fetchval(UPDATE_PASSWORD, username, hash_password(password))
    if user_id is None:
        raise NotFound(f"no user {username!r}", field="username")
    await conn.execute(REVOKE_USER_SESSIONS, user_id, now)
    await conn.execute(NOTIFY_REVOKED, f"user:{user_id}")


async def disable_user(conn: Conn, username: str, now: datetime) -> None:
    user_id = await conn.fetchval(DISABLE_USER, username)
    if user_id is None:
        raise NotFound(f"no user {username!r}", field="username")
    await conn.execute(REVOKE_USER_SESSIONS, user_id, now)
    await conn.execute(NOTIFY_REVOKED, f"user:{user_id}")
