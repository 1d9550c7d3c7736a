"""Web Push to the installed liaison app: the payload encrypted for each of the person's live subscriptions
(aes128gcm, RFC 8291, by pywebpush), signed for the push service (VAPID, RFC 8292, by py_vapid) and posted
through the sender's shared httpx client. A push service that says a subscription is gone (404/410) retires it."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any, Literal

import asyncpg
import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02, VapidException
from pywebpush import WebPusher

from dispatch.core.clock import Clock
from dispatch.core.config import WebPushConfig
from dispatch.notify.channels import Delivery, Message
from dispatch.store import push
from protocols.errors import ConfigError

# A notification about these may carry the "响应" (acknowledge) button while the assignment still waits for it.
ACK_REASONS = frozenset({"dispatched", "escalated", "nudged"})
# A push message holds at most 4096 bytes encrypted (RFC 8291 §4): titles and texts are cut well below that.
TITLE_LIMIT, TEXT_LIMIT = 120, 600
# The VAPID token: valid 12 h (push services refuse more than 24 h), signed again once less than 6 h remain.
JWT_LIFETIME_S, JWT_RENEW_S = 12 * 3600, 6 * 3600
ACCEPTED = frozenset({200, 201, 202})
GONE = frozenset({404, 410})


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    """Base64url with or without padding (a browser's PushSubscription keys come without)."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def generate_private_key() -> str:
    """A new VAPID private key: the raw P-256 scalar in base64url (the form ``notify.webpush.private_key`` takes)."""
    key = ec.generate_private_key(ec.SECP256R1())
    return b64url(key.private_numbers().private_value.to_bytes(32, "big"))


@dataclass(frozen=True, slots=True)
class VapidKeys:
    private: ec.EllipticCurvePrivateKey
    public: str  # the uncompressed public point in base64url: the page's applicationServerKey

    @classmethod
    def from_raw(cls, raw: str) -> VapidKeys:
        scalar = int.from_bytes(b64url_decode(raw), "big")
        key = ec.derive_private_key(scalar, ec.SECP256R1())  # ValueError outside 1..n-1
        point = key.public_key().public_bytes(serialization.Encoding.X962,
                                              serialization.PublicFormat.UncompressedPoint)
        return cls(key, b64url(point))


async def load_keys(pool: asyncpg.Pool, cfg: WebPushConfig) -> VapidKeys:
    """The configured key, else the one the first node generated and kept in the database."""
    if cfg.private_key:
        try:
            return VapidKeys.from_raw(cfg.private_key)
        except ValueError as exc:
            raise ConfigError(f"notify.webpush.private_key: not a P-256 private key ({exc})") from None
    async with pool.acquire() as conn:
        return VapidKeys.from_raw(await push.vapid_private_key(conn, generate_private_key))


def origin(url: str) -> str:
    """scheme://host[:port] of a URL, the default port left out (the VAPID ``aud`` claim)."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    default = {"https": 443, "http": 80}.get(parts.scheme)
    return f"{parts.scheme}://{host}" + (f":{port}" if port is not None and port != default else "")


class VapidSigner:
    """The ``Authorization: vapid t=…, k=…`` header for a push service, kept while it has hours left."""

    def __init__(self, keys: VapidKeys, subject: str) -> None:
        # The subject was checked by the configuration; py_vapid's own stricter pattern would refuse intranet
        # mail domains without a dot.
        self._vapid = Vapid02(keys.private, conf={"no-strict": True})
        self.subject = subject
        self._cache: dict[str, tuple[int, str]] = {}

    def header(self, endpoint: str, wall_now: float) -> str:
        aud = origin(endpoint)
        hit = self._cache.get(aud)
        if hit is not None and hit[0] - wall_now > JWT_RENEW_S:
            return hit[1]
        exp = int(wall_now) + JWT_LIFETIME_S
        try:
            value: str = self._vapid.sign({"aud": aud, "sub": self.subject, "exp": exp})["Authorization"]
        except VapidException as exc:
            raise ValueError(f"cannot sign for {aud}: {exc}") from None
        self._cache[aud] = (exp, value)
        return value


def _cut(text: Any, limit: int) -> str:
    value = "" if text is None else str(text)
    return value if len(value) <= limit else value[: limit - 1] + "…"


def push_payload(msg: Message) -> dict[str, Any]:
    """What the service worker gets (console/liaison/sw.js, the ``push`` handler)."""
    p = msg.payload
    call_id = p.get("call_id")
    reason = p.get("reason")
    return {
        "id": msg.id, "title": _cut(p.get("title"), TITLE_LIMIT), "text": _cut(p.get("text"), TEXT_LIMIT),
        "call_id": call_id, "assignment_id": p.get("assignment_id"), "number": p.get("number"),
        "reason": reason, "level": p.get("level"), "deadline_kind": p.get("deadline_kind"),
        "priority": p.get("priority"), "repeat": p.get("repeat", 0),
        "url": f"/liaison/#/call/{call_id}" if call_id else "/liaison/",
        # Still waiting for 响应 when the message leaves: the notification offers the button.
        "ack": reason in ACK_REASONS and p.get("assignment_id") is not None and msg.assignment_state == "dispatched",
    }


def urgency(payload: dict[str, Any]) -> str:
    """RFC 8030 §5.3: a phone saving its battery still wakes for these."""
    if payload["reason"] in ("escalated", "nudged") or payload.get("priority") == "urgent":
        return "high"
    return "normal"


def topic(payload: dict[str, Any]) -> str:
    """RFC 8030 §5.4: a message the push service still holds is replaced by a newer one about the same thing."""
    return b64url(hashlib.sha256(f"{payload['call_id']}:{payload['reason']}".encode()).digest()[:24])


Kind = Literal["ok", "gone", "retry", "permanent"]


@dataclass(frozen=True, slots=True)
class _Outcome:
    kind: Kind
    status: int | None
    error: str | None = None


def _short(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


class WebPushChannel:
    """Web Push: one message to every live subscription of the person; delivered when one push service took it."""

    name = "webpush"

    def __init__(self, pool: asyncpg.Pool, cfg: WebPushConfig, client: httpx.AsyncClient, keys: VapidKeys,
                 clock: Clock) -> None:
        self.pool, self.cfg, self.client, self.clock = pool, cfg, client, clock
        self.signer = VapidSigner(keys, cfg.subject)

    async def send(self, msg: Message) -> Delivery:
        if msg.user_id is None:
            return Delivery(False, None, "Web Push goes to a person, not a robot", permanent=True)
        async with self.pool.acquire() as conn:
            subs = await push.live_subscriptions(conn, msg.user_id)
        if not subs:
            return Delivery(False, None, "no live Web Push subscription (unsubscribed, or gone)", permanent=True)
        payload = push_payload(msg)
        data = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        headers = {"TTL": str(self.cfg.ttl_s), "Content-Encoding": "aes128gcm",
                   "Content-Type": "application/octet-stream", "Urgency": urgency(payload), "Topic": topic(payload)}
        outcomes = await asyncio.gather(*(self._one(s, data, headers) for s in subs))
        now = self.clock.now()
        async with self.pool.acquire() as conn:
            for sub, out in zip(subs, outcomes, strict=True):
                if out.kind == "ok":
                    await push.mark_ok(conn, sub.id, now)
                elif out.kind == "gone":
                    await push.mark_gone(conn, sub.id, now)
        accepted = [o for o in outcomes if o.kind == "ok"]
        if accepted:
            return Delivery(True, accepted[0].status)
        failed = list(zip(subs, outcomes, strict=True))
        # Where it failed, by host only: an endpoint URL is a capability, never written to the timeline.
        error = "; ".join(f"{urllib.parse.urlsplit(s.endpoint).hostname}: {o.error}" for s, o in failed)
        if all(o.kind == "gone" for _, o in failed):
            error = "every subscription is gone: " + error
        return Delivery(False, failed[0][1].status, _short(error, 300),
                        permanent=not any(o.kind == "retry" for _, o in failed))

    async def _one(self, sub: push.Subscription, data: bytes, headers: dict[str, str]) -> _Outcome:
        try:
            body = WebPusher({"endpoint": sub.endpoint, "keys": {"p256dh": sub.p256dh, "auth": sub.auth}}).encode(
                data, content_encoding="aes128gcm")["body"]
            # Wall time, not the hub's clock: the push service checks `exp` against its own.
            auth = self.signer.header(sub.endpoint, time.time())
        except Exception as exc:  # keys that cannot be used: retrying cannot help
            return _Outcome("permanent", None, _short(f"cannot encrypt or sign: {type(exc).__name__}: {exc}"))
        try:
            res = await self.client.post(sub.endpoint, content=body, headers={**headers, "Authorization": auth})
        except httpx.HTTPError as exc:
            return _Outcome("retry", None, _short(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__))
        except (httpx.InvalidURL, ValueError) as exc:  # stored before this check existed, or a host IDNA refuses
            return _Outcome("permanent", None, _short(f"{type(exc).__name__}: {exc}"))
        status = res.status_code
        if status in ACCEPTED:
            return _Outcome("ok", status)
        error = _short(f"HTTP {status}: {res.text}".strip())
        if status in GONE:
            return _Outcome("gone", status, error)
        if status in (408, 429) or status >= 500:
            return _Outcome("retry", status, error)
        return _Outcome("permanent", status, error)  # 400, 401/403 (another VAPID key), 413 (too large)
