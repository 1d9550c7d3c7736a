"""Structured logs (``[server] log_format = "json"``, ``xianghu serve --log-format json``; docs/OPERATIONS.md):
every record as one JSON object a line, plus one line per HTTP request and one per event this node publishes.

What these lines carry is chosen, never dumped: a request's route template (no query string, no body, no
headers), status, duration and who asked (role and user id); an event's identifiers and states, never its body,
the reporter or anybody's name. Tokens and phones are therefore never in them."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from pythonjsonlogger.json import JsonFormatter
from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dispatch.store.eventlog import EventRecord

ACCESS = logging.getLogger("xianghu.access")
EVENTS = logging.getLogger("xianghu.events")
# Who made the request, set by the route registry once it authenticated: (role, user id).
ACTOR_SCOPE_KEY = "xianghu.actor"


def json_formatter() -> logging.Formatter:
    """``{"time", "level", "logger", "message", ...the record's extra fields}``, non-ASCII as itself."""
    return JsonFormatter("{levelname}{name}{message}", style="{", timestamp="time", json_ensure_ascii=False,
                         rename_fields={"levelname": "level", "name": "logger"})


def use_json_logs() -> None:
    """Every handler of the root logger writes JSON lines (the CLI configured them as text)."""
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(logging.StreamHandler())
    for handler in root.handlers:
        handler.setFormatter(json_formatter())


def route_template(scope: Scope) -> str | None:
    """The matched route's path as declared (``/api/v1/calls/{call_id:uuid}``), never the request's own."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if not isinstance(path, str):
        return None
    return f"{path}/{{path}}" if isinstance(route, Mount) else path


class RequestLog:
    """One ``request`` line per HTTP request when it ends: method, route, status, duration, role, user id."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0

        async def tracked(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except BaseException:
            status = status or 500
            raise
        finally:
            role, user_id = scope.get(ACTOR_SCOPE_KEY) or (None, None)
            ACCESS.info("request", extra={
                "method": scope["method"], "path": route_template(scope) or "(no route)", "status": status,
                "duration_ms": round((time.perf_counter() - started) * 1000, 3), "role": role, "user_id": user_id,
            })


def event_fields(rec: EventRecord) -> dict[str, Any]:
    return {
        "township_id": rec.township_id, "seq": rec.seq, "type": rec.type,
        "call_id": None if rec.call_id is None else str(rec.call_id),
        "assignment_id": None if rec.assignment_id is None else str(rec.assignment_id),
        "call_state": rec.call_state, "assignment_state": rec.assignment_state,
        "actor_role": rec.actor_role, "actor_id": rec.actor_id,
    }


def event_logger(node_id: str) -> Callable[[list[EventRecord]], Awaitable[None]]:
    """A fan-out hook writing one ``event`` line per event this node publishes (every node publishes every
    committed event to its own sockets, so each node logs each event once: ``node`` tells them apart)."""
    async def log_published(records: list[EventRecord]) -> None:
        for rec in records:
            EVENTS.info("event", extra={**event_fields(rec), "node": node_id})
    return log_published
