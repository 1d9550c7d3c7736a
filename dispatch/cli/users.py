"""``xianghu user …``: accounts from the command line, through the same store functions as the admin console
(``dispatch/store/user_admin.py``): each change validated, logged in the admin log and announced to every node."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from dispatch.cli.common import _fail, _with_conn, data_option
from dispatch.core import roster
from dispatch.store import adminlog, user_admin, user_import
from dispatch.store.pool import Conn

ROLE_CHOICE = click.Choice([r.value for r in roster.ADMIN_ROLES])


def _now() -> datetime:
    return datetime.now(UTC)


@click.group()
def user() -> None:
    """Manage accounts (each change is recorded in the admin log)."""


@user.command("add")
@data_option
@click.argument("username")
@click.option("--name", "display_name", required=True, help="Display name.")
@click.option("--role", type=ROLE_CHOICE, required=True)
@click.option("--township", help="Township code (operators, liaisons, township leaders and grid workers; optional "
                                 "for a supervisor).")
@click.option("--department", help="Department code (its liaisons, and a department head).")
@click.option("--unit", help="Township unit, by name or id (a unit liaison, with --township).")
@click.option("--team-lead", is_flag=True)
@click.option("--phone", help="Mobile number for SMS notifications (docs/NOTIFICATIONS.md).")
@click.option("--grid", "grid", help="Grid name (or id) in --township: a grid worker's grid, e.g. 第1网格.")
@click.password_option(help="Password (asked for when not given).")
def user_add(data_dir: Path | None, username: str, display_name: str, role: str, township: str | None,
             department: str | None, unit: str | None, team_lead: bool, phone: str | None, grid: str | None,
             password: str) -> None:
    """Create an account."""
    spec = user_admin.UserSpec(username=username, display_name=display_name, role=role, township=township,
                               department=department, unit=unit, grid=grid, phone=phone, team_lead=team_lead)

    async def go(conn: Conn) -> int:
        uid, _ = await user_admin.add_user(conn, actor=adminlog.cli_actor(), now=_now(), spec=spec,
                                           password=password)
        return uid

    uid = _with_conn(data_dir, go)
    click.echo(f"user {username} created (id {uid})")


@user.command("list")
@data_option
@click.option("--role", type=ROLE_CHOICE, default=None)
@click.option("--township", default=None, help="Township code.")
@click.option("--department", default=None, help="Department code.")
@click.option("--text", default=None, help="Part of the username or the name.")
@click.option("--limit", type=click.IntRange(1, 100_000), default=200, show_default=True)
@click.option("--offset", type=click.IntRange(0), default=0)
def user_list(data_dir: Path | None, role: str | None, township: str | None, department: str | None,
              text: str | None, limit: int, offset: int) -> None:
    """List accounts, one a line (tab-separated): username, role, township, department or unit, grid, name."""
    async def go(conn: Conn) -> tuple[int, list[dict[str, Any]]]:
        return await user_admin.list_users(conn, role=role, township=township, department=department, text=text,
                                           limit=limit, offset=offset)

    total, users = _with_conn(data_dir, go)
    for u in users:
        target = u["department"] or (f"unit:{u['unit_id']} {u['unit_name']}" if u["unit_id"] else "-")
        flags = ",".join(f for f, on in (("team_lead", u["team_lead"]), ("DISABLED", u["disabled"])) if on)
        click.echo("\t".join([u["username"], u["role"], u["township"] or "-", target, u["grid_name"] or "-",
                              u["display_name"], flags or "-"]))
    click.echo(f"{len(users)} of {total} accounts", err=True)


@user.command("set")
@data_option
@click.argument("username")
@click.option("--name", "display_name", default=None, help="New display name.")
@click.option("--role", type=ROLE_CHOICE, default=None)
@click.option("--township", default=None, help='Township code ("" clears it).')
@click.option("--department", default=None, help='Department code ("" clears it).')
@click.option("--unit", default=None, help='Township unit, by name or id ("" clears it).')
@click.option("--grid", default=None, help='Grid name or id ("" clears it).')
@click.option("--phone", default=None, help='Mobile number ("" clears it).')
@click.option("--team-lead/--no-team-lead", default=None)
def user_set(data_dir: Path | None, username: str, display_name: str | None, role: str | None,
             township: str | None, department: str | None, unit: str | None, grid: str | None, phone: str | None,
             team_lead: bool | None) -> None:
    """Change an account. What the new role cannot have is dropped unless given; a new role or place logs the
    account out everywhere."""
    change = user_admin.UserChange(display_name=display_name, role=role, township=township, department=department,
                                   unit=unit, grid=grid, phone=phone, team_lead=team_lead)

    async def go(conn: Conn) -> dict[str, Any]:
        await user_admin.update_user(conn, actor=adminlog.cli_actor(), now=_now(), username=username, change=change)
        return await user_admin.get_user(conn, username)

    u = _with_conn(data_dir, go)
    click.echo(f"user {username}: {u['role']}, township {u['township'] or '-'}, "
               f"{u['department'] or u['unit_name'] or '-'}, grid {u['grid_name'] or '-'}")


@user.command("passwd")
@data_option
@click.argument("username")
@click.password_option()
def user_passwd(data_dir: Path | None, username: str, password: str) -> None:
    """Set a new password (revokes the user's sessions)."""
    _with_conn(data_dir, lambda conn: user_admin.reset_password(conn, actor=adminlog.cli_actor(), now=_now(),
                                                                username=username, password=password))
    click.echo(f"password of {username} changed; sessions revoked")


@user.command("disable")
@data_option
@click.argument("username")
def user_disable(data_dir: Path | None, username: str) -> None:
    """Disable an account (revokes its sessions)."""
    _with_conn(data_dir, lambda conn: user_admin.set_disabled(conn, actor=adminlog.cli_actor(), now=_now(),
                                                              username=username, disabled=True))
    click.echo(f"user {username} disabled; sessions revoked")


@user.command("enable")
@data_option
@click.argument("username")
def user_enable(data_dir: Path | None, username: str) -> None:
    """Enable a disabled account again."""
    _with_conn(data_dir, lambda conn: user_admin.set_disabled(conn, actor=adminlog.cli_actor(), now=_now(),
                                                              username=username, disabled=False))
    click.echo(f"user {username} enabled")


@user.command("import")
@data_option
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Only check the sheet and report every fault; create nothing.")
@click.option("--passwords", "passwords_out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the generated passwords to this XLSX (default: FILE's name + -passwords.xlsx).")
def user_import_cmd(data_dir: Path | None, file: Path, dry_run: bool, passwords_out: Path | None) -> None:
    """Import accounts from an XLSX or CSV sheet (docs/ADMIN.md): every row is checked first; nothing is created
    while any row has a fault. Generated passwords go to an XLSX, once."""
    data = file.read_bytes()

    async def go(conn: Conn) -> user_import.ImportReport:
        return await user_import.run(conn, actor=adminlog.cli_actor(), now=_now(), data=data, dry_run=dry_run)

    report = _with_conn(data_dir, go)
    for p in report.problems:
        click.echo(f"row {p.row}: {p.field}: {p.message}", err=True)
    rows = len(report.rows)
    if report.problems:
        bad = len({p.row for p in report.problems})
        _fail(f"{bad} of {rows} rows have faults; nothing was imported")
    if dry_run:
        click.echo(f"dry run: {rows} rows, no faults; nothing was imported")
        return
    generated = [(u, n, p) for u, n, p in report.created if p is not None]
    click.echo(f"imported {len(report.created)} accounts")
    if generated:
        out = passwords_out or file.with_name(file.stem + "-passwords.xlsx")
        out.write_bytes(roster.passwords_xlsx(generated))
        click.echo(f"{len(generated)} generated passwords written to {out} (hand them out, then delete the file)")


@user.command("template")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def user_template(file: Path) -> None:
    """Write the bulk import's XLSX template (headers in Chinese and English) to FILE."""
    file.write_bytes(roster.template_xlsx())
    click.echo(f"template written to {file}")
