"""Login, logout, who am I, and the reference data every console needs."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from dispatch.core import policy
from dispatch.store.accounts import COOKIE_NAME, Session
from dispatch.store.reference import SELECT_TOWNSHIP_TARGETS
from dispatch.web.routing import Req, ZhJSONResponse, endpoint
from dispatch.web.schemas import LoginOut, OkOut, ReferenceOut, UserOut


class LoginBody(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    username: Annotated[str, Field(min_length=1, max_length=64)]
    password: Annotated[str, Field(min_length=1, max_length=256)]
    client: Literal["browser", "token"] = "browser"


def user_json(session: Session) -> dict[str, Any]:
    a = session.actor
    return {
        "id": a.user_id, "username": session.username, "name": a.name, "role": a.role.value,
        "township_id": a.township_id, "department": a.department, "unit_id": a.unit_id,
        "target": a.target, "team_lead": a.team_lead,
        "scope": {"township_ids": "all" if (tid := policy.township_scope(a)) is None else [tid],
                  "target": a.target, "read_only": policy.is_read_only(a)},
    }


def client_address(call: Req) -> str:
    """The peer, or behind a trusted proxy the address it forwarded (``web.middleware.ProxyHeaders``)."""
    return call.request.client.host if call.request.client else "unknown"


@endpoint("POST", "/api/v1/login", summary="Log in", tags=["account"], body=LoginBody, public=True,
          response=LoginOut)
async def login(call: Req) -> Response:
    body: LoginBody = call.body
    kind = "cookie" if body.client == "browser" else "token"
    session = await call.hub.auth.login(body.username, body.password, client_address(call), kind,
                                        call.hub.clock.now())
    data: dict[str, Any] = {"user": user_json(session)}
    if kind == "token":
        data["token"] = session.token
        return ZhJSONResponse(data)
    resp = ZhJSONResponse(data)
    # https directly (`serve --tls-cert`) or behind a trusted proxy that says so (X-Forwarded-Proto).
    resp.set_cookie(COOKIE_NAME, call.hub.auth.sign(session.token), httponly=True, samesite="strict",
                    secure=call.request.url.scheme == "https", path="/",
                    max_age=(call.hub.cfg.server.token_days if session.actor.role.value == "liaison"
                             else call.hub.cfg.server.session_days) * 86400)
    return resp


@endpoint("POST", "/api/v1/logout", summary="Log out (revokes this session or token)", tags=["account"],
          response=OkOut)
async def logout(call: Req) -> Response:
    assert call.session is not None
    await call.hub.auth.logout(call.session.token, call.hub.clock.now())
    resp = ZhJSONResponse({"ok": True})
    resp.delete_cookie(COOKIE_NAME, path="/", httponly=True, samesite="strict",
                       secure=call.request.url.scheme == "https")
    return resp


@endpoint("GET", "/api/v1/me", summary="The logged-in user, role and scope", tags=["account"], response=UserOut)
async def me(call: Req) -> dict[str, Any]:
    assert call.session is not None
    return user_json(call.session)


@endpoint("GET", "/api/v1/reference", summary="Townships, departments, units, categories", tags=["reference"],
          response=ReferenceOut)
async def reference(call: Req) -> dict[str, Any]:
    cfg = call.hub.cfg
    rows = await call.hub.pool.fetch(SELECT_TOWNSHIP_TARGETS)
    scope = policy.township_scope(call.actor)
    townships = [
        {"id": r["id"], "code": r["code"], "name_zh": r["name_zh"], "name_en": r["name_en"],
         "departments": list(r["departments"]), "units": r["units"]}
        for r in rows if scope is None or r["id"] == scope
    ]
    return {
        "townships": townships,
        "departments": [{"code": c, "name_zh": n.zh, "name_en": n.en} for c, n in cfg.departments.items()],
        "categories": [{"code": c, "name_zh": k.zh, "name_en": k.en, "route": k.route, "retired": k.retired}
                       for c, k in cfg.categories.items()],
        "priorities": ["urgent", "normal", "low"],
        "sources": ["hotline_12345", "grid", "resident_app", "mini_program", "walk_in", "patrol"],
        # The console shows whom an `assignment.escalated` event notified: ladder[kind][level - 1].notify.
        "sla": {"ladder": {kind.value: [{"level": i + 1, "after_s": rung.after_s, "notify": list(rung.notify)}
                                        for i, rung in enumerate(rungs)]
                           for kind, rungs in cfg.sla.ladder.items()}},
    }
