"""The OpenAPI document, generated from the route registry and the pydantic models (not hand-kept)."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel

from dispatch.web.routing import REGISTRY

ERROR_SCHEMA = {
    "type": "object",
    "required": ["code", "message"],
    "properties": {
        "code": {"type": "string", "description": "stable error code (see protocols/PROTOCOL.md)"},
        "message": {"type": "string"},
        "field": {"type": ["string", "null"], "description": "the offending field, dotted"},
    },
}


def _schema(model: type[BaseModel], components: dict[str, Any]) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, sub in schema.pop("$defs", {}).items():
        components[name] = sub
    components[model.__name__] = schema
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def openapi_document(version: str) -> dict[str, Any]:
    components: dict[str, Any] = {"Error": ERROR_SCHEMA}
    paths: dict[str, Any] = {}
    for ep in REGISTRY:
        op: dict[str, Any] = {"summary": ep.summary, "tags": list(ep.tags),
                              "operationId": ep.handler.__name__}
        params = [{"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
                  for p in re.findall(r"{(\w+)(?::\w+)?}", ep.path)]
        if ep.query is not None:
            for name, f in ep.query.model_fields.items():
                params.append({"name": name, "in": "query", "required": f.is_required(),
                               "description": f.description or "",
                               "schema": ep.query.model_json_schema()["properties"].get(name, {})})
        if params:
            op["parameters"] = params
        if ep.body is not None:
            op["requestBody"] = {"required": True,
                                 "content": {"application/json": {"schema": _schema(ep.body, components)}}}
        ok: dict[str, Any] = {"description": "OK"}
        if ep.response is not None:
            ok["content"] = {"application/json": {"schema": _schema(ep.response, components)}}
        err = {"description": "error",
               "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
        op["responses"] = {str(ep.status): ok, "400": err, "422": err}
        if not ep.public:
            op["responses"].update({"401": err, "403": err})
            op["security"] = [{"cookie": []}, {"bearer": []}]
        if ep.body is not None:
            op["responses"]["413"] = err
        if "{" in ep.path and ep.method == "GET":
            op["responses"]["404"] = err
        if ep.body is not None and ep.tags and ep.tags[0] == "commands":
            op["responses"].update({"404": err, "409": err})
        path = re.sub(r"{(\w+):\w+}", r"{\1}", ep.path)
        paths.setdefault(path, {})[ep.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "Xianghu 乡呼 hub API", "version": version,
                 "description": "REST API of the township joint-enforcement dispatch hub. "
                                "Real-time delivery is the WebSocket protocol in protocols/PROTOCOL.md."},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "cookie": {"type": "apiKey", "in": "cookie", "name": "xianghu_session"},
                "bearer": {"type": "http", "scheme": "bearer"},
            },
        },
    }
