"""``GET /metrics``: this node's Prometheus metrics (docs/OPERATIONS.md), never public.

Served on the hub's port only to a scraper presenting ``[metrics] token`` as a bearer token; on a listener of its
own (``[metrics] port``, ``xianghu serve --metrics-port``) that answers nothing else; off (404) with neither."""

from __future__ import annotations

import contextlib
import hmac
import socket
from collections import Counter

import uvicorn
from prometheus_client.exposition import choose_encoder
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from dispatch.core.config import Config
from dispatch.core.domain import Role
from dispatch.node.metrics import Snapshot
from dispatch.realtime.hub import Realtime
from dispatch.store.metrics import fetch_counts
from dispatch.web.routing import Req, endpoint
from protocols.errors import NotFound, Unauthenticated

# Set in the scope of requests that came in through the metrics listener (not the hub's public port).
LISTENER_SCOPE_KEY = "xianghu.metrics_listener"
ROLES = tuple(r.value for r in Role if r is not Role.SYSTEM)


def _authorize(req: Req) -> None:
    """On the public port only with the token; on the metrics listener with the token if one is set."""
    expected = req.hub.cfg.metrics.bearer
    private = bool(req.request.scope.get(LISTENER_SCOPE_KEY))
    if not expected:
        if private:
            return
        raise NotFound("no such resource: /metrics")
    header = req.request.headers.get("authorization", "")
    given = header[7:].strip() if header.lower().startswith("bearer ") else ""
    # Constant time: how much of a guess matched must not show in the answer's timing.
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise Unauthenticated("metrics: a valid bearer token is required")


@endpoint("GET", "/metrics", summary="Prometheus metrics of this node (bearer token from [metrics] token)",
          tags=("operations",), public=True, media="text/plain; version=0.0.4",
          errors={401: "missing or wrong metrics token", 404: "metrics are off (no token and no listener set)"})
async def metrics(req: Req) -> Response:
    _authorize(req)
    hub = req.hub
    async with hub.pool.acquire() as conn:
        counts = await fetch_counts(conn)
    rt = hub.realtime if isinstance(hub.realtime, Realtime) else None
    sockets = Counter(s.actor.role.value for s in rt.sockets) if rt is not None else Counter()
    pool = hub.pool
    snapshot = Snapshot(counts=counts, channels=list(hub.cfg.notify.channels), sockets=sockets, roles=ROLES,
                        pool_size=pool.get_size(), pool_idle=pool.get_idle_size(), pool_max=pool.get_max_size())
    encoder, content_type = choose_encoder(req.request.headers.get("accept", ""))
    return Response(hub.metrics.render(snapshot, encoder), headers={"Content-Type": content_type,
                                                                    "Cache-Control": "no-store"})


def metrics_only(app: ASGIApp) -> ASGIApp:
    """The metrics listener's app: ``/metrics`` of the hub's app, and nothing else (404; WebSockets refused)."""
    async def serve(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/metrics":
            await app({**scope, LISTENER_SCOPE_KEY: True}, receive, send)
        elif scope["type"] == "http":
            await PlainTextResponse("Not Found", status_code=404)(scope, receive, send)
        elif scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
    return serve


class MetricsListener:
    """``/metrics`` on ``[metrics] host:port``, served beside the hub in its process and event loop while the
    hub runs (the hub's lifespan starts and stops it)."""

    def __init__(self, app: ASGIApp, cfg: Config, *, json_logs: bool = False) -> None:
        self.host, self.port = cfg.metrics.host, cfg.metrics.port
        self.config = uvicorn.Config(
            metrics_only(app), host=self.host, port=self.port, lifespan="off", log_level="warning",
            access_log=False, server_header=False, proxy_headers=False,
            log_config=None if json_logs else uvicorn.config.LOGGING_CONFIG)
        self.server = uvicorn.Server(self.config)
        self._socket: socket.socket | None = None

    def _bind(self) -> socket.socket:
        infos = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _, address = infos[0]
        sock = socket.socket(family, kind, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
        except OSError as exc:
            sock.close()
            raise RuntimeError(f"cannot listen for /metrics on {self.host}:{self.port}: {exc.strerror}") from None
        sock.setblocking(False)
        return sock

    async def start(self) -> None:
        # Bound here, so a port in use stops the hub's start with a message (uvicorn would exit the process).
        self._socket = self._bind()
        if not self.config.loaded:
            self.config.load()
        self.server.lifespan = self.config.lifespan_class(self.config)
        await self.server.startup(sockets=[self._socket])

    async def stop(self) -> None:
        if self.server.started:
            await self.server.shutdown(sockets=[self._socket] if self._socket else None)
        elif self._socket is not None:
            with contextlib.suppress(OSError):
                self._socket.close()
