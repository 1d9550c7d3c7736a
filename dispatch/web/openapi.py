"""The OpenAPI document, generated from the route registry and the pydantic models (not hand-kept)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from dispatch.web.routing import LINES_MEDIA_TYPES, REGISTRY

LANGUAGE_RULE = (
    "Error messages are in the request's language: a `lang` query parameter (`zh-CN` or `en`), else the best of "
    "`Accept-Language` (`zh*` → zh-CN, `en*` → English), else zh-CN. `code` and `field` never change with the "
    "language; the answer's `Content-Language` names the one chosen."
)
ERROR_SCHEMA = {
    "type": "object",
    "required": ["code", "message"],
    "properties": {
        "code": {"type": "string", "description": "stable error code (see protocols/PROTOCOL.md)"},
        "message": {"type": "string", "description": "for people, in the request's language (zh-CN by default: "
                    "`lang` query parameter, else `Accept-Language`); never match on it"},
        "field": {"type": ["string", "null"], "description": "the offending field, dotted"},
    },
}


# Operations served outside the registry (Open311, the hotline webhook: their own bodies, auth and errors),
# each as (method, path, builder); the builder adds its schemas to the components and returns the operation.
EXTERNAL: list[tuple[str, str, Callable[[dict[str, Any]], dict[str, Any]]]] = []


def schema_ref(model: type[BaseModel], components: dict[str, Any]) -> dict[str, Any]:
    """A model's schema in the components, referenced (for the ``EXTERNAL`` builders)."""
    return _schema(model, components)


def _schema(model: type[BaseModel], components: dict[str, Any]) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, sub in schema.pop("$defs", {}).items():
        components[name] = sub
    components[model.__name__] = schema
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _err(description: str, *, retry_after: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"description": description,
                           "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    if retry_after:
        out["headers"] = {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}}
    return out


PATH_SCHEMAS: dict[str, dict[str, str]] = {"uuid": {"type": "string", "format": "uuid"}, "int": {"type": "integer"}}


def openapi_document(version: str) -> dict[str, Any]:
    components: dict[str, Any] = {"Error": ERROR_SCHEMA}
    paths: dict[str, Any] = {}
    for ep in REGISTRY:
        op: dict[str, Any] = {"summary": ep.summary, "tags": list(ep.tags),
                              "operationId": ep.handler.__name__}
        params = [{"name": p, "in": "path", "required": True,
                   "schema": PATH_SCHEMAS.get(conv, {"type": "string"})}
                  for p, conv in re.findall(r"{(\w+)(?::(\w+))?}", ep.path)]
        if ep.query is not None:
            properties = ep.query.model_json_schema()["properties"]
            for name, f in ep.query.model_fields.items():
                wire = f.alias or name  # `from` is `from_` in Python
                params.append({"name": wire, "in": "query", "required": f.is_required(),
                               "description": f.description or "",
                               "schema": properties.get(wire, {})})
        if params:
            op["parameters"] = params
        if ep.body is not None:
            op["requestBody"] = {"required": True,
                                 "content": {"application/json": {"schema": _schema(ep.body, components)}}}
        if ep.upload:
            op["requestBody"] = {"required": True, "content": {
                kind: {"schema": {"type": "string", "format": "binary", "description": text}}
                for kind, text in ep.upload.items()}}
        ok: dict[str, Any] = {"description": "OK"}
        media = None if ep.media is None else ep.media.split(";")[0]
        if media in LINES_MEDIA_TYPES and ep.response is not None:
            # OpenAPI 3.1 has no schema for the items of a stream: the body is text, and each line is one
            # `response` object (its schema under `x-item-schema`, as `itemSchema` in OpenAPI 3.2).
            ok["content"] = {media: {
                "schema": {"type": "string", "description": f"JSON Lines (UTF-8): one {ep.response.__name__} "
                                                           "object per line, each line ending in a newline"},
                "x-item-schema": _schema(ep.response, components)}}
        elif ep.response is not None:
            ok["content"] = {"application/json": {"schema": _schema(ep.response, components)}}
        elif ep.media is not None:  # a file; several types when listed with commas
            ok["content"] = {kind.strip(): {"schema": {"type": "string", "format": "binary"}}
                             for kind in ep.media.split(",")}
        if ep.headers:
            ok["headers"] = {name: {"schema": {"type": "string"}, "description": text}
                             for name, text in ep.headers.items()}
        op["responses"] = {str(ep.status): ok, "400": _err("malformed request"),
                           "422": _err("a field is invalid (`field` names it)"),
                           "503": _err("the database is unreachable; retry after `Retry-After` seconds",
                                       retry_after=True)}
        if ep.status == 201:
            op["responses"]["200"] = {**ok, "description": "a retry answered from the record (`replayed: true`)"}
        if not ep.public:
            op["responses"].update({"401": _err("not logged in"), "403": _err("the role may not do this")})
            op["security"] = [{"cookie": []}, {"bearer": []}]
        if ep.body is not None or ep.upload:
            op["responses"]["413"] = _err("body larger than the limit")
        if ep.path == "/api/v1/login":
            op["responses"]["401"] = _err("wrong username or password")
            op["responses"]["429"] = _err("too many failed logins from here; retry after `Retry-After`",
                                          retry_after=True)
        if "{" in ep.path or (ep.tags and ep.tags[0] == "commands"):
            op["responses"]["404"] = _err("no such call or assignment, or outside your scope")
        if ep.tags and ep.tags[0] == "commands":
            op["responses"]["409"] = _err("illegal in the current state, or command_id reused")
        for status, text in ep.errors.items():
            op["responses"][str(status)] = _err(text)
        path = re.sub(r"{(\w+):\w+}", r"{\1}", ep.path)
        paths.setdefault(path, {})[ep.method.lower()] = op
    for method, path, build in EXTERNAL:
        paths.setdefault(path, {})[method.lower()] = build(components)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Xianghu 乡呼 hub API", "version": version,
                 "description": "REST API of the township joint-enforcement dispatch hub. "
                                "Real-time delivery is the WebSocket protocol in protocols/PROTOCOL.md. "
                                + LANGUAGE_RULE},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "cookie": {"type": "apiKey", "in": "cookie", "name": "xianghu_session"},
                "bearer": {"type": "http", "scheme": "bearer"},
            },
        },
    }
