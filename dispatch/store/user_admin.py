"""Accounts as an administrator manages them (issue #17): list, add any role, change, disable and enable, reset
a password. REST, the CLI and the bulk import share these functions.

Each change is one transaction: validate (``dispatch/core/roster.py``, errors naming the field) → change → the
admin log (the account before → after: never a password, hash or phone number) → the ``users`` notice. A change
of role or place (township, department, unit, grid), a disabling and a new password revoke the sessions.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import asyncpg

from dispatch.core import roster
from dispatch.core.domain import Actor, Role
from dispatch.store import accounts, adminlog, changes
from dispatch.store.pool import Conn
from protocols.errors import Conflict, NotFound, ValidationFailed

PASSWORD_ALPHABET = "abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/l/I
GENERATED_LENGTH = 12
PLACE_FIELDS = ("role", "township_id", "department", "unit_id", "grid_id")

SELECT_DIRECTORY_TOWNSHIPS = "select id, code from townships"
SELECT_DIRECTORY_STATIONS = "select township_id, department from stations"
SELECT_DIRECTORY_DEPARTMENTS = "select code from departments"
SELECT_DIRECTORY_UNITS = "select id, township_id, name_zh, retired_at from units"
SELECT_DIRECTORY_GRIDS = "select id, township_id, name from grids"
USER_COLUMNS = """
u.id, u.username, u.display_name, u.role, u.township_id, t.code as township, u.department, u.unit_id,
un.name_zh as unit_name, u.grid_id, g.name as grid_name, u.phone, u.team_lead, u.disabled, u.created_at
"""
USER_JOINS = """
  from users u
  left join townships t on t.id = u.township_id
  left join units un on un.id = u.unit_id
  left join grids g on g.id = u.grid_id
"""
# Integration accounts are managed with their integration; they are not listed or changed here.
USER_FILTER = """
 where u.role <> 'integration'
   and ($1::text is null or u.role = $1)
   and ($2::text is null or t.code = $2)
   and ($3::text is null or u.department = $3)
   and ($4::text is null or u.username ilike '%' || $4 || '%' or u.display_name ilike '%' || $4 || '%')
   and ($5::boolean is null or u.disabled = $5)
"""
SELECT_USERS = f"select {USER_COLUMNS} {USER_JOINS} {USER_FILTER} order by u.id limit $6 offset $7"
COUNT_USERS = f"select count(*) {USER_JOINS} {USER_FILTER}"
SELECT_USER = f"select {USER_COLUMNS} {USER_JOINS} where u.username = $1"
SELECT_EXISTING = "select username from users where username = any($1::text[])"
UPDATE_USER = """
update users
   set display_name = $2, role = $3, township_id = $4, department = $5, unit_id = $6, grid_id = $7,
       phone = $8, team_lead = $9
 where id = $1
"""
SET_DISABLED = "update users set disabled = $2 where id = $1"


def generate_password() -> str:
    return "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(GENERATED_LENGTH))


@dataclass(frozen=True)
class UserSpec:
    """An account as given (REST body, CLI options or a sheet row): places by code or name, not yet ids.
    ``unit`` and ``grid`` are a name in the township, or an id written as digits."""

    username: str
    display_name: str
    role: str
    township: str | None = None
    department: str | None = None
    unit: str | None = None
    grid: str | None = None
    phone: str | None = None
    team_lead: bool = False


@dataclass(frozen=True)
class Place:
    """The ids a spec resolves to."""

    role: Role
    township_id: int | None
    department: str | None
    unit_id: int | None
    grid_id: int | None


class Directory:
    """The county's townships, departments, stations, units and grids, loaded once to check many accounts."""

    def __init__(self) -> None:
        self.townships: dict[str, int] = {}
        self.departments: set[str] = set()
        self.stations: set[tuple[int, str]] = set()
        self.units: dict[int, tuple[int, str, bool]] = {}  # id -> township, name, retired
        self.unit_names: dict[tuple[int, str], int] = {}
        self.grids: dict[int, tuple[int, str]] = {}
        self.grid_names: dict[tuple[int, str], int] = {}

    @classmethod
    async def load(cls, conn: Conn) -> Directory:
        d = cls()
        d.townships = {r["code"]: r["id"] for r in await conn.fetch(SELECT_DIRECTORY_TOWNSHIPS)}
        d.departments = {r["code"] for r in await conn.fetch(SELECT_DIRECTORY_DEPARTMENTS)}
        d.stations = {(r["township_id"], r["department"]) for r in await conn.fetch(SELECT_DIRECTORY_STATIONS)}
        for r in await conn.fetch(SELECT_DIRECTORY_UNITS):
            d.units[r["id"]] = (r["township_id"], r["name_zh"], r["retired_at"] is not None)
            d.unit_names[(r["township_id"], r["name_zh"])] = r["id"]
        for r in await conn.fetch(SELECT_DIRECTORY_GRIDS):
            d.grids[r["id"]] = (r["township_id"], r["name"])
            d.grid_names[(r["township_id"], r["name"])] = r["id"]
        return d

    def place(self, spec: UserSpec) -> tuple[Place | None, list[tuple[str, str]]]:
        """The spec's ids, or the (field, why) of everything wrong with it."""
        problems: list[tuple[str, str]] = []
        if (why := roster.username_problem(spec.username)) is not None:
            problems.append(("username", why))
        if not spec.display_name.strip() or len(spec.display_name) > roster.MAX_DISPLAY_NAME:
            problems.append(("name", f"1-{roster.MAX_DISPLAY_NAME} characters"))
        if spec.phone and (why := roster.phone_problem(spec.phone)) is not None:
            problems.append(("phone", why))
        role = roster.parse_role(spec.role)
        if role is None:
            choices = ", ".join(f"{r.value} {roster.ROLE_NAMES_ZH[r]}" for r in roster.ADMIN_ROLES)
            problems.append(("role", f"no role {spec.role!r}: one of {choices}"))
            return None, problems
        tid = None
        if spec.township:
            tid = self.townships.get(spec.township)
            if tid is None:
                problems.append(("township", f"no township {spec.township!r}"))
        department = spec.department or None
        if department is not None:
            if department not in self.departments:
                problems.append(("department", f"no department {department!r}"))
            elif role is Role.LIAISON and tid is not None and (tid, department) not in self.stations:
                problems.append(("department", f"{department} is not stationed in {spec.township}"))
        unit_id = None
        if spec.unit:
            unit_id = self._unit(spec.unit, tid, spec.township, problems)
        grid_id = None
        if spec.grid:
            grid_id = self._grid(spec.grid, tid, spec.township, problems)
        problems += roster.role_problems(roster.Placement(
            role, township=bool(spec.township), department=department is not None, unit=bool(spec.unit),
            grid=bool(spec.grid), team_lead=spec.team_lead))
        if problems:
            return None, problems
        return Place(role, tid, department, unit_id, grid_id), []

    def _unit(self, ref: str, tid: int | None, code: str | None, problems: list[tuple[str, str]]) -> int | None:
        if tid is None:
            if not code:
                problems.append(("unit", "a township unit belongs to a township: give the township"))
            return None
        uid = int(ref) if ref.isdigit() else self.unit_names.get((tid, ref))
        found = self.units.get(uid) if uid is not None else None
        if found is None or found[0] != tid:
            problems.append(("unit", f"no unit {ref!r} in {code}"))
            return None
        if found[2]:
            problems.append(("unit", f"the unit {found[1]} is retired"))
            return None
        return uid

    def _grid(self, ref: str, tid: int | None, code: str | None, problems: list[tuple[str, str]]) -> int | None:
        if tid is None:
            if not code:
                problems.append(("grid", "a grid belongs to a township: give the township"))
            return None
        gid = int(ref) if ref.isdigit() else self.grid_names.get((tid, ref))
        found = self.grids.get(gid) if gid is not None else None
        if found is None or found[0] != tid:
            problems.append(("grid", f"no grid {ref!r} in {code}"))
            return None
        return gid


def _raise(problems: list[tuple[str, str]]) -> None:
    field, why = problems[0]
    more = f" (and {len(problems) - 1} more: " + "; ".join(f"{f}: {w}" for f, w in problems[1:]) + ")" \
        if len(problems) > 1 else ""
    raise ValidationFailed(f"{field}: {why}{more}", field=field)


def _public(row: asyncpg.Record) -> dict[str, Any]:
    return {"id": row["id"], "username": row["username"], "display_name": row["display_name"], "role": row["role"],
            "township": row["township"], "department": row["department"], "unit_id": row["unit_id"],
            "unit_name": row["unit_name"], "grid_id": row["grid_id"], "grid_name": row["grid_name"],
            "phone": row["phone"], "team_lead": row["team_lead"], "disabled": row["disabled"],
            "created_at": row["created_at"].isoformat()}


async def list_users(conn: Conn, *, role: str | None = None, township: str | None = None,
                     department: str | None = None, text: str | None = None, disabled: bool | None = None,
                     limit: int = 50, offset: int = 0) -> tuple[int, list[dict[str, Any]]]:
    args = (role, township, department, text, disabled)
    total: int = await conn.fetchval(COUNT_USERS, *args)
    rows = await conn.fetch(SELECT_USERS, *args, limit, offset)
    return total, [_public(r) for r in rows]


async def get_user(conn: Conn, username: str) -> dict[str, Any]:
    row = await conn.fetchrow(SELECT_USER, username)
    if row is None or row["role"] == Role.INTEGRATION.value:
        raise NotFound(f"username: no user {username!r}", field="username")
    return _public(row)


async def _log(conn: Conn, actor: Actor, now: datetime, action: str, username: str,
               before: dict[str, Any] | None, after: dict[str, Any] | None = None) -> None:
    if after is None:
        after = await adminlog.account_snapshot(conn, username)
    await adminlog.append(conn, actor=actor, action=action, target=f"user:{username}", at=now, before=before,
                          after=after)
    await changes.announce(conn, "users")


async def _revoke(conn: Conn, user_id: int, now: datetime) -> None:
    await conn.execute(accounts.REVOKE_USER_SESSIONS, user_id, now)
    await conn.execute(accounts.NOTIFY_REVOKED, f"user:{user_id}")


async def add_user(conn: Conn, *, actor: Actor, now: datetime, spec: UserSpec, password: str | None,
                   directory: Directory | None = None, password_hash: str | None = None,
                   log: bool = True) -> tuple[int, str | None]:
    """A new account; returns its id and the generated password when none was given (shown once)."""
    generated = None
    if password is None and password_hash is None:
        password = generated = generate_password()
    elif password is not None and (why := roster.password_problem(password)) is not None:
        raise ValidationFailed(f"password: {why}", field="password")
    async with conn.transaction():
        place, problems = (directory or await Directory.load(conn)).place(spec)
        if place is None:
            _raise(problems)
        assert place is not None
        uid = await accounts.add_user(
            conn, username=spec.username, display_name=spec.display_name.strip(), password=password or "",
            password_hash=password_hash, role=place.role, township_id=place.township_id,
            department=place.department, unit_id=place.unit_id, team_lead=spec.team_lead, phone=spec.phone or None,
            grid_id=place.grid_id)
        if log:
            await _log(conn, actor, now, "user.add", spec.username, None)
        else:
            await changes.announce(conn, "users")
    return uid, generated


# A change names only what changes; None means "keep" (a field is cleared with "" for text, 0 for ids).
@dataclass(frozen=True)
class UserChange:
    display_name: str | None = None
    role: str | None = None
    township: str | None = None
    department: str | None = None
    unit: str | None = None
    grid: str | None = None
    phone: str | None = None
    team_lead: bool | None = None


async def update_user(conn: Conn, *, actor: Actor, now: datetime, username: str, change: UserChange) -> None:
    """Change an account; what the new role cannot have (a department, a unit, a grid, team lead) is dropped
    unless the change gives it, and what it gives is checked like a new account."""
    async with conn.transaction():
        row = await conn.fetchrow(SELECT_USER, username)
        if row is None or row["role"] == Role.INTEGRATION.value:
            raise NotFound(f"username: no user {username!r}", field="username")
        role = change.role if change.role is not None else row["role"]
        parsed = roster.parse_role(role)
        keeps = _keeps(parsed)
        current = UserSpec(username=username, display_name=row["display_name"], role=row["role"],
                           township=row["township"], department=row["department"],
                           unit=str(row["unit_id"]) if row["unit_id"] else None,
                           grid=str(row["grid_id"]) if row["grid_id"] else None, phone=row["phone"],
                           team_lead=row["team_lead"])
        spec = replace(
            current, role=role,
            display_name=change.display_name if change.display_name is not None else current.display_name,
            township=_pick(change.township, current.township if keeps["township"] else None),
            department=_pick(change.department, current.department if keeps["department"] else None),
            unit=_pick(change.unit, current.unit if keeps["unit"] else None),
            grid=_pick(change.grid, current.grid if keeps["grid"] else None),
            phone=_pick(change.phone, current.phone),
            team_lead=change.team_lead if change.team_lead is not None else current.team_lead and keeps["team_lead"])
        # a township change drops a unit or grid of the old township unless given anew
        if change.township is not None and change.township != current.township:
            spec = replace(spec, unit=_pick(change.unit, None), grid=_pick(change.grid, None))
        place, problems = (await Directory.load(conn)).place(spec)
        if place is None:
            _raise(problems)
        assert place is not None
        before = await adminlog.account_snapshot(conn, username)
        try:
            await conn.execute(UPDATE_USER, row["id"], spec.display_name.strip(), place.role.value, place.township_id,
                               place.department, place.unit_id, place.grid_id, spec.phone or None, spec.team_lead)
        except asyncpg.CheckViolationError as exc:
            why = accounts.ROLE_REQUIREMENTS.get(exc.constraint_name or "", exc.constraint_name)
            raise ValidationFailed(f"role: {why}", field="role") from None
        after = await adminlog.account_snapshot(conn, username)
        assert before is not None and after is not None
        if before == after:
            return
        if any(before[f] != after[f] for f in PLACE_FIELDS):
            await _revoke(conn, row["id"], now)
            after = {**after, "sessions": "revoked"}
        await _log(conn, actor, now, "user.update", username, before, after)


def _keeps(role: Role | None) -> dict[str, bool]:
    """Which of an account's places a role can have."""
    return {"township": role not in (Role.ADMIN, Role.DEPARTMENT_HEAD),
            "department": role in (Role.LIAISON, Role.DEPARTMENT_HEAD),
            "unit": role is Role.LIAISON, "grid": role is Role.GRID_WORKER, "team_lead": role is Role.LIAISON}


def _pick(given: str | None, kept: str | None) -> str | None:
    if given is None:
        return kept
    return given.strip() or None


async def set_disabled(conn: Conn, *, actor: Actor, now: datetime, username: str, disabled: bool) -> None:
    """Disable an account (its sessions are revoked) or enable it again."""
    async with conn.transaction():
        row = await conn.fetchrow(SELECT_USER, username)
        if row is None or row["role"] == Role.INTEGRATION.value:
            raise NotFound(f"username: no user {username!r}", field="username")
        if row["disabled"] == disabled:
            raise Conflict(f"username: {username} is already {'disabled' if disabled else 'enabled'}",
                           field="username")
        if disabled and actor.user_id == row["id"]:
            raise Conflict("username: you cannot disable your own account", field="username")
        before = await adminlog.account_snapshot(conn, username)
        await conn.execute(SET_DISABLED, row["id"], disabled)
        if disabled:
            await _revoke(conn, row["id"], now)
        await _log(conn, actor, now, "user.disable" if disabled else "user.enable", username, before)


async def reset_password(conn: Conn, *, actor: Actor, now: datetime, username: str,
                         password: str | None) -> str | None:
    """A new password (the given one, else a generated one returned to be shown once); sessions revoked."""
    generated = None
    if password is None:
        password = generated = generate_password()
    async with conn.transaction():
        row = await conn.fetchrow(SELECT_USER, username)
        if row is None or row["role"] == Role.INTEGRATION.value:
            raise NotFound(f"username: no user {username!r}", field="username")
        await accounts.set_password(conn, username, password, now)
        # what changed, never the password or its hash
        await _log(conn, actor, now, "user.passwd", username, {"password": "old", "sessions": "kept"},
                   {"password": "generated" if generated else "new", "sessions": "revoked"})
    return generated


async def existing_usernames(conn: Conn, usernames: list[str]) -> set[str]:
    return {r["username"] for r in await conn.fetch(SELECT_EXISTING, usernames)}
