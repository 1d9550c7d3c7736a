"""A real HTTP SMS gateway stand-in for the notification tests, and a hub whose [notify] sends SMS to it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator
from typing import Any

from dispatch.core.clock import ManualClock
from dispatch.core.config import Config, NotifyConfig, SmsGateway
from tests.conftest import Hub, free_port, start_hub


class Gateway:
    """Listens on a fixed port once started (before: connection refused, the gateway is down); answers 200
    and keeps every body it was sent."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.received: list[dict[str, Any]] = []
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        m = re.search(rb"content-length:\s*(\d+)", head, re.IGNORECASE)
        body = await reader.readexactly(int(m.group(1)) if m else 0)
        self.received.append(json.loads(body))
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        await writer.drain()
        writer.close()


@contextlib.asynccontextmanager
async def sms_hub(cfg: Config, dsn: str, clock: ManualClock) -> AsyncIterator[tuple[Hub, Gateway]]:
    """A hub sending SMS (retry after 2 s, give up after 5 s) to a gateway that is down until started."""
    gateway = Gateway(free_port())
    notify = NotifyConfig(channels=["sms"], sms=SmsGateway(url=f"http://127.0.0.1:{gateway.port}/send"),
                          retry_initial_s=2, give_up_after_s=5, timeout_s=2)
    handle, server, task = await start_hub(cfg.model_copy(update={"notify": notify}), dsn, clock)
    try:
        yield handle, gateway
    finally:
        server.should_exit = True
        await task
        await gateway.stop()
