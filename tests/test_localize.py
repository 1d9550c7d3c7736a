"""Error messages in the caller's language: zh-CN by default, English on request; code and field never change."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from zoneinfo import ZoneInfo

import msgpack
import pytest
from websockets.asyncio.client import connect

from dispatch.core.commands import parse_command
from protocols import errors
from protocols.localize import BY_CODE, field_label, localize, pick_language, translate
from protocols.messages import Error, Welcome, decode
from protocols.session import SUBPROTOCOL, ServerSession
from tests.conftest import Hub
from tests.helpers import assignment_of, cid, new_call, post

ROOT = Path(__file__).resolve().parent.parent
HAN = re.compile(r"[\u4e00-\u9fff]")
LATIN_WORD = re.compile(r"\b(?:must|cannot|required|unknown|field|characters|digits|allowed|only|may)\b")


def test_the_language_is_picked_from_lang_then_accept_language_else_chinese() -> None:
    assert pick_language() == "zh-CN"
    assert pick_language("en-US,en;q=0.9") == "en"
    assert pick_language("fr-FR, en;q=0.5, zh-CN;q=0.8") == "zh-CN"
    assert pick_language("de, fr") == "zh-CN"
    assert pick_language("zh-TW;q=0, en;q=0.1") == "en"
    assert pick_language("en", explicit="zh-CN") == "zh-CN"
    assert pick_language(None, explicit="en") == "en"


def test_every_code_has_a_chinese_sentence() -> None:
    for code in errors.error_codes():
        assert code in BY_CODE and HAN.search(BY_CODE[code]), code


@pytest.mark.parametrize(("body", "field", "expected"), [
    ({"reporter_phone": "1" * 30}, "reporter_phone", "联系电话：最多 20 位数字"),
    ({"title": "x" * 500}, "title", "事由：最多 200 个字符"),
    ({"priority": "asap"}, "priority", "紧急程度：取值不在允许范围内"),
    ({"surprise": 1}, "surprise", "surprise：不是可接受的字段"),
    ({"targets": ["police", "police"]}, "targets", "派往部门：不能重复"),
])
def test_validation_messages_read_in_chinese_with_the_fields_label(body: dict[str, object], field: str,
                                                                   expected: str) -> None:
    with pytest.raises(errors.ValidationFailed) as err:
        parse_command("create_call", {**new_call(), **body})
    assert err.value.field == field
    assert err.value.localized("zh-CN").startswith(expected), err.value.localized("zh-CN")
    assert err.value.localized("en") == err.value.message  # English as raised
    assert err.value.to_dict("zh-CN")["field"] == err.value.to_dict("en")["field"] == field


def test_a_missing_field_is_required_in_chinese() -> None:
    body = new_call()
    del body["title"]
    with pytest.raises(errors.ValidationFailed) as err:
        parse_command("create_call", body)
    assert err.value.localized("zh-CN") == "事由：必须填写"


def test_a_refused_transition_names_the_state_and_who_made_it() -> None:
    exc = errors.IllegalTransition("cannot accept a call that is accepted", field="call_id")
    assert exc.localized("zh-CN") == "不能进行此操作：该呼叫当前状态为「已审核」"
    exc.context = {"command": "accept", "event": "call.accepted", "actor": "值班员2", "at": "2026-11-30 09:31"}
    assert exc.localized("zh-CN") == "不能审核通过：该呼叫已由 值班员2 于 2026-11-30 09:31 审核通过（当前状态：已审核）"
    assert exc.localized("en") == "cannot accept a call that is accepted (by 值班员2 at 2026-11-30 09:31)"
    on_scene = errors.IllegalTransition("cannot acknowledge an assignment that is on_scene", field="assignment_id")
    assert "已到场" in on_scene.localized("zh-CN")


def _sample(value: ast.expr) -> str:
    """A plausible value for an interpolated expression, guessed from its source."""
    src = ast.unparse(value.value if isinstance(value, ast.FormattedValue) else value)
    for hint, sample in (("isoformat", "2026-10-01"), ("first", "from"), ("field", "title"),
                          ("path", "title"), ("bad", "title"), ("key", "title"),
                         ("noun", "call"), ("article", "a"), ("state", "accepted"), ("kind", "close"),
                         ("role", "operator"), ("target", "police"), ("TYPE", "'event'"), ("name", "title")):
        if hint in src:
            return sample
    return "7"


def _sample_messages() -> list[tuple[str, str, str]]:
    """Every client-facing message literal raised in the hub: (where, class name, the text with each
    interpolated value replaced by a sample)."""
    client_classes = {name for name, cls in vars(errors).items()
                      if isinstance(cls, type) and issubclass(cls, errors.XianghuError)
                      and (issubclass(cls, errors.ClientError) or cls is errors.Unavailable)}
    found: list[tuple[str, str, str]] = []
    for path in [*ROOT.joinpath("dispatch").rglob("*.py"), *ROOT.joinpath("protocols").rglob("*.py")]:
        if "cli" in path.parts:  # the command line speaks to administrators in English
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.args
                    and (node.func.id in client_classes or node.func.id == "refuse")):
                continue
            arg = node.args[0]
            if node.func.id == "refuse":  # dispatch/core/media.py: "file: <reason>"
                arg = ast.JoinedStr([ast.Constant("file: "), *getattr(arg, "values", [arg])])
                node.func.id = "ValidationFailed"
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                text = arg.value
            elif isinstance(arg, ast.JoinedStr):
                text = "".join(v.value if isinstance(v, ast.Constant) else _sample(v) for v in arg.values)
            else:
                continue
            literal = "".join(v.value for v in getattr(arg, "values", [arg]) if isinstance(v, ast.Constant))
            if not re.search(r"[a-z]{3,}", re.sub(r"^\w+: ", "", literal)):
                continue  # a message made wholly elsewhere (a pydantic reason, a file check): tested there
            found.append((f"{path.relative_to(ROOT)}:{node.lineno}", node.func.id, text))
    return found


def test_every_message_the_hub_raises_has_its_own_chinese() -> None:
    """Not just the code's sentence: each raise site's message is in the catalogue (protocols/localize.py)."""
    samples = _sample_messages()
    assert len(samples) > 100
    missing = []
    for where, cls_name, text in samples:
        cls = getattr(errors, cls_name)
        zh, known = translate(cls.code, text, None)
        if not known or LATIN_WORD.search(zh):
            missing.append(f"{where}: {text!r} -> {zh!r}")
    assert not missing, "\n".join(missing)


def test_labels_follow_the_last_named_part_of_a_path() -> None:
    assert field_label("args.targets[1]") == "派往部门"
    assert field_label("ratings.0.satisfaction") == "满意度"
    assert localize("validation", "args.targets[1]: must be a department code or unit:<id>", "args.targets[1]",
                    "zh-CN") == "派往部门：须为派驻部门或镇属力量"


def test_a_websocket_session_answers_in_its_language() -> None:
    zh, en = ServerSession(), ServerSession(lang="en")
    for session in (zh, en):
        session.receive_text("hello", 0.0)
    zh_error = decode(zh.data_to_send()[-1])
    en_error = decode(en.data_to_send()[-1])
    assert isinstance(zh_error, Error) and isinstance(en_error, Error)
    assert zh_error.code == en_error.code == "protocol"
    assert zh_error.message == "须为二进制 msgpack 帧" and en_error.message.startswith("text frame")


async def test_rest_errors_are_chinese_by_default_and_english_on_request(hub: Hub) -> None:
    zh = await hub.login("op1.yiqiao", lang=None)
    en = await hub.login("op1.yiqiao", lang="en")
    async with zh, en:
        bad = new_call(reporter_phone="1" * 30)
        zh_res = await zh.post("/api/v1/calls", json=bad)
        en_res = await en.post("/api/v1/calls", json={**bad, "command_id": cid()})
        by_param = await en.post("/api/v1/calls?lang=zh-CN", json={**bad, "command_id": cid()})
        unknown = await zh.get("/api/v1/nothing-here")
        listed = await zh.get("/api/v1/calls", params={"lang": "en", "open": "maybe"})
    assert zh_res.status_code == en_res.status_code == 422
    assert zh_res.json()["code"] == en_res.json()["code"] == "validation"
    assert zh_res.json()["field"] == en_res.json()["field"] == "reporter_phone"
    assert zh_res.json()["message"].startswith("联系电话：最多 20 位数字")
    assert zh_res.headers["content-language"] == "zh-CN"
    assert "20 digits" in en_res.json()["message"] and en_res.headers["content-language"] == "en"
    assert by_param.json()["message"] == zh_res.json()["message"]
    assert unknown.status_code == 404 and unknown.json()["message"] == "没有这个资源"
    assert listed.status_code == 422 and listed.json()["field"] == "open" and not HAN.search(listed.json()["message"])


async def test_a_conflict_says_who_did_it_and_when(hub: Hub) -> None:
    op = await hub.login("op1.yiqiao", lang=None)
    police = await hub.login("police1.yiqiao", lang=None)
    async with op, police:
        created = await post(op, "/api/v1/calls", new_call(targets=["police"]), expect=201)
        call_id = created["call_id"]
        aid = assignment_of((await op.get(f"/api/v1/calls/{call_id}")).json(), "police")["id"]
        await post(police, f"/api/v1/assignments/{aid}/acknowledge")
        again = await police.post(f"/api/v1/assignments/{aid}/acknowledge", json={"command_id": cid()})
        me = (await police.get("/api/v1/me")).json()
        closing = await op.post(f"/api/v1/calls/{call_id}/close", json={"command_id": cid()})
    assert again.status_code == 409 and again.json()["code"] == "illegal_transition"
    assert again.json()["field"] == "assignment_id"
    when = hub.clock.now().astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d %H:%M")
    assert again.json()["message"] == f"不能响应：该派单已由 {me['name']} 于 {when} 响应（当前状态：已响应）"
    assert closing.status_code == 409
    refused = closing.json()["message"]
    assert refused.startswith("不能结案：该呼叫已由 ") and "（当前状态：处置中）" in refused


async def test_a_websocket_answers_in_the_language_of_its_handshake(hub: Hub) -> None:
    token = await hub.token("op1.yiqiao")
    answers = {}
    for lang, url in (("zh-CN", hub.ws_url), ("en", hub.ws_url + "?lang=en")):
        async with connect(url, subprotocols=[SUBPROTOCOL],  # type: ignore[list-item]
                           additional_headers={"Authorization": f"Bearer {token}"}) as ws:
            assert isinstance(decode(await ws.recv()), Welcome)  # type: ignore[arg-type]
            command_id = cid()
            await ws.send(msgpack.packb({"type": "command", "command_id": command_id, "name": "create_call",
                                         "args": new_call(title="x" * 500)}))
            while True:
                msg = decode(await ws.recv())  # type: ignore[arg-type]
                if isinstance(msg, Error) and msg.command_id == command_id:
                    answers[lang] = msg
                    break
    assert answers["zh-CN"].field == answers["en"].field == "args.title"
    assert answers["zh-CN"].message == "事由：最多 200 个字符"
    assert answers["en"].message == "args.title: must be at most 200 characters"
