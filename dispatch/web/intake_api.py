"""The intake from outside systems (docs/INTAKE.md): Open311 GeoReport v2, the 12345 hotline webhook and the
admins' integrations endpoints; the routes the app mounts, and the OpenAPI entries of those outside the registry."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field
from starlette.routing import Route

from dispatch.core.hotline import HotlineTicket
from dispatch.core.open311 import PostRequest
from dispatch.web import hotline, open311
from dispatch.web import integrations as integrations
from dispatch.web.hotline import HEADER_INTEGRATION, HEADER_SIGNATURE, HEADER_TIMESTAMP, PATH, TicketStatusOut
from dispatch.web.open311 import PREFIX
from dispatch.web.openapi import EXTERNAL, schema_ref

TAG = "intake"


class Open311Error(BaseModel):
    code: int = Field(description="the HTTP status")
    description: str


class Open311Service(BaseModel):
    service_code: str
    service_name: str
    description: str
    metadata: bool
    type: str
    keywords: str
    group: str


class Open311Value(BaseModel):
    key: str
    name: str


class Open311Attribute(BaseModel):
    variable: bool
    code: str
    datatype: str
    required: bool
    datatype_description: str
    order: int
    description: str
    values: list[Open311Value]


class Open311Definition(BaseModel):
    service_code: str
    attributes: list[Open311Attribute]


class Open311Request(BaseModel):
    service_request_id: str = Field(description="the call's number, e.g. YIQIAO-2026-000123")
    status: str = Field(description="open | closed")
    status_notes: str | None = Field(description="the call's state in Chinese (待派单, 处置中, 已结案：<result>…)")
    service_name: str
    service_code: str
    description: str
    agency_responsible: str | None = Field(description="the lead department's (or unit's) name")
    service_notice: str | None
    requested_datetime: str
    updated_datetime: str
    expected_datetime: str | None = Field(description="the lead department's resolve deadline while open")
    address: str | None
    address_id: str | None
    zipcode: str | None
    lat: float | None
    long: float | None
    media_url: str | None


class Open311Created(BaseModel):
    service_request_id: str
    service_notice: str
    account_id: str | None


def _list(model: type[BaseModel], components: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": schema_ref(model, components)}


def _errors(components: dict[str, Any], *statuses: tuple[int, str]) -> dict[str, Any]:
    out = {str(code): {"description": text, "content": {"application/json": {"schema": _list(Open311Error,
                                                                                             components)}}}
           for code, text in statuses}
    out["503"] = {"description": "the database is unreachable; retry after `Retry-After` seconds",
                  "content": {"application/json": {"schema": _list(Open311Error, components)}}}
    return out


def _ok(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema},
                                                    "text/xml": {"schema": {"type": "string"}}}}


API_KEY = {"name": "api_key", "in": "query", "required": True, "schema": {"type": "string"},
           "description": "the integration's key (admins issue it)"}
NOTE = " The same path ending in `.xml` answers the spec's XML. Errors are `[{code, description}]`."


def _services(c: dict[str, Any]) -> dict[str, Any]:
    return {"summary": "Open311: the services (the categories)" + NOTE, "tags": [TAG],
            "operationId": "open311_services",
            "responses": {"200": _ok(_list(Open311Service, c)), **_errors(c)}}


def _definition(c: dict[str, Any]) -> dict[str, Any]:
    return {"summary": "Open311: a service's definition (its attributes: priority)" + NOTE, "tags": [TAG],
            "operationId": "open311_service_definition",
            "parameters": [{"name": "service_code", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": {"200": _ok(schema_ref(Open311Definition, c)), **_errors(c, (404, "no such service"))}}


def _post(c: dict[str, Any]) -> dict[str, Any]:
    form = schema_ref(PostRequest, c)
    return {"summary": "Open311: report a matter; it becomes an intake call (待派单) of the township it lies in."
                       " `attribute[priority]` sets the priority; `api_key` is a field of the body." + NOTE,
            "tags": [TAG], "operationId": "open311_post_request",
            "requestBody": {"required": True, "content": {"application/x-www-form-urlencoded": {"schema": form},
                                                          "application/json": {"schema": form}}},
            "responses": {"200": _ok(_list(Open311Created, c)), **_errors(
                c, (400, "a field is invalid or missing, or lat/long lie outside every township (named)"),
                (403, "api_key missing, invalid or disabled"),
                (429, "more requests a minute than the integration's limit; see `Retry-After`"))}}


def _get_list(c: dict[str, Any]) -> dict[str, Any]:
    params = [API_KEY] + [{"name": n, "in": "query", "required": False, "schema": {"type": "string"},
                           "description": d} for n, d in (
        ("service_request_id", "comma-separated numbers; the other filters are ignored then"),
        ("service_code", "comma-separated"), ("start_date", "W3C datetime; default: 90 days before end_date"),
        ("end_date", "W3C datetime"), ("status", "open, closed or both"))]
    return {"summary": "Open311: this integration's requests (newest first, at most 1000)" + NOTE, "tags": [TAG],
            "operationId": "open311_get_requests", "parameters": params,
            "responses": {"200": _ok(_list(Open311Request, c)), **_errors(
                c, (400, "a parameter is invalid"), (403, "api_key missing, invalid or disabled"),
                (429, "rate limit"))}}


def _get_one(c: dict[str, Any]) -> dict[str, Any]:
    params = [{"name": "service_request_id", "in": "path", "required": True, "schema": {"type": "string"},
               "description": "the call's number"}, API_KEY]
    return {"summary": "Open311: one request of this integration" + NOTE, "tags": [TAG],
            "operationId": "open311_get_request", "parameters": params,
            "responses": {"200": _ok(_list(Open311Request, c)), **_errors(
                c, (403, "api_key missing, invalid or disabled"), (404, "not a request of this integration"),
                (429, "rate limit"))}}


def _signed(c: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"name": HEADER_INTEGRATION, "in": "header", "required": True, "schema": {"type": "string"},
             "description": "the integration's name (or id)"},
            {"name": HEADER_TIMESTAMP, "in": "header", "required": True, "schema": {"type": "string"},
             "description": "unix seconds; refused more than 5 minutes from the hub's clock"},
            {"name": HEADER_SIGNATURE, "in": "header", "required": True, "schema": {"type": "string"},
             "description": "sha256=<hex HMAC-SHA256(secret, \"<timestamp>.<raw body>\")>"}]


def _std_errors(*statuses: tuple[int, str]) -> dict[str, Any]:
    ref = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    out = {str(code): {"description": text, **ref} for code, text in statuses}
    out["503"] = {"description": "the database is unreachable; retry after `Retry-After` seconds", **ref}
    return out


def _hotline(c: dict[str, Any]) -> dict[str, Any]:
    return {"summary": "12345 hotline: a signed work order becomes an intake call (待派单); the same ticket_id "
                       "again answers the same call (200)", "tags": [TAG], "operationId": "hotline_ticket",
            "parameters": _signed(c),
            "requestBody": {"required": True, "content": {"application/json": {"schema": schema_ref(HotlineTicket,
                                                                                                      c)}}},
            "responses": {"201": {"description": "created", "content": {"application/json": {
                "schema": schema_ref(TicketStatusOut, c)}}},
                "200": {"description": "this ticket was received before: its call", "content": {
                    "application/json": {"schema": schema_ref(TicketStatusOut, c)}}},
                **_std_errors((400, "malformed body"), (401, "signature not verified, timestamp out of window, "
                                                             "or a signature used before"),
                              (403, "the integration is disabled"), (413, "body larger than the limit"),
                              (422, "a field is invalid (`field` names it)"), (429, "rate limit"))}}


def _hotline_status(c: dict[str, Any]) -> dict[str, Any]:
    return {"summary": "12345 hotline: where a ticket's call stands (signed over an empty body)", "tags": [TAG],
            "operationId": "hotline_ticket_status",
            "parameters": [{"name": "ticket_id", "in": "path", "required": True, "schema": {"type": "string"}},
                           *_signed(c)],
            "responses": {"200": {"description": "OK", "content": {"application/json": {
                "schema": schema_ref(TicketStatusOut, c)}}},
                **_std_errors((401, "signature not verified"), (403, "the integration is disabled"),
                              (404, "no such ticket of this integration"), (429, "rate limit"))}}


EXTERNAL.extend([
    ("GET", PREFIX + "/services.json", _services),
    ("GET", PREFIX + "/services/{service_code}.json", _definition),
    ("POST", PREFIX + "/requests.json", _post),
    ("GET", PREFIX + "/requests.json", _get_list),
    ("GET", PREFIX + "/requests/{service_request_id}.json", _get_one),
    ("POST", PATH, _hotline),
    ("GET", PATH + "/tickets/{ticket_id}", _hotline_status),
])


def routes() -> list[Route]:
    """The Open311 and hotline routes (the admin endpoints are in the registry)."""
    return [*open311.routes(), *hotline.routes()]
