"""How an HTTP request or a WebSocket proves who it is: bearer header, the signed cookie, and ``?token=``
on the WebSocket only (a token in a URL reaches logs and ``Referer``)."""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.requests import HTTPConnection

from dispatch.node.state import HubState
from dispatch.store.accounts import COOKIE_NAME, Session


def credential(request: HTTPConnection) -> tuple[str, str] | None:
    """Which credential the request carries, as ``(kind, value)``: ``bearer``, ``query`` (WebSocket
    clients that cannot set headers) or ``cookie``, in that order."""
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return "bearer", header[7:].strip()
    if request.scope["type"] == "websocket":
        token = request.query_params.get("token")
        if token:
            return "query", token
    cookie = request.cookies.get(COOKIE_NAME)
    if cookie:
        return "cookie", cookie
    return None


async def authenticate(request: HTTPConnection, hub: HubState) -> Session | None:
    """The session of the request's credential (see ``credential``), or None."""
    found = credential(request)
    if found is None:
        return None
    kind, value = found
    now = hub.clock.now()
    if kind == "cookie":
        raw = hub.auth.unsign(value)
        return await hub.auth.session(raw, now) if raw else None
    return await hub.auth.session(value, now)


def _origin(scheme: str, netloc: str) -> str:
    default = {"http": ":80", "https": ":443", "ws": ":80", "wss": ":443"}.get(scheme)
    if default and netloc.endswith(default):
        netloc = netloc[: -len(default)]
    return f"{scheme}://{netloc.lower()}"


def own_origin(request: HTTPConnection) -> str:
    """The origin the request was sent to (its scheme after a trusted proxy's ``X-Forwarded-Proto``)."""
    scheme = {"ws": "http", "wss": "https"}.get(request.url.scheme, request.url.scheme)
    return _origin(scheme, request.headers.get("host", ""))


def same_origin(request: HTTPConnection, console_origins: list[str]) -> bool:
    """Whether a state-changing request comes from the hub's own pages or a configured console origin:
    ``Origin``, else the origin of ``Referer``; a request with neither is refused."""
    claimed = request.headers.get("origin")
    if claimed is None:
        referer = request.headers.get("referer")
        if not referer:
            return False
        parts = urlsplit(referer)
        claimed = f"{parts.scheme}://{parts.netloc}"
    parts = urlsplit(claimed)
    if not parts.scheme or not parts.netloc:
        return False  # "null" (sandboxed frames, privacy redirects) and junk
    normal = _origin(parts.scheme.lower(), parts.netloc)
    allowed = {own_origin(request)}
    for extra in console_origins:
        split = urlsplit(extra)
        allowed.add(_origin(split.scheme.lower(), split.netloc))
    return normal in allowed
