"""Call numbers: gap-free per township per calendar year in Asia/Shanghai (``YIQIAO-2026-000123``).

The store keeps the counter and assigns the next one under the township's lock, in the transaction that
creates the call, so a refused or failed creation leaves no gap. Numbers given before this scheme
(``YIQIAO-0000019``, event sequences) are kept as they are: the log is never rewritten."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

NUMBERING_TZ = ZoneInfo("Asia/Shanghai")


def numbering_year(at: datetime) -> int:
    """The calendar year in Asia/Shanghai that numbers a call created at ``at``."""
    return at.astimezone(NUMBERING_TZ).year


def format_number(township_code: str, year: int, n: int) -> str:
    """``("yiqiao", 2026, 123)`` → ``YIQIAO-2026-000123`` (ASCII: the form in the API and the log)."""
    return f"{township_code.upper()}-{year:04d}-{n:06d}"
