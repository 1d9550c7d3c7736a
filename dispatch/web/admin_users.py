"""Admins manage accounts (issue #17): list with filters, add any role, change, disable and enable, reset a
password, and the bulk import from an XLSX or CSV sheet (``dispatch/store/user_admin.py``, ``user_import.py``)."""

from __future__ import annotations

import base64
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from starlette.responses import Response

from dispatch.core import roster
from dispatch.core.domain import Role
from dispatch.store import user_admin, user_import
from dispatch.web.routing import Req, ZhJSONResponse, endpoint
from protocols.errors import ValidationFailed

ADMIN = [Role.ADMIN]
TAGS = ["admin"]
PREFIX = "/api/v1/admin/users"
IMPORT_PATH = PREFIX + "/import"
IMPORT_MAX_BYTES = 4 * 1024 * 1024
ROLE_CHOICES = "|".join(r.value for r in roster.ADMIN_ROLES)
Ref = Annotated[str, StringConstraints(strip_whitespace=True, max_length=64)]
RoleWord = Annotated[str, StringConstraints(pattern=f"^({ROLE_CHOICES})$")]


class UserQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: RoleWord | None = None
    township: Ref | None = Field(default=None, description="township code")
    department: Ref | None = Field(default=None, description="department code")
    q: Annotated[str, StringConstraints(max_length=64)] | None = Field(
        default=None, description="part of the username or the name")
    disabled: bool | None = None
    limit: Annotated[int, Field(ge=1, le=500)] = 50
    offset: Annotated[int, Field(ge=0, le=1_000_000)] = 0


class UserIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    username: Annotated[str, StringConstraints(pattern=r"^[a-z0-9_.-]{2,64}$")]
    display_name: Annotated[str, StringConstraints(min_length=1, max_length=roster.MAX_DISPLAY_NAME)]
    role: RoleWord
    township: Ref | None = Field(default=None, description="township code")
    department: Ref | None = Field(default=None, description="department code (liaisons, department heads)")
    unit: Ref | None = Field(default=None, description="a township unit of the township: its id or its name")
    grid: Ref | None = Field(default=None, description="a grid of the township (grid workers): its id or its name")
    phone: Annotated[str, StringConstraints(pattern=r"^[0-9+ -]{5,20}$")] | None = None
    team_lead: bool = False
    password: Annotated[str, StringConstraints(min_length=8, max_length=200)] | None = Field(
        default=None, description="none: one is generated and returned once")


class UserPatch(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    display_name: Annotated[str, StringConstraints(min_length=1, max_length=roster.MAX_DISPLAY_NAME)] | None = None
    role: RoleWord | None = None
    township: Ref | None = Field(default=None, description='township code; "" clears it')
    department: Ref | None = Field(default=None, description='"" clears it')
    unit: Ref | None = Field(default=None, description='unit id or name; "" clears it')
    grid: Ref | None = Field(default=None, description='grid id or name; "" clears it')
    phone: Annotated[str, StringConstraints(pattern=r"^([0-9+ -]{5,20})?$")] | None = Field(
        default=None, description='"" clears it')
    team_lead: bool | None = None


class PasswordIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    password: Annotated[str, StringConstraints(min_length=8, max_length=200)] | None = Field(
        default=None, description="none: one is generated and returned once")


class ImportQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    dry_run: bool = Field(default=False, description="only check the sheet (the preview)")


class AdminUserOut(BaseModel):
    id: int
    username: str
    display_name: str
    role: str
    township: str | None
    department: str | None
    unit_id: int | None
    unit_name: str | None
    grid_id: int | None
    grid_name: str | None
    phone: str | None
    team_lead: bool
    disabled: bool
    created_at: str


class UserListOut(BaseModel):
    users: list[AdminUserOut]
    total: int
    limit: int
    offset: int


class UserCreatedOut(BaseModel):
    user: AdminUserOut
    password: str | None = Field(description="the generated password, shown this once (none when one was given)")


class PasswordOut(BaseModel):
    password: str | None = Field(description="the generated password, shown this once (none when one was given)")


class DoneOut(BaseModel):
    ok: bool


class ImportRowOut(BaseModel):
    row: int
    ok: bool
    username: str
    name: str
    role: str
    township: str | None
    department: str | None
    unit: str | None
    grid: str | None
    phone: str | None
    team_lead: bool
    password: str = Field(description="given or generated")


class ImportProblemOut(BaseModel):
    row: int = Field(description="the row as numbered in the sheet (1: the header row)")
    field: str
    message: str


class ImportOut(BaseModel):
    ok: bool = Field(description="no row has a fault")
    dry_run: bool
    rows: list[ImportRowOut]
    problems: list[ImportProblemOut]
    error_rows: int
    created: int = Field(description="accounts created (0 for a dry run or a sheet with faults)")
    passwords: list[dict[str, str]] = Field(description="username, name, password of each generated one, once")
    passwords_xlsx: str | None = Field(description="the same as an XLSX (base64), to hand out")


@endpoint("GET", PREFIX, summary="List accounts (filters: role, township, department, text; paged)", tags=TAGS,
          roles=ADMIN, query=UserQuery, response=UserListOut)
async def list_users(call: Req) -> dict[str, Any]:
    q: UserQuery = call.query
    async with call.hub.pool.acquire() as conn:
        total, users = await user_admin.list_users(conn, role=q.role, township=q.township, department=q.department,
                                                   text=q.q or None, disabled=q.disabled, limit=q.limit,
                                                   offset=q.offset)
    return {"users": users, "total": total, "limit": q.limit, "offset": q.offset}


@endpoint("POST", PREFIX, summary="Add an account of any role", tags=TAGS, roles=ADMIN, body=UserIn,
          response=UserCreatedOut, status=201, errors={409: "the username exists"})
async def add_user(call: Req) -> dict[str, Any]:
    b: UserIn = call.body
    spec = user_admin.UserSpec(username=b.username, display_name=b.display_name, role=b.role, township=b.township,
                               department=b.department, unit=b.unit, grid=b.grid, phone=b.phone,
                               team_lead=b.team_lead)
    async with call.hub.pool.acquire() as conn:
        _uid, generated = await user_admin.add_user(conn, actor=call.actor, now=call.hub.clock.now(), spec=spec,
                                                    password=b.password)
        user = await user_admin.get_user(conn, b.username)
    return {"user": user, "password": generated}


def _username(call: Req) -> str:
    return str(call.request.path_params["username"])


@endpoint("GET", PREFIX + "/{username}", summary="One account", tags=TAGS, roles=ADMIN, response=AdminUserOut,
          errors={404: "no such account"})
async def get_user(call: Req) -> dict[str, Any]:
    async with call.hub.pool.acquire() as conn:
        return await user_admin.get_user(conn, _username(call))


@endpoint("PATCH", PREFIX + "/{username}",
          summary="Change an account's role, place, name, phone or team lead (a new role or place logs it out)",
          tags=TAGS, roles=ADMIN, body=UserPatch, response=AdminUserOut, errors={404: "no such account"})
async def update_user(call: Req) -> dict[str, Any]:
    b: UserPatch = call.body
    change = user_admin.UserChange(**b.model_dump(exclude_unset=True))
    async with call.hub.pool.acquire() as conn:
        await user_admin.update_user(conn, actor=call.actor, now=call.hub.clock.now(), username=_username(call),
                                     change=change)
        return await user_admin.get_user(conn, _username(call))


@endpoint("POST", PREFIX + "/{username}/disable", summary="Disable an account (its sessions end)", tags=TAGS,
          roles=ADMIN, response=DoneOut, errors={404: "no such account", 409: "already disabled, or yourself"})
async def disable_user(call: Req) -> dict[str, Any]:
    async with call.hub.pool.acquire() as conn:
        await user_admin.set_disabled(conn, actor=call.actor, now=call.hub.clock.now(), username=_username(call),
                                      disabled=True)
    return {"ok": True}


@endpoint("POST", PREFIX + "/{username}/enable", summary="Enable a disabled account", tags=TAGS, roles=ADMIN,
          response=DoneOut, errors={404: "no such account", 409: "already enabled"})
async def enable_user(call: Req) -> dict[str, Any]:
    async with call.hub.pool.acquire() as conn:
        await user_admin.set_disabled(conn, actor=call.actor, now=call.hub.clock.now(), username=_username(call),
                                      disabled=False)
    return {"ok": True}


@endpoint("POST", PREFIX + "/{username}/password",
          summary="Reset a password (the given one, or a generated one shown once); its sessions end", tags=TAGS,
          roles=ADMIN, body=PasswordIn, response=PasswordOut, errors={404: "no such account"})
async def reset_password(call: Req) -> dict[str, Any]:
    b: PasswordIn = call.body
    async with call.hub.pool.acquire() as conn:
        generated = await user_admin.reset_password(conn, actor=call.actor, now=call.hub.clock.now(),
                                                    username=_username(call), password=b.password)
    return {"password": generated}


@endpoint("GET", IMPORT_PATH + "/template.xlsx", summary="The bulk import's template (headers in Chinese and English)",
          tags=TAGS, roles=ADMIN, media=roster.XLSX_MEDIA)
async def import_template(call: Req) -> Response:
    return Response(roster.template_xlsx(), media_type=roster.XLSX_MEDIA,
                    headers={"Content-Disposition": 'attachment; filename="users-template.xlsx"',
                             "Cache-Control": "no-store"})


@endpoint("POST", IMPORT_PATH, summary="Import accounts from an XLSX or CSV sheet (the raw file as the body): "
          "with dry_run a per-row report; else all or nothing (422 with the report when a row has a fault)",
          tags=TAGS, roles=ADMIN, query=ImportQuery,
          response=ImportOut, upload={roster.XLSX_MEDIA: "the sheet as XLSX",
                                      "text/csv": "the sheet as CSV (UTF-8 with or without BOM, or GB18030)"},
          errors={413: f"the file is larger than {IMPORT_MAX_BYTES // (1024 * 1024)} MiB"})
async def import_users(call: Req) -> Response | dict[str, Any]:
    q: ImportQuery = call.query
    data = bytearray()
    async for chunk in call.request.stream():  # BodyLimit stops it past IMPORT_MAX_BYTES (413)
        data += chunk
    if not data:
        raise ValidationFailed("file: the body is empty: send the sheet's bytes", field="file")
    async with call.hub.pool.acquire() as conn:
        report = await user_import.run(conn, actor=call.actor, now=call.hub.clock.now(), data=bytes(data),
                                       dry_run=q.dry_run)
    generated = [(u, n, p) for u, n, p in report.created if p is not None]
    out = {**report.to_json(), "dry_run": q.dry_run,
           "passwords": [{"username": u, "name": n, "password": p} for u, n, p in generated],
           "passwords_xlsx": base64.b64encode(roster.passwords_xlsx(generated)).decode() if generated else None}
    if not report.ok and not q.dry_run:  # nothing was imported: an error, with the report
        rows = out["error_rows"]
        return ZhJSONResponse({"code": "validation", "field": "file", "report": out,
                               "message": f"{rows} row(s) have faults; nothing was imported"}, status_code=422)
    return out
