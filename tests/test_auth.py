import httpx

from dispatch.cli.demo import DEMO_PASSWORD
from dispatch.core.clock import ManualClock
from dispatch.core.config import Config
from dispatch.store.accounts import COOKIE_NAME
from tests.conftest import Hub, start_hub


async def test_login_with_token_and_me(hub: Hub) -> None:
    client = await hub.login("police1.yiqiao")
    async with client:
        me = (await client.get("/api/v1/me")).json()
    assert me["role"] == "liaison"
    assert me["department"] == "police"
    assert me["team_lead"] is True
    assert me["scope"]["read_only"] is False


async def test_browser_login_sets_signed_httponly_cookie(hub: Hub) -> None:
    async with hub.client() as c:
        res = await c.post("/api/v1/login", json={"username": "op1.yiqiao", "password": DEMO_PASSWORD})
        assert res.status_code == 200
        header = res.headers["set-cookie"]
        assert "HttpOnly" in header and "SameSite=strict" in header
        assert (await c.get("/api/v1/me")).json()["role"] == "operator"


async def test_tampered_cookie_is_rejected(hub: Hub) -> None:
    async with hub.client() as c:
        await c.post("/api/v1/login", json={"username": "op1.yiqiao", "password": DEMO_PASSWORD})
        value = c.cookies[COOKIE_NAME]
        c.cookies.clear()
        i = len(value) - 5  # a character inside the signature, changed for sure
        c.cookies.set(COOKIE_NAME, value[:i] + ("A" if value[i] != "A" else "B") + value[i + 1:])
        res = await c.get("/api/v1/me")
    assert res.status_code == 401
    assert res.json()["code"] == "unauthenticated"


async def test_logout_revokes_the_token(hub: Hub) -> None:
    client = await hub.login("op1.yiqiao")
    async with client:
        assert (await client.post("/api/v1/logout")).status_code == 200
        res = await client.get("/api/v1/me")
    assert res.status_code == 401


async def test_wrong_password_is_401_and_names_nothing_more(hub: Hub) -> None:
    async with hub.client() as c:
        res = await c.post("/api/v1/login", json={"username": "op1.yiqiao", "password": "wrong-one"})
        unknown = await c.post("/api/v1/login", json={"username": "nobody", "password": "wrong-one"})
    assert res.status_code == 401 and unknown.status_code == 401
    assert res.json()["message"] == unknown.json()["message"]


async def test_failed_logins_are_rate_limited_per_account(hub: Hub) -> None:
    async with hub.client() as c:
        for _ in range(hub.state.cfg.server.login_max_failures):
            assert (await c.post("/api/v1/login", json={"username": "op2.yiqiao", "password": "x"})).status_code == 401
        res = await c.post("/api/v1/login", json={"username": "op2.yiqiao", "password": DEMO_PASSWORD})
        assert res.status_code == 429
        assert int(res.headers["retry-after"]) > 0
        assert res.json()["code"] == "rate_limited"
        hub.clock.advance(hub.state.cfg.server.login_window_s + 1)
        ok = await c.post("/api/v1/login", json={"username": "op2.yiqiao", "password": DEMO_PASSWORD})
    assert ok.status_code == 200


async def test_bad_login_body_names_the_field(hub: Hub) -> None:
    async with hub.client() as c:
        res = await c.post("/api/v1/login", json={"username": "op1.yiqiao"})
        junk = await c.post("/api/v1/login", content=b"{not json", headers={"content-type": "application/json"})
        extra = await c.post("/api/v1/login", json={"username": "a", "password": "b", "role": "admin"})
    assert res.status_code == 422 and res.json()["field"] == "password"
    assert junk.status_code == 400 and "JSON" in junk.json()["message"]
    assert extra.status_code == 422 and extra.json()["field"] == "role"


async def test_api_requires_login(hub: Hub) -> None:
    async with hub.client() as c:
        res = await c.get("/api/v1/me")
    assert res.status_code == 401


async def test_health_and_readiness(hub: Hub) -> None:
    async with hub.client() as c:
        assert (await c.get("/healthz")).json()["status"] == "ok"
        ready = await c.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"


async def test_readiness_reports_pending_migrations(hub: Hub) -> None:
    async with hub.state.pool.acquire() as conn:
        await conn.execute("delete from schema_migrations where version = (select max(version) from schema_migrations)")
    async with hub.client() as c:
        res = await c.get("/readyz")
    assert res.status_code == 503
    assert "migrations pending" in res.json()["reason"]


async def test_login_page_and_consoles_are_served_without_internet(hub: Hub) -> None:
    async with httpx.AsyncClient(base_url=hub.url) as c:
        page = await c.get("/login")
        vendor = await c.get("/vendor/msgpack/index.mjs")
        manifest = await c.get("/package.json")
    assert page.status_code == 200 and "乡呼" in page.text
    assert vendor.status_code == 200
    assert manifest.status_code == 404


async def test_failed_logins_are_rate_limited_per_address(cfg: Config, dsn: str, clock: ManualClock) -> None:
    server = cfg.server.model_copy(update={"login_address_max_failures": 12})
    handle, srv, task = await start_hub(cfg.model_copy(update={"server": server}), dsn, clock)
    try:
        async with handle.client() as c:
            for i in range(12):  # spread over many accounts: no single account reaches its own limit
                res = await c.post("/api/v1/login", json={"username": f"guess{i % 7}", "password": "x"})
                assert res.status_code == 401
            blocked = await c.post("/api/v1/login", json={"username": "op1.yiqiao", "password": DEMO_PASSWORD})
    finally:
        srv.should_exit = True
        await task
    assert blocked.status_code == 429
