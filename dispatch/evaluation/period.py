"""Evaluation periods: calendar months (the default) and date ranges, bounded at 00:00 Asia/Shanghai."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from protocols.errors import ValidationFailed

TZ = ZoneInfo("Asia/Shanghai")
MONTH_RE = re.compile(r"^(\d{4})-(\d{2})$")
MAX_RANGE_DAYS = 3 * 366  # a longer range is refused (a year's scorecards are the usual longest)


@dataclass(frozen=True, slots=True)
class Period:
    """``[start, end)`` in UTC; ``first``/``last`` are the inclusive calendar dates in Asia/Shanghai."""

    first: date
    last: date
    month: str | None = None  # "2026-10" when the period is exactly one calendar month

    @property
    def start(self) -> datetime:
        return midnight(self.first)

    @property
    def end(self) -> datetime:
        return midnight(self.last + timedelta(days=1))

    @property
    def label(self) -> str:
        return self.month or f"{self.first.isoformat()}..{self.last.isoformat()}"

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    def to_dict(self) -> dict[str, str | None]:
        return {"from": self.first.isoformat(), "to": self.last.isoformat(), "month": self.month,
                "label": self.label, "start": self.start.isoformat(), "end": self.end.isoformat()}


def midnight(day: date) -> datetime:
    """00:00 of ``day`` in Asia/Shanghai, as an aware UTC datetime."""
    return datetime.combine(day, time(0), TZ).astimezone(UTC)


def local_date(at: datetime) -> date:
    return at.astimezone(TZ).date()


def month_of(at: datetime) -> str:
    """The Asia/Shanghai calendar month ``at`` falls in: ``"2026-10"``."""
    d = local_date(at)
    return f"{d.year:04d}-{d.month:02d}"


def month(year: int, month_: int) -> Period:
    first = date(year, month_, 1)
    nxt = date(year + (month_ == 12), month_ % 12 + 1, 1)
    return Period(first, nxt - timedelta(days=1), f"{year:04d}-{month_:02d}")


def parse_month(text: str, field: str = "month") -> Period:
    m = MONTH_RE.match(text.strip())
    if m is None or not 1 <= int(m.group(2)) <= 12 or not 1970 <= int(m.group(1)) <= 9999:
        raise ValidationFailed(f"{field}: expected a month as YYYY-MM (e.g. 2026-10), got {text!r}", field=field)
    return month(int(m.group(1)), int(m.group(2)))


def date_range(first: date, last: date) -> Period:
    if last < first:
        raise ValidationFailed(f"to: {last.isoformat()} is before from {first.isoformat()}", field="to")
    if (last - first).days + 1 > MAX_RANGE_DAYS:
        raise ValidationFailed(f"to: a range may span at most {MAX_RANGE_DAYS} days", field="to")
    whole = month(first.year, first.month)
    return whole if whole.first == first and whole.last == last else Period(first, last)


def last_month(now: datetime) -> Period:
    """The calendar month before the one ``now`` falls in (what the supervisor page opens on)."""
    d = local_date(now)
    return month(d.year - (d.month == 1), (d.month - 2) % 12 + 1)


def this_month(now: datetime) -> Period:
    d = local_date(now)
    return month(d.year, d.month)


def previous(p: Period) -> Period:
    """The period before ``p``: the previous month for a month, else as many days just before."""
    if p.month is not None:
        return month(p.first.year - (p.first.month == 1), (p.first.month - 2) % 12 + 1)
    days = timedelta(days=p.days)
    return Period(p.first - days, p.last - days)


def months_ending(p: Period, count: int) -> list[Period]:
    """``count`` calendar months, oldest first, the last one the month ``p`` ends in."""
    out = [month(p.last.year, p.last.month)]
    while len(out) < count:
        out.insert(0, previous(out[0]))
    return out


def resolve(month_text: str | None, first: date | None, last: date | None, now: datetime) -> Period:
    """The period a request names: ``month``, or ``from``..``to`` (inclusive), or last month by default."""
    if month_text is not None and (first is not None or last is not None):
        raise ValidationFailed("month: give either month or from/to, not both", field="month")
    if month_text is not None:
        return parse_month(month_text)
    if first is not None or last is not None:
        if first is None or last is None:
            raise ValidationFailed(f"{'from' if first is None else 'to'}: from and to go together",
                                   field="from" if first is None else "to")
        return date_range(first, last)
    return last_month(now)
