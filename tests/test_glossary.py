"""One name for one thing: the consoles' string tables use docs/GLOSSARY.md's words, in zh-CN and English alike.

A new console (console/admin/…) is covered by adding nothing: every file under console/ holding a
``"zh-CN": {…}, en: {…}`` table is a string file, and every page and script is searched for the synonyms.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CONSOLE = ROOT / "console"
GLOSSARY = ROOT / "docs" / "GLOSSARY.md"

# A word to avoid → the glossary's word (docs/GLOSSARY.md, "Synonyms to avoid").
FORBIDDEN: dict[str, str] = {
    "已报到": "已到场", "已到场·处置中": "已到场", "已响应·待报到": "已响应", "已办结·待审核": "已办结待审",
    "已通过审核": "审核通过", "结果通过": "审核通过", "办结归档": "结案", "已归档": "已结案", "归档": "结案",
    "超时升级": "超时督办", "升级 {n} 级": "{n}级督办", "受理时间": "登记时间", "受理呼叫": "登记", "登记诉求": "登记",
    "诉求状态": "呼叫状态", "找不到该诉求": "找不到该呼叫", "没有符合条件的诉求": "没有符合条件的呼叫",
    "到场报到": "报到", "办结反馈": "办结", "办结上报": "办结",
}
# The states' names: the one source is the shared table, and it says what the glossary says.
STATE_WORDS = {
    "call.intake": "待派单", "call.dispatched": "已派单", "call.in_progress": "处置中", "call.review": "待审核",
    "call.accepted": "已审核", "call.visited": "已回访", "call.closed": "已结案", "call.cancelled": "已撤销",
    "asg.dispatched": "待响应", "asg.acknowledged": "已响应", "asg.on_scene": "已到场", "asg.reported": "已办结待审",
    "asg.accepted": "审核通过", "asg.declined": "转派审核中", "asg.withdrawn": "已撤回",
}
_PAIR = re.compile(r'(?:"((?:[^"\\]|\\.)+)"|([A-Za-z_$][\w$]*))\s*:\s*"((?:[^"\\]|\\.)*)"')


def string_files() -> list[Path]:
    """Every console file with a zh-CN/en string table (the shared ones and each console's)."""
    return sorted(p for p in CONSOLE.rglob("*.js")
                  if "node_modules" not in p.parts and '"zh-CN": {' in p.read_text(encoding="utf-8"))


def console_sources() -> list[Path]:
    return sorted(p for ext in ("*.js", "*.html") for p in CONSOLE.rglob(ext) if "node_modules" not in p.parts)


def _block(text: str, opener: str) -> str:
    """The object literal that follows ``opener`` (braces balanced, strings skipped)."""
    start = text.index(opener) + len(opener) - 1
    depth, i, quote = 0, start, ""
    while i < len(text):
        c = text[i]
        if quote:
            if c == "\\":
                i += 1
            elif c == quote:
                quote = ""
        elif c == "/" and text.startswith("//", i):
            i = text.find("\n", i)  # a comment (its apostrophes are not quotes)
            continue
        elif c in "\"`":
            quote = c
        elif c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return text[start:i + 1]
        i += 1
    raise AssertionError(f"unbalanced table after {opener!r}")


def tables(path: Path) -> dict[str, dict[str, str]]:
    """{"zh-CN": {key: text}, "en": {key: text}} of one string file."""
    text = path.read_text(encoding="utf-8")
    zh = _block(text, '"zh-CN": {')
    rest = text[text.index(zh) + len(zh):]
    en = _block(rest, "en: {")
    return {lang: {(m.group(1) or m.group(2)): m.group(3) for m in _PAIR.finditer(block)}
            for lang, block in (("zh-CN", zh), ("en", en))}


def test_the_string_files_are_found() -> None:
    names = {p.relative_to(CONSOLE).as_posix() for p in string_files()}
    assert {"shared/i18n.js", "operator/strings.js", "liaison/strings.js", "supervisor/strings.js",
            "grid/strings.js", "shared/evidence.js"} <= names


@pytest.mark.parametrize("path", string_files(), ids=lambda p: p.relative_to(CONSOLE).as_posix())
def test_zh_and_en_tables_have_the_same_keys(path: Path) -> None:
    found = tables(path)
    assert len(found["zh-CN"]) > 5
    only_zh = sorted(set(found["zh-CN"]) - set(found["en"]))
    only_en = sorted(set(found["en"]) - set(found["zh-CN"]))
    assert not only_zh and not only_en, f"only in zh-CN: {only_zh}; only in en: {only_en}"


@pytest.mark.parametrize("path", console_sources(), ids=lambda p: p.relative_to(CONSOLE).as_posix())
def test_no_console_text_uses_a_synonym_the_glossary_avoids(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    wrong = [f"{bad} → {good}" for bad, good in FORBIDDEN.items() if bad in text]
    assert not wrong, f"{path.relative_to(ROOT)}: {wrong} (docs/GLOSSARY.md)"


def test_state_names_have_one_source_in_the_glossarys_words() -> None:
    shared = tables(CONSOLE / "shared" / "i18n.js")["zh-CN"]
    assert {k: shared[k] for k in STATE_WORDS} == STATE_WORDS
    for path in string_files():
        if path.name == "i18n.js":
            continue
        keys = set(tables(path)["zh-CN"])
        states = {k.split(".")[1] for k in STATE_WORDS} | {"transferred"}
        own = sorted(k for k in keys
                     if (m := re.fullmatch(r"(?:li\.|sv\.)?(?:cs|as|st|call|asg)\.([a-z_]+)", k)) and m[1] in states)
        assert not own, f"{path.relative_to(ROOT)} names states itself: {own}; use the shared call.*/asg.*"


def test_the_projects_glossary_holds_the_shared_one_and_the_synonyms() -> None:
    text = GLOSSARY.read_text(encoding="utf-8")
    for word in [*STATE_WORDS.values(), "呼叫", "诉求", "派单", "值班员", "联络员", "登记时间", "不计入", "到场及时率",
                 "办结及时率", "我来处理", "认领督办", "照片与附件", "我的上报", "企业微信", "钉钉"]:
        assert word in text, word
    for bad in FORBIDDEN:
        assert bad.split(" ")[0] in text, f"{bad} is not listed among the synonyms to avoid"


def test_the_liaison_app_shell_holds_every_module_the_page_imports() -> None:
    """The installed liaison app opens offline from its service worker's SHELL: a module imported by the page
    (directly or through another) but missing there would break the first offline start after an update."""
    import re
    from pathlib import Path, PurePosixPath

    console = Path(__file__).resolve().parent.parent / "console"
    sw = (console / "liaison" / "sw.js").read_text(encoding="utf-8")
    shell = set(re.findall(r'"(/[^"]+)"', sw.split("const SHELL = [", 1)[1].split("];", 1)[0]))
    imports = re.compile(r"""(?:import|export)[^"';]*?from\s+["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)""")
    seen: set[str] = set()
    todo = ["/liaison/liaison.js"]
    while todo:
        url = todo.pop()
        if url in seen:
            continue
        seen.add(url)
        path = console / url.lstrip("/")
        if url.startswith("/vendor/") or not path.exists():
            continue
        for m in imports.finditer(path.read_text(encoding="utf-8")):
            spec = next(g for g in m.groups() if g)
            todo.append(str(PurePosixPath(url).parent / spec[2:]) if spec.startswith("./") else spec)
    assert seen - shell == set(), f"modules the liaison page imports but sw.js SHELL lacks: {sorted(seen - shell)}"
