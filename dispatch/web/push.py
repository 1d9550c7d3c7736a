"""REST for Web Push: the VAPID public key, and the browser's subscription stored for (or removed from) the
logged-in account. Any role may subscribe; what reaches it is decided by the outbox (docs/NOTIFICATIONS.md)."""

from __future__ import annotations

import re
import urllib.parse
from typing import Annotated, Any

import httpx
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import BaseModel, ConfigDict, Field, field_validator

from dispatch.notify.webpush import b64url_decode
from dispatch.store import push
from dispatch.web.routing import Req, endpoint
from dispatch.web.schemas import PushKeyOut, PushSubscribedOut, PushUnsubscribedOut
from protocols.errors import Forbidden

B64URL = re.compile(r"^[A-Za-z0-9_-]+={0,2}$")
# Plain http only to this machine: a test's stand-in push service, or a relay beside the hub.
HTTP_HOSTS = frozenset({"127.0.0.1"})


def _b64url(value: str, size: int, what: str) -> bytes:
    if not B64URL.fullmatch(value):
        raise ValueError(f"must be base64url ({what})")
    try:
        raw = b64url_decode(value.rstrip("="))
    except ValueError:
        raise ValueError(f"must be base64url ({what})") from None
    if len(raw) != size:
        raise ValueError(f"must be {size} bytes ({what}), not {len(raw)}")
    return raw


class PushKeys(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    p256dh: Annotated[str, Field(min_length=1, max_length=200)]
    auth: Annotated[str, Field(min_length=1, max_length=100)]

    @field_validator("p256dh")
    @classmethod
    def _point(cls, value: str) -> str:
        raw = _b64url(value, 65, "an uncompressed P-256 public key")
        try:
            ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)
        except ValueError:
            raise ValueError("must be an uncompressed P-256 public key (65 bytes, 0x04, on the curve)") from None
        return value.rstrip("=")

    @field_validator("auth")
    @classmethod
    def _secret(cls, value: str) -> str:
        _b64url(value, 16, "the 16-byte authentication secret")
        return value.rstrip("=")


def _push_endpoint(value: str) -> str:
    if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise ValueError("must not contain spaces or control characters")
    try:
        parts = urllib.parse.urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError as exc:
        raise ValueError(f"is not a URL ({exc})") from None
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not carry a user name or password")
    if parts.fragment:
        raise ValueError("must not have a #fragment")
    if not parts.hostname:
        raise ValueError("must name a host")
    if not (parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in HTTP_HOSTS)):
        raise ValueError("must be an https:// URL (http:// only to 127.0.0.1)")
    try:
        httpx.URL(value)  # what the sender will post to must parse there too (IDNA hosts, ports)
    except (httpx.InvalidURL, ValueError) as exc:
        raise ValueError(f"is not a URL ({exc})") from None
    return value


class SubscriptionBody(BaseModel):
    """A browser's ``PushSubscription.toJSON()``."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    endpoint: Annotated[str, Field(min_length=1, max_length=2048)]
    expirationTime: float | None = None  # the browser's name; not used (push services rarely set it)
    keys: PushKeys

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str) -> str:
        return _push_endpoint(value)


class UnsubscribeBody(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    endpoint: Annotated[str, Field(min_length=1, max_length=2048)]


def _user_id(call: Req) -> int:
    uid = call.actor.user_id
    if uid is None:
        raise Forbidden("only a person's account may hold a push subscription")
    return uid


@endpoint("GET", "/api/v1/push/key", summary="The Web Push key, and whether pushes reach this account",
          tags=["push"], response=PushKeyOut)
async def push_key(call: Req) -> dict[str, Any]:
    key = call.hub.vapid_public_key
    if key is None:
        return {"enabled": False, "public_key": None, "reason": "off"}
    async with call.hub.pool.acquire() as conn:
        wanted = "webpush" in await push.user_channels(conn, _user_id(call))
    return {"enabled": wanted, "public_key": key, "reason": None if wanted else "not_for_this_account"}


@endpoint("POST", "/api/v1/push/subscriptions", summary="Store this browser's push subscription for this account",
          tags=["push"], body=SubscriptionBody, response=PushSubscribedOut)
async def subscribe(call: Req) -> dict[str, Any]:
    body: SubscriptionBody = call.body
    async with call.hub.pool.acquire() as conn:
        sid, created = await push.subscribe(conn, _user_id(call), body.endpoint, body.keys.p256dh, body.keys.auth,
                                            call.hub.clock.now())
    return {"ok": True, "id": sid, "created": created}


@endpoint("DELETE", "/api/v1/push/subscriptions", summary="Remove this browser's push subscription",
          tags=["push"], body=UnsubscribeBody, response=PushUnsubscribedOut)
async def unsubscribe(call: Req) -> dict[str, Any]:
    body: UnsubscribeBody = call.body
    async with call.hub.pool.acquire() as conn:
        removed = await push.unsubscribe(conn, _user_id(call), body.endpoint)
    return {"ok": True, "removed": removed}
