"""Operators' history: calls found by reporter phone (full, masked or last four digits) within the reader's
scope and never matched on digits the reader cannot see; the repeat-caller count on a call's detail."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from dispatch.core import phone_search
from dispatch.core.phone_search import Shape
from tests.conftest import Hub
from tests.helpers import new_call, post

MOBILE = "13812345678"


def test_phone_queries_normalize_and_refuse_what_they_cannot_match() -> None:
    assert phone_search.normalize("138 1234-5678") == MOBILE
    assert phone_search.normalize("138＊＊＊＊5678") == "138****5678"
    for bad in ("12", "138**5678", "abc5678", "1" * 21):
        with pytest.raises(ValueError, match="last 4 digits"):
            phone_search.normalize(bad)


def test_masked_readers_are_matched_on_the_mask_only() -> None:
    assert phone_search.phone_match(MOBILE, full_view=True) == phone_search.PhoneMatch(MOBILE, Shape.ANY)
    assert phone_search.phone_match("345678", full_view=True).like == "%345678"
    # The hidden middle digits and a longer suffix are dropped for a reader who sees only the mask.
    assert phone_search.phone_match(MOBILE, full_view=False) == phone_search.PhoneMatch("138____5678", Shape.MOBILE)
    assert phone_search.phone_match("345678", full_view=False) == phone_search.PhoneMatch("%5678", Shape.SHOWS_SUFFIX)
    assert phone_search.phone_match("057188885678", full_view=False).like == "%5678"


async def listed(client: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    res = await client.get("/api/v1/calls", params=params)
    assert res.status_code == 200, res.text
    calls: list[dict[str, Any]] = res.json()["calls"]
    return calls


async def seed(hub: Hub) -> dict[str, dict[str, Any]]:
    op = await hub.login("op1.yiqiao")
    async with op:
        made = {}
        for key, phone in (("first", MOBILE), ("again", MOBILE), ("other_mobile", "13900005678"),
                           ("landline", "0571-8888 5678"), ("short", "5678")):
            made[key] = await post(op, "/api/v1/calls", new_call(reporter_phone=phone, title=key), expect=201)
            hub.clock.advance(60)
        made["anonymous"] = await post(op, "/api/v1/calls", new_call(reporter_phone=None, title="anonymous"),
                                       expect=201)
    return made


def titles(calls: list[dict[str, Any]]) -> set[str]:
    return {c["title"] for c in calls}


async def test_operator_finds_calls_by_full_masked_or_last_digits(hub: Hub) -> None:
    await seed(hub)
    op = await hub.login("op2.yiqiao")
    async with op:
        assert titles(await listed(op, phone=MOBILE)) == {"first", "again"}
        assert titles(await listed(op, phone="138 1234 5678")) == {"first", "again"}
        assert titles(await listed(op, phone="138****5678")) == {"first", "again"}
        assert titles(await listed(op, phone="****5678")) == {"first", "again", "other_mobile", "landline"}
        assert titles(await listed(op, phone="5678")) == {"first", "again", "other_mobile", "landline", "short"}
        assert titles(await listed(op, phone="057188885678")) == {"landline"}
        assert await listed(op, phone="13899995678") == []
        assert titles(await listed(op, phone="5678", state=["dispatched"], q="again")) == {"again"}
        found = await listed(op, phone=MOBILE)
        assert {c["reporter_phone"] for c in found} == {MOBILE}  # the township's operators see full numbers
        bad = await op.get("/api/v1/calls", params={"phone": "12"})
    assert bad.status_code == 422 and bad.json()["field"] == "phone"
    assert "last 4 digits" in bad.json()["message"]


async def test_other_townships_operator_finds_nothing(hub: Hub) -> None:
    await seed(hub)
    other = await hub.login("op1.zhongdu")
    async with other:
        assert await listed(other, phone=MOBILE) == []
        assert await listed(other, phone="5678") == []
        assert await listed(other, phone="138****5678") == []


async def test_masked_readers_learn_nothing_beyond_the_mask(hub: Hub) -> None:
    await seed(hub)
    supervisor = await hub.login("supervisor")
    liaison = await hub.login("police1.yiqiao")
    async with supervisor, liaison:
        # Another number with the same mask finds the same calls: the hidden digits are not an oracle.
        for query in (MOBILE, "13899995678", "138****5678"):
            found = await listed(supervisor, phone=query)
            assert titles(found) == {"first", "again"}, query
            assert {c["reporter_phone"] for c in found} == {"138****5678"}
        # A number whose mask shows no digit is never matched by them; longer suffixes count their last four.
        assert titles(await listed(supervisor, phone="5678")) == {"first", "again", "other_mobile", "landline"}
        assert titles(await listed(supervisor, phone="885678")) == {"first", "again", "other_mobile", "landline"}
        assert titles(await listed(liaison, phone=MOBILE)) == {"first", "again"}
        assert titles(await listed(liaison, phone="5678")) == {"first", "again", "other_mobile", "landline"}


async def test_detail_counts_earlier_calls_from_the_same_phone(hub: Hub) -> None:
    made = await seed(hub)
    op = await hub.login("op1.yiqiao")
    supervisor = await hub.login("supervisor")
    liaison = await hub.login("police1.yiqiao")
    async with op, supervisor, liaison:
        async def repeat(client: httpx.AsyncClient, key: str) -> int | None:
            res = await client.get(f"/api/v1/calls/{made[key]['call_id']}")
            assert res.status_code == 200, res.text
            value: int | None = res.json()["repeat_calls"]
            return value

        assert await repeat(op, "first") == 0
        assert await repeat(op, "again") == 1
        assert await repeat(op, "other_mobile") == 0
        assert await repeat(op, "anonymous") is None
        assert await repeat(supervisor, "again") == 1
        assert await repeat(liaison, "again") is None  # liaisons see their own department's calls only
        third = await post(op, "/api/v1/calls", new_call(reporter_phone="138-1234-5678"), expect=201)
        res = await op.get(f"/api/v1/calls/{third['call_id']}")
        assert res.json()["repeat_calls"] == 2  # the same digits however they were written
