"""/metrics (docs/OPERATIONS.md) on a real hub: scraped with its bearer token after real activity, parsed with
the Prometheus client's own parser; refused without the token; off by default; on a listener of its own."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from dispatch.cli.client import HubClient
from dispatch.core.clock import ManualClock
from dispatch.core.config import Config, MetricsConfig, NotifyConfig, Robot, load_config
from dispatch.core.transitions import CallState
from protocols.errors import ConfigError
from tests.conftest import Hub, free_port, start_hub
from tests.helpers import assignment_of, new_call, post

TOKEN = "scrape-me-0123456789abcdef"
ROOT = Path(__file__).resolve().parent.parent
# Every series docs/OPERATIONS.md lists, by family name as the parser gives it.
DOCUMENTED = ("xianghu_calls", "xianghu_acknowledge_seconds", "xianghu_escalations", "xianghu_events_committed",
              "xianghu_websocket_clients", "xianghu_fanout_lag_seconds", "xianghu_notification_outbox",
              "xianghu_db_pool_connections", "xianghu_db_pool_max_connections")
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def with_metrics(cfg: Config, **metrics: Any) -> Config:
    return cfg.model_copy(update={"metrics": MetricsConfig(**metrics)})


def parse(text: str) -> tuple[set[str], Samples]:
    families = list(text_string_to_metric_families(text))
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families for s in f.samples}
    return {f.name for f in families}, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def total(samples: Samples, name: str, **labels: str) -> float:
    return sum(v for (n, lab), v in samples.items() if n == name and set(labels.items()) <= set(lab))


async def scrape(url: str, token: str | None = TOKEN) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(timeout=10) as http:
        return await http.get(f"{url}/metrics", headers=headers)


@pytest.fixture
async def metered(cfg: Config, dsn: str, clock: ManualClock) -> AsyncIterator[Hub]:
    """A hub with a metrics token and a webhook robot nobody listens to (its messages stay in the outbox)."""
    robot = Robot(kind="webhook", name="ops", url=f"http://127.0.0.1:{free_port()}/hook", secret="s" * 20)
    notify = cfg.notify.model_copy(update={"channels": ["webhook"], "robots": [robot]})
    configured = with_metrics(cfg, token=TOKEN).model_copy(update={"notify": NotifyConfig.model_validate(
        notify.model_dump())})
    handle, server, task = await start_hub(configured, dsn, clock)
    try:
        yield handle
    finally:
        server.should_exit = True
        await task


async def test_a_scrape_after_activity_has_every_documented_series_with_its_values(
        metered: Hub, conn: asyncpg.Connection) -> None:
    hub = metered
    operator = await hub.token("op1.yiqiao")
    async with HubClient(hub.url, operator) as watching, await hub.login("op1.yiqiao") as op, \
            await hub.login("police1.yiqiao") as police:
        await asyncio.wait_for(watching.caught_up.wait(), 5)
        first = await post(op, "/api/v1/calls", new_call(targets=["police"]), expect=201)
        await post(op, "/api/v1/calls", new_call(targets=["transport"]), expect=201)
        detail = (await op.get(f"/api/v1/calls/{first['call_id']}")).json()
        hub.clock.advance(90)
        await post(police, f"/api/v1/assignments/{assignment_of(detail, 'police')['id']}/acknowledge")
        hub.clock.advance(31)  # the transport call's acknowledgement deadline (urgent: 120 s) passes
        await hub.state.sla.settled()
        # the operator's socket got every event of the township live: call, dispatch ×2, ack, escalation
        for _ in range(6):
            await watching.next_event()
        res = await scrape(hub.url)
        pending = await conn.fetchval("select count(*) from notifications where state = 'pending'")

    assert res.status_code == 200, res.text
    assert res.headers["content-type"].startswith("text/plain; version=0.0.4")
    names, samples = parse(res.text)
    assert set(DOCUMENTED) <= names
    assert {"process_resident_memory_bytes", "python_gc_objects_collected", "python_info"} <= names

    # calls: every township × state is a series; yiqiao holds the two calls, the others none
    for state in CallState:
        assert ("xianghu_calls", (("state", state.value), ("township", "baishi"))) in samples
    assert total(samples, "xianghu_calls", township="yiqiao") == 2
    assert total(samples, "xianghu_calls") == 2
    assert value(samples, "xianghu_events_committed_total", type="call.created") == 2

    # acknowledged 90 s after dispatch, observed once for police (this hub's own registry: other tests' hubs
    # in this process count nothing here)
    assert value(samples, "xianghu_acknowledge_seconds_count", department="police") == 1
    assert value(samples, "xianghu_acknowledge_seconds_sum", department="police") == 90
    assert value(samples, "xianghu_acknowledge_seconds_bucket", department="police", le="60.0") == 0
    assert value(samples, "xianghu_acknowledge_seconds_bucket", department="police", le="120.0") == 1
    assert ("xianghu_acknowledge_seconds_count", (("department", "transport"),)) not in samples

    # the transport call escalated once, at level 1 of its acknowledgement ladder
    assert value(samples, "xianghu_escalations_total", deadline_kind="ack", level="1") == 1
    assert total(samples, "xianghu_escalations_total") == 1

    # the open operator socket, by role; every role is listed
    assert value(samples, "xianghu_websocket_clients", role="operator") == 1
    assert value(samples, "xianghu_websocket_clients", role="liaison") == 0
    # frames written live to that socket were timed from commit
    assert value(samples, "xianghu_fanout_lag_seconds_count") >= 6
    assert value(samples, "xianghu_fanout_lag_seconds_bucket", le="+Inf") >= 6

    # the robot's messages wait in the outbox: the gauge says how many, as the table does
    assert pending > 0
    assert total(samples, "xianghu_notification_outbox", channel="webhook") == pending
    assert ("xianghu_notification_outbox", (("channel", "webhook"), ("status", "retrying"))) in samples

    in_use = value(samples, "xianghu_db_pool_connections", state="in_use")
    idle = value(samples, "xianghu_db_pool_connections", state="idle")
    assert in_use >= 0
    assert in_use + idle >= 2  # the pool's minimum size
    assert value(samples, "xianghu_db_pool_max_connections") == 10


async def test_the_socket_gauge_follows_connections(metered: Hub) -> None:
    token = await metered.token("police1.yiqiao")
    async with HubClient(metered.url, token) as liaison:
        await asyncio.wait_for(liaison.caught_up.wait(), 5)
        _, during = parse((await scrape(metered.url)).text)
    assert value(during, "xianghu_websocket_clients", role="liaison") == 1
    sockets = metered.state.realtime.sockets
    async with asyncio.timeout(5):
        while sockets:  # noqa: ASYNC110 - the hub ends the socket after the client left; nothing to await
            await asyncio.sleep(0.01)
    _, after = parse((await scrape(metered.url)).text)
    assert value(after, "xianghu_websocket_clients", role="liaison") == 0


async def test_without_the_token_metrics_are_refused(metered: Hub) -> None:
    assert (await scrape(metered.url, token=None)).status_code == 401
    refused = await scrape(metered.url, token=TOKEN[:-1] + "x")
    assert refused.status_code == 401
    assert refused.json()["code"] == "unauthenticated"
    assert "xianghu_" not in refused.text
    # a user's session token is not a metrics token
    assert (await scrape(metered.url, token=await metered.token("supervisor"))).status_code == 401


async def test_metrics_are_off_without_a_token_or_a_listener(hub: Hub) -> None:
    assert (await scrape(hub.url, token=None)).status_code == 404
    assert (await scrape(hub.url, token=TOKEN)).status_code == 404


async def test_a_listener_of_its_own_serves_metrics_and_nothing_else(
        cfg: Config, dsn: str, clock: ManualClock) -> None:
    port = free_port()
    handle, server, task = await start_hub(with_metrics(cfg, port=port), dsn, clock)
    listener = f"http://127.0.0.1:{port}"
    try:
        ok = await scrape(listener, token=None)
        assert ok.status_code == 200
        assert "xianghu_calls" in parse(ok.text)[0]
        assert (await scrape(handle.url, token=None)).status_code == 404  # not on the public port
        async with httpx.AsyncClient(base_url=listener, timeout=10) as http:
            assert (await http.get("/healthz")).status_code == 404
            assert (await http.post("/api/v1/login", json={"username": "op1.yiqiao",
                                                           "password": "xianghu-demo"})).status_code == 404
    finally:
        server.should_exit = True
        await task
    with pytest.raises(httpx.ConnectError):  # stopped with the hub
        await scrape(listener, token=None)


async def test_a_listener_with_a_token_wants_it_too(cfg: Config, dsn: str, clock: ManualClock) -> None:
    port = free_port()
    handle, server, task = await start_hub(with_metrics(cfg, port=port, token=TOKEN), dsn, clock)
    try:
        listener = f"http://127.0.0.1:{port}"
        assert (await scrape(listener, token=None)).status_code == 401
        assert (await scrape(listener)).status_code == 200
        assert (await scrape(handle.url)).status_code == 200
    finally:
        server.should_exit = True
        await task


def test_a_listener_port_in_use_stops_serve_with_a_message(dsn: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "dispatch.cli", "serve", "--port", str(free_port()),
                               "--metrics-port", str(port)], env={**os.environ, "DATABASE_URL": dsn}, cwd=ROOT,
                              capture_output=True, timeout=60)
    assert done.returncode != 0
    assert f"cannot listen for /metrics on 127.0.0.1:{port}" in done.stderr.decode()


# -- configuration ---------------------------------------------------------------------------------------


def configured(tmp_path: Path, section: str) -> Path:
    text = (ROOT / "dispatch" / "core" / "default.toml").read_text(encoding="utf-8")
    start = text.index("[metrics]")
    end = text.index("[evaluation]")
    path = tmp_path / "x.toml"
    path.write_text(text[:start] + section + "\n" + text[end:], encoding="utf-8")
    return path


def test_the_token_is_read_from_a_file_beside_the_configuration(tmp_path: Path) -> None:
    (tmp_path / "metrics.token").write_text(TOKEN + "\n", encoding="utf-8")
    cfg = load_config(configured(tmp_path, '[metrics]\ntoken_file = "metrics.token"\nport = 9464'))
    assert cfg.metrics.bearer == TOKEN
    assert cfg.metrics.port == 9464
    assert load_config(configured(tmp_path, f'[metrics]\ntoken = "{TOKEN}"')).metrics.bearer == TOKEN


@pytest.mark.parametrize(("section", "expected"), [
    ('[metrics]\ntoken = "short"', "metrics.token: must be at least 16 characters"),
    ('[metrics]\ntoken = "has spaces in the middle"', "metrics.token: must be at least 16"),
    (f'[metrics]\ntoken = "{TOKEN}"\ntoken_file = "t"', "metrics: token and token_file: give one of them"),
    ('[metrics]\ntoken_file = "missing.token"', "metrics: token_file: cannot read"),
    ('[metrics]\nport = 70000', "metrics.port: Input should be less than or equal to 65535"),
    ('[metrics]\nhost = "not a host"', "metrics.host: 'not a host' is not an IP address or host"),
    ('[metrics]\nscrape = true', "metrics.scrape: unknown key"),
])
def test_a_bad_metrics_section_names_the_key(tmp_path: Path, section: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(configured(tmp_path, section))
    assert expected in info.value.message


def test_the_loop_histogram_is_exposed_exactly_as_prometheus_client_histogram() -> None:
    """The fan-out lag's lock-free histogram: the same text and OpenMetrics exposition as the official one."""
    from prometheus_client import CollectorRegistry, Histogram, generate_latest
    from prometheus_client.openmetrics.exposition import generate_latest as openmetrics

    from dispatch.node.metrics import LoopHistogram

    bounds = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0)
    official, ours = CollectorRegistry(), CollectorRegistry()
    histogram = Histogram("lag_seconds", "doc", buckets=bounds, registry=official)
    loop = LoopHistogram("lag_seconds", "doc", bounds)
    ours.register(loop)
    for value in (0.0005, 0.001, 0.02, 0.3, 2, 9):
        histogram.observe(value)
        loop.observe(value)

    def same_time(text: bytes) -> str:
        return re.sub(r"_created [0-9.e+]+", "_created T", text.decode())

    assert same_time(generate_latest(ours)) == same_time(generate_latest(official))
    assert same_time(openmetrics(ours)) == same_time(openmetrics(official))


async def test_serve_runs_the_collector_as_configured(dsn: str, tmp_path: Path) -> None:
    """``xianghu serve`` sets server.gc_thresholds and freezes what start-up loaded (node.collector); a hub embedded
    in another process (this one's, above) leaves the collector as it found it."""
    from tests.test_json_logs import stop, wait_ready

    port, metrics_port = free_port(), free_port()
    config = tmp_path / "hub.toml"
    default = (ROOT / "dispatch" / "core" / "default.toml").read_text(encoding="utf-8")
    assert "gc_thresholds = [50000, 20, 10]" in default
    config.write_text(default.replace("gc_thresholds = [50000, 20, 10]", "gc_thresholds = [12345, 7, 3]", 1),
                      encoding="utf-8")
    proc = subprocess.Popen([sys.executable, "-m", "dispatch.cli", "serve", "--port", str(port), "--config",
                             str(config), "--metrics-port", str(metrics_port)],
                            env={**os.environ, "DATABASE_URL": dsn}, cwd=ROOT, stdout=subprocess.DEVNULL)
    try:
        await wait_ready(proc, f"http://127.0.0.1:{port}")
        _, samples = parse((await scrape(f"http://127.0.0.1:{metrics_port}", token=None)).text)
    finally:
        stop(proc)
    assert [value(samples, "xianghu_gc_threshold", generation=g) for g in "012"] == [12345, 7, 3]
    assert value(samples, "xianghu_gc_frozen_objects") > 50_000  # the modules and reference data, at least


async def test_an_embedded_hub_keeps_the_collector_as_it_was(cfg: Config, dsn: str, clock: ManualClock) -> None:
    import gc

    before = gc.get_threshold(), gc.get_freeze_count()
    port = free_port()
    _handle, server, task = await start_hub(with_metrics(cfg, port=port), dsn, clock)
    try:
        _, samples = parse((await scrape(f"http://127.0.0.1:{port}", token=None)).text)
    finally:
        server.should_exit = True
        await task
    assert (gc.get_threshold(), gc.get_freeze_count()) == before
    assert tuple(int(value(samples, "xianghu_gc_threshold", generation=g)) for g in "012") == before[0]
