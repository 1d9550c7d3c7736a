"""Writing a socket's frames straight into the server's WebSocket connection when the server is uvicorn's
websockets sans-I/O protocol (``web.app.server_config``): all the frames queued at once in one
``transport.write``, synchronously, instead of one awaited ASGI ``send`` (and a task) per frame.

Mirrors what that protocol's own ``send`` does with a ``websocket.send`` message (the only kind written
here): wait while the transport is paused (flow control), refuse once disconnected or closing. Anything else
(another server) goes through the ASGI ``send``."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.exceptions import InvalidState

Connection = WebSocketsSansIOProtocol


class UpgradingHttp(HttpToolsProtocol):
    """uvicorn's httptools protocol (``web.app.server_config``), letting go of its parser once the connection
    became a WebSocket's. The parser holds the protocol's bound callbacks and the protocol the parser: a cycle
    that only the garbage collector's full passes free, since an upgraded connection's end is seen by the
    WebSocket protocol, never by this one (whose ``connection_lost`` would drop the parser). Every socket left
    ~30 such objects behind for the collector."""

    def handle_websocket_upgrade(self) -> None:
        super().handle_websocket_upgrade()
        self.parser = None  # type: ignore[assignment]  # the connection is the WebSocket protocol's now

    def on_response_complete(self) -> None:
        """A request pipelined before the upgrade finishes after it: the transport is the WebSocket's now, so no
        keep-alive timer of this protocol may close it (uvicorn's would, 5 s later) nor resume its reading."""
        if self.parser is None:
            self.server_state.total_requests += 1
            return
        super().on_response_complete()


def connection_of(send: Callable[..., Any] | None) -> Connection | None:
    """The server connection behind an ASGI ``send`` (its bound method), or None for any other server."""
    conn = getattr(send, "__self__", None)
    return conn if isinstance(conn, WebSocketsSansIOProtocol) else None


class Inbox:
    """What the protocol uses of its ``asyncio.Queue`` of incoming messages (``put_nowait``, ``get``,
    ``empty``), for one reader: a list and, while the reader waits, a future. The queue keeps three deques and
    an ``asyncio.Event`` per connection (~3 KB, all tracked by the collector) for the life of the socket."""

    __slots__ = ("_items", "_waiter")

    def __init__(self, items: list[Any]) -> None:
        self._items = items
        self._waiter: asyncio.Future[None] | None = None

    def put_nowait(self, item: Any) -> None:
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def empty(self) -> bool:
        return not self._items

    def qsize(self) -> int:
        return len(self._items)

    async def get(self) -> Any:
        while not self._items:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._items.pop(0)


class Flag:
    """What the protocol and ``writable`` use of its ``asyncio.Event`` (set, clear, is_set, wait): the
    waiters in a list made only while someone waits, instead of a deque kept for the socket's life."""

    __slots__ = ("_set", "_waiters")

    def __init__(self, value: bool) -> None:
        self._set = value
        self._waiters: list[asyncio.Future[None]] | None = None

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        self._set = True
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    def clear(self) -> None:
        self._set = False

    async def wait(self) -> bool:
        if self._set:
            return True
        waiter = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(waiter)
        try:
            await waiter
        finally:
            if self._waiters is not None and waiter in self._waiters:
                self._waiters.remove(waiter)
        return True


def forget_request(scope: Any) -> None:
    """Empty what a WebSocket's ASGI scope holds of its opening request (headers, query string with the token,
    subprotocols), read only while admitting it: the scope lives as long as the connection."""
    scope["headers"] = ()
    scope["query_string"] = b""
    scope["subprotocols"] = ()


def release_handshake(conn: Connection) -> None:
    """Once accepted (a socket is handed over then), drop what the protocol keeps for the connection's life but
    needed only while accepting, and swap its queue and flow-control event for lighter equivalents (``Inbox``,
    ``Flag``; uvicorn is pinned to one minor version, tests/test_realtime.py checks the swap holds).
    The handshake's response and its headers go (~1.4 KB); the request stays while websockets' parser
    generator still holds it."""
    state = vars(conn)
    state.pop("request", None)
    state.pop("response", None)
    forget_request(conn.scope)
    queue = conn.queue
    if isinstance(queue, asyncio.Queue):
        items = []
        while not queue.empty():
            items.append(queue.get_nowait())
        conn.queue = Inbox(items)  # type: ignore[assignment]
    if isinstance(conn.writable, asyncio.Event):
        conn.writable = Flag(conn.writable.is_set())  # type: ignore[assignment]


def ready(conn: Connection) -> bool:
    """Whether ``write`` may go now: open, and the transport not paused by flow control."""
    return (conn.writable.is_set() and not conn.disconnected and not conn.close_sent
            and not conn.transport.is_closing())


async def writable(conn: Connection) -> None:
    """Until the transport takes more (set again when the connection is lost, too)."""
    await conn.writable.wait()


def write(conn: Connection, frames: list[bytes]) -> bool:
    """Write ``frames`` as binary messages in one go; False if the connection is gone or closing."""
    if conn.disconnected or conn.close_sent or conn.transport.is_closing():
        return False
    ws = conn.conn
    try:
        for frame in frames:
            ws.send_binary(frame)
    except InvalidState:
        return False
    conn.transport.write(b"".join(ws.data_to_send()))
    return True


def close(conn: Connection, code: int, reason: str) -> bool:
    """Send the close frame now, flow control or not (what the protocol's ``send`` does with a
    ``websocket.close`` message, without its wait for ``writable``): a peer too slow for its outbox still
    learns why it is closed. One that does not read it is cut off after the protocol's close timeout."""
    if conn.disconnected or conn.close_sent or conn.transport.is_closing():
        return False
    try:
        conn.conn.send_close(code, reason)
    except InvalidState:
        return False
    conn.queue.put_nowait({"type": "websocket.disconnect", "code": code, "reason": reason})
    conn.transport.write(b"".join(conn.conn.data_to_send()))
    conn.close_sent = True
    if conn.read_paused:
        conn.read_paused = False
        conn.transport.resume_reading()
    conn.close_timer = conn.loop.call_later(conn.close_timeout, conn.transport.abort)
    return True
