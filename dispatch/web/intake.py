"""What the Open311 and hotline adapters share: the per-node rate limiter and county map, the township a
report belongs to, and creating the intake call with its link to the outside system."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from dispatch.core import geography
from dispatch.core.commands import CreateCall
from dispatch.core.ratelimit import RateLimiter
from dispatch.node.state import HubState
from dispatch.store import integrations as store
from dispatch.store.integrations import Integration
from protocols.errors import CommandIdReused, RateLimited, ValidationFailed

MAP_TTL_S = 30.0  # boundaries change rarely; each node re-reads them at most this often


@dataclass
class _NodeIntake:
    limiter: RateLimiter = field(default_factory=RateLimiter)
    county: geography.CountyMap | None = None
    loaded_at: float = 0.0


def _node(hub: HubState) -> _NodeIntake:
    node: _NodeIntake = hub.extras.setdefault("intake", _NodeIntake())
    return node


async def forget_map(hub: HubState, topic: str) -> None:
    """Boundaries changed (``changes`` topic ``reference``): read the county map again on the next report."""
    if topic in ("reference", "*"):
        _node(hub).county = None


def check_rate(hub: HubState, integration: Integration) -> None:
    """``RateLimited`` when the integration spent its allowance (per node; on the hub's clock)."""
    wait = _node(hub).limiter.take(integration.id, integration.rate_per_min, hub.clock.now().timestamp())
    if wait > 0:
        raise RateLimited(f"more than {integration.rate_per_min} requests a minute; retry in "
                          f"{max(1, int(wait + 0.999))} s", retry_after=wait)


async def county_map(hub: HubState) -> geography.CountyMap:
    node = _node(hub)
    if node.county is None or time.monotonic() - node.loaded_at > MAP_TTL_S:
        async with hub.pool.acquire() as conn:
            node.county = await store.county_map(conn)
        node.loaded_at = time.monotonic()
    return node.county


async def place(hub: HubState, integration: Integration, lat: float | None, lon: float | None,
                township_code: str | None = None, *, lat_field: str = "lat",
                township_field: str = "township") -> geography.Match:
    """The township (and grid) of a report: the integration's own township if it is bound to one, else the
    township named by code, else the one containing lat/lon; ``ValidationFailed`` naming the field."""
    county = await county_map(hub)
    tid = integration.township_id
    if tid is None and township_code:
        async with hub.pool.acquire() as conn:
            tid = await store.township_id(conn, township_code, township_field)
    elif tid is not None and township_code and township_code != integration.township_code:
        raise ValidationFailed(f"{township_field}: this integration reports to {integration.township_code} only",
                               field=township_field)
    if tid is not None:
        grid = county.grid_in(tid, lon, lat) if lat is not None and lon is not None else None
        return geography.Match(tid, grid)
    if lat is None or lon is None:
        raise ValidationFailed(f"{lat_field}: a location inside the county is required to find the township "
                               "(this integration is not bound to one)", field=lat_field)
    match = county.locate(lon, lat)
    if match is None:
        raise ValidationFailed(f"{lat_field}: ({lat}, {lon}) lies outside every township of the county",
                               field=lat_field)
    return match


async def create_call(hub: HubState, integration: Integration, match: geography.Match, cmd: CreateCall,
                      external_id: str | None, details: dict[str, Any]) -> tuple[UUID, bool]:
    """Create the intake call as the integration and link it; returns the call id and whether it already
    existed (a retry of the same command). A command id already used with other content (a resent ticket
    that changed) answers the call that command created."""
    assert hub.store is not None
    actor = integration.actor(match.township_id)
    try:
        outcome = await hub.store.execute(actor, cmd)
        call_id, replayed = UUID(outcome.result["call_id"]), outcome.replayed
    except CommandIdReused:
        async with hub.pool.acquire() as conn:
            found = await store.call_of_command(conn, cmd.command_id, integration.user_id)
        if found is None:
            raise
        call_id, replayed = found, True
    async with hub.pool.acquire() as conn:
        await store.link(conn, integration.id, call_id, external_id, details, hub.clock.now())
    return call_id, replayed


async def target_names(hub: HubState) -> dict[str, str]:
    """Department and unit codes → their Chinese names (agency_responsible, status texts)."""
    async with hub.pool.acquire() as conn:
        units = await store.unit_names(conn)
    return {**{code: names.zh for code, names in hub.cfg.departments.items()}, **units}


def category_code(hub: HubState, given: str, field: str) -> str:
    """A configured category (not retired) by its code or its Chinese name."""
    open_ = hub.cfg.open_categories()
    if given in open_:
        return given
    for code, cat in hub.cfg.categories.items():
        if cat.zh == given and code in open_:
            return code
    raise ValidationFailed(f"{field}: unknown category {given!r}", field=field)
