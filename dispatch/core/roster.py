"""Accounts as an administrator sees them (issue #17): what each role needs, in words, and the user sheet —
the bulk import's columns, reading an XLSX or CSV upload into rows, and the template to fill in.

Sans-I/O: bytes in, rows and problems out; the database checks (unknown township, existing username) are the
store's (``dispatch/store/user_import.py``).
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from openpyxl import Workbook, load_workbook
from openpyxl.styles import Font
from openpyxl.utils.exceptions import InvalidFileException

from dispatch.core.domain import Role

USERNAME_PATTERN = re.compile(r"^[a-z0-9_.-]{2,64}$")
PHONE_PATTERN = re.compile(r"^[0-9+ -]{5,20}$")
MIN_PASSWORD = 8
MAX_DISPLAY_NAME = 50
# Roles an administrator creates; integrations have their own page, the system is nobody.
ADMIN_ROLES: tuple[Role, ...] = (Role.OPERATOR, Role.LIAISON, Role.SUPERVISOR, Role.ADMIN, Role.LEADER,
                                 Role.DEPARTMENT_HEAD, Role.GRID_WORKER)
ROLE_NAMES_ZH = {Role.OPERATOR: "值班员", Role.LIAISON: "联络员", Role.SUPERVISOR: "督查", Role.ADMIN: "管理员",
                 Role.LEADER: "镇街领导", Role.DEPARTMENT_HEAD: "部门负责人", Role.GRID_WORKER: "网格员"}
TOWNSHIP_ROLES = frozenset({Role.OPERATOR, Role.LIAISON, Role.LEADER, Role.GRID_WORKER})


@dataclass(frozen=True)
class Placement:
    """Where an account sits: which of township, department, unit and grid it has (ids resolved or not)."""

    role: Role
    township: bool = False
    department: bool = False
    unit: bool = False
    grid: bool = False
    team_lead: bool = False


def role_problems(p: Placement) -> list[tuple[str, str]]:
    """(field, why) for each way ``p`` breaks what its role needs (the same rules as the users table's checks)."""
    out: list[tuple[str, str]] = []
    role = p.role
    if role not in ADMIN_ROLES:
        return [("role", f"role must be one of {', '.join(r.value for r in ADMIN_ROLES)}")]
    if role in TOWNSHIP_ROLES and not p.township:
        out.append(("township", f"a {role.value} needs a township"))
    if role in (Role.ADMIN, Role.DEPARTMENT_HEAD) and p.township:
        why = "an admin is county-wide" if role is Role.ADMIN else "a department head is county-wide"
        out.append(("township", f"{why}: no township"))
    if role is Role.LIAISON:
        if p.department == p.unit:
            out.append(("department", "a liaison needs exactly one of a department or a township unit"))
    elif role is Role.DEPARTMENT_HEAD:
        if not p.department:
            out.append(("department", "a department head needs a department"))
        if p.unit:
            out.append(("unit", "a department head has no township unit"))
    else:
        if p.department:
            out.append(("department", "only liaisons and department heads have a department"))
        if p.unit:
            out.append(("unit", "only liaisons have a township unit"))
    if p.grid and role is not Role.GRID_WORKER:
        out.append(("grid", "only grid workers have a grid"))
    if p.team_lead and role is not Role.LIAISON:
        out.append(("team_lead", "only liaisons lead a team"))
    return out


def username_problem(value: str) -> str | None:
    return None if USERNAME_PATTERN.match(value) else "2-64 of a-z 0-9 _ . -"


def phone_problem(value: str) -> str | None:
    return None if PHONE_PATTERN.match(value) else "5-20 of 0-9 + - and spaces"


def password_problem(value: str) -> str | None:
    return None if len(value) >= MIN_PASSWORD else f"at least {MIN_PASSWORD} characters"


# -- the user sheet ------------------------------------------------------------------------------------------

# key, Chinese header, English header: the template's first row is "用户名 username", …; either word is enough.
COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("username", "用户名", "username"),
    ("name", "姓名", "name"),
    ("role", "角色", "role"),
    ("township", "镇街", "township"),
    ("department", "部门", "department"),
    ("unit", "力量", "unit"),
    ("grid", "网格", "grid"),
    ("phone", "手机", "phone"),
    ("team_lead", "组长", "team_lead"),
    ("password", "初始密码", "password"),
)
REQUIRED_COLUMNS = ("username", "name", "role")
# argon2 takes up to half a second an account on a small server: a bigger sheet would outlast a request.
MAX_ROWS = 500
MAX_CELL = 200
YES = frozenset({"是", "y", "yes", "true", "1", "√", "✓"})
NO = frozenset({"否", "n", "no", "false", "0", ""})
ROLE_WORDS: dict[str, Role] = {**{r.value: r for r in ADMIN_ROLES}, **{zh: r for r, zh in ROLE_NAMES_ZH.items()},
                               "操作员": Role.OPERATOR, "督查员": Role.SUPERVISOR}
XLSX_MEDIA = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@dataclass(frozen=True)
class RowProblem:
    """One fault of the sheet: its row as numbered in the sheet (1 = the header row), the column, why."""

    row: int
    field: str
    message: str

    def to_json(self) -> dict[str, Any]:
        return {"row": self.row, "field": self.field, "message": self.message}


@dataclass
class SheetRow:
    row: int
    values: dict[str, str]


@dataclass
class Sheet:
    rows: list[SheetRow] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)


class SheetUnreadable(ValueError):
    """The upload is no XLSX or CSV this reads (the message says why)."""


def _header_key(cell: str) -> str | None:
    words = {w.strip().lower() for w in re.split(r"[\s/()（）|]+", cell) if w.strip()}
    for key, zh, en in COLUMNS:
        if zh.lower() in words or en.lower() in words or key in words:
            return key
    return None


def _cells(data: bytes) -> Iterator[tuple[int, list[str]]]:
    """(row number, cells as text) of the upload's first sheet: XLSX (a zip) or CSV text."""
    if data[:4] == b"PK\x03\x04":
        try:
            book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        except (InvalidFileException, zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
            raise SheetUnreadable(f"not a readable XLSX workbook: {exc}") from None
        try:
            sheet = book.worksheets[0]
            for n, values in enumerate(sheet.iter_rows(values_only=True), start=1):
                yield n, [_text(v) for v in values]
        finally:
            book.close()
        return
    for encoding in ("utf-8-sig", "gb18030"):  # Excel in China saves CSV as GB18030 (GBK)
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:  # pragma: no cover - gb18030 decodes almost any byte string
        raise SheetUnreadable("the CSV is neither UTF-8 nor GB18030 text")
    if "\x00" in text:
        raise SheetUnreadable("not a CSV text file (it holds NUL bytes): upload an XLSX or a CSV")
    sample = text[:4096]
    try:
        dialect: Any = csv.Sniffer().sniff(sample, delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    for n, row in enumerate(csv.reader(io.StringIO(text), dialect), start=1):
        yield n, [c.strip() for c in row]


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # a phone typed as a number
    return str(value).strip()


def read_sheet(data: bytes) -> Sheet:
    """The sheet's data rows by column key; a missing required column or an overlong cell is a problem."""
    out = Sheet()
    cells = _cells(data)
    keys: list[str | None] = []
    header_row = 0
    for n, row in cells:
        if any(row):
            keys = [_header_key(c) for c in row]
            header_row = n
            break
    if not header_row:
        raise SheetUnreadable("the sheet is empty: the first row names the columns (用户名 username, …)")
    missing = [k for k in REQUIRED_COLUMNS if k not in keys]
    for key in missing:
        zh = next(z for k, z, _ in COLUMNS if k == key)
        out.problems.append(RowProblem(header_row, key, f"no column {zh} {key}"))
    if missing:
        return out
    for n, row in cells:
        if not any(row):
            continue
        if len(out.rows) >= MAX_ROWS:
            out.problems.append(RowProblem(n, "username", f"more than {MAX_ROWS} rows: split the sheet"))
            break
        values: dict[str, str] = {}
        for column, cell in zip(keys, row, strict=False):
            if column is None or column in values:
                continue
            if len(cell) > MAX_CELL:
                out.problems.append(RowProblem(n, column, f"longer than {MAX_CELL} characters"))
                cell = cell[:MAX_CELL]
            values[column] = cell
        out.rows.append(SheetRow(n, values))
    return out


def parse_role(word: str) -> Role | None:
    return ROLE_WORDS.get(word.strip().lower()) or ROLE_WORDS.get(word.strip())


def parse_yes(word: str) -> bool | None:
    w = word.strip().lower()
    return True if w in YES else False if w in NO else None


def template_xlsx() -> bytes:
    """The import template: the header row in Chinese and English, one example row, and a sheet of notes."""
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "用户 users"
    sheet.append([f"{zh} {en}" for _k, zh, en in COLUMNS])
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    sheet.append(["police3.yiqiao", "张伟", "liaison", "yiqiao", "police", "", "", "13905370000", "否", ""])
    for col, width in zip("ABCDEFGHIJ", (18, 10, 14, 12, 12, 14, 10, 14, 8, 14), strict=True):
        sheet.column_dimensions[col].width = width
    notes = book.create_sheet("说明 notes")
    for line in _NOTES:
        notes.append([line])
    notes.column_dimensions["A"].width = 110
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()


_NOTES: tuple[str, ...] = (
    "每行一个账号；第一行是列名（中文或英文均可）。One account a row; the first row names the columns.",
    "用户名 username: 2-64 位 a-z 0-9 _ . -，不可与已有账号重复 (unique).",
    "角色 role: " + ", ".join(f"{r.value} {ROLE_NAMES_ZH[r]}" for r in ADMIN_ROLES),
    "镇街 township: 镇街代码 township code (yiqiao …); 值班员、联络员、镇街领导、网格员必填.",
    "部门 department: 派驻部门代码 department code (police …): 联络员（部门）和部门负责人.",
    "力量 unit: 镇属力量名称 township unit name (镇执法中队 …): 镇属力量的联络员；与部门二选一.",
    "网格 grid: 网格名称 grid name (第1网格 …): 仅网格员.",
    "手机 phone: 5-20 位 0-9 + - 空格 (optional).   组长 team_lead: 是/否 (liaisons only).",
    "初始密码 password: 至少 8 位；留空则生成，导入后一次性下载 (blank: generated, downloaded once).",
    "导入前先预览；有任何错误则不导入任何账号。Preview first; nothing is imported while any row has an error.",
)


def passwords_xlsx(rows: Iterable[tuple[str, str, str]]) -> bytes:
    """The generated passwords to hand out, (username, name, password) a row."""
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "初始密码 passwords"
    sheet.append(["用户名 username", "姓名 name", "初始密码 password"])
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in rows:
        sheet.append(list(row))
    for col, width in zip("ABC", (20, 12, 24), strict=True):
        sheet.column_dimensions[col].width = width
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()
