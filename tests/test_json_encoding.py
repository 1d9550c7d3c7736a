"""orjson where the json module was (the write path's jsonb parameters, the JSON answers): the same values stored and
the same bytes answered, with the json module taking over what orjson refuses."""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import asyncpg
import pytest
from asyncpg.pgproto.pgproto import UUID as PgUUID

from dispatch.core.commands import Escalate
from dispatch.core.domain import DeadlineKind
from dispatch.evaluation.facts import Facts
from dispatch.store.facts import json_row, save_many
from dispatch.store.pool import JsonText, json_text
from dispatch.store.writer import payload_hash
from dispatch.web.routing import ZhJSONResponse

DOCUMENT: dict[str, Any] = {
    "title": "夜间施工噪音扰民", "lat": 35.7312, "lon": 116.4887, "big": 2**63 - 1, "small": -(2**63),
    "tiny": 1e-7, "huge": 1e300, "none": None, "flags": [True, False], "nested": {"a": [1, {"b": "\u2028\n\t\"\\"}]},
    "emoji": "𠀀🚒", "control": "\x01\x1f",
}


def test_json_text_is_what_the_json_module_wrote_once_parsed() -> None:
    text = json_text(DOCUMENT)
    assert isinstance(text, JsonText)
    assert json.loads(text) == DOCUMENT


@pytest.mark.parametrize("value", [{1: "a key that is not a string"}, {"n": 2**70}, [2**64]])
def test_what_orjson_refuses_the_json_module_encodes(value: Any) -> None:
    assert json_text(value) == json.dumps(value, ensure_ascii=False, separators=(",", ":"))


async def test_a_json_text_parameter_is_stored_as_the_document_itself(conn: asyncpg.Connection) -> None:
    stored = await conn.fetchval("select $1::jsonb", json_text(DOCUMENT))
    assert isinstance(stored, dict)  # not the JSON string of its text
    assert stored == await conn.fetchval("select $1::jsonb", DOCUMENT)  # the value the json module stores
    assert await conn.fetchval("select $1::jsonb::text = $2::jsonb::text", json_text(DOCUMENT), DOCUMENT)
    assert await conn.fetchval("select $1::jsonb", "plain") == "plain"  # a str is still a JSON string


@dataclass
class _Point:
    x: int


@pytest.mark.parametrize("content", [
    {"at": datetime(2026, 11, 30, 12, 0, tzinfo=UTC), "id": uuid.UUID(int=7), "point": _Point(1)},
    {1: "int key", None: "null key", "中文": "值"},
    {"big": 2**70, "float": 1e16, "list": (1, 2), "set": {3}},
    [{"seq": 1, "assignment_id": None, "replayed": False}],
])
def test_answers_are_the_bytes_the_json_module_wrote(content: Any) -> None:
    before = json.dumps(content, ensure_ascii=False, separators=(",", ":"), default=str).encode()
    assert ZhJSONResponse(content).body == before


def _general_payload_hash(cmd: Any) -> bytes:
    """``payload_hash`` as it was written for every command before escalations had their own text."""
    return hashlib.sha256(json.dumps(cmd.model_dump(mode="json"), sort_keys=True, ensure_ascii=False).encode()).digest()


@pytest.mark.parametrize("due", [None, datetime(2026, 3, 1, 8, 0, 5, 250_000, tzinfo=UTC)])
@pytest.mark.parametrize("deadline", [datetime(2026, 3, 1, 8, 0, 0, tzinfo=UTC),
                                      datetime(2026, 3, 1, 8, 0, 0, 7, tzinfo=UTC),
                                      datetime(2026, 3, 1, 16, 0, 0, 400_000, tzinfo=timezone(timedelta(hours=8)))])
@pytest.mark.parametrize("kind", list(DeadlineKind))
def test_an_escalation_hashes_as_every_command_does(kind: DeadlineKind, deadline: datetime,
                                                    due: datetime | None) -> None:
    # the SLA engine's claims are compared by this hash on every node: the direct text must be the general one's
    cmd = Escalate(command_id=uuid.uuid4(), assignment_id=uuid.uuid4(), deadline_kind=kind, level=17,
                   deadline=deadline, due=due, fired_at=datetime(2026, 3, 1, 8, 0, 6, 123_456, tzinfo=UTC))
    assert payload_hash(cmd) == _general_payload_hash(cmd)


def test_facts_rows_are_the_values_json_row_gives() -> None:
    # ``save_many`` lets orjson write the dataclasses: the same JSON values as ``json_row`` (the single-row path)
    at = datetime(2026, 3, 1, 8, 0, 0, 123_456, tzinfo=UTC)
    facts = [Facts(uuid.uuid4(), uuid.uuid4(), 3, "N-1", "police", "noise", "urgent", "phone", None, True,
                   "dispatched", at, None, at, at.replace(microsecond=0), at, responded_at=at, esc_ack=(1, 2)),
             # as loaded from their row: asyncpg's own UUID type, which orjson does not write by itself
             Facts(PgUUID(str(uuid.uuid4())), PgUUID(str(uuid.uuid4())), 4, "N-2", "unit:7", "road", "normal",
                   "hotline", 12, False, "accepted", at, PgUUID(str(uuid.uuid4())), at, at, at, visit_resolved=True,
                   visit_satisfaction=5)]
    assert json.loads(asyncio.run(_written(facts))) == [json_row(f) for f in facts]


async def test_facts_saved_by_the_batch_read_back_as_they_were(conn: asyncpg.Connection) -> None:
    # ``save_many``'s text, read by PostgreSQL as the statement reads it: every column the value it was given
    at = datetime(2026, 3, 1, 8, 0, 0, 123_456, tzinfo=UTC)
    f = Facts(PgUUID(str(uuid.uuid4())), PgUUID(str(uuid.uuid4())), 3, "N-1", "police", "noise", "urgent",
              "phone", None, True, "dispatched", at, None, at, at, at, esc_ack=(1, 2), last_seq=9)
    row = await conn.fetchrow("select * from jsonb_populate_recordset(null::assignment_facts, $1::text::jsonb)",
                              await _written([f]))
    assert Facts.from_row(dict(row.items())) == f


async def _written(facts: list[Facts]) -> str:
    """The text ``save_many`` sends (its one parameter), caught on a connection that records it."""
    sent: list[str] = []

    class Recorder:
        async def execute(self, _sql: str, text: str) -> None:
            sent.append(text)

    await save_many(Recorder(), facts)  # type: ignore[arg-type]
    return sent[0]
