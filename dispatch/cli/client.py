"""Python client of the hub (on ``websockets``): log in, connect, resume by cursor, send commands.

Reconnects with backoff after any disconnect and resumes from the last sequence it saw, so a consumer
sees every event it may see exactly once. Commands keep their ``command_id`` across reconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import httpx
import websockets
from websockets.asyncio.client import ClientConnection, connect

from protocols.errors import ClientError
from protocols.messages import Error, Event, Message, Result, Welcome
from protocols.session import SUBPROTOCOL, ClientSession, CloseCode

log = logging.getLogger(__name__)
FATAL_CLOSES = {CloseCode.UNAUTHENTICATED, CloseCode.SESSION_REVOKED, CloseCode.UNSUPPORTED_PROTOCOL,
                CloseCode.POLICY_VIOLATION, CloseCode.REPLACED}


class CommandRefused(ClientError):
    """The hub answered a command with an error frame."""

    def __init__(self, error: Error) -> None:
        super().__init__(error.message, field=error.field)
        self.error_code = error.code


async def login(base_url: str, username: str, password: str) -> str:
    """A bearer token for ``username``."""
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:
        res = await http.post("/api/v1/login", json={"username": username, "password": password, "client": "token"})
        if res.status_code != 200:
            raise RuntimeError(f"login failed ({res.status_code}): {res.json().get('message')}")
        token: str = res.json()["token"]
        return token


class HubClient:
    """One logical connection: survives disconnects, resumes, never repeats an event."""

    def __init__(self, base_url: str | Sequence[str], token: str, *, cursors: Mapping[int, int] | None = None,
                 epoch: str | None = None, origin: str | None = None, max_queue: int = 100_000,
                 lang: str | None = None) -> None:
        bases = [base_url] if isinstance(base_url, str) else list(base_url)
        # Several hub nodes: any node serves any client, so a failed one is simply skipped.
        # ``lang`` (zh-CN or en): the language of error messages; None leaves it to the hub (zh-CN).
        query = f"?lang={lang}" if lang else ""
        self.urls = [b.replace("http://", "ws://").replace("https://", "wss://").rstrip("/") + "/ws" + query
                     for b in bases]
        self._next_url = 0
        self.token = token
        self.origin = origin
        self._cursors = dict(cursors or {})
        self._epoch = epoch
        self.welcome: Welcome | None = None
        self.messages: asyncio.Queue[Message] = asyncio.Queue(max_queue)
        self.connected = asyncio.Event()
        self.caught_up = asyncio.Event()
        self.connections = 0
        self.closed_with: tuple[int, str] | None = None
        self._session: ClientSession | None = None
        self._ws: ClientConnection | None = None
        self._pending: dict[str, tuple[bytes, asyncio.Future[dict[str, Any]]]] = {}
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def cursors(self) -> dict[int, int]:
        return self._session.cursors if self._session is not None else dict(self._cursors)

    async def start(self) -> HubClient:
        self._task = asyncio.create_task(self._run(), name="hub-client")
        return self

    async def __aenter__(self) -> HubClient:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        self._stopping = True
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    async def drop(self) -> None:
        """Cut the current connection abruptly (tests); the client reconnects and resumes."""
        if self._ws is not None:
            self._ws.transport.abort()

    # -- use ----------------------------------------------------------------------------------------

    async def next_event(self, timeout: float = 10.0, predicate: Callable[[Event], bool] | None = None) -> Event:
        """The next event (skipping other messages and events that do not match ``predicate``)."""
        async with asyncio.timeout(timeout):
            while True:
                msg = await self.messages.get()
                if isinstance(msg, Event) and (predicate is None or predicate(msg)):
                    return msg

    async def command(self, name: str, args: Mapping[str, Any] | None = None, *, command_id: str | None = None,
                      timeout: float = 10.0) -> dict[str, Any]:
        """Send a command and wait for its result; resent unchanged after a reconnect."""
        session = self._session or ClientSession()
        command_id, frame = session.command_frame(name, dict(args or {}), command_id)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[command_id] = (frame, future)
        if self._ws is not None and self.connected.is_set():
            with contextlib.suppress(websockets.ConnectionClosed):
                await self._ws.send(frame)
        try:
            async with asyncio.timeout(timeout):
                return await future
        finally:
            self._pending.pop(command_id, None)

    # -- the connection loop ------------------------------------------------------------------------

    async def _run(self) -> None:
        delay = 0.1
        while not self._stopping:
            url = self.urls[self._next_url % len(self.urls)]
            try:
                await self._connect_once(url)
                delay = 0.1
            except (OSError, websockets.InvalidHandshake, websockets.ConnectionClosed, TimeoutError) as exc:
                log.debug("hub connection to %s failed: %r", url, exc)
                self._next_url += 1
            if self.closed_with is not None and self.closed_with[0] in FATAL_CLOSES:
                log.error("hub closed the connection for good: %s %s", *self.closed_with)
                return
            if self._stopping:
                return
            await asyncio.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 10.0)

    @property
    def url(self) -> str:
        return self.urls[self._next_url % len(self.urls)]

    async def _connect_once(self, url: str) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        session = ClientSession(self._session.cursors if self._session else self._cursors,
                                self._session.epoch if self._session else self._epoch)
        async with connect(url, subprotocols=[SUBPROTOCOL], additional_headers=headers,  # type: ignore[list-item]
                           origin=self.origin, open_timeout=10, max_size=16 * 1024 * 1024,  # type: ignore[arg-type]
                           max_queue=None) as ws:
            self._ws = ws
            self._session = session
            self.connections += 1
            self.caught_up.clear()
            try:
                async for data in ws:
                    if isinstance(data, str):
                        continue
                    session.receive_data(data)
                    for msg in session.events_received():
                        await self._handle(ws, session, msg)
                    for frame in session.data_to_send():
                        await ws.send(frame)
                    if session.close_requested:
                        await ws.close(*session.close_requested)
                        break
            finally:
                self.connected.clear()
                self._ws = None
                if ws.close_code is not None:
                    self.closed_with = (ws.close_code, ws.close_reason or "")

    async def _handle(self, ws: ClientConnection, session: ClientSession, msg: Message) -> None:
        if isinstance(msg, Welcome):
            self.welcome = msg
            await ws.send(session.subscribe_frame())
            self.connected.set()
            for frame, _future in list(self._pending.values()):
                await ws.send(frame)
            return
        if isinstance(msg, Result):
            entry = self._pending.get(msg.command_id)
            if entry and not entry[1].done():
                entry[1].set_result(dict(msg.result))
            return
        if isinstance(msg, Error) and msg.command_id is not None:
            entry = self._pending.get(msg.command_id)
            if entry and not entry[1].done():
                entry[1].set_exception(CommandRefused(msg))
            return
        if msg.TYPE == "caught_up":
            self.caught_up.set()
        await self.messages.put(msg)
