"""Shared fixtures: one embedded PostgreSQL per run, a fresh database per test (from a migrated,
demo-seeded template), and an in-process hub on a real socket with a clock the test controls."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import tempfile
import uuid
import warnings
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import uvicorn

from dispatch.cli.demo import DEMO_PASSWORD, seed_demo
from dispatch.core.clock import ManualClock
from dispatch.core.config import Config, load_config
from dispatch.store import facts
from dispatch.store import pool as db
from dispatch.store.pool import with_database
from dispatch.store.reference import sync_reference
from dispatch.web.app import create_app, server_config

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = "xianghu_template"
warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def pg_admin_dsn() -> Iterator[str]:
    """DATABASE_URL when given (a server the suite may create databases on), else an embedded one."""
    url = os.environ.get("DATABASE_URL")
    if url:
        yield url
        return
    from dispatch.store.embedded import EmbeddedPostgres

    # Not under pytest's basetemp: pytest prunes old basetemp folders, which would pull the data
    # folder from under a cluster that another concurrent run is still using.
    root = Path(tempfile.mkdtemp(prefix="xianghu-test-pg-"))
    pg = EmbeddedPostgres(root / "pgdata", durable=False)
    dsn = pg.start()
    try:
        yield dsn
    finally:
        pg.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def cfg() -> Config:
    return load_config()


async def seeded_database(admin_dsn: str, cfg: Config, name: str) -> str:
    """A new database ``name`` on the server of ``admin_dsn``: migrated, reference data synced, demo county."""
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f"drop database if exists {name}")
        await admin.execute(f"create database {name}")
    finally:
        await admin.close()
    dsn = with_database(admin_dsn, name)
    conn = await db.connect(dsn)
    try:
        await db.migrate(conn)
        await facts.ensure_current(conn)  # as every start does: the evaluation projection is current
        await sync_reference(conn, cfg)
        await seed_demo(conn)
    finally:
        await conn.close()
    return dsn


@pytest.fixture(scope="session")
async def template_dsn(pg_admin_dsn: str, cfg: Config) -> str:
    return await seeded_database(pg_admin_dsn, cfg, TEMPLATE)


@pytest.fixture
async def dsn(pg_admin_dsn: str, template_dsn: str) -> AsyncIterator[str]:
    """A fresh, migrated, demo-seeded database for this test alone."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(pg_admin_dsn)
    try:
        await admin.execute(f"create database {name} template {TEMPLATE} strategy file_copy")
    finally:
        await admin.close()
    yield with_database(pg_admin_dsn, name)
    admin = await asyncpg.connect(pg_admin_dsn)
    try:
        await admin.execute(f"drop database if exists {name} with (force)")
    finally:
        await admin.close()


@pytest.fixture
async def conn(dsn: str) -> AsyncIterator[asyncpg.Connection]:
    c = await db.connect(dsn)
    yield c
    await c.close()


@dataclass
class Hub:
    """An in-process hub serving on a real port."""

    url: str
    port: int
    app: Any
    clock: ManualClock
    dsn: str

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    @property
    def state(self) -> Any:
        return self.app.state.hub

    def client(self, *, lang: str | None = "en", **kwargs: Any) -> httpx.AsyncClient:
        """A client asking for English messages unless ``lang`` says otherwise (None: no Accept-Language,
        so the hub's default, zh-CN); the suite's assertions on messages read the English ones."""
        headers = dict(kwargs.pop("headers", {}))
        if lang is not None:
            headers.setdefault("Accept-Language", lang)
        return httpx.AsyncClient(base_url=self.url, timeout=10, headers=headers, **kwargs)

    async def login(self, username: str, password: str = DEMO_PASSWORD, *,
                    lang: str | None = "en") -> httpx.AsyncClient:
        """A client holding a bearer token for the user."""
        async with self.client() as anon:
            res = await anon.post("/api/v1/login", json={"username": username, "password": password,
                                                         "client": "token"})
            res.raise_for_status()
            token = res.json()["token"]
        return self.client(lang=lang, headers={"Authorization": f"Bearer {token}"})

    async def token(self, username: str, password: str = DEMO_PASSWORD) -> str:
        async with self.client() as anon:
            res = await anon.post("/api/v1/login", json={"username": username, "password": password,
                                                         "client": "token"})
            res.raise_for_status()
            token: str = res.json()["token"]
            return token


async def start_hub(cfg: Config, dsn: str, clock: ManualClock, *, port: int | None = None,
                    demo: bool = False) -> tuple[Hub, uvicorn.Server, asyncio.Task[None]]:
    port = port or free_port()
    app = create_app(cfg, dsn, clock=clock, demo=demo)
    server = uvicorn.Server(server_config(app, cfg, "127.0.0.1", port, production=False))
    server.install_signal_handlers = lambda: None  # type: ignore[attr-defined,method-assign]
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("hub did not start")
        await asyncio.sleep(0.01)  # polling for readiness, not waiting out time
    return Hub(f"http://127.0.0.1:{port}", port, app, clock, dsn), server, task


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 11, 2, 8, 0, tzinfo=UTC))


@pytest.fixture
async def hub(cfg: Config, dsn: str, clock: ManualClock) -> AsyncIterator[Hub]:
    handle, server, task = await start_hub(cfg, dsn, clock)
    try:
        yield handle
    finally:
        server.should_exit = True
        await task


# -- browser (real headless Chromium from Debian, driven by Playwright) --------------------------

CHROMIUM = os.environ.get("XIANGHU_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: ./scripts/test installs Debian's chromium (apt-get install chromium)")
    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            await b.close()


@pytest.fixture(autouse=True)
async def _close_browser_contexts(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    """Every browser context a test opened is closed when it ends: a page left open keeps its timers, sockets
    and service worker running into the next tests (one shared browser), and a test must not see another's.

    Found through the browser itself, not a list kept in this file: pytest imports this file as ``conftest``
    while the tests import it again as ``tests.conftest``, so a module-level list that ``browser_login`` filled
    was never the one emptied here, and every page of the run stayed open to the last test."""
    if "browser" not in request.fixturenames:
        yield
        return
    browser = request.getfixturevalue("browser")
    assert browser.contexts == [], f"{len(browser.contexts)} browser contexts left open by an earlier test"
    yield
    for context in list(browser.contexts):
        await context.close()
    assert browser.contexts == []


async def browser_login(browser: Any, hub: Hub, username: str, *, viewport: dict[str, int] | None = None,
                        password: str = DEMO_PASSWORD, **context_args: Any) -> Any:
    """A new browser context logged in through the real login page; returns the page. The context is closed
    when the test ends."""
    context = await browser.new_context(viewport=viewport or {"width": 1366, "height": 768}, locale="zh-CN",
                                        timezone_id="Asia/Shanghai", **context_args)
    page = await context.new_page()
    await page.goto(f"{hub.url}/login")
    await page.fill("#username", username)
    await page.fill("#password", password)
    await page.click("button[type=submit]")
    await page.wait_for_url(lambda url: "/login" not in url)
    return page


def artifact(name: str) -> str:
    ARTIFACTS.mkdir(exist_ok=True)
    return str(ARTIFACTS / name)
