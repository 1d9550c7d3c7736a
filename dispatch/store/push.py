"""Web Push subscriptions (one per installed browser, bound to the account logged in on it) and the hub's
VAPID key, generated once and shared by every node (docs/NOTIFICATIONS.md, Web Push)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from dispatch.store.pool import Conn

# A browser keeps one endpoint per subscription: the same endpoint posted again (a reload, a key rotation, another
# account logging in on the same phone) is the same row, bound to whoever posted it last and live again.
UPSERT_SUBSCRIPTION = """
insert into push_subscriptions (user_id, endpoint, p256dh, auth, created_at)
values ($1, $2, $3, $4, $5)
on conflict (endpoint) do update
   set user_id = excluded.user_id, p256dh = excluded.p256dh, auth = excluded.auth, gone_at = null,
       created_at = case when push_subscriptions.user_id = excluded.user_id and push_subscriptions.gone_at is null
                         then push_subscriptions.created_at else excluded.created_at end
returning id, (xmax = 0) as created
"""
# Past MAX_PER_USER live subscriptions, those least recently proven alive are retired (phones replaced,
# browsers reinstalled without unsubscribing).
RETIRE_OLDEST = """
update push_subscriptions set gone_at = $3
 where user_id = $1 and gone_at is null
   and id not in (select id from push_subscriptions where user_id = $1 and gone_at is null
                   order by greatest(created_at, last_ok_at) desc, id desc limit $2)
"""
DELETE_SUBSCRIPTION = "delete from push_subscriptions where endpoint = $1 and user_id = $2"
SELECT_LIVE = """
select id, endpoint, p256dh, auth
  from push_subscriptions
 where user_id = $1 and gone_at is null
 order by id
"""
MARK_GONE = "update push_subscriptions set gone_at = $2 where id = $1 and gone_at is null"
MARK_OK = "update push_subscriptions set last_ok_at = $2 where id = $1"
COUNT_LIVE = "select count(*) from push_subscriptions where user_id = $1 and gone_at is null"
SELECT_USER_CHANNELS = "select channels from users where id = $1"
SELECT_META = "select value from meta where key = $1"
INSERT_META = "insert into meta (key, value) values ($1, $2) on conflict (key) do nothing"
VAPID_META_KEY = "vapid_private_key"
MAX_PER_USER = 10


@dataclass(frozen=True, slots=True)
class Subscription:
    id: int
    endpoint: str
    p256dh: str
    auth: str


async def subscribe(conn: Conn, user_id: int, endpoint: str, p256dh: str, auth: str, now: datetime) -> tuple[int, bool]:
    """Store (or rebind) a browser's subscription; returns its id and whether it is new."""
    async with conn.transaction():
        row = await conn.fetchrow(UPSERT_SUBSCRIPTION, user_id, endpoint, p256dh, auth, now)
        assert row is not None
        await conn.execute(RETIRE_OLDEST, user_id, MAX_PER_USER, now)
    return int(row["id"]), bool(row["created"])


async def unsubscribe(conn: Conn, user_id: int, endpoint: str) -> bool:
    """Forget a browser's subscription of this user; False when there was none."""
    status: str = await conn.execute(DELETE_SUBSCRIPTION, endpoint, user_id)
    return status != "DELETE 0"


async def live_subscriptions(conn: Conn, user_id: int) -> list[Subscription]:
    rows = await conn.fetch(SELECT_LIVE, user_id)
    return [Subscription(r["id"], r["endpoint"], r["p256dh"], r["auth"]) for r in rows]


async def count_live(conn: Conn, user_id: int) -> int:
    value: int = await conn.fetchval(COUNT_LIVE, user_id)
    return value


async def user_channels(conn: Conn, user_id: int) -> list[str]:
    value: list[str] | None = await conn.fetchval(SELECT_USER_CHANNELS, user_id)
    return list(value or ())


async def mark_gone(conn: Conn, subscription_id: int, at: datetime) -> None:
    await conn.execute(MARK_GONE, subscription_id, at)


async def mark_ok(conn: Conn, subscription_id: int, at: datetime) -> None:
    await conn.execute(MARK_OK, subscription_id, at)


async def vapid_private_key(conn: Conn, generate: Callable[[], str]) -> str:
    """The hub's VAPID private key: the first node to start generates it; every node reads the same one."""
    value: str | None = await conn.fetchval(SELECT_META, VAPID_META_KEY)
    if value is None:
        await conn.execute(INSERT_META, VAPID_META_KEY, generate())  # two nodes at once: the first one wins
        value = await conn.fetchval(SELECT_META, VAPID_META_KEY)
    assert value is not None
    return value
