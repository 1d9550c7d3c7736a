"""Ids of new calls and assignments: UUID version 7 (RFC 9562), time-ordered.

A version-4 id is random, so each new row's entry lands on a random leaf of every index keyed by it (``calls``,
``assignments``, ``events (call_id, seq)``, ``assignment_facts``, ``reporters``): the whole index is the working
set, leaves split half-empty, and after every checkpoint each leaf touched first is written to the WAL in full.
A version-7 id starts with the time in milliseconds, so new entries go to the rightmost leaves (B-tree's
rightmost-insert fast path). The time in an id says when its call or assignment was created, which the call
itself says to anyone who can see the id. Sans-I/O: the caller passes the time and the random bytes.
"""

from __future__ import annotations

from uuid import UUID

_RANDOM_BYTES = 10  # 74 random bits are used (12 + 62)


def uuid7(unix_ms: int, random: bytes) -> UUID:
    """48 bits of Unix time in milliseconds, version 7, 12 random bits, the RFC variant, 62 random bits."""
    if len(random) < _RANDOM_BYTES:
        raise ValueError(f"uuid7 needs {_RANDOM_BYTES} random bytes, got {len(random)}")
    rand = int.from_bytes(random[:_RANDOM_BYTES])
    value = ((unix_ms & 0xFFFF_FFFF_FFFF) << 80) | (0x7 << 76) | ((rand >> 62) & 0xFFF) << 64
    value |= (0b10 << 62) | (rand & 0x3FFF_FFFF_FFFF_FFFF)
    return UUID(int=value)
