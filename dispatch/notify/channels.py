"""Delivery channels: each turns one outbox message into one request and says how it went."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from dispatch.core.config import Robot, SmsGateway


@dataclass(frozen=True, slots=True)
class Message:
    """One outbox row, as a channel needs it."""

    id: int
    channel: str
    destination: str
    user_id: int | None
    recipient: str
    phone: str | None
    payload: dict[str, Any]
    attempt: int  # 1 for the first try
    assignment_state: str | None = None  # the assignment's state as the message leaves


@dataclass(frozen=True, slots=True)
class Delivery:
    ok: bool
    status: int | None = None
    error: str | None = None
    permanent: bool = False  # retrying cannot help (a bad number, a gone subscription): fail now


class Channel(Protocol):
    name: str

    async def send(self, msg: Message) -> Delivery: ...


def _short(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


async def _post(client: httpx.AsyncClient, method: str, url: str, **kwargs: Any) -> httpx.Response | Delivery:
    try:
        return await client.request(method, url, **kwargs)
    except httpx.HTTPError as exc:
        return Delivery(False, None, _short(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__))


def _fill(value: Any, fields: dict[str, str]) -> Any:
    """The template with {phone} and {text} replaced inside string values (never spliced into JSON text)."""
    if isinstance(value, str):
        for key, text in fields.items():
            value = value.replace("{" + key + "}", text)
        return value
    if isinstance(value, dict):
        return {k: _fill(v, fields) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, fields) for v in value]
    return value


def message_text(payload: dict[str, Any]) -> str:
    return f"{payload.get('title', '')} {payload.get('text', '')}".strip()


class SmsChannel:
    """An HTTP SMS gateway: the configured template filled with the recipient's number and the text."""

    name = "sms"

    def __init__(self, gateway: SmsGateway, client: httpx.AsyncClient) -> None:
        self.gateway, self.client = gateway, client
        self._body = json.loads(gateway.template) if gateway.method == "POST" else None

    async def send(self, msg: Message) -> Delivery:
        if not msg.phone:
            return Delivery(False, None, "the recipient has no phone number", permanent=True)
        fields = {"phone": msg.phone, "text": message_text(msg.payload), "id": str(msg.id)}
        g = self.gateway
        if g.method == "POST":
            res = await _post(self.client, "POST", g.url, json=_fill(self._body, fields),
                              headers={**g.headers, "Idempotency-Key": f"xianghu-{msg.id}"})
        else:
            query = urllib.parse.parse_qsl(g.template, keep_blank_values=True)
            res = await _post(self.client, "GET", g.url, params=[(k, _fill(v, fields)) for k, v in query],
                              headers=g.headers)
        if isinstance(res, Delivery):
            return res
        if res.status_code in g.ok_statuses:
            return Delivery(True, res.status_code)
        return Delivery(False, res.status_code, _short(f"HTTP {res.status_code}: {res.text}"),
                        permanent=400 <= res.status_code < 500 and res.status_code not in (408, 429))


def dingtalk_signed(url: str, secret: str, now_ms: int) -> str:
    """DingTalk's 加签: timestamp and sign = base64(HMAC-SHA256(secret, "timestamp\\nsecret")) as query."""
    digest = hmac.new(secret.encode(), f"{now_ms}\n{secret}".encode(), hashlib.sha256).digest()
    sign = urllib.parse.quote_plus(base64.b64encode(digest).decode())
    return f"{url}{'&' if '?' in url else '?'}timestamp={now_ms}&sign={sign}"


def webhook_signature(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>`` of HMAC-SHA256(secret, "<timestamp>.<body>"), the X-Xianghu-Signature header."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={mac}"


class RobotChannel:
    """WeCom (企业微信) and DingTalk (钉钉) group robots by their webhook formats, and the generic webhook."""

    def __init__(self, kind: str, robots: list[Robot], client: httpx.AsyncClient) -> None:
        self.name = kind
        self.robots = {r.name: r for r in robots if r.kind == kind}
        self.client = client

    async def send(self, msg: Message) -> Delivery:
        robot = self.robots.get(msg.destination.removeprefix("robot:"))
        if robot is None:
            return Delivery(False, None, f"no {self.name} robot {msg.destination!r} is configured", permanent=True)
        p = msg.payload
        if robot.kind == "webhook":
            body = json.dumps({"id": msg.id, "attempt": msg.attempt, **p}, ensure_ascii=False,
                              separators=(",", ":")).encode()
            stamp = str(int(time.time()))
            headers = {"Content-Type": "application/json", "X-Xianghu-Delivery": str(msg.id),
                       "X-Xianghu-Timestamp": stamp}
            if robot.secret:
                headers["X-Xianghu-Signature"] = webhook_signature(robot.secret, stamp, body)
            res = await _post(self.client, "POST", robot.url, content=body, headers=headers)
        else:
            markdown = f"**{p.get('title', '')}**\n\n{p.get('text', '')}"
            if robot.kind == "wecom":
                doc: dict[str, Any] = {"msgtype": "markdown", "markdown": {"content": markdown}}
                url = robot.url
            else:
                doc = {"msgtype": "markdown", "markdown": {"title": p.get("title", ""), "text": markdown}}
                url = dingtalk_signed(robot.url, robot.secret, int(time.time() * 1000)) if robot.secret else robot.url
            res = await _post(self.client, "POST", url, json=doc)
        if isinstance(res, Delivery):
            return res
        if res.status_code >= 300:
            return Delivery(False, res.status_code, _short(f"HTTP {res.status_code}: {res.text}"))
        if robot.kind != "webhook":  # both robots answer 200 with {"errcode": 0} on success
            try:
                code = res.json().get("errcode", 0)
            except ValueError:
                code = None
            if code != 0:
                return Delivery(False, res.status_code, _short(f"errcode {code}: {res.text}"))
        return Delivery(True, res.status_code)
