"""The demo's SMS gateway (only under ``xianghu demo``, never ``serve``): the hub's SMS channel sends to it
like to a real HTTP gateway, and ``/demo/phones/`` shows what each phone received. A switch takes the
gateway down, so a visitor sees the console warn and the messages go out, in order, when it returns."""

from __future__ import annotations

from collections import deque
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from dispatch.core.config import Config, NotifyConfig, SmsGateway

KEEP = 500  # messages kept in memory


class DemoGateway:
    def __init__(self) -> None:
        self.messages: deque[dict[str, Any]] = deque(maxlen=KEEP)
        self.down = False
        self.refused = 0

    async def send(self, request: Request) -> Response:
        if self.down:
            self.refused += 1
            return JSONResponse({"error": "gateway down (demo switch)"}, status_code=503)
        try:
            body = await request.json()
            phone, text = str(body["phone"]), str(body["text"])
        except (ValueError, KeyError, TypeError):
            return JSONResponse({"error": "expected {\"phone\": …, \"text\": …}"}, status_code=400)
        self.messages.appendleft({"phone": phone, "text": text, "key": request.headers.get("idempotency-key")})
        return JSONResponse({"ok": True})

    async def messages_json(self, request: Request) -> Response:
        return JSONResponse({"down": self.down, "refused": self.refused, "messages": list(self.messages)})

    async def switch(self, request: Request) -> Response:
        try:
            self.down = bool((await request.json())["down"])
        except (ValueError, KeyError, TypeError):
            return JSONResponse({"error": "expected {\"down\": true|false}"}, status_code=400)
        return JSONResponse({"down": self.down})

    def routes(self) -> list[Route]:
        return [Route("/demo/sms/send", self.send, methods=["POST"]),
                Route("/demo/sms/messages", self.messages_json, methods=["GET"]),
                Route("/demo/sms/state", self.switch, methods=["POST"])]


def with_demo_sms(cfg: Config, port: int) -> Config:
    """The configuration with SMS going to the demo gateway on this hub, unless SMS is configured already."""
    if cfg.notify.sms is not None:
        return cfg
    notify = NotifyConfig.model_validate({
        **cfg.notify.model_dump(), "channels": sorted({*cfg.notify.channels, "sms"}),
        "sms": SmsGateway(url=f"http://127.0.0.1:{port}/demo/sms/send").model_dump()})
    return cfg.model_copy(update={"notify": notify})
