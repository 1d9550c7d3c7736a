"""PROTOCOL.md is the contract: every message, error code and close code is in it, and its examples
are the bytes ``encode`` produces. Run ``python tests/test_protocol_doc.py`` to print the examples
section after changing a message; paste it over the one in the doc."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from protocols import messages as m
from protocols.errors import error_codes
from protocols.session import SUBPROTOCOL, CloseCode

DOC = Path(__file__).resolve().parent.parent / "protocols" / "PROTOCOL.md"

CMD_ID = "6f1c2a9e-1b7d-4c3a-9f0e-2d5b8a7c4e10"
CALL_ID = "0d3f7b52-8a61-4f0c-b7e2-5c9a1e4d6b38"
ASSIGNMENT_ID = "a4c8e1f0-2b3d-4e5f-8a9b-0c1d2e3f4a5b"

EXAMPLES: dict[str, m.Message] = {
    "subscribe": m.Subscribe(cursors=[(12, 4031), (13, 977)], epoch="b41c9e07"),
    "subscribe-first-time": m.Subscribe(cursors=[], epoch=None),
    "command": m.Command(command_id=CMD_ID, name="acknowledge", args={"assignment_id": ASSIGNMENT_ID}),
    "ping": m.Ping(nonce=7),
    "pong": m.Pong(nonce=7),
    "welcome": m.Welcome(
        server_time=1767225600000,
        user=m.User(id=42, name="王芳", role="liaison"),
        scope=m.Scope(role="liaison", township_ids=[12], target="police", read_only=False),
        heads=[(12, 4033)],
        epoch="b41c9e07",
        limits=m.Limits(
            max_frame_bytes=65536, rate_per_s=20.0, burst=40, heartbeat_s=20.0, outbox_frames=1000
        ),
    ),
    "event": m.Event(
        township_id=12,
        seq=4032,
        event_type="assignment.acknowledged",
        call_id=CALL_ID,
        assignment_id=ASSIGNMENT_ID,
        at=1767225601234,
        actor=m.Actor(id=42, name="王芳", role="liaison"),
        call_state="in_progress",
        assignment_state="acknowledged",
        body={},
    ),
    "caught_up": m.CaughtUp(heads=[(12, 4033)]),
    "resync": m.Resync(township_id=13, reason="cursor_too_old", head=1502),
    "result": m.Result(command_id=CMD_ID, result={"seq": 4034}),
    "error": m.Error(
        command_id=CMD_ID,
        code="command_id_reused",
        message="command_id was already used with a different payload",
        field="command_id",
    ),
    "presence": m.Presence(township_id=12, online={"police": 2, "unit:3": 1}),
}

_EXAMPLE = re.compile(r"<!-- example: (?P<name>[\w-]+) -->\s*```hex\n(?P<hex>[0-9a-f \n]+?)```")


def hex_block(data: bytes, per_line: int = 32) -> str:
    """Bytes as lowercase hex pairs, 32 to a line."""
    pairs = [f"{b:02x}" for b in data]
    return "\n".join(" ".join(pairs[i : i + per_line]) for i in range(0, len(pairs), per_line))


def render_examples() -> str:
    """The examples section of PROTOCOL.md, generated from ``EXAMPLES``."""
    parts = []
    for name, msg in EXAMPLES.items():
        frame = json.dumps({"type": msg.TYPE, **msg.model_dump(mode="json")}, ensure_ascii=False)
        parts.append(
            f"#### `{name}`\n\n```json\n{frame}\n```\n\n"
            f"<!-- example: {name} -->\n```hex\n{hex_block(m.encode(msg))}\n```\n"
        )
    return "\n".join(parts)


def doc_examples() -> dict[str, bytes]:
    text = DOC.read_text(encoding="utf-8")
    return {
        match["name"]: bytes.fromhex(re.sub(r"\s+", "", match["hex"])) for match in _EXAMPLE.finditer(text)
    }


@pytest.fixture(scope="module")
def doc() -> str:
    return DOC.read_text(encoding="utf-8")


@pytest.mark.parametrize("name", sorted(m.MESSAGE_TYPES))
def test_every_message_type_has_a_section(doc: str, name: str) -> None:
    assert re.search(rf"^### `{name}`", doc, re.MULTILINE), f"no section '### `{name}`' in PROTOCOL.md"


@pytest.mark.parametrize("name", sorted(m.MESSAGE_TYPES))
def test_every_field_is_in_a_table(doc: str, name: str) -> None:
    section = doc.split(f"### `{name}`", 1)[1].split("\n### ", 1)[0]
    for field in m.MESSAGE_TYPES[name].model_fields:
        assert f"| `{field}` |" in section, f"{name}.{field} is not in its field table"


@pytest.mark.parametrize("code", sorted(error_codes()))
def test_every_error_code_is_documented(doc: str, code: str) -> None:
    assert f"| `{code}` |" in doc, f"error code {code!r} missing from PROTOCOL.md"


@pytest.mark.parametrize("close", list(CloseCode), ids=lambda c: c.name)
def test_every_close_code_is_documented(doc: str, close: CloseCode) -> None:
    assert f"| {close.value} | `{close.name}` |" in doc, f"close code {close.value} missing from PROTOCOL.md"


@pytest.mark.parametrize("name", m.EVENT_TYPES + m.COMMAND_NAMES)
def test_every_event_type_and_command_is_listed(doc: str, name: str) -> None:
    assert f"| `{name}` |" in doc


def test_subprotocol_is_named(doc: str) -> None:
    assert f"`{SUBPROTOCOL}`" in doc


def test_every_message_type_has_an_example() -> None:
    assert {msg.TYPE for msg in EXAMPLES.values()} == set(m.MESSAGE_TYPES)


def test_doc_examples_are_the_generated_ones() -> None:
    assert set(doc_examples()) == set(EXAMPLES), "examples in PROTOCOL.md differ from EXAMPLES"


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_doc_hex_matches_encode(name: str) -> None:
    data = doc_examples()[name]
    assert data == m.encode(EXAMPLES[name]), f"hex of example {name!r} is stale: regenerate"
    assert m.decode(data) == EXAMPLES[name]


def test_limits_table_shows_the_configured_defaults(doc: str) -> None:
    """The defaults in Limits are the ones the hub ships (default.toml), so they cannot drift apart."""
    from dispatch.core.config import load_config

    shipped = load_config().realtime
    section = doc.split("## 6. Limits", 1)[1].split("\n## ", 1)[0]
    for name in m.Limits.model_fields:
        if name in ("rate_per_s", "burst"):
            row = re.search(r"^\| `rate_per_s`, `burst` \| ([0-9.]+), ([0-9]+) \|", section, re.MULTILINE)
            assert row is not None
            assert (float(row.group(1)), int(row.group(2))) == (shipped.rate_per_s, shipped.burst)
            continue
        row = re.search(rf"^\| `{name}` \| ([0-9.]+) \|", section, re.MULTILINE)
        assert row is not None, f"limit {name} has no row"
        assert float(row.group(1)) == float(getattr(shipped, name)), f"{name}: doc {row.group(1)}"


def test_every_path_the_doc_names_is_served(doc: str) -> None:
    """A client author follows the doc's paths: each must exist on the hub (GET for documents)."""
    from starlette.routing import Route, WebSocketRoute

    from dispatch.core.config import load_config
    from dispatch.web.app import create_app

    app = create_app(load_config(), "postgresql://unused")
    named = set(re.findall(r"`(?:(?:GET|POST) )?(/(?:api/v1/|openapi|ws|login)[^`\s?]*)", doc))
    assert named, "no paths found in PROTOCOL.md"
    served = [re.sub(r":[a-z]+}", "}", r.path) for r in app.routes if isinstance(r, Route | WebSocketRoute)]
    for path in sorted(named):
        if path.endswith("…"):  # a family of paths: at least one route under it
            assert any(p.startswith(path.rstrip("…")) for p in served), f"no route under {path}"
        else:
            assert path in served, f"PROTOCOL.md names {path}, which the hub does not serve"


if __name__ == "__main__":
    print(render_examples())


def test_the_wire_lists_match_the_core() -> None:
    """Every command the core knows can be sent over the WebSocket, and every event type it emits is listed."""
    from dispatch.core.commands import COMMANDS
    from dispatch.core.records import EVENT_TYPES

    assert set(m.COMMAND_NAMES) == set(COMMANDS)
    assert set(m.EVENT_TYPES) == set(EVENT_TYPES)
