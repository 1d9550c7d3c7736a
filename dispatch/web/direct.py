"""The hub's ASGI entry: a WebSocket on ``/ws`` goes straight to the real-time endpoint, past the HTTP middleware
and Starlette's router; everything else goes through all of them.

Every socket waits on its reader for its whole life, and every coroutine it waits in stays suspended (a frame
and its locals each, all tracked by the garbage collector): through the middleware, Starlette's error and
exception layers and the router that was ~22 frames and ~6 KB a socket; here it is the endpoint's own few.

What the middleware does to a WebSocket is done here too: the client and scheme behind a trusted proxy
(``ProxyHeaders.rewrite``, the same code) and the server's own ``send`` kept in the scope (``SERVER_SEND``, so
a socket writes its frames without Starlette's wrappers). The other middleware (request log, security headers,
body limit) pass a WebSocket through untouched. An exception that escapes the endpoint is logged and the socket
closed 1011 (Starlette's layers would have let the server drop the connection without a close frame)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketState

from dispatch.realtime import wire
from dispatch.realtime.socket import SERVER_SEND
from dispatch.web.middleware import ProxyHeaders
from protocols.session import CloseCode

log = logging.getLogger(__name__)

WS_PATH = "/ws"
Endpoint = Callable[[WebSocket], Awaitable[None]]


class HubApp(Starlette):
    """Starlette, with the direct path for the real-time WebSocket (``WS_PATH``)."""

    def __init__(self, *, ws_endpoint: Endpoint, trusted_proxies: list[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ws_endpoint = ws_endpoint
        self.proxy = ProxyHeaders(self.router, trusted_proxies)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and scope["path"] == scope.get("root_path", "") + WS_PATH:
            scope = self.proxy.rewrite(scope)
            scope["app"] = self
            scope[SERVER_SEND] = send
            ws = WebSocket(scope, receive, send)
            try:
                await self.ws_endpoint(ws)
            except Exception:
                log.exception("WebSocket connection failed")
                if ws.application_state == WebSocketState.CONNECTED and ws.client_state == WebSocketState.CONNECTED:
                    conn = wire.connection_of(send)
                    # Not ws.close(): it waits for the transport, which a peer that stopped reading keeps paused.
                    if conn is None or not wire.close(conn, CloseCode.INTERNAL_ERROR, "internal error: reconnect"):
                        with contextlib.suppress(Exception):
                            await asyncio.wait_for(ws.close(CloseCode.INTERNAL_ERROR, "internal error: reconnect"), 1.0)
            finally:
                # The server's connection holds the scope and the scope its bound ``send``: a cycle that only the
                # collector's full passes would free. Broken here, a closed socket's objects go when it does.
                scope.pop(SERVER_SEND, None)
            return
        await super().__call__(scope, receive, send)
