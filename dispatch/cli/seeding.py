"""Seeding the demo county from the command line: accounts once, then (optionally) months of simulated
history before the sample calls; the ``--history`` options of ``seed-demo`` and ``demo``."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import click

from dispatch.cli.history import MAX_MONTHS
from dispatch.core.config import Config
from dispatch.store import pool as db

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class HistoryPlan:
    """What ``--history`` asked for; ``quiet``: a county that already has calls is not worth a word (``demo``
    loads its history on the first start, when the county has none yet, and says nothing on later ones)."""

    months: int
    scale: float = 1.0
    seed: int = 1
    end: datetime | None = None
    quiet: bool = False


@dataclass(frozen=True)
class Seeded:
    created: bool
    history: Any = None  # dispatch.cli.history.seed.Figures when a history was loaded
    history_skipped: bool = False


async def seed(dsn: str, cfg: Config, plan: HistoryPlan | None = None,
               progress: Callable[[float], None] | None = None) -> Seeded:
    """Reference data and the demo county (once); its history, if asked and it has no call yet; then, for a
    county created now, the sample calls (after the history: they are the newest calls)."""
    from dispatch.cli.demo import seed_demo, seed_sample_calls
    from dispatch.core.clock import SystemClock
    from dispatch.store.reference import sync_reference
    from dispatch.store.writer import Store

    conn = await db.connect(dsn)
    try:
        await sync_reference(conn, cfg)
        created = await seed_demo(conn)
        figures, skipped = None, False
        if plan is not None and plan.months > 0:
            from dispatch.cli.history.seed import has_calls, seed_history

            if await has_calls(conn):
                skipped = not plan.quiet
            else:
                figures = await seed_history(conn, cfg, plan.months, end=plan.end, scale=plan.scale, seed=plan.seed,
                                             progress=progress)
        if created:
            pool = await db.create_pool(dsn, min_size=1, max_size=2)
            try:
                await seed_sample_calls(Store(pool, cfg, SystemClock()), conn)
            finally:
                await pool.close()
        return Seeded(created, figures, skipped)
    finally:
        await conn.close()


def _history_end(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        end = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter("must be an ISO-8601 time with a zone, e.g. 2026-05-01T12:00:00+08:00") from None
    if end.tzinfo is None:
        raise click.BadParameter("needs a time zone (+08:00 or Z)")
    if end > datetime.now(UTC):
        raise click.BadParameter("must not be in the future: the first real call comes after the history")
    return end


def history_options(default_months: int, full: bool) -> Callable[[F], F]:
    """``--history N`` (and, with ``full``, ``--scale``, ``--seed`` and ``--history-end``)."""
    options = [click.option(
        "--history", "history_months", type=click.IntRange(0, MAX_MONTHS), default=default_months,
        show_default=True, help="Months of simulated activity loaded into a county without calls (0: none).")]
    if full:
        options += [
            click.option("--scale", type=click.FloatRange(0.01, 100), default=1.0, show_default=True,
                         help="Multiplies the calls a day (about 100 county-wide at 1)."),
            click.option("--seed", type=int, default=1, show_default=True,
                         help="Seed of the simulation: the same seed, end and scale give the same history."),
            click.option("--history-end", type=str, default=None, callback=_history_end,
                         help="ISO-8601 time with a zone the history ends at (default: now)."),
        ]

    def apply(fn: F) -> F:
        for option in reversed(options):
            fn = option(fn)
        return fn
    return apply


@contextlib.contextmanager
def progress_bar(plan: HistoryPlan | None) -> Iterator[Callable[[float], None] | None]:
    """A progress bar on stderr while a history loads (a script's stdout is its figures), shown from the first
    batch on (a skipped history shows none)."""
    if plan is None or plan.months == 0:
        yield None
        return
    with contextlib.ExitStack() as stack:
        bars: list[Any] = []

        def advance(fraction: float) -> None:
            if not bars:
                bars.append(stack.enter_context(click.progressbar(
                    length=1000, label=f"history: {plan.months} months", file=sys.stderr)))
            bars[0].update(max(0, round(fraction * 1000) - bars[0].pos))
        yield advance


def report(done: Seeded, plan: HistoryPlan | None, err: bool = False) -> None:
    """The history's figures: events and calls written, the span, and the time it took."""
    if done.history_skipped:
        click.echo("history skipped: the county already has calls (a history goes only before the first call)",
                   err=True)
    f = done.history
    if f is None or plan is None:
        return
    click.echo(f"history: {f.events:,} events, {f.calls:,} calls ({f.commands:,} commands) from "
               f"{f.start:%Y-%m-%d %H:%M} to {f.end:%Y-%m-%d %H:%M} UTC, scale {plan.scale:g}, seed {plan.seed}, "
               f"in {f.seconds:.1f} s", err=err)
