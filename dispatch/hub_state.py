"""Everything a running hub node holds, in one object the adapters share."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import asyncpg

from dispatch.auth import Auth
from dispatch.clock import Clock
from dispatch.config import Config

if TYPE_CHECKING:
    from dispatch.hub import Realtime
    from dispatch.sla import SlaEngine
    from dispatch.store import Store


@dataclass
class HubState:
    cfg: Config
    pool: asyncpg.Pool
    clock: Clock
    auth: Auth
    dsn: str
    epoch: str
    node_id: str
    store: Store | None = None
    realtime: Realtime | None = None
    sla: SlaEngine | None = None
    extras: dict[str, Any] = field(default_factory=dict)
