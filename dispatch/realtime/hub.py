"""A node's real-time service (fan-out, presence, heartbeats, session checks) and the WebSocket endpoint
that admits a connection (origin, subprotocol, credentials) and hands it to a ``Socket``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Coroutine
from typing import Any
from urllib.parse import urlsplit

from starlette.websockets import WebSocket

from dispatch.core.domain import Actor
from dispatch.node.credentials import authenticate
from dispatch.node.state import HubState
from dispatch.realtime.beats import DueBuckets
from dispatch.realtime.fanout import Fanout
from dispatch.realtime.presence import Presence
from dispatch.realtime.replay import SharedReads
from dispatch.realtime.socket import Socket
from dispatch.store import changes
from dispatch.store.accounts import REVOKED_CHANNEL
from dispatch.store.pool import RETRY_AFTER_S, unreachable
from protocols.localize import pick_language
from protocols.messages import Presence as PresenceMsg
from protocols.session import SUBPROTOCOL, CloseCode

log = logging.getLogger(__name__)

SESSION_CHECK_S = 30.0
# The heartbeat's tick: sockets that connected together (a reconnect storm, 10,000 in a few seconds) are pinged
# in ten small batches a second, not one that holds the loop for tens of milliseconds (docs/PERFORMANCE.md).
HEARTBEAT_TICK_S = 0.1
SELECT_ENDED_SESSIONS = """
select s.token_hash
  from sessions s
  join users u on u.id = s.user_id
 where s.token_hash = any($1::bytea[])
   and (s.revoked_at is not null or s.expires_at <= $2 or u.disabled)
"""


class Realtime:
    """A node's real-time part: fan-out, presence, heartbeats, and its open sockets."""

    def __init__(self, hub: HubState) -> None:
        self.hub = hub
        self.fanout = Fanout(hub)
        self.presence = Presence(hub.pool, hub.node_id, self._presence_changed)
        self.replays = SharedReads(hub.pool)  # replay batches shared by sockets resuming from the same cursor
        self.fanout.extra_channels["xianghu_presence"] = self.presence.notified
        self.fanout.extra_channels[REVOKED_CHANNEL] = self._revoked
        self.fanout.extra_channels[changes.CHANNEL] = self._changed
        self.fanout.on_reconnect.append(self._after_listener_reconnect)
        self.sockets: set[Socket] = set()
        self.by_user: dict[int, set[Socket]] = {}  # user id → its open sockets on this node (make_room_for)
        # Who is shown presence: operators by township, supervisors and admins (key None) county-wide.
        self.watchers: dict[int | None, set[Socket]] = {}
        # Open sockets by the tick (HEARTBEAT_TICK_S) their heartbeat is next due in (``heartbeat_due``): a beat
        # touches only those, not every socket (a socket that spoke meanwhile is simply put back later).
        self.heartbeats: DueBuckets[Socket] = DueBuckets(asyncio.get_running_loop().time(), HEARTBEAT_TICK_S)
        self.closed_too_slow = 0  # sockets closed with 4008 since start (a health figure)
        self.replay_failures = 0  # replays that failed (database unreachable, or a fault: logged)
        self._heartbeat: asyncio.Task[None] | None = None
        self._tasks_spawned: set[asyncio.Task[None]] = set()  # kept referenced until done
        self._to_flush: dict[Socket, None] = {}  # sockets with frames to write at the next turn of the loop

    async def start(self) -> None:
        await self.fanout.start()
        self.presence.start()
        self._heartbeat = asyncio.create_task(self._beat(), name="heartbeat")

    async def stop(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
        for sock in list(self.sockets):
            sock.close(CloseCode.NORMAL, "hub shutting down")
        await self.presence.stop()
        await self.fanout.stop()

    async def _beat(self) -> None:
        """Every HEARTBEAT_TICK_S of the loop clock: the heartbeat of the sockets due (pings, 4000), and every
        SESSION_CHECK_S the session check."""
        loop = asyncio.get_running_loop()
        last_check = loop.time()
        tick = HEARTBEAT_TICK_S
        while True:
            now = loop.time()
            await asyncio.sleep((math.floor(now / tick) + 1) * tick - now)
            now = loop.time()
            for sock in self.heartbeats.due(now):
                session = sock.session
                was_open = session.close_requested is None
                session.heartbeat(now)
                if was_open and session.close_requested is not None:
                    sock.close(*session.close_requested)  # heartbeat timeout
                elif session.pending:
                    sock.kick()  # a ping
                due = session.heartbeat_due()
                if due is not None:
                    self.heartbeats.schedule(sock, due)
            if now - last_check >= SESSION_CHECK_S:
                last_check = now
                await self._check_sessions()

    def flush_soon(self, sock: Socket) -> None:
        """Have ``sock`` write its queued frames at the next turn of the loop: one write per socket for
        everything queued meanwhile (a fan-out batch), and no task per socket."""
        if not self._to_flush:
            asyncio.get_running_loop().call_soon(self._flush)
        self._to_flush[sock] = None

    def _flush(self) -> None:
        socks, self._to_flush = self._to_flush, {}
        for sock in socks:
            try:
                sock.flush()
            except Exception:  # one socket failing must not keep the others' frames
                log.exception("writing to the socket of %s failed", sock.username)
                # The frames it took are gone: the client reconnects and resumes from its cursor (no gap).
                sock.close(CloseCode.INTERNAL_ERROR, "write failed: reconnect and resume")

    def _after_listener_reconnect(self) -> None:
        self._spawn(self._check_sessions())
        self.presence.announce_soon()
        self._spawn(self._reload(changes.EVERYTHING))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks_spawned.add(task)
        task.add_done_callback(self._tasks_spawned.discard)

    def _changed(self, _conn: Any, _pid: int, _channel: str, payload: object) -> None:
        """An admin change committed on some node: whatever this node caches of it is reloaded."""
        self._spawn(self._reload(str(payload)))

    async def _reload(self, topic: str) -> None:
        for reload in list(self.hub.on_change):
            try:
                await reload(topic)
            except Exception:  # one cache failing to reload must not keep the others stale
                log.exception("reloading after a change of %s failed", topic)

    async def _check_sessions(self) -> None:
        """Close sockets whose session ended (revoked, expired, user disabled) even if no NOTIFY arrived."""
        digests = list({bytes.fromhex(s.token_digest) for s in self.sockets if s.token_digest})
        if not digests:
            return
        try:
            rows = await self.hub.pool.fetch(SELECT_ENDED_SESSIONS, digests, self.hub.clock.now())
        except Exception as exc:  # a database hiccup: the next check retries
            log.warning("session check failed: %r", exc)
            return
        ended = {bytes(r["token_hash"]).hex() for r in rows}
        for sock in list(self.sockets):
            if sock.token_digest in ended:
                sock.close(CloseCode.SESSION_REVOKED, "session ended: log in again")

    def _revoked(self, _conn: Any, _pid: int, _channel: str, payload: object) -> None:
        """A session was revoked somewhere (logout, password change, disabled user): close its sockets."""
        self.hub.auth.forget(str(payload))
        kind, _, value = str(payload).partition(":")
        for sock in list(self.sockets):
            by_token = kind == "token" and sock.token_digest == value
            if by_token or (kind == "user" and str(sock.actor.user_id) == value):
                sock.close(CloseCode.SESSION_REVOKED, "session revoked: log in again")

    def make_room_for(self, actor: Actor) -> None:
        """Keep an account within ``max_sockets_per_user`` on this node: close its oldest sockets (4013)."""
        if actor.user_id is None:
            return
        limit = self.hub.cfg.realtime.max_sockets_per_user
        if len(self.by_user.get(actor.user_id, ())) < limit:
            return  # room enough even counting those closing: no need to look at them
        mine = [s for s in self.by_user.get(actor.user_id, ()) if s.session.close_requested is None]
        excess = len(mine) + 1 - limit
        for sock in sorted(mine, key=lambda s: s.opened)[:max(0, excess)]:
            sock.close(CloseCode.REPLACED, "replaced by a newer connection of this account")

    def _presence_changed(self, township_id: int, online: dict[str, int]) -> None:
        frame = PresenceMsg(township_id=township_id, online=online).encode()
        for sock in (*self.watchers.get(township_id, ()), *self.watchers.get(None, ())):
            if sock.sub is not None and sock.sub.live:
                sock.push(frame)


def origin_allowed(ws: WebSocket, hub: HubState) -> bool:
    origin = ws.headers.get("origin")
    if origin is None:
        return True  # not a browser: cross-site WebSocket hijacking needs one
    if origin in hub.cfg.server.console_origins:
        return True
    host = ws.headers.get("host", "")
    scheme = "https" if ws.url.scheme == "wss" else "http"
    parts = urlsplit(origin)
    return parts.scheme == scheme and parts.netloc == host


async def _refuse_unavailable(ws: WebSocket, exc: Exception) -> None:
    """Close a connection the hub cannot serve now with 1011 and a retry hint, never an unhandled 1006."""
    if unreachable(exc):
        log.warning("WebSocket refused: database unreachable (%r)", exc)
        reason = f"unavailable: retry in {RETRY_AFTER_S:g} s"
    else:
        log.exception("WebSocket admission failed")
        reason = "internal error: retry later"
    with contextlib.suppress(Exception):
        await ws.close(CloseCode.INTERNAL_ERROR, reason)


async def websocket_endpoint(ws: WebSocket) -> None:
    hub: HubState = ws.app.state.hub
    rt = hub.realtime if isinstance(hub.realtime, Realtime) else None
    offered = ws.scope.get("subprotocols") or []
    await ws.accept(subprotocol=SUBPROTOCOL if SUBPROTOCOL in offered else None)
    if not origin_allowed(ws, hub):
        await ws.close(CloseCode.POLICY_VIOLATION, "origin not allowed")
        return
    if SUBPROTOCOL not in offered:
        await ws.close(CloseCode.UNSUPPORTED_PROTOCOL, f"subprotocol {SUBPROTOCOL} required")
        return
    try:
        session = await authenticate(ws, hub)
    except Exception as exc:
        await _refuse_unavailable(ws, exc)
        return
    if session is None:
        await ws.close(CloseCode.UNAUTHENTICATED, "login required")
        return
    if rt is None:
        await ws.close(CloseCode.INTERNAL_ERROR, "real-time hub not running")
        return
    rt.make_room_for(session.actor)
    lang = pick_language(ws.headers.get("accept-language"), ws.query_params.get("lang"))
    sock = Socket(ws, hub, rt, session.actor, session.username, session.token, lang)
    try:
        await sock.prepare()
    except Exception as exc:
        await _refuse_unavailable(ws, exc)
        return
    await sock.run()


