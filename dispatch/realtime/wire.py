"""Writing a socket's frames straight into the server's WebSocket connection when the server is uvicorn's
websockets sans-I/O protocol (``web.app.server_config``): all the frames queued at once in one
``transport.write``, synchronously, instead of one awaited ASGI ``send`` (and a task) per frame.

Mirrors what that protocol's own ``send`` does with a ``websocket.send`` message (the only kind written
here): wait while the transport is paused (flow control), refuse once disconnected or closing. Anything else
(another server) goes through the ASGI ``send``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.exceptions import InvalidState

Connection = WebSocketsSansIOProtocol


def connection_of(send: Callable[..., Any] | None) -> Connection | None:
    """The server connection behind an ASGI ``send`` (its bound method), or None for any other server."""
    conn = getattr(send, "__self__", None)
    return conn if isinstance(conn, WebSocketsSansIOProtocol) else None


def release_handshake(conn: Connection) -> None:
    """Drop the protocol's references to the opening handshake's request and response, kept for the
    connection's life but read only while accepting (a socket is handed over once accepted): the response and
    its headers go (~1.4 KB); the request stays while websockets' parser generator still holds it."""
    state = vars(conn)
    state.pop("request", None)
    state.pop("response", None)


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
