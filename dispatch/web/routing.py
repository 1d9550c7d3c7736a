"""Thin HTTP layer: a route registry that validates bodies with pydantic, authenticates, maps errors to
JSON ``{code, message, field}``, and feeds the OpenAPI generator from the same declarations."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import asyncpg
import orjson
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from dispatch.core.commands import describe_error, nul_field
from dispatch.core.domain import Actor, Role
from dispatch.node.credentials import authenticate, credential, same_origin
from dispatch.node.state import HubState
from dispatch.store.accounts import Session
from dispatch.store.pool import unavailable, unreachable
from dispatch.web.logs import ACTOR_SCOPE_KEY
from protocols.errors import (
    BadRequest,
    ClientError,
    Forbidden,
    InternalError,
    PayloadTooLarge,
    RateLimited,
    Unauthenticated,
    Unavailable,
    ValidationFailed,
    XianghuError,
)
from protocols.localize import DEFAULT_LANG, Lang, pick_language

log = logging.getLogger(__name__)
MAX_BODY_BYTES = 256 * 1024  # also enforced before and while a body is read (web.middleware.BodyLimit)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(data, status_code=status, headers=headers)


# orjson as the json module with ``default=str`` was (dates, dataclasses and keys that are not strings alike; an
# ``Enum`` without a str or int base as its value, not ``str()`` of it); what it refuses (an integer beyond 64
# bits) is left to the json module.
_ORJSON_RESPONSE = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


class ZhJSONResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        try:
            return orjson.dumps(content, default=str, option=_ORJSON_RESPONSE)
        except TypeError:
            return json.dumps(content, ensure_ascii=False, separators=(",", ":"), default=str).encode()


def request_language(request: Request) -> Lang:
    """The language of the answer's messages: a ``lang`` query parameter, else ``Accept-Language``, else
    zh-CN (protocols/localize.py)."""
    return pick_language(request.headers.get("accept-language"), request.query_params.get("lang"))


def error_response(exc: XianghuError, lang: Lang = DEFAULT_LANG) -> Response:
    headers = {"Content-Language": lang, "Vary": "Accept-Language"}
    if isinstance(exc, (RateLimited, Unavailable)):
        headers["Retry-After"] = str(max(1, int(exc.retry_after + 0.999)))
    if isinstance(exc, (ClientError, Unavailable)):
        return ZhJSONResponse(exc.to_dict(lang), status_code=exc.status, headers=headers)
    return ZhJSONResponse(InternalError("internal error").to_dict(lang), status_code=500, headers=headers)


def validation_error(exc: ValidationError, prefix: str = "") -> ValidationFailed:
    first = exc.errors()[0]
    loc = ".".join(str(p) for p in first["loc"])
    fld = f"{prefix}{loc}" if loc else (prefix.rstrip(".") or None)
    msg = describe_error(first)  # the same sentences as commands' (and so the same Chinese)
    return ValidationFailed(f"{fld}: {msg}" if fld else msg, field=fld)


M = TypeVar("M", bound=BaseModel)
# A body's validation in one step where the endpoint would otherwise validate it twice (commands: the body model,
# then the command): the value the handler gets, or None to let the body model decide and name any fault.
FastBody = Callable[[dict[str, Any], Request], Any]


def parse_json_body(raw: bytes, request: Request, model: type[M]) -> M:
    """A request body that must be a JSON object valid for ``model``; every fault named (REST and webhooks)."""
    return validate_body(json_object(raw, request), model)


def json_object(raw: bytes, request: Request) -> dict[str, Any]:
    """A request body that must be a JSON object (``parse_json_body`` before its model)."""
    # Exactly JSON: a CORS-safelisted type (text/plain; x=json) could be posted cross-site.
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/json":
        raise BadRequest("Content-Type must be application/json")
    try:
        data = json.loads(raw or b"null")
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise BadRequest(f"body is not valid JSON: {str(exc)[:200]}") from None
    if not isinstance(data, dict):
        raise ValidationFailed("body must be a JSON object")
    bad = nul_field(data)
    if bad:
        raise ValidationFailed(f"{bad}: must not contain a NUL character", field=bad)
    return data


def validate_body(data: dict[str, Any], model: type[M]) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc) from None


@dataclass
class Req:
    """What a handler gets: the request, the hub, who is asking, and the validated body/query."""

    request: Request
    hub: HubState
    session: Session | None
    body: Any = None
    query: Any = None

    @property
    def actor(self) -> Actor:
        """The authenticated caller (endpoints that are not public always have one)."""
        assert self.session is not None
        return self.session.actor


Handler = Callable[[Req], Awaitable[Any]]


@dataclass
class Endpoint:
    method: str
    path: str
    handler: Handler
    summary: str
    tags: Sequence[str]
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    roles: frozenset[Role] | None = None  # None: any authenticated user
    public: bool = False
    status: int = 200
    extra: dict[str, Any] = field(default_factory=dict)
    # A response that is a file of this type, not JSON (exports), returned by the handler as its own Response.
    # A JSON Lines type (``LINES_MEDIA_TYPES``) with a ``response`` model is a stream of such objects, one a line.
    media: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)  # response header -> description (OpenAPI)
    errors: Mapping[int, str] = field(default_factory=dict)  # further error statuses -> when (OpenAPI)
    # A request body of raw bytes (uploads) that the handler reads itself: its media types -> description.
    upload: Mapping[str, str] = field(default_factory=dict)
    fast_body: FastBody | None = None  # see ``FastBody``; the handler then gets either value as ``body``


LINES_MEDIA_TYPES = frozenset({"application/x-ndjson", "application/jsonl"})
REGISTRY: list[Endpoint] = []


def endpoint(method: str, path: str, *, summary: str, tags: Sequence[str] = ("calls",),
             body: type[BaseModel] | None = None, query: type[BaseModel] | None = None,
             response: type[BaseModel] | None = None, roles: Collection[Role] | None = None,
             public: bool = False, status: int = 200, media: str | None = None,
             headers: Mapping[str, str] | None = None,
             errors: Mapping[int, str] | None = None,
             upload: Mapping[str, str] | None = None,
             fast_body: FastBody | None = None) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        REGISTRY.append(Endpoint(method, path, fn, summary, tags, body, query, response,
                                 frozenset(roles) if roles else None, public, status, media=media,
                                 headers=dict(headers or {}), errors=dict(errors or {}),
                                 upload=dict(upload or {}), fast_body=fast_body))
        return fn
    return register


def _asgi(ep: Endpoint) -> Callable[[Request], Awaitable[Response]]:
    async def run(request: Request) -> Response:
        hub: HubState = request.app.state.hub
        try:
            session = None if ep.public else await authenticate(request, hub)
            if session is not None:  # for the request's log line (web.logs): role and id, never the name
                request.scope[ACTOR_SCOPE_KEY] = (session.actor.role.value, session.actor.user_id)
            if not ep.public:
                if session is None:
                    raise Unauthenticated("login required")
                # A cookie rides along with any request the browser sends, also from a page of another
                # port or subdomain of the same site (SameSite does not tell those apart): a
                # state-changing request with the cookie must come from our own pages.
                found = credential(request)
                if (request.method not in SAFE_METHODS and found is not None and found[0] == "cookie"
                        and not same_origin(request, hub.cfg.server.console_origins)):
                    raise Forbidden("cross-origin request refused: Origin is not this hub or a console origin")
                if ep.roles is not None and session.actor.role not in ep.roles:
                    raise Forbidden(f"role {session.actor.role} may not {ep.summary.lower()}")
            call = Req(request, hub, session)
            if ep.body is not None:
                raw = await request.body()
                if len(raw) > MAX_BODY_BYTES:
                    raise PayloadTooLarge(f"request body larger than {MAX_BODY_BYTES} bytes")
                data = json_object(raw, request)
                fast = None if ep.fast_body is None else ep.fast_body(data, request)
                call.body = validate_body(data, ep.body) if fast is None else fast
            if ep.query is not None:
                params: dict[str, Any] = {}
                lists = _list_fields(ep.query)
                for key in request.query_params:
                    if key == "lang" and "lang" not in ep.query.model_fields:
                        continue  # the answer's language, not a filter (a download's own ``lang`` is kept)
                    values = request.query_params.getlist(key)
                    if any("\x00" in v for v in values):
                        raise ValidationFailed(f"{key}: must not contain a NUL character", field=key)
                    params[key] = values if key in lists else values[-1]
                try:
                    call.query = ep.query.model_validate(params)
                except ValidationError as exc:
                    raise validation_error(exc) from None
            result = await ep.handler(call)
        # the answer's language, worked out only for an error (messages; 5 µs a request otherwise spent)
        except XianghuError as exc:
            return error_response(exc, request_language(request))
        except asyncpg.DataError as exc:  # a value PostgreSQL cannot take that validation let through
            return error_response(ValidationFailed(f"a value is out of range or malformed: {exc}"),
                                  request_language(request))
        except Exception as exc:
            if unreachable(exc):  # the database is down or restarting: say so, and when to retry
                log.warning("%s %s: database unreachable (%r)", ep.method, ep.path, exc)
                return error_response(unavailable(exc), request_language(request))
            # A fault of ours: the log gets the real traceback, the client a generic message.
            log.exception("internal error in %s %s", ep.method, ep.path)
            return error_response(InternalError("internal error"), request_language(request))
        if isinstance(result, Response):
            return result
        return ZhJSONResponse(result, status_code=ep.status)

    return run


def _list_fields(model: type[BaseModel]) -> set[str]:
    return {name for name, f in model.model_fields.items()
            if getattr(f.annotation, "__origin__", None) is list or "list[" in str(f.annotation)}


def routes() -> list[Route]:
    return [Route(ep.path, _asgi(ep), methods=[ep.method]) for ep in REGISTRY]
