"""Start and stop a node's long-lived parts (store, fan-out listener, SLA timers) in order."""

from __future__ import annotations

from dispatch.hub_state import HubState
from dispatch.store import Store


async def start_services(hub: HubState) -> None:
    hub.store = Store(hub.pool, hub.cfg, hub.clock)


async def stop_services(hub: HubState) -> None:
    return None
