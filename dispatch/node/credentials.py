"""How an HTTP request or a WebSocket proves who it is: bearer header, ``?token=`` or the signed cookie."""

from __future__ import annotations

from starlette.requests import HTTPConnection

from dispatch.node.state import HubState
from dispatch.store.accounts import COOKIE_NAME, Session


async def authenticate(request: HTTPConnection, hub: HubState) -> Session | None:
    """Bearer header, then ``?token=`` (WebSocket clients that cannot set headers), then the cookie."""
    now = hub.clock.now()
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return await hub.auth.session(header[7:].strip(), now)
    token = request.query_params.get("token")
    if token:
        return await hub.auth.session(token, now)
    cookie = request.cookies.get(COOKIE_NAME)
    if cookie:
        raw = hub.auth.unsign(cookie)
        if raw:
            return await hub.auth.session(raw, now)
    return None
