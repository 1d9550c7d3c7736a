"""Admins read and change the settings stored in the database (docs/CONFIGURATION.md "Settings in the
database"): categories and routes, the SLA policy and escalation ladder, the evaluation weights. A change is
in effect on every node at once, for deadlines set after it."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from dispatch.core.domain import Role
from dispatch.store import settings as store
from dispatch.web.routing import Req, endpoint
from dispatch.web.services import reload_settings

ADMIN = [Role.ADMIN]
PREFIX = "/api/v1/admin/settings"
SECTION_PATH = PREFIX + "/{section}"


class SettingsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    based_on: Annotated[int, Field(ge=0, le=2_000_000_000, description=(
        "the version this change was made from (GET's `version`; 0: the file's): if another change was saved "
        "since, the answer is 409 naming who and when"))]
    value: dict[str, Any] = Field(description="the whole section, in the shape GET returns (seconds, fractions)")


class SettingsOut(BaseModel):
    section: str = Field(description="categories, sla or evaluation")
    version: int = Field(description="0: the configuration file's, no change saved in the database yet")
    source: str = Field(description="file or database")
    value: dict[str, Any]
    changed_at: str | None
    changed_by: str | None
    in_use: list[str] = Field(description="categories: the codes calls name (they are retired, never removed)")


class SettingsChangeOut(BaseModel):
    version: int
    changed_at: str
    changed_by: str
    before: dict[str, Any] = Field(description="the keys this version changed (dotted), as they were")
    after: dict[str, Any] = Field(description="the same keys as this version set them")


class SettingsHistoryOut(BaseModel):
    section: str
    versions: list[SettingsChangeOut]


def _name(call: Req) -> str:
    value: str = call.request.path_params["section"]
    return value


@endpoint("GET", SECTION_PATH, summary="Read a settings section (categories, sla, evaluation) and its version",
          tags=["admin"], roles=ADMIN, response=SettingsOut, errors={404: "no such section"})
async def get_settings(call: Req) -> dict[str, Any]:
    async with call.hub.pool.acquire() as conn:
        return (await store.current(conn, call.hub.file_cfg, _name(call))).to_json()


@endpoint("PUT", SECTION_PATH, summary="Change a settings section; in effect on every node for new deadlines",
          tags=["admin"], roles=ADMIN, body=SettingsIn, response=SettingsOut,
          errors={404: "no such section", 409: "changed by someone else since `based_on` (who and when)"})
async def put_settings(call: Req) -> dict[str, Any]:
    body: SettingsIn = call.body
    async with call.hub.pool.acquire() as conn:
        await store.change(conn, call.hub.file_cfg, _name(call), body.value, based_on=body.based_on,
                           actor=call.actor, at=call.hub.clock.now())
        found = await store.current(conn, call.hub.file_cfg, _name(call))
    # In effect here before the answer (the notice reloads the other nodes, and this one again: harmless).
    await reload_settings(call.hub, "settings")
    return found.to_json()


@endpoint("GET", SECTION_PATH + "/history", summary="The saved versions of a settings section, newest first",
          tags=["admin"], roles=ADMIN, response=SettingsHistoryOut, errors={404: "no such section"})
async def settings_history(call: Req) -> dict[str, Any]:
    async with call.hub.pool.acquire() as conn:
        versions = await store.history(conn, call.hub.file_cfg, _name(call))
    return {"section": _name(call), "versions": versions}
