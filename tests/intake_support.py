"""Builders shared by the intake tests (Open311, hotline): integrations made through the admin API, signing."""

from __future__ import annotations

import json
from typing import Any

import asyncpg

from dispatch.notify.channels import webhook_signature
from tests.conftest import Hub


async def add_integration(hub: Hub, kind: str, name: str, **fields: Any) -> tuple[dict[str, Any], str]:
    """A new integration made by the demo admin; returns it and its credential (api_key or secret)."""
    async with await hub.login("admin") as admin:
        res = await admin.post("/api/v1/admin/integrations",
                               json={"kind": kind, "name": name, "display_name": fields.pop("display_name", name),
                                     **fields})
    assert res.status_code == 201, res.text
    data = res.json()
    return data["integration"], data["api_key"] or data["secret"]


def signed(name: str, secret: str, body: bytes, timestamp: int) -> dict[str, str]:
    """The hotline's headers for ``body`` sent at ``timestamp`` (unix seconds)."""
    stamp = str(timestamp)
    return {"X-Xianghu-Integration": name, "X-Xianghu-Timestamp": stamp,
            "X-Xianghu-Signature": webhook_signature(secret, stamp, body), "Content-Type": "application/json"}


def body_of(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, ensure_ascii=False).encode()


async def grid_id(hub: Hub, township: str, name: str) -> int:
    conn = await asyncpg.connect(hub.dsn)
    try:
        found: int = await conn.fetchval("select g.id from grids g join townships t on t.id = g.township_id"
                                         " where t.code = $1 and g.name = $2", township, name)
    finally:
        await conn.close()
    return found
