"""Admins read and change the settings stored in the database (docs/CONFIGURATION.md "Settings in the
database"): categories and routes, the SLA policy and escalation ladder, the evaluation weights. A change is
in effect on every node at once, for deadlines set after it."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from dispatch.core.domain import Role
from dispatch.core.settings import SECTIONS
from dispatch.store import settings as store
from dispatch.web.routing import Req, endpoint
from dispatch.web.services import reload_settings

ADMIN = [Role.ADMIN]
PREFIX = "/api/v1/admin/settings"


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


def _register(section: str) -> None:
    """GET, PUT and GET history of one section (a path each, so the OpenAPI document names them all)."""
    path = f"{PREFIX}/{section}"
    what = SECTION_SUMMARY[section]

    async def get_settings(call: Req) -> dict[str, Any]:
        async with call.hub.pool.acquire() as conn:
            return (await store.current(conn, call.hub.file_cfg, section)).to_json()

    async def put_settings(call: Req) -> dict[str, Any]:
        body: SettingsIn = call.body
        async with call.hub.pool.acquire() as conn:
            await store.change(conn, call.hub.file_cfg, section, body.value, based_on=body.based_on,
                               actor=call.actor, at=call.hub.clock.now())
            found = await store.current(conn, call.hub.file_cfg, section)
        # In effect here before the answer (the notice reloads the other nodes, and this one again: harmless).
        await reload_settings(call.hub, "settings")
        return found.to_json()

    async def settings_history(call: Req) -> dict[str, Any]:
        async with call.hub.pool.acquire() as conn:
            versions = await store.history(conn, call.hub.file_cfg, section)
        return {"section": section, "versions": versions}

    endpoint("GET", path, summary=f"Read the settings of {what}, with their version", tags=["admin"], roles=ADMIN,
             response=SettingsOut)(get_settings)
    endpoint("PUT", path, summary=f"Change the settings of {what}: in effect on every node, for new deadlines",
             tags=["admin"], roles=ADMIN, body=SettingsIn, response=SettingsOut,
             errors={409: "changed by someone else since `based_on` (the message names who and when)"})(put_settings)
    endpoint("GET", path + "/history", summary=f"List the saved versions of the settings of {what}, newest first",
             tags=["admin"], roles=ADMIN, response=SettingsHistoryOut)(settings_history)


SECTION_SUMMARY = {"categories": "categories and routes", "sla": "the SLA policy and escalation ladder",
                   "evaluation": "the evaluation weights"}
for _section in SECTIONS:
    _register(_section)
