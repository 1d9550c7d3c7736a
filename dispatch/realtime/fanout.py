"""Per-node fan-out: one LISTEN connection wakes the node; it reads each township's new events once,
encodes them once, and pushes them to the outboxes of its own subscribed sockets.

NOTIFY is only a wake-up: what is delivered is always read from the events table by sequence, so a lost
notification (listener reconnect, PostgreSQL restart) costs latency, never an event — a periodic poll of
the township heads backs it up.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import asyncpg

from dispatch.core import policy
from dispatch.core.domain import Actor
from dispatch.store.eventlog import NOTIFY_CHANNEL, SELECT_DELIVERY_AFTER_EACH, SELECT_HEADS, EventRecord
from protocols.messages import Error, encode_event, to_ms

if TYPE_CHECKING:
    from dispatch.node.state import HubState

log = logging.getLogger(__name__)

POLL_S = 2.0
# A node reconnects its listener at least this often while the database is away, so live delivery resumes
# within about a second of it returning (the poll above covers the NOTIFYs missed meanwhile).
LISTEN_RETRY_MAX_S = 1.0


@dataclass(eq=False, slots=True)
class Subscriber:
    """What the fan-out needs of one socket: who it is, which events it sees, and a non-blocking push."""

    actor: Actor
    # Queue a frame; the second argument is when this node heard of the event's commit (loop time), for the
    # fan-out lag metric, or None.
    push: Callable[[bytes, float | None], None]
    # township → the last seq pushed to it (or replayed up to): live delivery skips what it already has. It
    # advances only on events this subscriber sees; delivery is in seq order, so that is enough to dedup.
    cursors: dict[int, int] = field(default_factory=dict)
    live: bool = False  # False while its replay runs; the replay hands over to live delivery
    # Which events it sees (``policy.listen_key``): the fan-out's index key; None: none.
    key: policy.ListenKey | None = field(init=False)

    def __post_init__(self) -> None:
        self.key = policy.listen_key(self.actor)


@dataclass(slots=True)
class Encoded:
    """One event encoded once for the township's operators and once, masked, for everyone else."""

    record: EventRecord
    _full: bytes | None = None
    _masked: bytes | None = None

    def frame_for(self, actor: Actor) -> bytes:
        full = actor.role.value == "operator" and actor.township_id == self.record.township_id
        if full:
            if self._full is None:
                self._full = event_frame(self.record, self.record.body)
            return self._full
        if self._masked is None:
            self._masked = event_frame(self.record, policy.redact(self.record.body, actor, self.record.township_id))
        return self._masked


def event_frame(rec: EventRecord, body: dict[str, Any]) -> bytes:
    return encode_event(
        rec.township_id, rec.seq, rec.type, str(rec.call_id),
        None if rec.assignment_id is None else str(rec.assignment_id),
        to_ms(rec.at), {"id": rec.actor_id, "name": rec.actor_name, "role": rec.actor_role},
        rec.call_state or "", rec.assignment_state, body,
    )


def undeliverable_notice(rec: EventRecord) -> bytes:
    """The ``error`` frame sent in place of an event that cannot be encoded (see PROTOCOL.md): encoded once
    for every socket, so its message is in both languages, Chinese first."""
    return Error(command_id=None, code="undeliverable_event",
                 message=f"事件 {rec.township_id}:{rec.seq}（呼叫 {rec.call_id}）无法送达，请刷新该呼叫 / "
                         f"event {rec.township_id}:{rec.seq} of call {rec.call_id} could not be delivered; "
                         f"reload the call", field=None).encode()


class Fanout:
    def __init__(self, hub: HubState) -> None:
        self.hub = hub
        self.delivered: dict[int, int] = {}  # township → last seq pushed to live subscribers on this node
        self._wanted: dict[int, int] = {}  # township → highest seq we were told about
        # Subscribers by ``policy.listen_key``: an event is looked up under the few keys that see it
        # (``_keys_of``), so idle sockets that it is not for cost it nothing.
        self._index: dict[policy.ListenKey, set[Subscriber]] = {}
        self._wake = asyncio.Event()
        self._listener: asyncpg.Connection | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False
        self.on_records: list[Callable[[list[EventRecord]], Awaitable[None]]] = []
        # Other wake-ups (presence) ride on the same listening connection: one per node.
        self.extra_channels: dict[str, Callable[[Any, int, str, object], None]] = {}
        # Called after the listener reconnected: NOTIFYs sent meanwhile (presence, revocations) were lost.
        self.on_reconnect: list[Callable[[], None]] = []
        self.undeliverable = 0  # events that could not be encoded for a subscriber (logged, reported to it)
        # township → (seq, loop time) of each head this node was told of, oldest first: when it heard that the
        # events up to that seq had committed (NOTIFY is delivered at commit), the start of the fan-out lag.
        self._heard: dict[int, deque[tuple[int, float]]] = {}

    # -- subscribers ------------------------------------------------------------------------------

    def add(self, sub: Subscriber) -> None:
        if sub.key is not None:  # an actor that sees no event is never fed
            self._index.setdefault(sub.key, set()).add(sub)

    def remove(self, sub: Subscriber) -> None:
        if sub.key is None:
            return
        subs = self._index.get(sub.key)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._index[sub.key]

    def subscribers(self) -> Iterable[Subscriber]:
        return [sub for subs in self._index.values() for sub in subs]

    @staticmethod
    def _keys_of(rec: EventRecord) -> list[policy.ListenKey]:
        """Every ``listen_key`` that sees ``rec`` (``visible_to``'s rule, inverted)."""
        tid = rec.township_id
        keys: list[policy.ListenKey] = [(tid, None), (None, None)]
        for target in dict.fromkeys(rec.audience):
            keys.append((tid, target))
            keys.append((None, target))
        return keys

    # -- life cycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        await self._listen()
        # Heads are read after LISTEN is on, so nothing committed in between is missed.
        for row in await self.hub.pool.fetch(SELECT_HEADS):
            self.delivered[row["township_id"]] = row["seq"]
            self._wanted[row["township_id"]] = row["seq"]
        self._tasks = [asyncio.create_task(self._run(), name="fanout"),
                       asyncio.create_task(self._poll(), name="fanout-poll")]

    async def stop(self) -> None:
        self._closing = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._listener is not None and not self._listener.is_closed():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._listener.close(), 2)

    async def _listen(self) -> None:
        conn = await asyncpg.connect(self.hub.dsn)
        await conn.add_listener(NOTIFY_CHANNEL, self._notified)
        for channel, callback in self.extra_channels.items():
            await conn.add_listener(channel, callback)
        conn.add_termination_listener(self._lost)
        self._listener = conn

    def _notified(self, _conn: Any, _pid: int, _channel: str, payload: object) -> None:
        tid_s, _, seq_s = str(payload).partition(":")
        try:
            tid, seq = int(tid_s), int(seq_s)
        except ValueError:
            log.warning("ignoring malformed notification %r", payload)
            return
        if seq > self._wanted.get(tid, 0):
            self._wanted[tid] = seq
            self._heard_of(tid, seq)
            self._wake.set()

    def _heard_of(self, tid: int, seq: int) -> None:
        self._heard.setdefault(tid, deque()).append((seq, asyncio.get_running_loop().time()))

    def _heard_at(self, tid: int, seq: int) -> float | None:
        """When this node first heard that event ``seq`` had committed (None: it was never told, e.g. at start)."""
        heard = self._heard.get(tid)
        while heard and heard[0][0] < seq:
            heard.popleft()  # delivered in order: older heads are done with
        return heard[0][1] if heard else None

    def _lost(self, conn: Any) -> None:
        if not self._closing:
            log.warning("fan-out listener connection lost; reconnecting")
            self._tasks.append(asyncio.get_running_loop().create_task(self._relisten(conn), name="fanout-relisten"))

    async def _relisten(self, old: Any) -> None:
        with contextlib.suppress(Exception):
            old.terminate()
        delay = 0.1
        while not self._closing:
            try:
                await self._listen()
                self._wake.set()  # whatever was committed meanwhile is read by sequence, not from NOTIFY
                for hook in self.on_reconnect:
                    hook()
                return
            except Exception as exc:  # any failure: keep trying, the node must hear of new events again
                log.warning("fan-out listener: %r; retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, LISTEN_RETRY_MAX_S)

    async def _poll(self) -> None:
        """Backs NOTIFY up: a missed wake-up is found within POLL_S."""
        while True:
            await asyncio.sleep(POLL_S)
            try:
                rows = await self.hub.pool.fetch(SELECT_HEADS)
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("fan-out poll failed: %r", exc)
                continue
            for row in rows:
                if row["seq"] > self._wanted.get(row["township_id"], 0):
                    self._wanted[row["township_id"]] = row["seq"]
                    self._heard_of(row["township_id"], row["seq"])
                    self._wake.set()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self._drain()
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("fan-out read failed: %r; retrying", exc)
                await asyncio.sleep(0.2)
                self._wake.set()
            except Exception:
                log.exception("fan-out failed; retrying")
                await asyncio.sleep(0.2)
                self._wake.set()

    async def _drain(self) -> None:
        """Every township behind what it was told of, one page of each per round trip (not one round trip per
        township: under load each await waits a turn of a busy loop, so a pass over 50 townships took 100s of
        ms); then the hooks, once per page, for all of them."""
        batch = self.hub.cfg.realtime.replay_batch
        behind = [tid for tid, wanted in self._wanted.items() if self.delivered.get(tid, 0) < wanted]
        while behind:
            rows = await self.hub.pool.fetch(SELECT_DELIVERY_AFTER_EACH, behind,
                                             [self.delivered.get(tid, 0) for tid in behind], batch)
            if not rows:
                return
            records = [EventRecord.from_row(r) for r in rows]
            for _tid, of_township in itertools.groupby(records, key=lambda rec: rec.township_id):
                self.deliver(list(of_township))
            for hook in self.on_records:
                try:
                    await hook(records)
                except Exception:
                    log.exception("event hook failed")
            # Another page of those that had one full (and still are behind); the others are done.
            full = Counter(rec.township_id for rec in records)
            behind = [tid for tid, n in full.items()
                      if n >= batch and self.delivered.get(tid, 0) < self._wanted.get(tid, 0)]

    def frame_or_notice(self, enc: Encoded, actor: Actor) -> bytes:
        """The event's frame for ``actor``; if it cannot be encoded, an ``error`` frame naming it instead, so
        one bad event never stalls the township's delivery and the client learns which event it missed."""
        try:
            return enc.frame_for(actor)
        except (OverflowError, TypeError, ValueError) as exc:
            rec = enc.record
            self.undeliverable += 1
            log.error("event %s:%s (%s) cannot be encoded for delivery: %r", rec.township_id, rec.seq, rec.type, exc)
            return undeliverable_notice(rec)

    def deliver(self, records: list[EventRecord]) -> None:
        """Push to every live local subscriber that may see each record; synchronous, never waits."""
        index = self._index
        for rec in records:
            tid, seq = rec.township_id, rec.seq
            enc = Encoded(rec)
            heard = self._heard_at(tid, seq)
            for key in self._keys_of(rec):
                subs = index.get(key)
                if not subs:
                    continue
                for sub in tuple(subs):  # a push may close a socket; the set changes only after an await
                    if not sub.live or sub.cursors.get(tid, 0) >= seq:
                        continue
                    sub.cursors[tid] = seq
                    sub.push(self.frame_or_notice(enc, sub.actor), heard)
            self.delivered[tid] = seq
