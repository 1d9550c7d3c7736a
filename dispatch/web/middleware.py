"""Pure-ASGI middleware (no ``BaseHTTPMiddleware``: that one buffers and breaks streaming and WebSockets):
the client's real address and scheme behind trusted proxies, the request body limit, security headers."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable, Mapping, Sequence

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from protocols.errors import PayloadTooLarge
from protocols.localize import pick_language

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# No inline script or style anywhere in the consoles; 'self' covers ws:/wss: of the same host (CSP3).
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"
)
SECURITY_HEADERS = (
    ("content-security-policy", CONTENT_SECURITY_POLICY),
    ("x-frame-options", "DENY"),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "same-origin"),
)


class ProxyHeaders:
    """Believe ``X-Forwarded-For`` / ``X-Forwarded-Proto`` only from ``server.trusted_proxies``.

    The client is the rightmost ``X-Forwarded-For`` address that is not itself a trusted proxy (the
    entries to its left are whatever the client claimed); the scheme is the last ``X-Forwarded-Proto``
    entry. From any other peer both headers are ignored. The server must not rewrite them itself
    (uvicorn runs with ``proxy_headers=False``).
    """

    def __init__(self, app: ASGIApp, trusted: Sequence[str]) -> None:
        self.app = app
        self.networks: list[Network] = [ipaddress.ip_network(n, strict=False) for n in trusted]

    def trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in self.networks)

    def client_of(self, peer: str, forwarded: Iterable[str]) -> str:
        chain = [a.strip() for value in forwarded for a in value.split(",") if a.strip()]
        for address in reversed(chain):
            if not self.trusted(address):
                return address[:64]
        return chain[0][:64] if chain else peer

    def rewrite(self, scope: Scope) -> Scope:
        """``scope`` with the real client and scheme when the peer is a trusted proxy (a copy), else itself
        (also used by ``web.direct`` for the WebSocket it routes past this middleware)."""
        client = scope.get("client")
        if scope["type"] in ("http", "websocket") and self.networks and client and self.trusted(client[0]):
            headers = Headers(scope=scope)
            scope = dict(scope)
            forwarded = headers.getlist("x-forwarded-for")
            if forwarded:
                scope["client"] = (self.client_of(client[0], forwarded), 0)
            proto = headers.get("x-forwarded-proto", "").split(",")[-1].strip().lower()
            if proto in ("http", "https"):
                secure = proto == "https"
                if scope["type"] == "websocket":
                    scope["scheme"] = "wss" if secure else "ws"
                else:
                    scope["scheme"] = proto
        return scope

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(self.rewrite(scope), receive, send)


def _json(status: int, body: Mapping[str, object]) -> tuple[Message, Message]:
    data = json.dumps(body, ensure_ascii=False).encode()
    start: Message = {"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()),
        (b"connection", b"close")]}
    return start, {"type": "http.response.body", "body": data}


class BodyLimit:
    """Refuse a request body larger than ``max_bytes`` before reading it (by ``Content-Length``) or as
    soon as the streamed body passes the limit (chunked): 413 ``payload_too_large``. What is read is
    never more than the limit and one chunk."""

    def __init__(self, app: ASGIApp, max_bytes: int, paths: Mapping[str, int] | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.paths = dict(paths or {})  # exact paths with a limit of their own (uploads)

    def error(self, limit: int) -> PayloadTooLarge:
        return PayloadTooLarge(f"request body larger than {limit} bytes")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.paths.get(scope["path"], self.max_bytes)
        headers = Headers(scope=scope)
        length = headers.get("content-length")
        if length is not None and length.strip().isdigit() and int(length) > limit:
            for message in _json(413, self.error(limit).to_dict(pick_language(headers.get("accept-language")))):
                await send(message)
            return
        received = 0
        started = over = False

        async def limited() -> Message:
            nonlocal received, over
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    over = True
                    raise self.error(limit)
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if over:  # the rest of the body is never read: end the connection after the answer
                    MutableHeaders(scope=message)["connection"] = "close"
            await send(message)

        try:
            await self.app(scope, limited, tracked)
        except PayloadTooLarge as exc:  # an endpoint that read the body without catching it
            if started:
                raise
            for message in _json(413, exc.to_dict(pick_language(headers.get("accept-language")))):
                await send(message)


class SecurityHeaders:
    """Security headers on every HTTP response; ``Cache-Control: no-store`` on the API."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        api = scope["path"].startswith("/api/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS:
                    headers.setdefault(name, value)
                if api and not headers.get("cache-control", "").startswith("private"):
                    headers["cache-control"] = "no-store"  # an uploaded file may be kept by its reader's browser
            await send(message)

        await self.app(scope, receive, send_with_headers)
