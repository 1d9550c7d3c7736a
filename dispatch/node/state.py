"""Everything a running hub node holds, in one object the adapters share.

The real-time and timer services are typed by the small ``Service`` protocol, so this module never
imports the adapters that fill it in (``web.services`` assembles them).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import asyncpg

from dispatch.core.clock import Clock
from dispatch.core.config import Config
from dispatch.core.settings import ConfigRef
from dispatch.node.metrics import NodeMetrics
from dispatch.store.accounts import Auth
from dispatch.store.writer import Store


class Service(Protocol):
    """A node's long-lived part, started after the pool and stopped before it closes."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


@dataclass
class HubState:
    # The configuration in effect: the file with the settings stored in the database (dispatch/store/settings.py),
    # swapped whole when an admin changes one; every part of the node reads it through this one reference.
    config: ConfigRef
    file_cfg: Config  # the file as loaded: what the stored settings are put over
    pool: asyncpg.Pool
    clock: Clock
    auth: Auth
    dsn: str
    epoch: str
    node_id: str
    store: Store | None = None
    realtime: Service | None = None
    sla: Service | None = None
    notify: Service | None = None
    retention: Service | None = None  # the daily erasure of reporters ([privacy] retention_days)
    # The VAPID public key (base64url) browsers subscribe with; None while Web Push is off.
    vapid_public_key: str | None = None
    metrics: NodeMetrics = field(default_factory=NodeMetrics)  # this app's own registry (docs/OPERATIONS.md)
    extras: dict[str, Any] = field(default_factory=dict)
    # Called with the topic when an admin change committed on any node (dispatch/store/changes.py), or with
    # "*" after this node's listener reconnected and may have missed some; each reloads what it caches.
    on_change: list[Callable[[str], Awaitable[None]]] = field(default_factory=list)

    @property
    def cfg(self) -> Config:
        return self.config.current
