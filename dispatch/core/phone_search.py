"""Repeat-caller lookup: which reporter phones a query matches, never revealing more of a number than the
reader sees. A query is the full number, its masked form as the consoles show it (``138****5678``,
``****5678``) or its last digits (``5678``); it is matched against the number's digits only."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from dispatch.core.policy import mask_phone

MIN_DIGITS = 4
MAX_LENGTH = 20
SHOWN_SUFFIX = 4  # the digits a masked number keeps at its end
_SEPARATORS = re.compile(r"[\s\-()+]")
_MOBILE_MASK = re.compile(r"^(1\d\d)\*{4}(\d{4})$")
_OTHER_MASK = re.compile(r"^\*+(\d{4})$")
_DIGITS = re.compile(r"^\d+$")
HINT = "give the full number, its masked form (138****5678) or its last 4 digits"


class Shape(Enum):
    """Which stored numbers a match may consider."""

    ANY = "any"
    MOBILE = "mobile"  # 11 digits starting with 1: masked as 138****5678
    SHOWS_SUFFIX = "shows_suffix"  # 8 digits or more: a masked form shows the last four


@dataclass(frozen=True)
class PhoneMatch:
    """``like`` is a LIKE pattern over the stored number's digits (only digits, ``_`` and ``%``)."""

    like: str
    shape: Shape


def normalize(query: str) -> str:
    """The query's digits and stars, checked; ``ValueError`` naming what is accepted otherwise."""
    text = _SEPARATORS.sub("", query.replace("＊", "*"))
    if len(text) > MAX_LENGTH:
        raise ValueError(f"at most {MAX_LENGTH} digits and *: {HINT}")
    if _DIGITS.match(text):
        if len(text) < MIN_DIGITS:
            raise ValueError(f"at least {MIN_DIGITS} digits: {HINT}")
        return text
    if _MOBILE_MASK.match(text) or _OTHER_MASK.match(text):
        return text
    raise ValueError(HINT)


def phone_match(query: str, *, full_view: bool) -> PhoneMatch:
    """What ``query`` (already ``normalize``d) matches for a reader who sees full numbers or only masked ones.

    A reader who sees only masked numbers is matched on the masked form alone: a full number is masked
    first, a longer suffix is cut to the last four digits, and numbers whose mask shows nothing never match."""
    mobile = _MOBILE_MASK.match(query)
    if mobile:
        return PhoneMatch(f"{mobile.group(1)}____{mobile.group(2)}", Shape.MOBILE)
    other = _OTHER_MASK.match(query)
    if other:
        return PhoneMatch("%" + other.group(1), Shape.SHOWS_SUFFIX)
    full_number = len(query) >= 7
    if full_view:
        return PhoneMatch(query if full_number else "%" + query, Shape.ANY)
    if full_number:
        masked = mask_phone(query)
        if _MOBILE_MASK.match(masked):
            return phone_match(masked, full_view=False)
    return PhoneMatch("%" + query[-SHOWN_SUFFIX:], Shape.SHOWS_SUFFIX)
