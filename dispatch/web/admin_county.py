"""Admins manage the county's reference data (issue #17): townships, grids, stations of the seven departments,
township units. Each change is logged and takes effect on every node at once (``dispatch/store/county.py``)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from dispatch.core.domain import Role
from dispatch.store import county
from dispatch.web.routing import Req, endpoint

ADMIN = [Role.ADMIN]
TAGS = ["admin"]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=county.MAX_NAME)]
Code = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{1,31}$")]
Department = Annotated[str, StringConstraints(pattern=r"^[a-z_]{1,32}$")]
BOUNDARY = ("GeoJSON geometry: Polygon or MultiPolygon, rings of [lon, lat] (WGS 84), each ring closed; "
            "null clears it")


class TownshipIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: Code = Field(description="2-32 of a-z 0-9 _ -, starting with a letter (e.g. yiqiao); never changes")
    name_zh: Name
    name_en: Name
    boundary: dict[str, Any] | None = Field(default=None, description=BOUNDARY)
    stations: list[Department] | None = Field(default=None, max_length=32,
                                              description="stationed departments (default: all seven)")


class TownshipPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name_zh: Name | None = None
    name_en: Name | None = None
    boundary: dict[str, Any] | None = Field(default=None, description=BOUNDARY)


class GridIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name = Field(description="unique in the township, e.g. 第7网格")
    boundary: dict[str, Any] | None = Field(default=None, description=BOUNDARY)


class GridPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name | None = None
    boundary: dict[str, Any] | None = Field(default=None, description=BOUNDARY)


class StationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    department: Department


class UnitIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name_zh: Name = Field(description="unique in the township, e.g. 镇执法中队")
    name_en: Name


class UnitPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name_zh: Name | None = None
    name_en: Name | None = None


class GridOut(BaseModel):
    id: int
    name: str
    boundary: dict[str, Any] | None


class UnitOut(BaseModel):
    id: int
    target: str
    name_zh: str
    name_en: str
    retired_at: str | None


class TownshipOut(BaseModel):
    id: int
    code: str
    name_zh: str
    name_en: str
    boundary: dict[str, Any] | None
    stations: list[str]
    users: int
    grids: list[GridOut]
    units: list[UnitOut]


class CountyOut(BaseModel):
    townships: list[TownshipOut]


class CreatedOut(BaseModel):
    id: int


class DoneOut(BaseModel):
    ok: bool


OK = {"ok": True}


@endpoint("GET", "/api/v1/admin/county", summary="Every township with its stations, grids and units", tags=TAGS,
          roles=ADMIN, response=CountyOut)
async def get_county(call: Req) -> dict[str, Any]:
    async with call.hub.pool.acquire() as conn:
        return {"townships": await county.county(conn)}


@endpoint("POST", "/api/v1/admin/townships", summary="Add a township (with its stations)", tags=TAGS, roles=ADMIN,
          body=TownshipIn, response=CreatedOut, status=201, errors={409: "a township of that code exists"})
async def add_township(call: Req) -> dict[str, Any]:
    b: TownshipIn = call.body
    async with call.hub.pool.acquire() as conn:
        tid = await county.add_township(conn, actor=call.actor, now=call.hub.clock.now(), code=b.code,
                                        name_zh=b.name_zh, name_en=b.name_en, boundary=b.boundary,
                                        stations=b.stations)
    return {"id": tid}


def _code(call: Req) -> str:
    return str(call.request.path_params["code"])


@endpoint("PATCH", "/api/v1/admin/townships/{code}", summary="Rename a township or set its boundary", tags=TAGS,
          roles=ADMIN, body=TownshipPatch, response=DoneOut, errors={404: "no such township"})
async def update_township(call: Req) -> dict[str, Any]:
    b: TownshipPatch = call.body
    async with call.hub.pool.acquire() as conn:
        await county.update_township(conn, actor=call.actor, now=call.hub.clock.now(), code=_code(call),
                                     name_zh=b.name_zh, name_en=b.name_en, boundary=b.boundary,
                                     set_boundary="boundary" in b.model_fields_set)
    return OK


@endpoint("POST", "/api/v1/admin/townships/{code}/grids", summary="Add a grid to a township", tags=TAGS,
          roles=ADMIN, body=GridIn, response=CreatedOut, status=201,
          errors={404: "no such township", 409: "the township has a grid of that name"})
async def add_grid(call: Req) -> dict[str, Any]:
    b: GridIn = call.body
    async with call.hub.pool.acquire() as conn:
        gid = await county.add_grid(conn, actor=call.actor, now=call.hub.clock.now(), township_code=_code(call),
                                    name=b.name, boundary=b.boundary)
    return {"id": gid}


@endpoint("PATCH", "/api/v1/admin/grids/{grid_id:int}", summary="Rename a grid or set its boundary", tags=TAGS,
          roles=ADMIN, body=GridPatch, response=DoneOut,
          errors={404: "no such grid", 409: "the township has a grid of that name"})
async def update_grid(call: Req) -> dict[str, Any]:
    b: GridPatch = call.body
    async with call.hub.pool.acquire() as conn:
        await county.update_grid(conn, actor=call.actor, now=call.hub.clock.now(),
                                 grid_id=call.request.path_params["grid_id"], name=b.name, boundary=b.boundary,
                                 set_boundary="boundary" in b.model_fields_set)
    return OK


@endpoint("POST", "/api/v1/admin/townships/{code}/stations", summary="Station a department in a township",
          tags=TAGS, roles=ADMIN, body=StationIn, response=DoneOut, status=201,
          errors={404: "no such township", 409: "already stationed"})
async def add_station(call: Req) -> dict[str, Any]:
    b: StationIn = call.body
    async with call.hub.pool.acquire() as conn:
        await county.add_station(conn, actor=call.actor, now=call.hub.clock.now(), township_code=_code(call),
                                 department=b.department)
    return OK


@endpoint("DELETE", "/api/v1/admin/townships/{code}/stations/{department}",
          summary="Remove a department's station (refused while it has open assignments there)", tags=TAGS,
          roles=ADMIN, response=DoneOut,
          errors={404: "no such township or station", 409: "the department has open assignments there"})
async def remove_station(call: Req) -> dict[str, Any]:
    async with call.hub.pool.acquire() as conn:
        await county.remove_station(conn, actor=call.actor, now=call.hub.clock.now(), township_code=_code(call),
                                    department=str(call.request.path_params["department"]))
    return OK


@endpoint("POST", "/api/v1/admin/townships/{code}/units", summary="Add a township unit (镇属力量)", tags=TAGS,
          roles=ADMIN, body=UnitIn, response=CreatedOut, status=201,
          errors={404: "no such township", 409: "the township has a unit of that name"})
async def add_unit(call: Req) -> dict[str, Any]:
    b: UnitIn = call.body
    async with call.hub.pool.acquire() as conn:
        uid = await county.add_unit(conn, actor=call.actor, now=call.hub.clock.now(), township_code=_code(call),
                                    name_zh=b.name_zh, name_en=b.name_en)
    return {"id": uid}


@endpoint("PATCH", "/api/v1/admin/units/{unit_id:int}", summary="Rename a township unit", tags=TAGS, roles=ADMIN,
          body=UnitPatch, response=DoneOut, errors={404: "no such unit", 409: "the township has a unit of that name"})
async def update_unit(call: Req) -> dict[str, Any]:
    b: UnitPatch = call.body
    async with call.hub.pool.acquire() as conn:
        await county.update_unit(conn, actor=call.actor, now=call.hub.clock.now(),
                                 unit_id=call.request.path_params["unit_id"], name_zh=b.name_zh, name_en=b.name_en)
    return OK


@endpoint("POST", "/api/v1/admin/units/{unit_id:int}/retire",
          summary="Retire a township unit (refused while it has open assignments)", tags=TAGS, roles=ADMIN,
          response=DoneOut, errors={404: "no such unit", 409: "open assignments, or already retired"})
async def retire_unit(call: Req) -> dict[str, Any]:
    async with call.hub.pool.acquire() as conn:
        await county.retire_unit(conn, actor=call.actor, now=call.hub.clock.now(),
                                 unit_id=call.request.path_params["unit_id"])
    return OK
