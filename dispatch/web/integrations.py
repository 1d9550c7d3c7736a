"""Admins manage integrations (outside systems feeding the intake): add, list, disable, enable, rotate.
A new credential (an Open311 api_key or a hotline secret) is in the answer once and never again."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from dispatch.core.domain import Role, Source
from dispatch.store import integrations as store
from dispatch.web.routing import Req, endpoint

ADMIN = [Role.ADMIN]
PREFIX = "/api/v1/admin/integrations"


class IntegrationIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    kind: Literal["open311", "hotline"]
    name: Annotated[str, StringConstraints(pattern=r"^[a-z0-9_-]{2,40}$")] = Field(
        description="2-40 of a-z 0-9 _ -; the hotline sends it in X-Xianghu-Integration")
    display_name: Annotated[str, StringConstraints(min_length=1, max_length=50)] = Field(
        description="how the call's timeline names it, e.g. 12345热线")
    township: Annotated[str, StringConstraints(max_length=64)] | None = Field(
        default=None, description="township code: bound to that township; none: by the report's location")
    source: Source | None = Field(default=None, description="the calls' source (default: resident_app for "
                                  "open311, hotline_12345 for hotline)")
    callback_url: Annotated[str, StringConstraints(max_length=1000, pattern=r"^https?://\S+$")] | None = None
    rate_per_min: Annotated[int, Field(ge=1, le=100_000)] = 60


class IntegrationOut(BaseModel):
    id: str
    kind: str
    name: str
    display_name: str
    township: str | None
    source: str
    callback_url: str | None
    rate_per_min: int
    enabled: bool
    created_at: str


class IntegrationListOut(BaseModel):
    integrations: list[IntegrationOut]


class CredentialOut(BaseModel):
    integration: IntegrationOut
    api_key: str | None = Field(description="Open311: the api_key, shown this once")
    secret: str | None = Field(description="hotline: the HMAC secret, shown this once")


def _credential(found: store.Integration, token: str) -> dict[str, Any]:
    return {"integration": found.public(), "api_key": token if found.kind == "open311" else None,
            "secret": token if found.kind == "hotline" else None}


@endpoint("GET", PREFIX, summary="List integrations", tags=["admin"], roles=ADMIN, response=IntegrationListOut)
async def list_integrations(call: Req) -> dict[str, Any]:
    async with call.hub.pool.acquire() as conn:
        found = await store.all_integrations(conn)
    return {"integrations": [i.public() for i in found]}


@endpoint("POST", PREFIX, summary="Add an integration; its credential is in this answer only", tags=["admin"],
          roles=ADMIN, body=IntegrationIn, response=CredentialOut, status=201,
          errors={409: "an integration of that name exists"})
async def add_integration(call: Req) -> dict[str, Any]:
    body: IntegrationIn = call.body
    async with call.hub.pool.acquire() as conn:
        found, token = await store.add(conn, kind=body.kind, name=body.name, display_name=body.display_name,
                                       township=body.township, source=body.source, callback_url=body.callback_url,
                                       rate_per_min=body.rate_per_min, now=call.hub.clock.now(),
                                       actor=call.actor)
    return _credential(found, token)


def _id(call: Req) -> str:
    value: UUID = call.request.path_params["integration_id"]
    return str(value)


@endpoint("POST", PREFIX + "/{integration_id:uuid}/disable", summary="Disable an integration", tags=["admin"],
          roles=ADMIN, response=IntegrationOut, errors={404: "no such integration"})
async def disable_integration(call: Req) -> dict[str, Any]:
    async with call.hub.pool.acquire() as conn:
        return (await store.set_enabled(conn, _id(call), False, actor=call.actor,
                                             now=call.hub.clock.now())).public()


@endpoint("POST", PREFIX + "/{integration_id:uuid}/enable", summary="Enable an integration again", tags=["admin"],
          roles=ADMIN, response=IntegrationOut, errors={404: "no such integration"})
async def enable_integration(call: Req) -> dict[str, Any]:
    async with call.hub.pool.acquire() as conn:
        return (await store.set_enabled(conn, _id(call), True, actor=call.actor,
                                             now=call.hub.clock.now())).public()


@endpoint("POST", PREFIX + "/{integration_id:uuid}/rotate",
          summary="Replace an integration's credential; the old one stops working at once", tags=["admin"],
          roles=ADMIN, response=CredentialOut, errors={404: "no such integration"})
async def rotate_integration(call: Req) -> dict[str, Any]:
    async with call.hub.pool.acquire() as conn:
        found, token = await store.rotate(conn, _id(call), actor=call.actor, now=call.hub.clock.now())
    return _credential(found, token)
