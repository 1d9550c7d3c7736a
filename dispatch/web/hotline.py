"""The 12345 hotline's webhook (docs/INTAKE.md): signed work orders in, the call's status out. Starlette
routes of their own, because the signature is checked over the raw body before anything in it is read."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dispatch.core import hotline
from dispatch.core.commands import CreateCall, parse_command
from dispatch.core.intake import FINISHED, agency, expected, status_text
from dispatch.core.records import Call
from dispatch.node.state import HubState
from dispatch.notify.channels import webhook_signature
from dispatch.store import integrations as store
from dispatch.store.integrations import Integration
from dispatch.store.pool import unavailable, unreachable
from dispatch.web import intake
from dispatch.web.routing import (
    MAX_BODY_BYTES,
    ZhJSONResponse,
    error_response,
    parse_json_body,
    request_language,
)
from protocols.errors import (
    Forbidden,
    InternalError,
    NotFound,
    PayloadTooLarge,
    Unauthenticated,
    XianghuError,
)

log = logging.getLogger(__name__)
PATH = "/api/v1/intake/hotline"
HEADER_INTEGRATION = "X-Xianghu-Integration"
HEADER_TIMESTAMP = "X-Xianghu-Timestamp"
HEADER_SIGNATURE = "X-Xianghu-Signature"
NOT_VERIFIED = "signature verification failed"


class TicketStatusOut(BaseModel):
    """Where a ticket's call stands, in the hub's lifecycle terms and in Chinese."""

    ticket_id: str
    call_id: str
    number: str
    state: str
    status: str  # open | closed
    status_text: str
    agency: str | None
    updated_at: str
    expected_at: str | None
    replayed: bool


async def _verified(hub: HubState, request: Request, body: bytes, *, remember: bool) -> Integration:
    """The integration that signed this request; 401 without saying which part failed (except a clock too far
    off, which says nothing about the secret); 403 for a disabled one. A signature is good once (``remember``)."""
    name = request.headers.get(HEADER_INTEGRATION, "")
    stamp = request.headers.get(HEADER_TIMESTAMP, "")
    given = request.headers.get(HEADER_SIGNATURE, "")
    if not name or not stamp or not given or len(name) > 64:
        raise Unauthenticated(NOT_VERIFIED)
    now = hub.clock.now()
    if not hotline.fresh(stamp, now):
        raise Unauthenticated(f"{HEADER_TIMESTAMP}: more than {hotline.WINDOW_S // 60} minutes from the hub's "
                              "clock (unix seconds expected)", field=HEADER_TIMESTAMP)
    async with hub.pool.acquire() as conn:
        found = await store.find(conn, name)
    if found is None or found.kind != "hotline" or found.secret is None:
        raise Unauthenticated(NOT_VERIFIED)
    if not hotline.signature_matches(webhook_signature(found.secret, stamp, body), given):
        raise Unauthenticated(NOT_VERIFIED)
    if not found.enabled:
        raise Forbidden(f"integration {found.name} is disabled")
    if remember:
        async with hub.pool.acquire() as conn:
            if not await store.remember_signature(conn, given, now, hotline.REPLAY_KEEP_S):
                raise Unauthenticated("this signature was used before: sign each request anew (replay refused)")
    intake.check_rate(hub, found)
    return found


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


async def _answer(hub: HubState, ticket_id: str, doc: dict[str, Any], replayed: bool) -> dict[str, Any]:
    call = Call.from_dict(doc)
    names = await intake.target_names(hub)
    return {"ticket_id": ticket_id, "call_id": str(call.id), "number": call.number, "state": call.state.value,
            "status": "closed" if call.state in FINISHED else "open", "status_text": status_text(call, names),
            "agency": agency(call, names), "updated_at": call.updated_at.isoformat(),
            "expected_at": _iso(expected(call)), "replayed": replayed}


def _ticket(body: bytes, request: Request) -> hotline.HotlineTicket:
    return parse_json_body(body, request, hotline.HotlineTicket)


async def receive(hub: HubState, request: Request) -> Response:
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"request body larger than {MAX_BODY_BYTES} bytes")
    integration = await _verified(hub, request, body, remember=True)
    ticket = _ticket(body, request)
    async with hub.pool.acquire() as conn:
        known = await store.call_of_external(conn, integration.id, ticket.ticket_id)
        row = None if known is None else await store.own_call_by_id(conn, integration.id, known)
    if row is not None:  # the same ticket again, whatever it says now: the call it created
        return ZhJSONResponse(await _answer(hub, ticket.ticket_id, row["doc"], True))
    category = intake.category_code(hub, ticket.category, "category")
    match = await intake.place(hub, integration, ticket.lat, ticket.lon, ticket.township)
    cmd = parse_command("create_call", {
        "command_id": str(hotline.command_id(integration.id, ticket.ticket_id)), "source": integration.source.value,
        "category": category, "title": ticket.call_title(), "description": ticket.description,
        "address": ticket.address, "lat": ticket.lat, "lon": ticket.lon, "grid_id": match.grid_id,
        "priority": ticket.priority.value, "reporter_name": ticket.reporter_name,
        "reporter_phone": ticket.reporter_phone,
    })
    assert isinstance(cmd, CreateCall)
    details = {"reported_at": _iso(ticket.reported_at)} if ticket.reported_at else {}
    call_id, replayed = await intake.create_call(hub, integration, match, cmd, ticket.ticket_id, details)
    async with hub.pool.acquire() as conn:
        row = await store.own_call_by_id(conn, integration.id, call_id)
    if row is None:  # a concurrent twin linked the ticket first: it is the same call (same command id)
        raise InternalError(f"ticket {ticket.ticket_id} was not linked to call {call_id}")
    return ZhJSONResponse(await _answer(hub, ticket.ticket_id, row["doc"], replayed),
                          status_code=200 if replayed else 201)


async def ticket_status(hub: HubState, request: Request) -> Response:
    integration = await _verified(hub, request, await request.body(), remember=False)
    ticket_id = request.path_params["ticket_id"]
    async with hub.pool.acquire() as conn:
        known = await store.call_of_external(conn, integration.id, ticket_id)
        row = None if known is None else await store.own_call_by_id(conn, integration.id, known)
    if row is None:
        raise NotFound(f"no ticket {ticket_id!r}", field="ticket_id")
    return ZhJSONResponse(await _answer(hub, ticket_id, row["doc"], False))


def _wrap(fn: Any, method: str, path: str) -> Any:
    async def run(request: Request) -> Response:
        lang = request_language(request)
        try:
            result: Response = await fn(request.app.state.hub, request)
            return result
        except XianghuError as exc:
            return error_response(exc, lang)
        except Exception as exc:
            if unreachable(exc):
                return error_response(unavailable(exc), lang)
            log.exception("internal error in %s %s", method, path)
            return error_response(InternalError("internal error"), lang)
    return run


def routes() -> list[Route]:
    return [Route(PATH, _wrap(receive, "POST", PATH), methods=["POST"]),
            Route(PATH + "/tickets/{ticket_id}", _wrap(ticket_status, "GET", PATH), methods=["GET"])]
