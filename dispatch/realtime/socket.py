"""One WebSocket connection: a thin asyncio adapter around ``protocols.session.ServerSession``.

Per socket: a reader (frames → session → requests), a writer (session outbox → socket, at the socket's
pace), the replay of what the client missed, then live delivery by the node's fan-out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from starlette.types import Message
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from dispatch.core import policy
from dispatch.core.commands import Command as DomainCommand
from dispatch.core.commands import parse_command
from dispatch.core.domain import Actor, Role
from dispatch.node.state import HubState
from dispatch.realtime import wire
from dispatch.realtime.beats import DueBuckets
from dispatch.realtime.fanout import Fanout, Subscriber
from dispatch.realtime.presence import Presence
from dispatch.realtime.replay import SharedReads
from dispatch.store.accounts import token_hash
from dispatch.store.pool import unavailable, unreachable
from protocols.errors import ClientError, InvalidMessage, Unavailable, ValidationFailed
from protocols.localize import DEFAULT_LANG, Lang
from protocols.messages import CaughtUp, Command, Error, Resync, Scope, Subscribe, User, to_ms
from protocols.messages import Presence as PresenceMsg
from protocols.session import CloseCode, ServerSession

log = logging.getLogger(__name__)

# The scope key under which ``web.direct.HubApp`` keeps the server's ASGI ``send`` of a WebSocket connection.
SERVER_SEND = "xianghu.server_send"
SELECT_HEADS_IN = "select township_id, seq from township_heads where township_id = any($1::int[]) order by 1"
SELECT_ALL_TOWNSHIPS = "select id from townships order by id"


def _parse_args(request: Command) -> DomainCommand:
    """The command's arguments validated; a bad one is named as in the frame (``args.<name>``)."""
    try:
        return parse_command(request.name, {**request.args, "command_id": request.command_id})
    except ValidationFailed as exc:
        if exc.field is None or exc.field == "command_id":
            raise
        if exc.field == "kind":  # the command's name is the frame's `name`
            raise ValidationFailed("name" + exc.message.removeprefix("kind"), field="name") from None
        path = "args" + "".join(f"[{part}]" if part.isdigit() else f".{part}" for part in exc.field.split("."))
        raise ValidationFailed(path + exc.message.removeprefix(exc.field), field=path) from None


def _release_admission(ws: WebSocket) -> None:
    """Admitted (origin, credentials, language read): the request's parsed headers, URL and query (Starlette
    caches them on the connection) and the scope's copy of them are not read again but would live as long as
    the socket."""
    state = vars(ws)
    for cached in ("_headers", "_url", "_base_url", "_query_params", "_cookies"):
        state.pop(cached, None)
    wire.forget_request(ws.scope)


class Host(Protocol):
    """What a socket needs from the node's real-time service (``realtime.hub.Realtime``)."""

    fanout: Fanout
    presence: Presence
    replays: SharedReads
    replay_failures: int
    sockets: set[Socket]
    heartbeats: DueBuckets[Socket]
    by_user: dict[int, set[Socket]]
    watchers: dict[int | None, set[Socket]]
    closed_too_slow: int

    def flush_soon(self, sock: Socket) -> None: ...


class Socket:
    """One client connection on this node."""

    # Thousands of these live at once: no per-instance __dict__.
    __slots__ = (
        "_ended_by_hub",
        "_main",
        "_reading",
        "_replay_task",
        "_send",
        "_stamped",
        "_welcome_heads",
        "_wire",
        "_writer_task",
        "actor",
        "frames_sent",
        "hub",
        "opened",
        "rt",
        "session",
        "sub",
        "token",
        "token_digest",
        "townships",
        "username",
        "ws",
    )

    def __init__(self, ws: WebSocket, hub: HubState, rt: Host, actor: Actor, username: str,
                 token: str = "", lang: Lang = DEFAULT_LANG) -> None:
        self.ws = ws
        # Frames go out through the server's own ASGI ``send`` when the app keeps it (``web.direct``).
        server_send = ws.scope.get(SERVER_SEND)
        self._send: Callable[[Message], Awaitable[None]] = server_send or ws.send
        # The server's connection when frames can be written into it directly, in batches (``wire``).
        self._wire = wire.connection_of(server_send)
        if self._wire is not None:
            wire.release_handshake(self._wire)  # accepted by now: its request and response are read
        _release_admission(ws)
        self.token = token  # kept to re-check the session before every command
        self.token_digest = token_hash(token).hex() if token else ""
        self.hub = hub
        self.rt = rt
        self.actor = actor
        self.username = username
        rc = hub.cfg.realtime
        self.session = ServerSession(rc.max_frame_bytes, rc.rate_per_s, rc.burst, rc.outbox_frames,
                                     heartbeat_s=rc.heartbeat_s, lang=lang)
        self.sub: Subscriber | None = None
        self.townships: list[int] = []
        self._writer_task: asyncio.Task[None] | None = None
        self._replay_task: asyncio.Task[None] | None = None
        self._welcome_heads: dict[int, int] | None = None  # read by ``prepare``, dropped once welcomed
        self.opened = asyncio.get_running_loop().time()
        self._main: asyncio.Task[Any] | None = None
        self._reading = False
        self._ended_by_hub = False
        self.frames_sent = 0
        # Live event frames queued with when the node heard of their commit, in outbox order (fan-out lag);
        # made when the first one is queued and dropped once written: an idle socket holds none (~760 bytes).
        self._stamped: deque[tuple[bytes, float]] | None = None

    @property
    def direct(self) -> bool:
        """Whether frames are written straight into the server's connection (``wire``), in batches."""
        return self._wire is not None

    def error_frame(self, exc: BaseException, command_id: str | None = None) -> Error:
        """The error frame for ``exc`` in this connection's language."""
        return Error.from_exception(exc, command_id, self.session.lang)

    def kick(self) -> None:
        """Send what is queued: soon, in one write with whatever else is queued by then (``flush``), or by a
        drain task. An idle socket holds no writer task."""
        if self._writer_task is not None and not self._writer_task.done():
            return  # the running drain takes it
        if self._wire is not None:
            self.rt.flush_soon(self)
        else:
            self._writer_task = asyncio.get_running_loop().create_task(self._drain())

    def flush(self) -> None:
        """Write what is queued now, in one go, without a task, when the connection takes it (the usual
        case); otherwise (paused by flow control, closing, no direct wire) a drain task does it."""
        if self._writer_task is not None and not self._writer_task.done():
            return
        conn = self._wire
        if conn is None or self.session.close_requested is not None or not wire.ready(conn):
            self._writer_task = asyncio.get_running_loop().create_task(self._drain())
            return
        frames = self.session.data_to_send()
        if frames:
            if wire.write(conn, frames):
                self._written(frames)
            else:
                log.debug("socket of %s: peer gone while sending", self.username)
        if not self._stamped:
            self._stamped = None

    def _written(self, frames: list[bytes]) -> None:
        """Count ``frames`` as written (just now) and observe the fan-out lag of the live events among them."""
        self.frames_sent += len(frames)
        stamped = self._stamped
        if not stamped:
            return
        now = asyncio.get_running_loop().time()
        observe = self.hub.metrics.fanout_lag.observe
        for frame in frames:
            if stamped and stamped[0][0] is frame:
                observe(max(0.0, now - stamped.popleft()[1]))

    def close(self, code: int, reason: str) -> None:
        """Close from the hub's side: never waits on a socket that may have stopped reading."""
        self.session.close(code, reason)
        if self._writer_task is not None and not self._writer_task.done():
            self._writer_task.cancel()  # it may be stuck on a socket that stopped reading
            # Whatever it held is not written: nor is anything queued behind it (a prefix, never a gap).
            self.session.data_to_send()
            self._stamped = None
        self._writer_task = asyncio.get_running_loop().create_task(self._drain())  # sends the close frame

    def push(self, frame: bytes, heard: float | None = None) -> None:
        """Queue a frame without waiting (the fan-out calls this); a full outbox closes the socket 4008.
        ``heard``: when the node heard of the event's commit, to measure the fan-out lag when it is written."""
        if self.session.close_requested is not None:
            return  # closing: nothing more goes out
        self.session.send_encoded(frame)
        if heard is not None:
            if self._stamped is None:
                self._stamped = deque(maxlen=self.session.outbox_frames)
            self._stamped.append((frame, heard))
        if self.session.close_requested is not None:
            self._stamped = None
            # Outbox full: the writer may be stuck on a socket that stopped reading; end it, don't wait.
            self.close(*self.session.close_requested)
        else:
            self.kick()

    # -- the connection -----------------------------------------------------------------------------

    async def prepare(self) -> None:
        """Read what the welcome needs (may fail while the database is unreachable; nothing is held yet)."""
        scope = policy.township_scope(self.actor)  # the same rule as REST's
        if scope is not None:
            self.townships = [scope]
        else:
            self.townships = [r["id"] for r in await self.hub.pool.fetch(SELECT_ALL_TOWNSHIPS)]
        self._welcome_heads = await self._heads()

    async def run(self) -> None:
        a = self.actor
        self.session.send_welcome(
            user=User(id=a.user_id or 0, name=a.name, role=a.role.value),
            scope=Scope(role=a.role.value, township_ids=self.townships, target=a.target,
                        read_only=policy.is_read_only(a)),
            heads=sorted((self._welcome_heads or {}).items()), epoch=self.hub.epoch,
            server_time=to_ms(self.hub.clock.now()),
        )
        self._welcome_heads = None  # no local name for them either: this frame lives as long as the connection
        liaison_seat = a.target if a.role == Role.LIAISON and a.township_id is not None else None
        if liaison_seat is not None:
            self.rt.presence.joined(a.township_id or 0, liaison_seat, a.user_id or 0)
        self.rt.sockets.add(self)
        beat = self.session.heartbeat_due()
        if beat is not None:
            self.rt.heartbeats.schedule(self, beat)
        if a.user_id is not None:
            self.rt.by_user.setdefault(a.user_id, set()).add(self)
        watch_key = a.township_id if a.role == Role.OPERATOR else None
        watching = a.role in (Role.OPERATOR, Role.SUPERVISOR, Role.ADMIN)
        if watching:
            self.rt.watchers.setdefault(watch_key, set()).add(self)
        # The reader runs in this coroutine; the connection ends when the client leaves (the reader
        # returns) or when the hub closes it (a drain sends the close frame, then cancels the reader,
        # which may be waiting for a frame that never comes).
        self._main = asyncio.current_task()
        self._reading = True
        self.kick()  # the welcome goes out now
        try:
            await self._reader()
        except asyncio.CancelledError:
            if not self._ended_by_hub or self._main is None:
                raise  # cancelled from outside (shutdown): let it propagate
            self._main.uncancel()
        finally:
            self._reading = False
            replay = self._replay_task
            if replay is not None:
                replay.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await replay
            self.rt.sockets.discard(self)
            self.rt.heartbeats.discard(self)
            mine = self.rt.by_user.get(a.user_id or 0)
            if mine is not None:
                mine.discard(self)
                if not mine:
                    del self.rt.by_user[a.user_id or 0]
            if watching:
                self.rt.watchers.get(watch_key, set()).discard(self)
            if self.sub is not None:
                self.rt.fanout.remove(self.sub)
            if liaison_seat is not None:
                self.rt.presence.left(a.township_id or 0, liaison_seat, a.user_id or 0)
            if self.session.close_requested is None:
                self.session.close(CloseCode.NORMAL, "bye")
            elif self.session.close_requested[0] == CloseCode.TOO_SLOW:
                self.rt.closed_too_slow += 1
            try:
                await asyncio.shield(self._finish())
            finally:
                # Closed: no cycle through this socket (its task, the subscriber's bound ``push``) keeps it for
                # the collector; reference counting frees it now (sockets come and go all day).
                self._main = None
                self.sub = None

    async def _finish(self) -> None:
        writer = self._writer_task
        if writer is not None and not writer.done():
            try:
                await asyncio.wait_for(asyncio.shield(writer), 2.0)
            except (TimeoutError, asyncio.CancelledError, Exception):
                writer.cancel()
        if self.ws.application_state == WebSocketState.CONNECTED and self.ws.client_state == WebSocketState.CONNECTED:
            code, reason = self.session.close_requested or (CloseCode.NORMAL, "bye")
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.ws.close(code, reason), 1.0)

    async def _heads(self) -> dict[int, int]:
        rows = await self.hub.pool.fetch(SELECT_HEADS_IN, self.townships)
        return {r["township_id"]: r["seq"] for r in rows}

    async def _reader(self) -> None:
        # This frame lives as long as the connection: it holds no message between two (``_took``).
        while self.session.close_requested is None:
            try:
                commands = self._took(await self.ws.receive())
            except (WebSocketDisconnect, RuntimeError):
                return
            if commands is None:
                return
            while commands:
                await self._command(commands.pop(0))
            self.kick()

    def _took(self, message: Message) -> list[Command] | None:
        """Feed one ASGI message to the session; start the replay on a subscribe; the commands to run, in
        order, or None when the client left."""
        if message["type"] == "websocket.disconnect":
            log.debug("socket of %s: client left (%s)", self.username, message.get("code"))
            return None
        now = asyncio.get_running_loop().time()
        data = message.get("bytes")
        if data is not None:
            self.session.receive_data(data, now)
        elif message.get("text") is not None:
            self.session.receive_text(message["text"], now)
        commands = []
        for request in self.session.requests_received():
            if isinstance(request, Subscribe):
                # Replay runs beside the reader, so commands and pongs are still read meanwhile.
                self._replay_task = asyncio.create_task(self._guarded_subscribe(request),
                                                        name=f"ws-replay-{self.username}")
                self._replay_task.add_done_callback(self._replayed)
            elif isinstance(request, Command):
                commands.append(request)
        return commands

    def _replayed(self, task: asyncio.Task[None]) -> None:
        """A finished replay task is not kept (an idle socket holds no task of its own)."""
        if self._replay_task is task:
            self._replay_task = None

    async def _drain(self) -> None:
        while True:
            conn = self._wire
            if conn is not None and self.session.close_requested is None:
                # Wait for the transport before taking frames out of the outbox: a close meanwhile (which
                # cancels this task) then finds them still queued and drops them with what follows them.
                await wire.writable(conn)
            frames = self.session.data_to_send()
            if not frames:
                if not self._stamped:
                    self._stamped = None
                break
            try:
                if conn is not None:
                    if not wire.ready(conn):
                        # Closing while the peer does not read: what is queued cannot go; the close frame can.
                        break
                    if not wire.write(conn, frames):
                        raise ConnectionResetError("connection gone or closing")
                    self._written(frames)
                else:
                    for frame in frames:
                        await self._send({"type": "websocket.send", "bytes": frame})
                        self._written([frame])
            except (WebSocketDisconnect, RuntimeError, OSError):
                # The peer left while we wrote: the reader sees the disconnect and ends the connection.
                log.debug("socket of %s: peer gone while sending", self.username)
                return
        if self.session.close_requested is not None:
            code, reason = self.session.close_requested
            if self._wire is None or not wire.close(self._wire, code, reason):
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self.ws.close(code, reason), 1.0)
            if self._reading and self._main is not None:
                self._ended_by_hub = True
                self._main.cancel()

    async def _sent(self) -> None:
        """Wait until everything queued so far has been written (paces a replay by the socket)."""
        while True:
            task = self._writer_task
            if task is None or task.done():
                if not self.session.pending or self.session.close_requested is not None:
                    return
                task = self._writer_task = asyncio.get_running_loop().create_task(self._drain())
            await asyncio.wait({task})

    # -- requests -----------------------------------------------------------------------------------

    async def _command(self, request: Command) -> None:
        store = self.hub.store
        assert store is not None
        try:
            if self.token and await self.hub.auth.session(self.token, self.hub.clock.now(), fresh=True) is None:
                self.close(CloseCode.SESSION_REVOKED, "session ended: log in again")
                return
            policy.authorize_kind(self.actor, request.name)
            cmd = _parse_args(request)
            outcome = await store.execute(self.actor, cmd)
        except (ClientError, Unavailable) as exc:
            self.session.send(self.error_frame(exc, command_id=request.command_id))
            return
        except Exception as exc:
            if unreachable(exc):
                self.session.send(self.error_frame(unavailable(exc), command_id=request.command_id))
                return
            log.exception("command %s failed", request.name)
            self.session.send(self.error_frame(exc, command_id=request.command_id))
            return
        self.session.send_result(request.command_id, {**outcome.result, "replayed": outcome.replayed})

    async def _guarded_subscribe(self, request: Subscribe) -> None:
        """A replay that fails never fails silently: it is logged and counted, and the client is told and
        closed with 1011 so it reconnects and resumes from its cursor."""
        try:
            await self._subscribe(request)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.rt.replay_failures += 1
            if unreachable(exc):
                log.warning("replay for %s: database unreachable (%r)", self.username, exc)
                err = unavailable(exc)
                self.session.send(self.error_frame(err))
                self.close(CloseCode.INTERNAL_ERROR, f"unavailable: retry in {err.retry_after:g} s")
            else:
                log.exception("replay for %s failed", self.username)
                self.session.send(self.error_frame(exc))
                self.close(CloseCode.INTERNAL_ERROR, "replay failed: reconnect and resume")

    async def _subscribe(self, request: Subscribe) -> None:
        cursors: dict[int, int] = {}
        for tid, seq in request.cursors:
            if tid not in self.townships:
                self.session.send(self.error_frame(InvalidMessage(
                    f"subscribe.cursors: township {tid} is outside your scope", field="cursors")))
                continue
            cursors[tid] = seq
        heads = await self._heads()
        epoch_changed = request.epoch is not None and request.epoch != self.hub.epoch
        limit = self.hub.cfg.realtime.replay_limit
        sub = Subscriber(self.actor, self.push)
        for tid in self.townships:
            head = heads.get(tid, 0)
            cursor = cursors.get(tid, 0)
            reason = None
            if tid in cursors and epoch_changed:
                reason = "epoch_changed"
            elif cursor > head:
                reason = "cursor_ahead"
            elif head - cursor > limit:
                reason = "cursor_too_old"
            if reason is not None:
                self.session.send(Resync(township_id=tid, reason=reason, head=head))
                cursor = head
            sub.cursors[tid] = cursor
        self.sub = sub
        self.rt.fanout.add(sub)  # indexed now, fed only once live
        await self._replay(sub)

    async def _replay(self, sub: Subscriber) -> None:
        fanout = self.rt.fanout
        batch = self.hub.cfg.realtime.replay_batch
        if sub.key is None:  # sees no event (listen_key, visible_to): nothing to replay either
            for tid, cur in sub.cursors.items():
                sub.cursors[tid] = max(cur, fanout.delivered.get(tid, 0))
        target = sub.key[1] if sub.key is not None else ""
        while True:
            behind = [tid for tid, cur in sub.cursors.items() if cur < fanout.delivered.get(tid, 0)]
            if not behind:
                break  # no await between this check and going live: the fan-out takes over exactly here
            for tid in behind:
                upto = fanout.delivered.get(tid, 0)
                cursor = sub.cursors[tid]
                # Shared with the sockets resuming from the same cursor: read, decoded and encoded once.
                events = await self.rt.replays.batch(tid, cursor, upto, batch, target)
                for enc in events:
                    self.session.send_encoded(fanout.frame_or_notice(enc, self.actor))
                sub.cursors[tid] = events[-1].record.seq if len(events) == batch else upto
                self.kick()
                await self._sent()  # pace the replay by the socket
                if self.session.close_requested is not None:
                    return
        sub.live = True
        self.session.send(CaughtUp(heads=sorted(sub.cursors.items())))
        if self.actor.role in (Role.OPERATOR, Role.SUPERVISOR, Role.ADMIN):
            for tid in self.townships:
                self.session.send(PresenceMsg(township_id=tid, online=self.rt.presence.online(tid)))
        self.kick()
