"""Client processes of the fault harness (each function runs in a ``scripts.bench_lib.procs.Worker``).

- ``trackers``: many WebSocket clients written from protocols/PROTOCOL.md alone: they keep the last ``seq`` per
  township and the epoch, resume with them after any disconnect (backoff, several node URLs), drop what the
  protocol says to drop, and record every event's first arrival, every repeat and every reconnection.
- ``fuzzer``: random and mutated msgpack frames over real WebSockets from a logged-in client (fixed seed).
- ``stuck_reader``: a client that subscribes and then never reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import time
import uuid
from collections import Counter
from typing import Any

import msgpack
import websockets
from websockets.asyncio.client import connect

from scripts.bench_lib.procs import Chan

SUBPROTOCOL = "xianghu.v1"


def now_ms() -> float:
    return time.time() * 1000.0


def pack(obj: Any) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


# -- resuming clients that record every arrival ---------------------------------------------------------


class Tracker:
    def __init__(self, spec: dict[str, Any], urls: list[str]) -> None:
        self.spec = spec
        self.urls = spec.get("urls") or urls
        self.token = spec["token"]
        self.cursors: dict[int, int] = {}
        self.epoch: str | None = None
        self.seen: dict[int, dict[int, float]] = {}
        self.dups = 0  # an event (township, seq) this client had already received
        self.reordered = 0  # an unseen event at or below the cursor: the protocol says drop it (so it is lost)
        self.resyncs: Counter[str] = Counter()
        self.connections = 0
        self.caught: list[float] = []  # arrival of each caught_up
        self.drops: list[tuple[float, int | None]] = []  # (when, close code) of each connection's end
        self.errors: Counter[str] = Counter()  # error frames by code, connection failures by kind
        self.first_caught = asyncio.Event()
        self.stopping = False
        self.ws: Any = None

    async def run(self, gate: asyncio.Semaphore) -> None:
        delay = 0.1
        i = 0
        while not self.stopping:
            url = self.urls[i % len(self.urls)]
            ok = False
            try:
                async with gate if not self.first_caught.is_set() else contextlib.nullcontext():
                    ws = await connect(url, subprotocols=[SUBPROTOCOL],  # type: ignore[list-item]
                                       additional_headers={"Authorization": f"Bearer {self.token}"},
                                       open_timeout=10, ping_interval=None, max_size=16 * 1024 * 1024,
                                       close_timeout=1, compression=None)
                ok = True
                await self.session(ws)
            except (OSError, websockets.InvalidHandshake, websockets.ConnectionClosed, TimeoutError) as exc:
                if not self.stopping:
                    self.errors[type(exc).__name__] += 1
                if not ok:
                    i += 1  # could not connect: try the next node
            if self.stopping:
                return
            await asyncio.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 2.0) if not ok else 0.1

    async def session(self, ws: Any) -> None:
        self.ws = ws
        self.connections += 1
        try:
            async for data in ws:
                if isinstance(data, bytes):
                    await self.frame(ws, msgpack.unpackb(data, strict_map_key=False))
        finally:
            self.ws = None
            if not self.stopping:
                self.drops.append((now_ms(), ws.close_code))

    async def frame(self, ws: Any, msg: dict[str, Any]) -> None:
        kind = msg.get("type")
        if kind == "event":
            t = now_ms()
            tid, seq = msg["township_id"], msg["seq"]
            mine = self.seen.setdefault(tid, {})
            if seq in mine:
                self.dups += 1
            elif seq <= self.cursors.get(tid, 0):
                self.reordered += 1
            else:
                mine[seq] = t
                self.cursors[tid] = seq
        elif kind == "welcome":
            if self.epoch is not None and msg["epoch"] != self.epoch:
                self.cursors.clear()
                self.resyncs["epoch_in_welcome"] += 1
            self.epoch = msg["epoch"]
            await ws.send(pack({"type": "subscribe", "cursors": [[t, s] for t, s in sorted(self.cursors.items())],
                                "epoch": self.epoch}))
        elif kind == "caught_up":
            for tid, head in msg["heads"]:
                if head > self.cursors.get(tid, 0):
                    self.cursors[tid] = head
            self.caught.append(now_ms())
            self.first_caught.set()
        elif kind == "ping":
            with contextlib.suppress(websockets.ConnectionClosed):
                await ws.send(pack({"type": "pong", "nonce": msg.get("nonce", 0)}))
        elif kind == "resync":
            self.cursors[msg["township_id"]] = msg["head"]
            self.resyncs[str(msg.get("reason"))] += 1
        elif kind == "error":
            self.errors["error:" + str(msg.get("code"))] += 1

    def report(self) -> dict[str, Any]:
        return {"seen": {tid: sorted(d.items()) for tid, d in self.seen.items()}, "dups": self.dups,
                "reordered": self.reordered, "resyncs": dict(self.resyncs), "connections": self.connections,
                "caught": self.caught, "drops": self.drops, "errors": dict(self.errors),
                "cursors": dict(self.cursors)}

    async def close(self) -> None:
        self.stopping = True
        ws = self.ws
        if ws is not None:
            try:
                await asyncio.wait_for(ws.close(), 1)
            except Exception:
                ws.transport.abort()


async def trackers(chan: Chan, urls: list[str], specs: list[dict[str, Any]]) -> None:
    """Commands: ``status`` → counts; ``collect`` → per-client reports; ``exit``."""
    gate = asyncio.Semaphore(50)
    ts = [Tracker(spec, urls) for spec in specs]
    tasks = [asyncio.create_task(t.run(gate)) for t in ts]
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(120):
            await asyncio.gather(*(t.first_caught.wait() for t in ts))
    chan.send("ready", sum(t.first_caught.is_set() for t in ts), len(ts))
    while True:
        msg = await chan.recv(timeout=7200)
        if msg[0] == "status":
            chan.send("status", sum(sum(len(d) for d in t.seen.values()) for t in ts),
                      sum(t.ws is not None for t in ts), sum(t.connections for t in ts))
        elif msg[0] == "collect":
            chan.send("reports", [t.report() for t in ts])
        elif msg[0] == "exit":
            await asyncio.gather(*(t.close() for t in ts))
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            chan.send("bye")
            return


# -- the frame fuzzer -----------------------------------------------------------------------------------

BIG_INTS = (2**31, 2**32, 2**53 + 1, 2**63 - 1, 2**63, 2**64 - 1, -(2**31), -(2**63), -1, 0)
COMMANDS = ("create_call", "dispatch", "acknowledge", "arrive", "report_result", "decline", "reroute", "withdraw",
            "accept", "send_back", "return_visit", "close", "cancel", "note", "escalate", "nope", "")
ARG_KEYS = ("call_id", "assignment_id", "targets", "target", "title", "description", "address", "lat", "lon",
            "grid_id", "priority", "source", "category", "reporter_name", "reporter_phone", "text", "reason",
            "deadline_kind", "level", "satisfaction", "result", "note")


def valid_call(rnd: random.Random) -> dict[str, Any]:
    return {"source": "hotline_12345", "category": "noise", "title": f"模糊测试 {rnd.randint(0, 10**6)}",
            "description": "fuzz", "address": "义桥镇", "priority": rnd.choice(["normal", "low", "urgent"]),
            "targets": [rnd.choice(["police", "fire", "market"])]}


def rand_value(rnd: random.Random, depth: int = 0) -> Any:
    pick = rnd.randrange(12 if depth < 3 else 8)
    if pick == 0:
        return None
    if pick == 1:
        return rnd.choice([True, False])
    if pick == 2:
        return rnd.choice(BIG_INTS)
    if pick == 3:
        return rnd.randint(-1000, 1000)
    if pick == 4:
        return rnd.choice([0.0, -0.0, 1e308, float("inf"), float("-inf"), float("nan"), 35.7, -91.0])
    if pick == 5:
        return "".join(chr(rnd.randint(0, 0x10FFFF) if rnd.random() < 0.1 else rnd.randint(32, 0x9FFF))
                       for _ in range(rnd.randint(0, 40))).encode("utf-8", "replace").decode("utf-8", "replace")
    if pick == 6:
        return rnd.randbytes(rnd.randint(0, 20))
    if pick == 7:
        return str(uuid.UUID(int=rnd.getrandbits(128)))
    if pick in (8, 9):
        return [rand_value(rnd, depth + 1) for _ in range(rnd.randint(0, 4))]
    return {rnd.choice(ARG_KEYS): rand_value(rnd, depth + 1) for _ in range(rnd.randint(0, 4))}


def deep(depth: int) -> bytes:
    return b"\x91" * depth + b"\xc0"  # [[[…[nil]…]]] in raw msgpack, no recursion on this side


def fuzz_frame(rnd: random.Random) -> tuple[str, bytes]:
    """(kind, frame). Weighted so most frames are well-formed envelopes with bad contents."""
    r = rnd.random()
    cid = str(uuid.uuid4())
    if r < 0.10:
        return "valid_ping", pack({"type": "ping", "nonce": rnd.randint(0, 2**31)})
    if r < 0.40:  # a command with random or mutated arguments
        args = valid_call(rnd) if rnd.random() < 0.5 else {}
        for _ in range(rnd.randint(0, 4)):
            args[rnd.choice(ARG_KEYS)] = rand_value(rnd)
        name = rnd.choice(COMMANDS) if rnd.random() < 0.7 else "create_call"
        return "command_args", pack({"type": "command", "command_id": cid, "name": name, "args": args})
    if r < 0.50:  # huge and edge integers in integer fields
        v = rnd.choice(BIG_INTS)
        frame = rnd.choice([
            {"type": "ping", "nonce": v}, {"type": "pong", "nonce": v},
            {"type": "command", "command_id": cid, "name": "create_call", "args": {**valid_call(rnd), "grid_id": v}},
            {"type": "command", "command_id": cid, "name": "note", "args": {"call_id": str(uuid.uuid4()), "text": v}},
            {"type": "subscribe", "cursors": [[v, v]], "epoch": None},
        ])
        return "huge_int", pack(frame)
    if r < 0.60:  # valid envelopes, fields of the wrong type
        base = rnd.choice([
            {"type": "ping", "nonce": 1}, {"type": "subscribe", "cursors": [], "epoch": None},
            {"type": "command", "command_id": cid, "name": "note", "args": {}},
        ])
        key = rnd.choice([k for k in base if k != "type"] or ["type"])
        base[key] = rand_value(rnd)
        return "wrong_type", pack(base)
    if r < 0.66:
        return "deep", pack({"type": "command", "command_id": cid, "name": "note", "args": {"x": None}})[:-1] \
            + deep(rnd.choice([50, 500, 5000, 30000]))
    if r < 0.72:
        good = pack({"type": "command", "command_id": cid, "name": "create_call", "args": valid_call(rnd)})
        return "truncated", good[:rnd.randrange(len(good))]
    if r < 0.78:
        return "random_bytes", rnd.randbytes(rnd.randint(0, 300))
    if r < 0.84:
        return "bad_type", pack(rnd.choice([
            {"type": "welcome"}, {"type": "event", "seq": 1}, {"type": "nope"}, {"type": 7}, {"nonce": 1},
            [1, 2, 3], "ping", None, 12, {b"type": b"ping", b"nonce": 1}, {1: "ping"},
            {"type": "subscribe", "cursors": [[1, 2, 3]], "epoch": 5},
        ]))
    if r < 0.88:
        # fixext 8 with any type code, -1 (the timestamp extension) included: raw bytes, as msgpack's packer
        # only writes codes 0..127.
        code = rnd.choice([-1, -1, -128, 0, 1, 127])
        return "ext", b"\x82\xa4type\xa4ping\xa5nonce\xd7" + (code & 0xFF).to_bytes(1, "big") + rnd.randbytes(8)
    if r < 0.92:
        return "bad_utf8", b"\x82\xa4type\xa4ping\xa5nonce\xa3\xff\xfe\xfd"
    if r < 0.96:
        return "trailing", pack({"type": "ping", "nonce": 1}) + rnd.randbytes(rnd.randint(1, 8))
    if r < 0.995:
        return "second_subscribe", pack({"type": "subscribe", "cursors": [], "epoch": None})
    return "oversize", pack({"type": "ping", "nonce": 1, "pad": "x" * 70_000})


async def fuzzer(chan: Chan, ws_url: str, token: str, n_frames: int, seed: int, lanes: int) -> None:
    """Send ``n_frames`` frames over ``lanes`` concurrent connections, reconnecting when the hub closes one.

    Each fuzzed frame is followed by a valid ``ping`` whose ``pong`` proves the hub has read (and answered)
    the frame before it: frames are not merely written into a socket the hub already closed. A frame that
    gets its connection closed (1002 after too many violations, 1009 too large) counts as read."""
    chan.send("ready")
    msg = await chan.recv(timeout=600)
    if msg[0] == "exit":
        chan.send("bye")
        return
    rnd = random.Random(seed)
    frames = [fuzz_frame(rnd) for _ in range(n_frames)]
    kinds: Counter[str] = Counter(k for k, _ in frames)
    codes: Counter[str] = Counter()
    closes: Counter[str] = Counter()
    closed_by: Counter[str] = Counter()  # fuzz kind of the frame after which the hub closed the connection
    failures: Counter[str] = Counter()
    read = 0
    stalls = 0
    connections = 0
    todo = list(reversed(frames))
    barrier = 10**15

    async def lane() -> None:
        nonlocal read, stalls, connections, barrier
        while todo:
            try:
                ws = await connect(ws_url, subprotocols=[SUBPROTOCOL],  # type: ignore[list-item]
                                   additional_headers={"Authorization": f"Bearer {token}"}, open_timeout=10,
                                   ping_interval=None, max_size=16 * 1024 * 1024, close_timeout=1, compression=None)
            except (OSError, websockets.InvalidHandshake, TimeoutError) as exc:
                failures[type(exc).__name__] += 1
                if failures.total() > 200:
                    return
                await asyncio.sleep(0.2)
                continue
            connections += 1
            item: tuple[str, bytes] | None = None
            try:
                while todo:
                    item = todo.pop()
                    barrier += 1
                    nonce = barrier
                    await ws.send(item[1])
                    await ws.send(pack({"type": "ping", "nonce": nonce}))
                    async with asyncio.timeout(10):
                        while True:
                            m = msgpack.unpackb(await ws.recv(), strict_map_key=False)
                            if m.get("type") == "error":
                                codes[str(m.get("code"))] += 1
                            elif m.get("type") == "pong" and m.get("nonce") == nonce:
                                break
                    read += 1
                    item = None
            except websockets.ConnectionClosed:
                if item is not None:
                    if ws.close_code in (1002, 1009, 4029):
                        read += 1
                        closed_by[item[0]] += 1
                    else:
                        todo.append(item)  # not known to be read: again on the next connection
            except TimeoutError:
                stalls += 1  # no pong within 10 s: the hub did not answer
            finally:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(ws.close(), 2)
                closes[str(ws.close_code)] += 1

    t0 = time.monotonic()
    await asyncio.gather(*(lane() for _ in range(lanes)))
    chan.send("fuzzed", {"read": read, "connections": connections, "stalls": stalls, "kinds": dict(kinds),
                         "error_codes": dict(codes), "close_codes": dict(closes), "closed_after": dict(closed_by),
                         "connect_failures": dict(failures), "seconds": round(time.monotonic() - t0, 1)})
    msg = await chan.recv(timeout=600)
    chan.send("bye")


# -- a reader that never reads -------------------------------------------------------------------------


async def stuck_reader(chan: Chan, ws_url: str, token: str) -> None:
    """Connect with a tiny receive buffer, subscribe, then stop reading. On ``drain`` read again until the
    connection ends and report how it ended."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    host, port = ws_url.split("//", 1)[1].split("/", 1)[0].split(":")
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (host, int(port)))
    ws = await connect(ws_url, sock=sock, subprotocols=[SUBPROTOCOL],  # type: ignore[list-item]
                       additional_headers={"Authorization": f"Bearer {token}"}, open_timeout=10, ping_interval=None,
                       max_size=16 * 1024 * 1024, max_queue=1, close_timeout=5, compression=None)
    welcome = msgpack.unpackb(await ws.recv())
    await ws.send(pack({"type": "subscribe", "cursors": welcome["heads"], "epoch": welcome["epoch"]}))
    ws.transport.pause_reading()  # from here on nothing is read: the kernel buffers fill, then the hub's
    chan.send("ready")
    msg = await chan.recv(timeout=3600)
    frames = 0
    code: int | None = None
    reason = ""
    if msg[0] == "drain":
        ws.transport.resume_reading()
        with contextlib.suppress(websockets.ConnectionClosed, TimeoutError):
            async with asyncio.timeout(30):
                async for _ in ws:
                    frames += 1
        code, reason = ws.close_code, ws.close_reason or ""
    with contextlib.suppress(Exception):
        await asyncio.wait_for(ws.close(), 2)
    chan.send("drained", frames, code, reason)
    await chan.recv(timeout=600)
    chan.send("bye")
