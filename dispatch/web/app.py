"""The Starlette application: REST, WebSocket and the consoles' static files, from one object."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles

from dispatch.core.clock import Clock, SystemClock
from dispatch.core.config import Config
from dispatch.core.settings import ConfigRef
from dispatch.node.state import HubState
from dispatch.realtime import wire
from dispatch.realtime.hub import Realtime, websocket_endpoint
from dispatch.store import pool as db
from dispatch.store import rechain, settings
from dispatch.store.accounts import Auth
from dispatch.store.reference import sync_reference
from dispatch.web import account, admin_log, calls, duty, evaluation, export, notify_status, push  # noqa: F401 - api modules register their endpoints
from dispatch.web import routing as web
from dispatch.web.admin_county import get_county  # noqa: F401 - registers the admin's reference-data endpoints
from dispatch.web.admin_users import IMPORT_MAX_BYTES, IMPORT_PATH  # and registers the admin's account endpoints
from dispatch.web.attachments import UPLOAD_PATH  # and registers the attachments' endpoints
from dispatch.web.demo_sms import DemoGateway
from dispatch.web.direct import HubApp
from dispatch.web.intake_api import routes as intake_routes
from dispatch.web.logs import RequestLog, event_logger
from dispatch.web.metrics import MetricsListener  # and registers GET /metrics
from dispatch.web.middleware import BodyLimit, ProxyHeaders, SecurityHeaders
from dispatch.web.openapi import openapi_document
from dispatch.web.reports import my_reports  # noqa: F401 - registers GET /api/v1/reports/mine
from dispatch.web.routing import error_response, request_language
from dispatch.web.services import start_services, stop_services
from dispatch.web.settings import PREFIX as _SETTINGS  # noqa: F401 - registers /api/v1/admin/settings
from protocols.errors import NotFound

log = logging.getLogger(__name__)
VERSION = "0.1.0"
CONSOLE_DIR = Path(__file__).resolve().parents[2] / "console"
ASSET_FOLDERS = ("shared", "operator", "liaison", "supervisor", "demo", "grid", "admin")
# npm packages the consoles load, each by its built folder only (/vendor/<name>/...): the msgpack codec
# (ES modules) and Apache ECharts (echarts.esm.min.mjs, one self-contained module) for the supervisor's charts.
VENDOR_FOLDERS = {"msgpack": "@msgpack/msgpack/dist.esm", "echarts": "echarts/dist"}
# Single files of packages without a built folder: axe-core, the accessibility checker the browser tests inject
# (tests/a11y.py) and anyone may run from the browser's console on a page (no CDN).
VENDOR_FILES = {"axe/axe.min.js": "axe-core/axe.min.js"}

SELECT_META = "select value from meta where key = $1"
INSERT_META = "insert into meta (key, value) values ($1, $2) on conflict (key) do nothing"


async def _secret(conn: Any, cfg: Config) -> str:
    """Configured secret, else one generated once and kept in the database (shared by every node)."""
    if cfg.server.session_secret:
        return cfg.server.session_secret
    await conn.execute(INSERT_META, "session_secret", secrets.token_urlsafe(48))
    value: str = await conn.fetchval(SELECT_META, "session_secret")
    return value


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok", "node": request.app.state.hub.node_id})


async def readyz(request: Request) -> Response:
    hub: HubState = request.app.state.hub
    try:
        async with asyncio.timeout(2):
            async with hub.pool.acquire() as conn:
                ok, reason = await db.schema_current(conn)
    except Exception as exc:
        return JSONResponse({"status": "unavailable", "reason": f"database unreachable: {exc!r}"},
                            status_code=503)
    if not ok:
        return JSONResponse({"status": "unavailable", "reason": reason}, status_code=503)
    return JSONResponse({"status": "ready"})


async def openapi(request: Request) -> Response:
    return JSONResponse(openapi_document(VERSION))


def _page(name: str) -> Any:
    async def page(request: Request) -> Response:
        return FileResponse(CONSOLE_DIR / name, headers={"Cache-Control": "no-cache"})
    return page


async def index(request: Request) -> Response:
    return RedirectResponse("/login")


# A peer that never reads keeps its connection's buffers unflushed; shutdown must not wait on it for ever.
GRACEFUL_SHUTDOWN_S = 10


def transport_frame_limit(max_frame_bytes: int) -> int:
    """The largest frame the WebSocket layer reads (4 × the protocol limit, at least 1 MiB); larger ones are
    closed 1009 by the transport without an ``error`` frame (PROTOCOL.md, Limits)."""
    return max(4 * max_frame_bytes, 1024 * 1024)


def server_config(app: Starlette, cfg: Config, host: str, port: int, *, production: bool = True,
                  tls: tuple[str, str] | None = None) -> uvicorn.Config:
    """The one uvicorn configuration (``serve`` and the tests): websockets' sans-I/O protocol, no
    permessage-deflate, frame limit."""
    # JSON logs: uvicorn's records go to the root logger's JSON handler, and the hub writes its own request
    # lines (route templates, no query strings: a WebSocket's ?token= must not reach a log).
    json_logs: dict[str, Any] = {"log_config": None, "access_log": False} if cfg.server.log_format == "json" else {}
    return uvicorn.Config(
        # websockets' sans-I/O implementation frames and parses in about half the CPU of wsproto and keeps less
        # per socket (docs/PERFORMANCE.md, "WebSocket transport"); the limits and close codes are the same.
        app, host=host, port=port, ws="websockets-sansio",
        loop="uvloop" if production else "auto", http=wire.UpgradingHttp,
        # permessage-deflate keeps ~100 KiB of zlib state per socket and compresses every frame per
        # socket; the frames are small msgpack, so it costs far more than it saves.
        ws_per_message_deflate=False,
        # The session refuses frames over max_frame_bytes with the documented error and 1009; the transport
        # only drops what is far beyond it (no error frame can be sent for a frame it never reads).
        ws_max_size=transport_frame_limit(cfg.realtime.max_frame_bytes), lifespan="on", log_level="warning",
        # The protocol's own ping/pong heartbeat (4000) is the one liveness check: no control pings.
        ws_ping_interval=None, ws_ping_timeout=None,
        # X-Forwarded-* are believed only from server.trusted_proxies (dispatch.web.middleware).
        proxy_headers=False, server_header=False, timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        ssl_certfile=tls[0] if tls else None, ssl_keyfile=tls[1] if tls else None, **json_logs,
    )


def create_app(cfg: Config, dsn: str, *, clock: Clock | None = None, pool_size: int = 10,
               demo: bool = False) -> Starlette:
    """The hub's ASGI app. ``demo`` adds the demo SMS gateway and its page (``xianghu demo`` only)."""
    clock = clock or SystemClock()
    json_logs = cfg.server.log_format == "json"
    listener: MetricsListener | None = None

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        pool = await db.create_pool(dsn, min_size=2, max_size=pool_size)
        try:
            async with pool.acquire() as conn:
                ok, reason = await db.schema_current(conn)
                if not ok:
                    raise RuntimeError(f"cannot serve: {reason} (run `xianghu migrate`)")
                effective = await settings.load_effective(conn, cfg)  # the file with the stored settings
                await sync_reference(conn, effective)
                # reporters still in a chain written before migration 0010 move out (idempotent; usually nothing)
                await rechain.move_reporters(conn, clock.now())
                secret = await _secret(conn, cfg)
                epoch: str = await conn.fetchval(SELECT_META, "epoch")
            hub = HubState(config=ConfigRef(effective), file_cfg=cfg, pool=pool, clock=clock,
                           auth=Auth(pool, cfg.server, secret), dsn=dsn, epoch=epoch, node_id=uuid.uuid4().hex[:8])
            app.state.hub = hub
            await start_services(hub)
            if json_logs and isinstance(hub.realtime, Realtime):
                hub.realtime.fanout.on_records.append(event_logger(hub.node_id))
            if listener is not None:
                await listener.start()
            yield
        finally:
            if listener is not None:
                await asyncio.shield(listener.stop())
            hub_obj = getattr(app.state, "hub", None)
            if hub_obj is not None:
                await asyncio.shield(stop_services(hub_obj))
            await asyncio.shield(pool.close())

    routes: list[Any] = [
        Route("/", index),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/openapi.json", openapi),
        Route("/login", _page("login.html")),
        Route("/liaison/login", _page("login.html")),  # inside the installed app's scope
        Route("/favicon.ico", _page("liaison/icon.svg")),
        Route("/operator/", _page("operator/index.html")),
        Route("/liaison/", _page("liaison/index.html")),
        Route("/supervisor/", _page("supervisor/index.html")),
        Route("/grid/", _page("grid/index.html")),
        Route("/admin/", _page("admin/index.html")),
        *web.routes(),
        *intake_routes(),
        # Declared for the route table; HubApp takes /ws before the router (web.direct), to this same endpoint.
        WebSocketRoute("/ws", websocket_endpoint),
    ]
    if demo:
        routes += [*DemoGateway().routes(), Route("/demo/phones/", _page("demo/index.html"))]
    # Only the console's asset folders are served, never package.json or the whole node_modules.
    for prefix, folder in VENDOR_FOLDERS.items():
        routes.append(Mount(f"/vendor/{prefix}", StaticFiles(directory=CONSOLE_DIR / "node_modules" / folder,
                                                             check_dir=False)))
    for name, file in VENDOR_FILES.items():
        routes.append(Route(f"/vendor/{name}", _vendor_file(CONSOLE_DIR / "node_modules" / file)))
    for folder in ASSET_FOLDERS:
        routes.append(Mount(f"/{folder}", StaticFiles(directory=CONSOLE_DIR / folder, check_dir=False)))
    middleware = [
        # (The real-time WebSocket, /ws, goes past these: web.direct.HubApp does what they do to it.)
        Middleware(ProxyHeaders, trusted=cfg.server.trusted_proxies),  # outermost: the real client and scheme
        # Next, so it sees the scope the router fills in (the route; the actor), and every answer (413s too).
        *([Middleware(RequestLog)] if json_logs else []),
        Middleware(SecurityHeaders),
        Middleware(BodyLimit, max_bytes=web.MAX_BODY_BYTES, paths={UPLOAD_PATH: cfg.attachments.max_bytes,
                                                                IMPORT_PATH: IMPORT_MAX_BYTES}),
    ]
    app = HubApp(ws_endpoint=websocket_endpoint, trusted_proxies=cfg.server.trusted_proxies, routes=routes,
                 lifespan=lifespan, middleware=middleware, exception_handlers={404: not_found})
    if cfg.metrics.port:  # /metrics on a listener of its own, up while the hub is
        listener = MetricsListener(app, cfg, json_logs=json_logs)
    return app


def _vendor_file(path: Path) -> Any:
    async def serve(request: Request) -> Response:
        if not await asyncio.to_thread(path.is_file):
            return PlainTextResponse("Not Found", status_code=404)
        return FileResponse(path, media_type="text/javascript")
    return serve


async def not_found(request: Request, exc: Exception) -> Response:
    """API clients get the JSON error shape for unknown paths (and malformed ids in paths) too."""
    if request.url.path.startswith("/api/"):
        return error_response(NotFound(f"no such resource: {request.url.path}"), request_language(request))
    return PlainTextResponse("Not Found", status_code=404)
