"""Start and stop a node's long-lived parts (store, real-time fan-out, SLA timers, notification sender) in order."""

from __future__ import annotations

import asyncio
import functools

from dispatch.node.state import HubState
from dispatch.notify.sender import Sender
from dispatch.notify.webpush import load_keys
from dispatch.realtime.hub import Realtime
from dispatch.store import changes, settings
from dispatch.store.writer import Store
from dispatch.timers.engine import SlaEngine
from dispatch.timers.retention import Retention
from dispatch.web.intake import forget_map


async def start_services(hub: HubState) -> None:
    # First: a configured key that is no key stops the start before anything runs.
    vapid = await load_keys(hub.pool, hub.cfg.notify.webpush) if "webpush" in hub.cfg.notify.channels else None
    hub.vapid_public_key = vapid.public if vapid is not None else None
    hub.store = Store(hub.pool, hub.config, hub.clock)
    hub.on_change.append(hub.store.forget_reference)  # a new station or unit is a target on every node at once
    hub.on_change.append(functools.partial(forget_map, hub))  # a new boundary places reports at once
    hub.on_change.append(hub.auth.forget_users)  # a new name or team lead shows at once
    hub.on_change.append(lambda topic: reload_settings(hub, topic))  # settings: in effect on every node at once
    hub.store.on_commit.append(hub.metrics.committed)  # counted once, by the node that commits
    realtime = hub.realtime = Realtime(hub)
    await realtime.start()
    # A change saved between this node's first read and its listener's start would otherwise be missed.
    await reload_settings(hub, changes.EVERYTHING)
    sla = hub.sla = SlaEngine(hub.pool, hub.store, hub.config, hub.clock)
    # Every node hears of every committed event through its fan-out and re-arms the deadlines it touches.
    realtime.fanout.on_records.append(sla.on_events)
    await sla.start()
    sender = hub.notify = Sender(hub.pool, hub.store, hub.config, hub.clock, hub.node_id, vapid=vapid)
    realtime.fanout.on_records.append(sender.on_events)  # any node's new notices wake every sender
    await sender.start()
    retention = hub.retention = Retention(hub.pool, hub.clock, hub.cfg.privacy.retention_days)
    await retention.start()


async def reload_settings(hub: HubState, topic: str) -> None:
    """Settings changed (on any node): read the effective configuration again and swap it in whole."""
    if topic not in ("settings", changes.EVERYTHING):
        return
    # One reload at a time: an earlier read must never be swapped in over a later one.
    lock: asyncio.Lock = hub.extras.setdefault("settings_reload", asyncio.Lock())
    async with lock, hub.pool.acquire() as conn:
        hub.config.swap(await settings.load_effective(conn, hub.file_cfg))


async def stop_services(hub: HubState) -> None:
    # Shielded: a cancelled shutdown must still let escalations being written finish before the pool closes.
    if hub.retention is not None:
        await asyncio.shield(hub.retention.stop())
    if hub.notify is not None:
        await asyncio.shield(hub.notify.stop())
    if hub.sla is not None:
        await asyncio.shield(hub.sla.stop())
    if hub.realtime is not None:
        await asyncio.shield(hub.realtime.stop())
