"""Start and stop a node's long-lived parts (store, real-time fan-out, SLA timers) in order."""

from __future__ import annotations

import asyncio

from dispatch.node.state import HubState
from dispatch.realtime.hub import Realtime
from dispatch.store.writer import Store
from dispatch.timers.engine import SlaEngine


async def start_services(hub: HubState) -> None:
    hub.store = Store(hub.pool, hub.cfg, hub.clock)
    realtime = hub.realtime = Realtime(hub)
    await realtime.start()
    sla = hub.sla = SlaEngine(hub.pool, hub.store, hub.cfg, hub.clock)
    # Every node hears of every committed event through its fan-out and re-arms the deadlines it touches.
    realtime.fanout.on_records.append(sla.on_events)
    await sla.start()


async def stop_services(hub: HubState) -> None:
    # Shielded: a cancelled shutdown must still let escalations being written finish before the pool closes.
    if hub.sla is not None:
        await asyncio.shield(hub.sla.stop())
    if hub.realtime is not None:
        await asyncio.shield(hub.realtime.stop())
