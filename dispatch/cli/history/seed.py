"""Load a simulated history into the demo county: its people from ``users``, the simulation, the bulk loader."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from dispatch.cli.history import MAX_MONTHS
from dispatch.cli.history.clockwork import Township
from dispatch.cli.history.county import County, months_before
from dispatch.core.config import Config
from dispatch.core.domain import Actor, Role
from dispatch.store import accounts
from dispatch.store.bulk import bulk_load
from dispatch.store.pool import Conn
from dispatch.store.writer import SELECT_TARGETS
from protocols.errors import ValidationFailed

YIELD_EVERY = 50  # commands simulated between turns of the event loop while a batch is copied
SELECT_TOWNSHIPS = "select id, code, name_zh from townships order by id"
# The people who act in the history: every enabled operator and liaison, each township's team leads first.
SELECT_PEOPLE = """
select id, username, role, township_id, department, unit_id, team_lead, display_name
  from users
 where township_id is not null and role in ('operator', 'liaison') and not disabled
 order by township_id, team_lead desc, username
"""
SELECT_GRIDS = "select id, township_id from grids order by id"
SELECT_ANY_CALL = "select exists (select 1 from calls)"


@dataclass(frozen=True)
class Figures:
    """What a load wrote, and how long it took."""

    start: datetime
    end: datetime
    events: int
    calls: int
    commands: int
    seconds: float


async def townships(conn: Conn) -> list[Township]:
    """Each township with its operators, its liaisons by target (team lead first) and its grids."""
    people: dict[int, list[Actor]] = {}
    for row in await conn.fetch(SELECT_PEOPLE):
        people.setdefault(row["township_id"], []).append(accounts.actor_from_row(row))
    grids: dict[int, list[int]] = {}
    for row in await conn.fetch(SELECT_GRIDS):
        grids.setdefault(row["township_id"], []).append(row["id"])
    out = []
    for row in await conn.fetch(SELECT_TOWNSHIPS):
        actors = people.get(row["id"], [])
        operators = tuple(a for a in actors if a.role == Role.OPERATOR)
        liaisons: dict[str, list[Actor]] = {}
        for a in actors:
            if a.role == Role.LIAISON and a.target is not None:
                liaisons.setdefault(a.target, []).append(a)
        targets = frozenset(r["target"] for r in await conn.fetch(SELECT_TARGETS, row["id"]))  # the writer's
        staffed = {t: tuple(v) for t, v in liaisons.items() if t in targets}
        if operators and staffed:  # a township nobody works in has no history
            out.append(Township(row["id"], row["code"], row["name_zh"], operators, staffed, targets,
                                tuple(grids.get(row["id"], ()))))
    return out


async def has_calls(conn: Conn) -> bool:
    return bool(await conn.fetchval(SELECT_ANY_CALL))


async def seed_history(conn: Conn, cfg: Config, months: int, *, end: datetime | None = None, scale: float = 1.0,
                       seed: int = 1, progress: Callable[[float], None] | None = None) -> Figures:
    """Simulate ``months`` of the county's activity ending at ``end`` (default now) and load it.

    Refused (``Conflict``, by the loader) when the county already has calls. Deterministic for a seed, an
    end and a scale."""
    if not 1 <= months <= MAX_MONTHS:
        raise ValidationFailed(f"history: must be 1 to {MAX_MONTHS} months", field="history")
    if not scale > 0:
        raise ValidationFailed("scale: must be more than 0", field="scale")
    began = time.monotonic()
    end = (end or datetime.now(UTC)).astimezone(UTC)
    start = months_before(end, months)
    county = County(cfg, await townships(conn), start, end, seed=seed, scale=scale)
    span = (end - start).total_seconds()
    async with bulk_load(conn, cfg) as log:
        copying: asyncio.Task[None] | None = None
        for n, step in enumerate(county.run()):
            log.add(step.township_id, step.actor, step.command_id, step.events, step.calls)
            if log.pending >= log.batch:
                if copying is not None:
                    await copying
                # PostgreSQL takes in one batch while the simulation makes the next (the other core).
                copying = asyncio.create_task(log.copy(log.take()))
                if progress is not None:
                    progress((county.now - start).total_seconds() / span)
            elif copying is not None and n % YIELD_EVERY == 0:
                await asyncio.sleep(0)  # let the copy send what it has encoded
        if copying is not None:
            await copying
    if progress is not None:
        progress(1.0)
    return Figures(start, end, log.events, log.calls, county.commands, time.monotonic() - began)
