"""Load-generator processes. Each function runs in its own process (``procs.Worker``) under uvloop and is
driven by the orchestrator over a pipe: it reports ``ready`` and then answers commands until ``exit``.

- ``raw_sockets``: many lightweight sockets (``websockets`` + the protocol's frames): idle, counting, or
  recording ``assignment.dispatched`` / ``assignment.escalated`` arrivals. They answer the hub's application
  pings, and on ``ping`` send a WebSocket ping on every socket and count the pongs.
- ``hub_clients``: ``dispatch.client.HubClient`` per socket (fan-out latency), recording arrivals.
- ``http_creator``: creates calls through the REST API (``POST /api/v1/calls``, two departments each), written
  by hand as pipelined HTTP/1.1 on keep-alive connections: the lean generator.
- ``resume_sockets``: many sockets that note their cursors, leave, and resume all at once after a restart.
- ``resumer``: one ``HubClient`` that disconnects, misses events, reconnects and is timed until caught up.
- ``bare_server``: a bare ``websockets`` server that ``broadcast()``s frames (the fan-out reference).
"""

# ruff: noqa: B023  (closures are awaited inside the iteration that defines them)
from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid
from collections import Counter
from typing import Any

import msgpack
import websockets
from websockets.asyncio.client import connect

from scripts.bench_lib.procs import Chan

SUBPROTOCOL = "xianghu.v1"
SUBSCRIBE = msgpack.packb({"type": "subscribe", "cursors": [], "epoch": None}, use_bin_type=True)
TAG_EVENT = b"\xa4type\xa5event"
TAG_PING = b"\xa4type\xa4ping"
TAG_CAUGHT = b"\xa4type\xa9caught_up"


def now_ms() -> float:
    return time.time() * 1000.0


# -- many lightweight sockets -------------------------------------------------------------------------


class RawSockets:
    def __init__(self, url: str, mode: str, compression: str | None) -> None:
        self.url = url
        self.mode = mode  # idle | count | record | escalations
        self.compression = compression
        self.conns: list[Any] = []
        self.caught = 0
        self.failed = 0
        self.errors: Counter[str] = Counter()
        self.closed_codes: Counter[str] = Counter()
        self.events = 0
        self.event_bytes = 0
        self.t_first = 0.0
        self.t_last = 0.0
        self.records: list[tuple[Any, ...]] = []
        self.progress = asyncio.Event()
        self.stopping = False

    async def one(self, token: str, gate: asyncio.Semaphore, done: asyncio.Event) -> None:
        released = False
        try:
            async with gate:
                ws = await connect(self.url, subprotocols=[SUBPROTOCOL],  # type: ignore[list-item]
                                   additional_headers={"Authorization": f"Bearer {token}"}, open_timeout=60,
                                   ping_interval=None, max_size=16 * 1024 * 1024, compression=self.compression,
                                   close_timeout=1)
                self.conns.append(ws)
                async with asyncio.timeout(60):
                    if self.mode == "idle":
                        await ws.send(SUBSCRIBE)  # pipelined, from the start (a unit sees no call here)
                    else:
                        # From the heads of the welcome: live delivery only, no replay of the whole log.
                        welcome = msgpack.unpackb(await ws.recv())
                        await ws.send(msgpack.packb({"type": "subscribe", "cursors": welcome.get("heads") or [],
                                                     "epoch": welcome.get("epoch")}, use_bin_type=True))
                    async for data in ws:
                        if isinstance(data, bytes) and data.startswith(TAG_CAUGHT, 1):
                            break
                        if isinstance(data, bytes) and data.startswith(TAG_PING, 1):
                            await self._pong(ws, data)
                self.caught += 1
                released = True
            done.set()
            async for data in ws:
                if not isinstance(data, bytes):
                    continue
                if data.startswith(TAG_EVENT, 1):
                    t = now_ms()
                    if not self.events:
                        self.t_first = t
                    self.events += 1
                    self.event_bytes += len(data)
                    self.t_last = t
                    if self.mode == "record":
                        ev = msgpack.unpackb(data)
                        if ev["event_type"] == "assignment.dispatched":
                            self.records.append((ev["call_id"], ev["at"], t))
                    elif self.mode == "escalations":
                        ev = msgpack.unpackb(data)
                        if ev["event_type"] == "assignment.escalated":
                            body = ev.get("body") or {}
                            self.records.append((ev["assignment_id"], str(body.get("due")), body.get("level"),
                                                 body.get("deadline_kind"), t))
                    self.progress.set()
                elif data.startswith(TAG_PING, 1):
                    await self._pong(ws, data)
            if not self.stopping:
                self.closed_codes[str(ws.close_code)] += 1
        except Exception as exc:
            if not released:
                self.failed += 1
            if not self.stopping:
                self.errors[type(exc).__name__ + ": " + str(exc)[:80]] += 1
        finally:
            done.set()

    @staticmethod
    async def _pong(ws: Any, data: bytes) -> None:
        nonce = msgpack.unpackb(data).get("nonce", 0)
        with contextlib.suppress(websockets.ConnectionClosed):
            await ws.send(msgpack.packb({"type": "pong", "nonce": nonce}, use_bin_type=True))

    async def ping_all(self, timeout: float) -> int:
        async def one(ws: Any) -> bool:
            try:
                waiter = await ws.ping()
                await asyncio.wait_for(waiter, timeout)
                return True
            except Exception:
                return False
        answered = 0
        for i in range(0, len(self.conns), 1000):
            answered += sum(await asyncio.gather(*(one(ws) for ws in self.conns[i:i + 1000])))
        return answered

    async def close_all(self) -> None:
        self.stopping = True

        async def close(ws: Any) -> None:
            try:
                await asyncio.wait_for(ws.close(), 1)
            except Exception:
                ws.transport.abort()
        for i in range(0, len(self.conns), 500):
            await asyncio.gather(*(close(ws) for ws in self.conns[i:i + 500]))
        self.conns.clear()


async def raw_sockets(chan: Chan, url: str, tokens: list[str], mode: str, compression: str | None,
                      connect_concurrency: int = 100) -> None:
    rs = RawSockets(url, mode, compression)
    gate = asyncio.Semaphore(connect_concurrency)
    tasks = []
    dones = []
    for token in tokens:
        done = asyncio.Event()
        dones.append(done)
        tasks.append(asyncio.create_task(rs.one(token, gate, done)))
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(300):
            for d in dones:
                await d.wait()
    chan.send("ready", rs.caught, rs.failed, dict(rs.errors.most_common(3)))
    while True:
        msg = await chan.recv(timeout=3600)
        cmd = msg[0]
        if cmd == "status":
            chan.send("status", rs.caught, rs.failed, rs.events, len(rs.conns), dict(rs.closed_codes),
                      dict(rs.errors.most_common(3)))
        elif cmd == "reset":
            rs.events = rs.event_bytes = 0
            rs.t_first = rs.t_last = 0.0
            rs.records = []
            chan.send("ok")
        elif cmd == "expect":
            want, timeout = msg[1], msg[2]
            loop = asyncio.get_running_loop()
            end = loop.time() + timeout
            while rs.events < want and loop.time() < end:
                rs.progress.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(rs.progress.wait(), min(1.0, max(0.01, end - loop.time())))
            chan.send("got", rs.events, rs.event_bytes, rs.t_first, rs.t_last, dict(rs.closed_codes))
        elif cmd == "collect":
            records, rs.records = rs.records, []
            chan.send("records", records)
        elif cmd == "ping":  # every open socket: a WebSocket ping, answered by the server's pong in time
            answered = await rs.ping_all(msg[1])
            chan.send("pinged", answered, len(rs.conns))
        elif cmd == "exit":
            await rs.close_all()
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            chan.send("bye")
            return


# -- many sockets resuming at once -----------------------------------------------------------------------


async def resume_sockets(chan: Chan, url: str, tokens: list[str]) -> None:
    """Each token: connect, subscribe from the welcome's heads, note heads and epoch, leave. Then on ``resume``
    (a restarted hub's URL): every socket reconnects at once with its cursors; report when each is caught up and
    how many events it was replayed."""
    saved: list[tuple[str, list[Any], Any]] = []
    gate = asyncio.Semaphore(100)
    errors: Counter[str] = Counter()

    async def first(token: str) -> None:
        async with gate:
            try:
                async with connect(url, subprotocols=[SUBPROTOCOL],  # type: ignore[list-item]
                                   additional_headers={"Authorization": f"Bearer {token}"}, open_timeout=60,
                                   ping_interval=None, compression=None, close_timeout=1) as ws:
                    welcome = msgpack.unpackb(await ws.recv())
                    saved.append((token, welcome.get("heads") or [], welcome.get("epoch")))
            except Exception as exc:
                errors[type(exc).__name__ + ": " + str(exc)[:80]] += 1

    await asyncio.gather(*(first(t) for t in tokens))
    chan.send("ready", len(saved), dict(errors))
    msg = await chan.recv(timeout=3600)
    if msg[0] == "exit":
        chan.send("bye")
        return
    url = msg[1]
    results: list[tuple[float, int, int]] = []  # (caught_up at ms, events, resyncs)
    start = asyncio.Event()

    async def again(token: str, heads: list[Any], epoch: Any) -> None:
        await start.wait()
        events = resyncs = 0
        try:
            async with connect(url, subprotocols=[SUBPROTOCOL],  # type: ignore[list-item]
                               additional_headers={"Authorization": f"Bearer {token}"}, open_timeout=120,
                               ping_interval=None, compression=None, close_timeout=1,
                               max_size=16 * 1024 * 1024) as ws:
                await ws.recv()  # welcome
                await ws.send(msgpack.packb({"type": "subscribe", "cursors": heads, "epoch": epoch},
                                            use_bin_type=True))
                async with asyncio.timeout(120):
                    async for data in ws:
                        if not isinstance(data, bytes):
                            continue
                        if data.startswith(TAG_EVENT, 1):
                            events += 1
                        elif data.startswith(TAG_CAUGHT, 1):
                            results.append((now_ms(), events, resyncs))
                            return
                        elif data.startswith(TAG_PING, 1):
                            await RawSockets._pong(ws, data)
                        elif b"resync" in data[:16]:
                            resyncs += 1
        except Exception as exc:
            errors["resume " + type(exc).__name__ + ": " + str(exc)[:80]] += 1

    tasks = [asyncio.create_task(again(*s)) for s in saved]
    await asyncio.sleep(0.2)  # every task waits on the gate
    t0 = now_ms()
    start.set()
    await asyncio.gather(*tasks)
    chan.send("resumed", t0, results, dict(errors))
    msg = await chan.recv(timeout=3600)
    chan.send("bye")


# -- HubClient sockets ----------------------------------------------------------------------------------


async def hub_clients(chan: Chan, base_url: str, sockets: list[tuple[str, str]]) -> None:
    """``sockets``: (token, label) per HubClient. Records (call_id, at_ms, arrival_ms, label) of dispatches."""
    from dispatch.cli.client import HubClient
    from protocols.messages import Event

    clients: list[HubClient] = []
    records: list[tuple[str, int, float, str]] = []
    gate = asyncio.Semaphore(50)

    async def start(token: str) -> HubClient | None:
        async with gate:
            c = HubClient(base_url, token)
            await c.start()
            clients.append(c)
            try:
                await asyncio.wait_for(c.caught_up.wait(), 300)
            except TimeoutError:
                return None
            return c

    started = await asyncio.gather(*(start(tok) for tok, _ in sockets))
    ok = [c for c in started if c is not None]

    async def consume(c: HubClient, label: str) -> None:
        while True:
            msg = await c.messages.get()
            if isinstance(msg, Event) and msg.event_type == "assignment.dispatched":
                records.append((msg.call_id, msg.at, now_ms(), label))

    consumers = [asyncio.create_task(consume(c, label)) for c, (_, label) in zip(started, sockets, strict=True)
                 if c is not None]
    chan.send("ready", len(ok), len(sockets) - len(ok))
    while True:
        msg = await chan.recv(timeout=3600)
        if msg[0] == "collect":
            out, records = records, []
            chan.send("records", out)
        elif msg[0] == "exit":
            for t in consumers:
                t.cancel()
            await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)
            chan.send("bye")
            return


# -- calls through the REST API ------------------------------------------------------------------------

TITLES = ("夜间施工噪音扰民，居民反映无法入睡", "小区楼道飞线充电存在火灾隐患", "路口占道经营影响通行",
          "邻里因宅基地边界发生纠纷", "农贸市场销售过期食品", "道路遗撒渣土影响行车安全")


def call_body(pair: tuple[str, str], n: int) -> dict[str, Any]:
    return {
        "command_id": str(uuid.uuid4()), "source": "hotline_12345", "category": "noise",
        "title": TITLES[n % len(TITLES)],
        "description": ("群众通过12345热线反映：该处自晚上十点起持续有施工噪音，已多次劝说无果，"
                        "请尽快派员到场处置并反馈结果。"),
        "address": "汶上县义桥镇幸福路与建设街交叉口东50米", "lat": 35.7312, "lon": 116.4887,
        "priority": "normal", "reporter_name": "张建国", "reporter_phone": "13812345678", "targets": list(pair),
    }


async def creator(chan: Chan, base_url: str, tokens: dict[int, str]) -> None:
    """Calls through httpx, for scripts/faults: a node killed under it costs failed requests, never the generator
    (the bench measures with the lean ``http_creator`` below)."""
    import httpx

    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    async with httpx.AsyncClient(base_url=base_url, timeout=30, limits=limits) as http:
        counter = 0

        async def create(tid: int, pair: tuple[str, str], out: list[Any], errs: Counter[str]) -> None:
            nonlocal counter
            counter += 1
            t0 = now_ms()
            try:
                res = await http.post("/api/v1/calls", json=call_body(pair, counter),
                                      headers={"Authorization": f"Bearer {tokens[tid]}"})
            except httpx.HTTPError as exc:
                errs[type(exc).__name__] += 1
                return
            if res.status_code != 201:
                errs[f"{res.status_code} {res.text[:60]}"] += 1
                return
            out.append((res.json()["call_id"], tid, pair, t0, now_ms()))

        chan.send("ready")
        while True:
            msg = await chan.recv(timeout=3600)
            cmd = msg[0]
            if cmd == "exit":
                chan.send("bye")
                return
            spec: dict[str, Any] = msg[1]
            tids: list[int] = spec["tids"]
            pairs: list[tuple[str, str]] = [(p[0], p[1]) for p in spec["pairs"]]
            rnd = random.Random(spec.get("seed", 1))
            out: list[Any] = []
            errs: Counter[str] = Counter()
            loop = asyncio.get_running_loop()
            t_start = now_ms()
            if cmd == "closed":  # max rate: `concurrency` requests in flight for `duration` seconds
                end = loop.time() + spec["duration"]

                async def lane() -> None:
                    while loop.time() < end:
                        await create(rnd.choice(tids), rnd.choice(pairs), out, errs)
                await asyncio.gather(*(lane() for _ in range(spec["concurrency"])))
            elif cmd == "paced":  # open loop at `rate` calls/s for `duration` seconds
                gate = asyncio.Semaphore(64)
                n = int(spec["rate"] * spec["duration"])
                t0 = loop.time()
                pending = []

                async def one() -> None:
                    async with gate:
                        await create(rnd.choice(tids), rnd.choice(pairs), out, errs)
                for i in range(n):
                    delay = t0 + i / spec["rate"] - loop.time()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    pending.append(asyncio.create_task(one()))
                await asyncio.gather(*pending)
            elif cmd == "count":  # exactly `n` calls, `concurrency` at a time
                todo = iter(range(spec["n"]))

                async def worker() -> None:
                    for _ in todo:
                        await create(rnd.choice(tids), rnd.choice(pairs), out, errs)
                await asyncio.gather(*(worker() for _ in range(spec["concurrency"])))
            chan.send("done", out, dict(errs), t_start, now_ms())


# -- calls through pipelined raw HTTP/1.1 (the lean generator) ----------------------------------------


class _Pipe(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection; requests are written back to back, responses come in order."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.waiting: list[asyncio.Future[tuple[int, bytes]]] = []
        self.transport: asyncio.Transport | None = None
        self.lost: Exception | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while self.waiting:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buf[:end])
            length = 0
            for line in head.split(b"\r\n")[1:]:
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if len(self.buf) < end + 4 + length:
                return
            body = bytes(self.buf[end + 4:end + 4 + length])
            del self.buf[:end + 4 + length]
            status = int(head[9:12])
            fut = self.waiting.pop(0)
            if not fut.done():
                fut.set_result((status, body))

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = exc or ConnectionResetError("closed")
        for fut in self.waiting:
            if not fut.done():
                fut.set_exception(self.lost)
        self.waiting.clear()

    def request(self, data: bytes) -> asyncio.Future[tuple[int, bytes]]:
        fut: asyncio.Future[tuple[int, bytes]] = asyncio.get_running_loop().create_future()
        if self.lost is not None or self.transport is None:
            fut.set_exception(self.lost or ConnectionResetError("not connected"))
            return fut
        self.waiting.append(fut)
        self.transport.write(data)
        return fut


CID_MARK = b'"call_id":"'


async def http_creator(chan: Chan, host: str, port: int, tokens: dict[int, str], connections: int = 16) -> None:
    """Creates calls with ``POST /api/v1/calls`` written by hand on keep-alive connections, several in flight on
    each (HTTP/1.1 pipelining): a few µs of generator CPU per call instead of httpx's milliseconds."""
    import json

    loop = asyncio.get_running_loop()
    pipes: list[_Pipe] = []

    async def reconnect() -> None:
        """Fresh connections for each command: the server closes idle keep-alive ones after a few seconds."""
        for p in pipes:
            if p.transport is not None:
                p.transport.close()
        pipes[:] = [(await loop.create_connection(_Pipe, host, port))[1] for _ in range(connections)]

    await reconnect()
    counter = 0

    def request(tid: int, pair: tuple[str, str]) -> bytes:
        nonlocal counter
        counter += 1
        body = json.dumps(call_body(pair, counter), ensure_ascii=False).encode()
        return (f"POST /api/v1/calls HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {tokens[tid]}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body

    async def create(pipe: _Pipe, tid: int, pair: tuple[str, str], out: list[Any], errs: Counter[str]) -> None:
        if pipe.lost is not None and pipe in pipes:
            pipes[pipes.index(pipe)] = pipe = (await loop.create_connection(_Pipe, host, port))[1]
        t0 = now_ms()
        try:
            status, body = await pipe.request(request(tid, pair))
        except Exception as exc:
            errs[type(exc).__name__] += 1
            return
        if status != 201:
            errs[f"{status} {body[:60]!r}"] += 1
            return
        i = body.find(CID_MARK) + len(CID_MARK)
        out.append((body[i:i + 36].decode(), tid, pair, t0, now_ms()))

    chan.send("ready")
    while True:
        msg = await chan.recv(timeout=3600)
        cmd = msg[0]
        if cmd == "exit":
            for p in pipes:
                if p.transport is not None:
                    p.transport.close()
            chan.send("bye")
            return
        spec: dict[str, Any] = msg[1]
        tids: list[int] = spec["tids"]
        pairs: list[tuple[str, str]] = [(p[0], p[1]) for p in spec["pairs"]]
        rnd = random.Random(spec.get("seed", 1))
        out: list[Any] = []
        errs: Counter[str] = Counter()
        await reconnect()
        t_start = now_ms()
        if cmd == "closed":  # `concurrency` requests in flight (spread over the connections) for `duration` s
            end = loop.time() + spec["duration"]

            async def lane(k: int) -> None:
                while loop.time() < end:
                    await create(pipes[k % len(pipes)], rnd.choice(tids), rnd.choice(pairs), out, errs)
            await asyncio.gather(*(lane(k) for k in range(spec["concurrency"])))
        elif cmd == "paced":  # open loop at `rate` calls/s for `duration` seconds
            n = int(spec["rate"] * spec["duration"])
            t0 = loop.time()
            pending = []
            for i in range(n):
                delay = t0 + i / spec["rate"] - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                # The least busy connection, ties taken in turn: each one carries a request at least every few
                # ms, so none sits idle into the server's keep-alive timeout (5 s), which closed idle ones just
                # as a request was written on them (ConnectionResetError).
                k = i % len(pipes)
                pipe = min(pipes[k:] + pipes[:k], key=lambda p: len(p.waiting))
                pending.append(asyncio.create_task(create(pipe, rnd.choice(tids), rnd.choice(pairs), out, errs)))
            await asyncio.gather(*pending)
        elif cmd == "count":
            todo = iter(range(spec["n"]))

            async def worker(k: int) -> None:
                for _ in todo:
                    await create(pipes[k % len(pipes)], rnd.choice(tids), rnd.choice(pairs), out, errs)
            await asyncio.gather(*(worker(k) for k in range(spec["concurrency"])))
        chan.send("done", out, dict(errs), t_start, now_ms())


# -- resume after missing events -----------------------------------------------------------------------


async def resumer(chan: Chan, base_url: str, token: str) -> None:
    from dispatch.cli.client import HubClient
    from protocols.messages import Event, Resync

    chan.send("ready")
    cursors: dict[int, int] = {}
    epoch: str | None = None
    while True:
        msg = await chan.recv(timeout=3600)
        if msg[0] == "exit":
            chan.send("bye")
            return
        if msg[0] == "first":
            c = HubClient(base_url, token)
            await c.start()
            await asyncio.wait_for(c.caught_up.wait(), 60)
            cursors, epoch = c.cursors, c.welcome.epoch if c.welcome else None
            await c.close()
            chan.send("cursor", cursors, epoch)
        elif msg[0] == "resume":
            t0 = time.perf_counter()
            c = HubClient(base_url, token, cursors=cursors, epoch=epoch)
            await c.start()
            await asyncio.wait_for(c.connected.wait(), 120)
            t_welcome = time.perf_counter() - t0
            await asyncio.wait_for(c.caught_up.wait(), 120)
            elapsed = time.perf_counter() - t0
            events = resyncs = 0
            while not c.messages.empty():
                m = c.messages.get_nowait()
                events += isinstance(m, Event)
                resyncs += isinstance(m, Resync)
            after = c.cursors
            await c.close()
            chan.send("resumed", elapsed, events, resyncs, after, t_welcome)


# -- the reference: a bare websockets server -----------------------------------------------------------


async def bare_server(chan: Chan, port: int, compression: str | None = None) -> None:
    from websockets.asyncio.server import broadcast, serve

    conns: set[Any] = set()

    caught_up = msgpack.packb({"type": "caught_up", "heads": []}, use_bin_type=True)

    welcome = msgpack.packb({"type": "welcome", "heads": [], "epoch": "bare"}, use_bin_type=True)

    async def handler(ws: Any) -> None:
        conns.add(ws)
        try:
            await ws.send(welcome)
            await ws.send(caught_up)  # what the harness waits for after subscribing
            async for _ in ws:  # the harness's subscribe frame; nothing else
                pass
        finally:
            conns.discard(ws)

    async with serve(handler, "127.0.0.1", port, subprotocols=[SUBPROTOCOL], ping_interval=None,  # type: ignore[list-item]
                     max_size=16 * 1024 * 1024, backlog=2048, compression=compression):
        chan.send("ready")
        while True:
            msg = await chan.recv(timeout=3600)
            if msg[0] == "exit":
                chan.send("bye")
                return
            if msg[0] == "count":
                chan.send("count", len(conns))
            elif msg[0] == "broadcast":
                frames: list[bytes] = msg[1]
                t0 = now_ms()
                for i, frame in enumerate(frames):
                    broadcast(conns, frame)
                    if i % 4 == 3:
                        await asyncio.sleep(0)
                chan.send("sent", t0, now_ms())
