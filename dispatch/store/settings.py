"""Settings in the database (DESIGN.md idea 11): versions of the administrable sections, the effective
configuration they make with the file, and the one function every change goes through (REST and CLI):
validate → store the new version → admin log (before → after) → announce ``settings``, in one transaction."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from dispatch.core import settings as rules
from dispatch.core.config import Config
from dispatch.core.domain import Actor
from dispatch.store import adminlog, changes
from dispatch.store.pool import Conn
from dispatch.store.reference import UPSERT_CATEGORY
from protocols.errors import ConfigError, Conflict, NotFound, ValidationFailed

TZ = ZoneInfo("Asia/Shanghai")  # who changed it and when, in the county's time (docs/GLOSSARY.md)
# Changes of one section wait for each other (held until the transaction ends); the key ends in
# the section's index in SECTIONS.
LOCK_SECTION = "select pg_advisory_xact_lock(74201900120 + $1::int)"
SELECT_LATEST = """
select distinct on (section) section, version, value
  from settings
 order by section, version desc
"""
SELECT_SLA_VERSIONS = "select version, value from settings where section = 'sla'"
SELECT_HEAD = """
select version, changed_at, actor_id, actor_name
  from settings
 where section = $1
 order by version desc
 limit 1
"""
SELECT_HISTORY = """
select version, changed_at, actor_id, actor_name, value
  from settings
 where section = $1
 order by version
"""
INSERT_VERSION = """
insert into settings (section, version, value, changed_at, actor_id, actor_name)
values ($1, $2, $3, $4, $5, $6)
"""
# Categories that calls name, among the given codes.
SELECT_USED_CATEGORIES = "select distinct category from calls where category = any($1::text[])"
# Categories of the table the file no longer lists that calls still name (kept, retired).
SELECT_DROPPED_IN_USE = """
select c.code, c.name_zh, c.name_en
  from categories c
 where c.code <> all($1::text[])
   and exists (select 1 from calls where category = c.code)
 order by c.code
"""
DELETE_UNUSED_CATEGORIES = """
delete from categories c
 where c.code <> all($1::text[])
   and not exists (select 1 from calls where category = c.code)
"""


@dataclass(frozen=True, slots=True)
class Section:
    """One section as it is in effect: its version (0: the file's) and who saved it when."""

    section: str
    version: int
    value: dict[str, Any]
    changed_at: datetime | None = None
    changed_by: str | None = None
    in_use: tuple[str, ...] = ()  # categories: the codes calls name (retire them, they cannot be removed)

    def to_json(self) -> dict[str, Any]:
        return {"section": self.section, "version": self.version, "value": self.value,
                "source": "database" if self.version else "file",
                "changed_at": None if self.changed_at is None else self.changed_at.astimezone(UTC).isoformat(),
                "changed_by": self.changed_by, "in_use": list(self.in_use)}


def _section(name: str) -> str:
    if name not in rules.SECTIONS:
        raise NotFound(f"no settings section {name!r} (one of {', '.join(rules.SECTIONS)})", field="section")
    return name


async def load_effective(conn: Conn, base: Config) -> Config:
    """The file ``base`` with the latest stored version of each section (and every SLA version's ladder)."""
    latest: dict[str, tuple[int, Mapping[str, Any]]] = {
        r["section"]: (r["version"], r["value"]) for r in await conn.fetch(SELECT_LATEST)}
    history = {r["version"]: r["value"] for r in await conn.fetch(SELECT_SLA_VERSIONS)}
    if "categories" not in latest:
        # Categories the file dropped while calls still name them stay known (their names), retired.
        kept = await conn.fetch(SELECT_DROPPED_IN_USE, list(base.categories))
        if kept:
            value = rules.section_value(base, "categories")
            for r in kept:
                value[r["code"]] = {"zh": r["name_zh"], "en": r["name_en"], "route": [], "retired": True}
            latest["categories"] = (0, value)
    try:
        return rules.effective(base, latest, history)
    except ValidationFailed as exc:
        raise ConfigError(f"the settings stored in the database do not fit this configuration file: {exc.message}"
                          " (fix the file, or the setting with `xianghu settings set`)") from None


async def current(conn: Conn, base: Config, section: str) -> Section:
    """One section as in effect now, with its version."""
    cfg = await load_effective(conn, base)
    head = await conn.fetchrow(SELECT_HEAD, _section(section))
    value = rules.section_value(cfg, section)
    in_use: tuple[str, ...] = ()
    if section == "categories":
        in_use = tuple(sorted(r["category"] for r in await conn.fetch(SELECT_USED_CATEGORIES, list(value))))
    if head is None:
        return Section(section, 0, value, in_use=in_use)
    return Section(section, head["version"], value, head["changed_at"], head["actor_name"], in_use)


async def history(conn: Conn, base: Config, section: str) -> list[dict[str, Any]]:
    """Every stored version of a section, newest first, each with what it changed from the one before."""
    rows = await conn.fetch(SELECT_HISTORY, _section(section))
    previous = rules.section_value(base, section)
    out: list[dict[str, Any]] = []
    for r in rows:
        before, after = rules.diff(previous, r["value"])
        out.append({"version": r["version"], "changed_at": r["changed_at"].astimezone(UTC).isoformat(),
                    "changed_by": r["actor_name"], "before": before, "after": after})
        previous = r["value"]
    return out[::-1]


async def change(conn: Conn, base: Config, section: str, value: Mapping[str, Any], *, based_on: int,
                 actor: Actor, at: datetime) -> Section:
    """Save a new version of ``section`` (the whole section), if ``based_on`` is still the one in effect.

    A category that calls name and that the new value leaves out is kept, retired. Refused, nothing changes:
    a value the file's rules refuse (ValidationFailed naming the key), a stale ``based_on`` (Conflict naming
    who changed it and when), a value equal to the one in effect."""
    _section(section)
    async with conn.transaction():
        await conn.execute(LOCK_SECTION, rules.SECTIONS.index(section))
        head = await conn.fetchrow(SELECT_HEAD, section)
        version = 0 if head is None else int(head["version"])
        if based_on != version:
            if head is None:
                raise Conflict(f"{section} has no version {based_on}: it is the configuration file's (version 0); "
                               "reload it and make the change again", field="based_on")
            at = head["changed_at"].astimezone(TZ).isoformat(timespec="seconds")
            raise Conflict(f"{section} was changed by {head['actor_name']} at {at} (version {version}); this change "
                           f"was based on version {based_on}: reload it and make the change again", field="based_on")
        cfg = await load_effective(conn, base)
        proposed = dict(value)
        if section == "categories":
            used = {r["category"] for r in await conn.fetch(SELECT_USED_CATEGORIES, list(cfg.categories))}
            for code in sorted(used - set(proposed)):
                proposed[code] = {**cfg.categories[code].model_dump(mode="json"), "retired": True}
        rules.check_change(section, proposed)
        new_cfg = rules.apply(cfg, {section: proposed})
        before, after = rules.section_value(cfg, section), rules.section_value(new_cfg, section)
        if before == after:
            field = section
            raise ValidationFailed(f"{field}: nothing changed (the value is version {version})", field=field)
        await conn.execute(INSERT_VERSION, section, version + 1, after, at, actor.user_id, actor.name)
        if section == "categories":
            for code, cat in new_cfg.categories.items():
                await conn.execute(UPSERT_CATEGORY, code, cat.zh, cat.en, cat.retired)
            await conn.execute(DELETE_UNUSED_CATEGORIES, list(new_cfg.categories))
        old, new = rules.diff(before, after)
        await adminlog.append(conn, actor=actor, action=f"settings.{section}", target=f"settings:{section}", at=at,
                              before={"version": version, **old}, after={"version": version + 1, **new})
        await changes.announce(conn, "settings")
    return Section(section, version + 1, after, at, actor.name)

