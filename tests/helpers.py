"""Small builders shared by tests."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import httpx


def cid() -> str:
    return str(uuid.uuid4())


def new_call(**overrides: Any) -> dict[str, Any]:
    body = {
        "command_id": cid(), "source": "hotline_12345", "category": "parking", "title": "小区门口车辆乱停",
        "description": "晚高峰车辆堵住消防通道", "address": "义桥镇幸福路12号", "priority": "urgent",
        "reporter_name": "王小明", "reporter_phone": "13812345678", "targets": ["police", "transport"],
    }
    body.update(overrides)
    return body


async def post(client: httpx.AsyncClient, path: str, body: dict[str, Any] | None = None,
               expect: int | None = 200) -> dict[str, Any]:
    res = await client.post(path, json={"command_id": cid(), **(body or {})})
    if expect is not None:
        assert res.status_code == expect, res.text
    data: dict[str, Any] = res.json()
    return data


def assignment_of(call: dict[str, Any], target: str, state: str | None = None) -> dict[str, Any]:
    for a in call["assignments"]:
        if a["target"] == target and (state is None or a["state"] == state):
            return a
    raise AssertionError(f"no assignment for {target} in state {state}: {call['assignments']}")


async def until(predicate: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    """Wait (bounded) for a state another task sets, polling: for counters with no event to await."""
    try:
        async with asyncio.timeout(timeout):
            while not predicate():  # noqa: ASYNC110 - the state has no event of its own to wait on
                await asyncio.sleep(0.01)
    except TimeoutError:
        raise AssertionError(f"{what} did not happen within {timeout} s") from None
