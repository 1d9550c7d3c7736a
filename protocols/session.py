"""Sans-I/O protocol sessions: feed received frames in, drain frames to send and requests out.

No ``await``, no socket and no clock: the adapter (``dispatch/hub.py``, ``dispatch/client.py``)
passes the time in, writes what ``data_to_send()`` returns and closes the socket with
``close_requested`` once that is set. The same objects are tested by feeding literal bytes.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Mapping

from protocols.errors import FrameTooLarge, InvalidMessage, ProtocolViolation, RateLimited
from protocols.localize import DEFAULT_LANG, Lang
from protocols.messages import (
    CLIENT_TYPES,
    SERVER_TYPES,
    CaughtUp,
    Command,
    Error,
    Event,
    Limits,
    Map,
    Message,
    Ping,
    Pong,
    Result,
    Resync,
    Scope,
    Subscribe,
    User,
    Welcome,
    decode,
    encode,
)

SUBPROTOCOL = "xianghu.v1"


class CloseCode(enum.IntEnum):
    """Every WebSocket close code the hub uses (documented in PROTOCOL.md)."""

    NORMAL = 1000
    PROTOCOL_ERROR = 1002
    POLICY_VIOLATION = 1008  # Origin refused
    MESSAGE_TOO_BIG = 1009
    INTERNAL_ERROR = 1011
    SERVICE_RESTART = 1012  # sent by the server layer (uvicorn) to sockets still open when it stops
    HEARTBEAT_TIMEOUT = 4000
    UNAUTHENTICATED = 4001
    UNSUPPORTED_PROTOCOL = 4002
    TOO_SLOW = 4008  # outbox full: resume from your cursor
    SESSION_REVOKED = 4010
    REPLACED = 4013  # the account opened more sockets than allowed: its oldest is closed
    RATE_LIMITED = 4029


MAX_CLOSE_REASON_BYTES = 123  # RFC 6455: a close frame's payload is at most 125 bytes


def close_reason(text: str) -> str:
    """``text`` cut to fit a close frame (UTF-8, whole characters)."""
    return text.encode()[:MAX_CLOSE_REASON_BYTES].decode(errors="ignore")


class State(enum.Enum):
    CONNECTED = "connected"
    WELCOMED = "welcomed"
    SUBSCRIBED = "subscribed"
    CLOSED = "closed"


class ServerSession:
    """One client connection as the hub sees it.

    The pending list drained by ``data_to_send()`` is the connection's outbox: the adapter drains
    it only as fast as the socket accepts, so a client that falls behind fills it and is closed
    with 4008 instead of making a broadcast wait.
    """

    __slots__ = ("_last_received", "_outbox", "_ping_nonce", "_ping_sent_at", "_rate_warned", "_refilled_at",
                 "_requests", "_tokens", "burst", "close_requested", "heartbeat_s", "lang", "max_frame_bytes",
                 "max_violations", "outbox_frames", "rate_per_s", "state", "violations")

    def __init__(
        self,
        max_frame_bytes: int = 65536,
        rate_per_s: float = 20.0,
        burst: int = 40,
        outbox_frames: int = 1000,
        *,
        heartbeat_s: float = 20.0,
        max_violations: int = 5,
        lang: Lang = DEFAULT_LANG,
    ) -> None:
        self.max_frame_bytes = max_frame_bytes
        self.lang = lang  # the language of this connection's error messages (the handshake's ``lang``)
        self.rate_per_s = rate_per_s
        self.burst = burst
        self.outbox_frames = outbox_frames
        self.heartbeat_s = heartbeat_s
        self.max_violations = max_violations
        self.state = State.CONNECTED
        self.close_requested: tuple[int, str] | None = None
        self.violations = 0
        self._outbox: list[bytes] = []
        self._requests: list[Message] = []
        self._tokens = float(burst)
        self._refilled_at: float | None = None
        self._rate_warned = False
        self._last_received: float | None = None
        self._ping_sent_at: float | None = None
        self._ping_nonce = 0

    @property
    def limits(self) -> Limits:
        return Limits(
            max_frame_bytes=self.max_frame_bytes,
            rate_per_s=self.rate_per_s,
            burst=self.burst,
            heartbeat_s=self.heartbeat_s,
            outbox_frames=self.outbox_frames,
        )

    # --- input -------------------------------------------------------------------------------------

    def receive_data(self, data: bytes, now: float) -> None:
        """Take one binary frame received at ``now`` (seconds, any monotonic clock)."""
        if self.state is State.CLOSED:
            return
        self._last_received = now
        if len(data) > self.max_frame_bytes:
            exc = FrameTooLarge(f"frame of {len(data)} bytes exceeds the limit of {self.max_frame_bytes}")
            self.send(Error.from_exception(exc, lang=self.lang))
            self.close(CloseCode.MESSAGE_TOO_BIG, "frame too large")
            return
        if not self._take_token(now):
            return
        try:
            msg = decode(data)
            if msg.TYPE not in CLIENT_TYPES:
                raise InvalidMessage(f"{msg.TYPE!r} is not sent by clients", field="type")
            self._handle(msg)
        except ProtocolViolation as exc:
            self._violation(exc)

    def receive_text(self, text: str, now: float) -> None:
        """A text frame: always a violation (frames are binary msgpack)."""
        if self.state is State.CLOSED:
            return
        self._last_received = now
        if self._take_token(now):
            self._violation(ProtocolViolation("text frame: frames must be binary msgpack"))

    def _handle(self, msg: Message) -> None:
        if isinstance(msg, Ping):
            self.send(Pong(nonce=msg.nonce))
            return
        if isinstance(msg, Subscribe):
            if self.state is State.SUBSCRIBED:
                raise InvalidMessage("already subscribed: one subscribe per connection", field="type")
            self.state = State.SUBSCRIBED  # the message itself goes to the adapter, not kept here
        elif isinstance(msg, Pong):
            self._ping_sent_at = None
        self._requests.append(msg)

    def _violation(self, exc: ProtocolViolation) -> None:
        self.violations += 1
        command_id = exc.command_id if isinstance(exc, InvalidMessage) else None
        self.send(Error.from_exception(exc, command_id, self.lang))
        if self.violations > self.max_violations:
            self.close(CloseCode.PROTOCOL_ERROR, f"too many protocol violations ({self.violations})")

    def _take_token(self, now: float) -> bool:
        """Token bucket: a frame costs one token; ``rate_per_s`` refill, ``burst`` at most."""
        if self._refilled_at is not None:
            elapsed = max(0.0, now - self._refilled_at)
            self._tokens = min(float(self.burst), self._tokens + elapsed * self.rate_per_s)
        self._refilled_at = now
        if self._tokens >= float(self.burst):
            self._rate_warned = False  # quiet long enough: the next excess gets a warning again
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        if self._rate_warned:
            self.close(CloseCode.RATE_LIMITED, "rate limit exceeded")
            return False
        self._rate_warned = True
        retry_after = (1.0 - self._tokens) / self.rate_per_s
        exc = RateLimited(
            f"more than {self.rate_per_s:g} frames/s (burst {self.burst}); frame dropped, "
            f"retry after {retry_after:.3f} s",
            retry_after=retry_after,
        )
        self.send(Error.from_exception(exc, lang=self.lang))
        return False

    def requests_received(self) -> list[Message]:
        """Drain what the hub must act on: ``Subscribe``, ``Command`` and ``Pong`` messages."""
        requests, self._requests = self._requests, []
        return requests

    # --- output ------------------------------------------------------------------------------------

    def send_welcome(
        self,
        *,
        user: User,
        scope: Scope,
        heads: list[tuple[int, int]],
        epoch: str,
        server_time: int,
    ) -> None:
        """Queue the welcome (first frame of every connection); ``server_time`` in wire ms."""
        if self.state is not State.CONNECTED:
            raise RuntimeError(f"welcome must be the first frame (state is {self.state.value})")
        self.state = State.WELCOMED
        welcome = Welcome(
            server_time=server_time, user=user, scope=scope, heads=heads, epoch=epoch, limits=self.limits
        )
        self.send(welcome)

    def send_result(self, command_id: str, result: Map) -> None:
        self.send(Result(command_id=command_id, result=result))

    def send(self, msg: Message) -> None:
        """Queue one message; ignored once closed."""
        self.send_encoded(encode(msg))

    def send_encoded(self, frame: bytes) -> None:
        """Queue an already encoded frame (fan-out encodes an event once for every socket)."""
        if self.state is State.CLOSED:
            return
        if len(self._outbox) >= self.outbox_frames:
            self._outbox.clear()  # it would not be read in time anyway; the client resumes
            self.close(CloseCode.TOO_SLOW, "too slow: outbox full, resume from your cursor")
            return
        self._outbox.append(frame)

    def data_to_send(self) -> list[bytes]:
        """Drain the queued frames, oldest first."""
        frames, self._outbox = self._outbox, []
        return frames

    @property
    def pending(self) -> int:
        """Frames queued and not yet drained."""
        return len(self._outbox)

    def close(self, code: int, reason: str) -> None:
        """Ask the adapter to close with ``code``; the first request wins, later ones are ignored."""
        if self.close_requested is None:
            self.close_requested = (int(code), close_reason(reason))
        self.state = State.CLOSED

    def heartbeat_due(self) -> float | None:
        """The earliest ``now`` at which ``heartbeat`` would act (ping or close): calling it earlier does
        nothing, so a caller may wait until then (a frame received meanwhile only makes it later). -inf
        before the first call (which starts the clock); None once closed."""
        if self.state is State.CLOSED:
            return None
        if self._last_received is None:
            return float("-inf")
        if self._ping_sent_at is None or self._ping_sent_at < self._last_received:
            return self._last_received + self.heartbeat_s
        return max(self._last_received + 2 * self.heartbeat_s, self._ping_sent_at + self.heartbeat_s)

    def heartbeat(self, now: float) -> None:
        """Call periodically: pings an idle client, closes 4000 after 2 × heartbeat_s of silence — and never
        sooner than heartbeat_s after its ping, so a call that comes late (a busy loop) gives a client that
        answers its pings no less time to do so."""
        if self.state is State.CLOSED:
            return
        if self._last_received is None:
            self._last_received = now  # the first call starts the clock
        idle = now - self._last_received
        pinged = self._ping_sent_at is not None and self._ping_sent_at >= self._last_received
        if pinged and idle >= 2 * self.heartbeat_s and now - (self._ping_sent_at or now) >= self.heartbeat_s:
            self.close(CloseCode.HEARTBEAT_TIMEOUT, "heartbeat timeout")
        elif idle >= self.heartbeat_s and not pinged:
            self._ping_nonce += 1
            self._ping_sent_at = now
            self.send(Ping(nonce=self._ping_nonce))


class ClientSession:
    """The client side: de-duplicates events by per-township cursor and remembers the epoch.

    Create one per connection, passing the ``cursors`` and ``epoch`` of the previous one to resume.
    """

    def __init__(self, cursors: Mapping[int, int] | None = None, epoch: str | None = None) -> None:
        self._cursors: dict[int, int] = dict(cursors or {})
        self.epoch = epoch
        self.welcome: Welcome | None = None
        self.close_requested: tuple[int, str] | None = None
        self.protocol_error: ProtocolViolation | None = None
        self._received: list[Message] = []
        self._outbox: list[bytes] = []

    @property
    def cursors(self) -> dict[int, int]:
        """Last township sequence seen, per township (a copy)."""
        return dict(self._cursors)

    def receive_data(self, data: bytes) -> None:
        """Take one frame from the server; a malformed one requests close 1002 and stops the session."""
        if self.close_requested is not None:
            return
        try:
            msg = decode(data)
            if msg.TYPE not in SERVER_TYPES:
                raise InvalidMessage(f"{msg.TYPE!r} is not sent by servers", field="type")
        except ProtocolViolation as exc:
            self.protocol_error = exc
            self.close_requested = (CloseCode.PROTOCOL_ERROR, close_reason(exc.message))
            return
        if isinstance(msg, Ping):
            self._outbox.append(encode(Pong(nonce=msg.nonce)))
            return
        if isinstance(msg, Welcome):
            if self.epoch is not None and msg.epoch != self.epoch:
                self._cursors.clear()  # another event log: old sequence numbers mean nothing
            self.epoch = msg.epoch
            self.welcome = msg
        elif isinstance(msg, Event):
            if msg.seq <= self._cursors.get(msg.township_id, 0):
                return  # already seen (replay overlapping live delivery, or a resent frame)
            self._cursors[msg.township_id] = msg.seq
        elif isinstance(msg, CaughtUp):
            # Everything up to each head that this client may see has been delivered before this.
            for township_id, head in msg.heads:
                if head > self._cursors.get(township_id, 0):
                    self._cursors[township_id] = head
        elif isinstance(msg, Resync):
            self._cursors[msg.township_id] = msg.head
        self._received.append(msg)

    def events_received(self) -> list[Message]:
        """Drain decoded messages (pings are answered, duplicate events dropped)."""
        received, self._received = self._received, []
        return received

    def data_to_send(self) -> list[bytes]:
        """Drain frames the session produced by itself (pongs)."""
        frames, self._outbox = self._outbox, []
        return frames

    def subscribe_frame(self) -> bytes:
        """The subscribe to send after connecting: current cursors and the last epoch seen."""
        cursors = sorted(self._cursors.items())
        return encode(Subscribe(cursors=cursors, epoch=self.epoch))

    def command_frame(
        self, name: str, args: Map | None = None, command_id: str | None = None
    ) -> tuple[str, bytes]:
        """A command frame; keep the id and pass it again to retry with no second effect."""
        command_id = command_id or str(uuid.uuid4())
        return command_id, encode(Command(command_id=command_id, name=name, args=args or {}))

    def ping_frame(self, nonce: int) -> bytes:
        return encode(Ping(nonce=nonce))
