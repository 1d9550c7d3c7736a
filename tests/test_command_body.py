"""A command posted over REST is validated once (``parse_command_fast``) where the command model takes it; the
answer must be the one the two-step path gives (the endpoint's body model, then ``parse_command``): the same
command, or the same refusal naming the same field."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from dispatch.core.commands import Command, parse_command, parse_command_fast
from dispatch.web import calls  # noqa: F401  (registers the command endpoints)
from dispatch.web.routing import REGISTRY, validation_error
from protocols.errors import ValidationFailed

ASSIGNMENT = str(uuid.UUID(int=7))
CALL = str(uuid.UUID(int=9))


def _body_model(kind: str) -> type[BaseModel]:
    for ep in REGISTRY:
        if ep.method == "POST" and ep.handler.__name__ == kind and ep.body is not None:
            return ep.body
    raise AssertionError(f"no endpoint for {kind}")


def two_step(kind: str, data: dict[str, Any], path: dict[str, str]) -> Command | str:
    """What the endpoints answered before: the body model, then the command (or the refusal's field)."""
    try:
        body = _body_model(kind).model_validate(data)
    except ValidationError as exc:
        return f"refused:{validation_error(exc).field}"
    try:
        return parse_command(kind, {**body.model_dump(exclude_unset=True), **path})
    except ValidationFailed as exc:
        return f"refused:{exc.field}"


def create(**change: Any) -> dict[str, Any]:
    body = {"command_id": str(uuid.uuid4()), "source": "hotline_12345", "category": "noise", "title": " 噪音 ",
            "description": "夜间施工", "address": "幸福路", "lat": 35.73, "lon": 116.48, "priority": "normal",
            "reporter_name": "张建国", "reporter_phone": "138 1234 5678", "targets": ["police", "fire"]}
    body.update(change)
    return {k: v for k, v in body.items() if v is not ...}


CASES: list[tuple[str, dict[str, Any], dict[str, str]]] = [
    ("create_call", create(), {}),
    ("create_call", create(lead="fire"), {}),
    ("create_call", create(reporter_phone=""), {}),  # blank optional text: only the command model takes it
    ("create_call", create(reporter_name="   "), {}),
    ("create_call", create(description=""), {}),
    ("create_call", create(lat=..., lon=...), {}),
    ("create_call", create(lon=...), {}),  # refused by the command's own check
    ("create_call", create(targets=["police", "police"]), {}),
    ("create_call", create(lead="water"), {}),
    ("create_call", create(kind="create_call"), {}),  # the body model refuses ``kind``
    ("create_call", create(extra=1), {}),
    ("create_call", create(priority="soon"), {}),
    ("create_call", create(title=""), {}),
    ("acknowledge", {"command_id": str(uuid.uuid4()), "acted_at": 1_790_000_000_000},
     {"assignment_id": ASSIGNMENT}),
    ("acknowledge", {"command_id": str(uuid.uuid4()), "acted_at": "2026-11-02T08:00:00+08:00"},
     {"assignment_id": ASSIGNMENT}),
    ("acknowledge", {"command_id": str(uuid.uuid4()), "acted_at": ""}, {"assignment_id": ASSIGNMENT}),
    ("note", {"command_id": str(uuid.uuid4()), "text": "  到场  "}, {"call_id": CALL}),
    ("note", {"command_id": str(uuid.uuid4()), "text": ""}, {"call_id": CALL}),
    ("dispatch", {"command_id": str(uuid.uuid4()), "targets": ["water"]}, {"call_id": CALL}),
    ("dispatch", {"command_id": str(uuid.uuid4()), "targets": []}, {"call_id": CALL}),
]


@pytest.mark.parametrize(("kind", "data", "path"), CASES)
def test_one_validation_answers_as_two(kind: str, data: dict[str, Any], path: dict[str, str]) -> None:
    before = two_step(kind, data, path)
    fast = None if set(path) & set(data) else parse_command_fast(kind, {**data, **path})
    if fast is None:  # the endpoint then takes the two-step path itself
        return
    assert not isinstance(before, str), f"one validation took what two refuse ({before})"
    assert fast == before


def test_the_fast_path_is_taken_for_the_usual_body() -> None:
    assert parse_command_fast("create_call", create()) is not None
    assert parse_command_fast("create_call", create(reporter_phone="")) is None
    assert parse_command_fast("create_call", create(kind="create_call")) is None
