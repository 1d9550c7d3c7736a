"""Start and stop a node's long-lived parts (store, real-time fan-out, SLA timers) in order."""

from __future__ import annotations

import asyncio

from dispatch.hub import Realtime
from dispatch.hub_state import HubState
from dispatch.sla import SlaEngine
from dispatch.store import Store


async def start_services(hub: HubState) -> None:
    hub.store = Store(hub.pool, hub.cfg, hub.clock)
    hub.realtime = Realtime(hub)
    await hub.realtime.start()
    hub.sla = SlaEngine(hub.pool, hub.store, hub.cfg, hub.clock)
    # Every node hears of every committed event through its fan-out and re-arms the deadlines it touches.
    hub.realtime.fanout.on_records.append(hub.sla.on_events)
    await hub.sla.start()


async def stop_services(hub: HubState) -> None:
    # Shielded: a cancelled shutdown must still let escalations being written finish before the pool closes.
    if hub.sla is not None:
        await asyncio.shield(hub.sla.stop())
    if hub.realtime is not None:
        await asyncio.shield(hub.realtime.stop())
