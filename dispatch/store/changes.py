"""Admin changes wake every node (DESIGN.md idea 11): a NOTIFY on ``xianghu_admin`` naming what changed,
sent inside the transaction that changed it (PostgreSQL delivers it at commit, never for a rollback).

Topics: ``reference`` (townships, grids, stations, units: the write path's targets), ``users``,
``settings`` (categories, routes, SLA policy, weights), ``integrations``. A node whose listener reconnected
may have missed some: it hears ``*`` (reload everything) — see ``dispatch/realtime/hub.py``.
"""

from __future__ import annotations

from dispatch.store.pool import Conn

CHANNEL = "xianghu_admin"
EVERYTHING = "*"
TOPICS = frozenset({"reference", "users", "settings", "integrations"})
NOTIFY_CHANGED = "select pg_notify('xianghu_admin', $1)"


async def announce(conn: Conn, topic: str) -> None:
    """Tell every node (this one too) that ``topic`` changed, once the caller's transaction commits."""
    if topic not in TOPICS:
        raise ValueError(f"unknown change topic {topic!r}")
    await conn.execute(NOTIFY_CHANGED, topic)
