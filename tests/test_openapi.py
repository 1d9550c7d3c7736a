"""The OpenAPI document describes what the hub really answers (issue #12, contract drift)."""

from __future__ import annotations

import uuid

from dispatch.web import schemas
from tests.conftest import Hub
from tests.helpers import assignment_of, cid, new_call, post


async def test_every_operation_has_a_2xx_schema_and_its_error_statuses(hub: Hub) -> None:
    async with hub.client() as anon:
        doc = (await anon.get("/openapi.json")).json()
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            ok = [code for code in op["responses"] if code.startswith("2")]
            assert ok and all("content" in op["responses"][c] for c in ok), f"{method} {path}: no 2xx schema"
            assert "503" in op["responses"], f"{method} {path}"
            if op.get("security"):
                assert {"401", "403"} <= set(op["responses"]), f"{method} {path}"
            if "commands" in op["tags"]:
                assert {"404", "409", "413", "422"} <= set(op["responses"]), f"{method} {path}"
            for param in op.get("parameters", []):
                if param["in"] == "path" and "intake" in op["tags"]:  # an outside system's own ids, or a number
                    assert param["schema"] == {"type": "string"}, f"{method} {path}"
                elif param["in"] == "path" and "admin" in op["tags"]:  # a township's code, a username, an id
                    assert param["schema"]["type"] in ("string", "integer"), f"{method} {path}"
                elif param["in"] == "path":
                    assert param["schema"] == {"type": "string", "format": "uuid"}, f"{method} {path}"
    assert "429" in doc["paths"]["/api/v1/login"]["post"]["responses"]


async def test_real_responses_match_the_documented_schemas(hub: Hub) -> None:
    async with hub.client() as anon:
        res = await anon.post("/api/v1/login", json={"username": "op1.yiqiao", "password": "xianghu-demo",
                                                     "client": "token"})
        schemas.LoginOut.model_validate(res.json())
    async with await hub.login("op1.yiqiao") as op:
        schemas.UserOut.model_validate((await op.get("/api/v1/me")).json())
        schemas.ReferenceOut.model_validate((await op.get("/api/v1/reference")).json())
        created = await post(op, "/api/v1/calls", new_call(), expect=201)
        schemas.CommandResultOut.model_validate(created)
        schemas.CallListOut.model_validate((await op.get("/api/v1/calls")).json())
        detail = (await op.get(f"/api/v1/calls/{created['call_id']}")).json()
        schemas.CallDetailOut.model_validate(detail)
        missing = await op.get(f"/api/v1/calls/{uuid.uuid4()}")
        assert missing.status_code == 404 and set(missing.json()) == {"code", "message", "field"}
    async with await hub.login("police1.yiqiao") as police:
        asg = assignment_of(detail, "police")
        schemas.CommandResultOut.model_validate(await post(police, f"/api/v1/assignments/{asg['id']}/acknowledge"))
        # A liaison's view of a call (others' parts reduced) fits the same schema.
        schemas.CallDetailOut.model_validate((await police.get(f"/api/v1/calls/{created['call_id']}")).json())
        schemas.OkOut.model_validate((await police.post("/api/v1/logout", json={"command_id": cid()})).json())


async def test_the_intake_routes_outside_the_registry_are_documented(hub: Hub) -> None:
    async with hub.client() as anon:
        doc = (await anon.get("/openapi.json")).json()
    paths = doc["paths"]
    for path, method in (("/open311/v2/services.json", "get"), ("/open311/v2/services/{service_code}.json", "get"),
                         ("/open311/v2/requests.json", "post"), ("/open311/v2/requests.json", "get"),
                         ("/open311/v2/requests/{service_request_id}.json", "get"),
                         ("/api/v1/intake/hotline", "post"), ("/api/v1/intake/hotline/tickets/{ticket_id}", "get"),
                         ("/api/v1/admin/integrations", "post"),
                         ("/api/v1/admin/integrations/{integration_id}/rotate", "post")):
        assert method in paths.get(path, {}), f"{method} {path}"
    form = paths["/open311/v2/requests.json"]["post"]["requestBody"]["content"]["application/x-www-form-urlencoded"]
    fields = doc["components"]["schemas"][form["schema"]["$ref"].rsplit("/", 1)[1]]["properties"]
    assert {"api_key", "service_code", "lat", "long", "address_string", "address_id", "email", "device_id",
            "account_id", "first_name", "last_name", "phone", "description", "media_url"} <= set(fields)
    hotline_headers = {p["name"] for p in paths["/api/v1/intake/hotline"]["post"]["parameters"]}
    assert hotline_headers == {"X-Xianghu-Integration", "X-Xianghu-Timestamp", "X-Xianghu-Signature"}
