"""Open311 GeoReport v2 under /open311/v2/ (docs/INTAKE.md): Starlette routes of their own, since the spec's
clients post forms, authenticate with ``api_key`` and expect errors as ``[{"code", "description"}]``."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dispatch.core import open311
from dispatch.core.commands import CreateCall, nul_field, parse_command
from dispatch.core.records import Call
from dispatch.node.state import HubState
from dispatch.store import integrations as store
from dispatch.store.integrations import Integration
from dispatch.store.pool import unavailable, unreachable
from dispatch.web import intake
from dispatch.web.routing import MAX_BODY_BYTES, ZhJSONResponse, validation_error
from protocols.errors import (
    BadRequest,
    ClientError,
    Forbidden,
    NotFound,
    RateLimited,
    Unauthenticated,
    Unavailable,
    ValidationFailed,
    XianghuError,
)

log = logging.getLogger(__name__)
PREFIX = "/open311/v2"
FORMATS = ("json", "xml")
OPEN_STATES = ["intake", "dispatched", "in_progress", "review", "accepted", "visited"]
CLOSED_STATES = ["closed", "cancelled"]
MAX_FIELDS = 100


def _status(exc: XianghuError) -> int:
    """The HTTP status the spec's clients expect: 400 for any fault of the request, 403 for the key."""
    if isinstance(exc, (ValidationFailed, BadRequest)):
        return 400
    if isinstance(exc, (Unauthenticated, Forbidden)):
        return 403
    return exc.status


def _render(fmt: str, kind: str, data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    if fmt == "xml":
        body = open311.definition_xml(data) if kind == "definition" else open311.to_xml(kind, data)
        return Response(body, status_code=status, media_type="text/xml; charset=utf-8", headers=headers)
    return ZhJSONResponse(data, status_code=status, headers=headers)


def _error(fmt: str, exc: XianghuError) -> Response:
    headers = {}
    if isinstance(exc, (RateLimited, Unavailable)):
        headers["Retry-After"] = str(max(1, int(exc.retry_after + 0.999)))
    if not isinstance(exc, (ClientError, Unavailable)):
        return _render(fmt, "errors", open311.error(500, "internal error"), 500)
    status = _status(exc)
    return _render(fmt, "errors", open311.error(status, exc.message), status, headers)


Handler = Callable[[Request, HubState, str], Awaitable[Response]]


def _route(path: str, handler: Handler, method: str) -> Route:
    async def run(request: Request) -> Response:
        fmt = request.path_params.get("fmt", "json")
        if fmt not in FORMATS:
            fmt = "json"
            return _error(fmt, NotFound(f"format must be one of {', '.join(FORMATS)}"))
        try:
            return await handler(request, request.app.state.hub, fmt)
        except XianghuError as exc:
            return _error(fmt, exc)
        except Exception as exc:
            if unreachable(exc):
                return _error(fmt, unavailable(exc))
            log.exception("internal error in %s %s", method, path)
            return _error(fmt, XianghuError("internal error"))

    return Route(PREFIX + path, run, methods=[method])


async def _integration(hub: HubState, api_key: Any) -> Integration:
    if not isinstance(api_key, str) or not api_key:
        raise Forbidden("api_key is required", field="api_key")
    async with hub.pool.acquire() as conn:
        found = await store.by_key(conn, api_key)
    if found is None:
        raise Forbidden("invalid api_key", field="api_key")
    if not found.enabled:
        raise Forbidden("this api_key is disabled", field="api_key")
    intake.check_rate(hub, found)
    return found


def _service_name(hub: HubState, code: str) -> str:
    cat = hub.cfg.categories.get(code)
    return cat.zh if cat is not None else code


# -- services ----------------------------------------------------------------------------------------

async def list_services(request: Request, hub: HubState, fmt: str) -> Response:
    return _render(fmt, "services", open311.services(hub.cfg))


async def service_definition(request: Request, hub: HubState, fmt: str) -> Response:
    code = request.path_params["service_code"]
    if code not in hub.cfg.open_categories():
        raise NotFound(f"no service {code!r}", field="service_code")
    return _render(fmt, "definition", open311.definition(code))


# -- requests ----------------------------------------------------------------------------------------

async def _fields(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        raise BadRequest(f"request body larger than {MAX_BODY_BYTES} bytes")
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("the body must be UTF-8") from None
    if media == "application/x-www-form-urlencoded":
        try:
            pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_FIELDS)
        except ValueError as exc:
            raise BadRequest(f"malformed form body: {exc}") from None
        data = open311.form_fields(pairs)
    elif media == "application/json":
        try:
            data = json.loads(text or "null")
        except (ValueError, RecursionError) as exc:
            raise BadRequest(f"body is not valid JSON: {str(exc)[:200]}") from None
        if not isinstance(data, dict):
            raise BadRequest("the JSON body must be an object")
    else:
        raise BadRequest("Content-Type must be application/x-www-form-urlencoded (or application/json)")
    bad = nul_field(data)
    if bad:
        raise ValidationFailed(f"{bad}: must not contain a NUL character", field=bad)
    return data


async def post_request(request: Request, hub: HubState, fmt: str) -> Response:
    data = await _fields(request)
    integration = await _integration(hub, data.get("api_key"))
    try:
        form = open311.PostRequest.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc) from None
    if form.service_code not in hub.cfg.open_categories():
        raise ValidationFailed(f"service_code: no service {form.service_code!r}", field="service_code")
    match = await intake.place(hub, integration, form.lat, form.long, lat_field="lat/long")
    service_name = _service_name(hub, form.service_code)
    cmd = parse_command("create_call", {
        "command_id": str(uuid.uuid4()), "source": integration.source.value, "category": form.service_code,
        "title": form.title(service_name), "description": form.call_description(),
        "address": form.address_string or form.address_id or "", "lat": form.lat, "lon": form.long,
        "grid_id": match.grid_id, "priority": form.priority.value, "reporter_name": form.reporter_name(),
        "reporter_phone": form.phone,
    })
    details = {k: v for k, v in {"media_url": form.media_url, "email": form.email, "device_id": form.device_id,
                                 "account_id": form.account_id, "address_id": form.address_id}.items()
               if v is not None}
    assert isinstance(cmd, CreateCall)
    call_id, _ = await intake.create_call(hub, integration, match, cmd, None, details)
    async with hub.pool.acquire() as conn:
        row = await store.own_call_by_id(conn, integration.id, call_id)
    assert row is not None
    number = row["doc"]["number"]
    answer = [{"service_request_id": number,
               "service_notice": f"已受理，编号 {number}，由所属镇街指挥中心派单处置",
               "account_id": form.account_id}]
    return _render(fmt, "requests", answer)


def _dates(value: str | None, name: str) -> datetime | None:
    if value is None or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValidationFailed(f"{name}: must be a W3C datetime (2026-11-02T08:00:00+08:00)", field=name) from None
    if parsed.tzinfo is None:
        raise ValidationFailed(f"{name}: must carry a time zone offset", field=name)
    return parsed


def _listed(value: str | None) -> list[str] | None:
    if value is None:
        return None
    items = [v.strip() for v in value.split(",") if v.strip()]
    return items or None


async def _views(hub: HubState, rows: list[Any]) -> list[dict[str, Any]]:
    names = await intake.target_names(hub)
    return [open311.service_request(call, names, r["details"], _service_name(hub, call.category))
            for r in rows for call in (Call.from_dict(r["doc"]),)]


async def get_requests(request: Request, hub: HubState, fmt: str) -> Response:
    q = request.query_params
    if any("\x00" in v for v in q.values()):
        raise ValidationFailed("a parameter contains a NUL character")
    integration = await _integration(hub, q.get("api_key"))
    numbers = _listed(q.get("service_request_id"))
    categories = states = None
    start = end = None
    if numbers is None:  # the spec: other parameters are ignored when ids are given
        categories = _listed(q.get("service_code"))
        wanted = _listed(q.get("status"))
        if wanted is not None:
            unknown = set(wanted) - {"open", "closed"}
            if unknown:
                raise ValidationFailed("status: must be open and/or closed", field="status")
            states = (OPEN_STATES if "open" in wanted else []) + (CLOSED_STATES if "closed" in wanted else [])
        start, end = _dates(q.get("start_date"), "start_date"), _dates(q.get("end_date"), "end_date")
        if start is None:
            start = (end or hub.clock.now()) - timedelta(days=open311.DEFAULT_DAYS)
    elif len(numbers) > open311.MAX_RESULTS:
        raise ValidationFailed(f"service_request_id: at most {open311.MAX_RESULTS} ids", field="service_request_id")
    async with hub.pool.acquire() as conn:
        rows = await store.own_calls(conn, integration.id, numbers=numbers, categories=categories, states=states,
                                     start=start, end=end, limit=open311.MAX_RESULTS)
    return _render(fmt, "requests", await _views(hub, rows))


async def get_request(request: Request, hub: HubState, fmt: str) -> Response:
    integration = await _integration(hub, request.query_params.get("api_key"))
    number = request.path_params["service_request_id"]
    async with hub.pool.acquire() as conn:
        row = await store.own_call(conn, integration.id, number)
    if row is None:  # another integration's call is as unknown as a call that does not exist
        raise NotFound(f"no service request {number!r}", field="service_request_id")
    return _render(fmt, "requests", await _views(hub, [row]))


def routes() -> list[Route]:
    return [
        _route("/services.{fmt}", list_services, "GET"),
        _route("/services/{service_code}.{fmt}", service_definition, "GET"),
        _route("/requests.{fmt}", post_request, "POST"),
        _route("/requests.{fmt}", get_requests, "GET"),
        _route("/requests/{service_request_id}.{fmt}", get_request, "GET"),
    ]
