"""Bulk import of accounts from an XLSX or CSV sheet (issue #17): every row checked against the database with a
per-row, per-field report; the accounts created only when no row has a fault — all of them in one transaction.

The admin log gets one ``user.add`` entry per account (``after.via = "import"``), like an account added by hand:
"who created this account, and when" has one answer in one place whichever way it was created, and the log's
action filter finds both.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from dispatch.core import roster
from dispatch.core.domain import Actor
from dispatch.store import accounts, adminlog, changes, user_admin
from dispatch.store.pool import Conn
from protocols.errors import ValidationFailed


@dataclass
class ImportReport:
    rows: list[dict[str, Any]] = field(default_factory=list)
    problems: list[roster.RowProblem] = field(default_factory=list)
    created: list[tuple[str, str, str | None]] = field(default_factory=list)  # username, name, generated password

    @property
    def ok(self) -> bool:
        return not self.problems and bool(self.rows)

    def to_json(self) -> dict[str, Any]:
        bad_rows = {p.row for p in self.problems}
        return {"ok": self.ok, "rows": [{**r, "ok": r["row"] not in bad_rows} for r in self.rows],
                "problems": [p.to_json() for p in self.problems],
                "error_rows": len(bad_rows), "created": len(self.created)}


def _spec(values: dict[str, str], team_lead: bool) -> user_admin.UserSpec:
    return user_admin.UserSpec(
        username=values.get("username", ""), display_name=values.get("name", ""), role=values.get("role", ""),
        township=values.get("township") or None, department=values.get("department") or None,
        unit=values.get("unit") or None, grid=values.get("grid") or None, phone=values.get("phone") or None,
        team_lead=team_lead)


async def check(conn: Conn, data: bytes) -> tuple[ImportReport, list[tuple[int, user_admin.UserSpec, str | None]]]:
    """The preview: each row as read and every fault found; and the specs to create when there is none."""
    try:
        sheet = roster.read_sheet(data)
    except roster.SheetUnreadable as exc:
        raise ValidationFailed(f"file: {exc}", field="file") from None
    report = ImportReport(problems=list(sheet.problems))
    if not sheet.rows and not report.problems:
        report.problems.append(roster.RowProblem(1, "username", "the sheet has no rows below its header"))
    directory = await user_admin.Directory.load(conn)
    existing = await user_admin.existing_usernames(conn, [r.values.get("username", "") for r in sheet.rows])
    first_row: dict[str, int] = {}
    specs: list[tuple[int, user_admin.UserSpec, str | None]] = []
    for row in sheet.rows:
        v = row.values
        problems: list[tuple[str, str]] = []
        lead = roster.parse_yes(v.get("team_lead", ""))
        if lead is None:
            problems.append(("team_lead", f"{v.get('team_lead')!r}: 是 or 否 (yes or no)"))
        spec = _spec(v, bool(lead))
        username = spec.username
        if username in first_row:
            problems.append(("username", f"{username} is also on row {first_row[username]}"))
        elif username:
            first_row[username] = row.row
        if username in existing:
            problems.append(("username", f"{username} already exists"))
        password = v.get("password") or None
        if password is not None and (why := roster.password_problem(password)) is not None:
            problems.append(("password", why))
        if not username:
            problems.append(("username", "required"))
        if not spec.display_name:
            problems.append(("name", "required"))
        if not spec.role:
            problems.append(("role", "required"))
        else:
            _place, found = directory.place(spec)
            problems += [p for p in found if p not in problems and (p[0], "required") not in problems]
        report.rows.append({"row": row.row, "username": username, "name": spec.display_name,
                            "role": spec.role, "township": spec.township, "department": spec.department,
                            "unit": spec.unit, "grid": spec.grid, "phone": spec.phone, "team_lead": spec.team_lead,
                            "password": "given" if password else "generated"})
        report.problems += [roster.RowProblem(row.row, f, why) for f, why in problems]
        specs.append((row.row, spec, password))
    report.problems.sort(key=lambda p: (p.row, p.field))
    return report, specs


async def run(conn: Conn, *, actor: Actor, now: datetime, data: bytes, dry_run: bool) -> ImportReport:
    """Check the sheet; unless ``dry_run`` or a row has a fault, create every account in one transaction."""
    report, specs = await check(conn, data)
    if dry_run or not report.ok:
        return report
    # argon2 off the event loop, before the transaction: it holds no lock while hashing
    passwords = [(n, spec, given or user_admin.generate_password(), given is None) for n, spec, given in specs]
    hashes = await asyncio.gather(*(asyncio.to_thread(accounts.hash_password, pw) for _n, _s, pw, _g in passwords))
    async with conn.transaction():
        directory = await user_admin.Directory.load(conn)
        for (n, spec, password, generated), digest in zip(passwords, hashes, strict=True):
            try:
                await user_admin.add_user(conn, actor=actor, now=now, spec=spec, password=None, password_hash=digest,
                                          directory=directory, log=False)
            except ValidationFailed as exc:  # changed since the check (another admin): nothing is imported
                raise ValidationFailed(f"row {n}: {exc.message}", field=exc.field) from None
            after = await adminlog.account_snapshot(conn, spec.username)
            await adminlog.append(conn, actor=actor, action="user.add", target=f"user:{spec.username}", at=now,
                                  before=None, after={**(after or {}), "via": "import"})
            report.created.append((spec.username, spec.display_name, password if generated else None))
        await changes.announce(conn, "users")
    return report
