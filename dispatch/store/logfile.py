"""The exported event log file (JSON Lines, docs/EXPORT.md): an event to a line and back, and the offline
check of a file's hash chain.

Pure: no database and no I/O of its own, so ``xianghu verify-log --file`` needs nothing but the file. The
hashed bytes come from ``EventRecord.canonical`` alone; a line is that same encoding with ``prev_hash`` and
``hash`` added, so a line is read strictly: a value that would encode differently is refused, not mended.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NoReturn
from uuid import UUID

from dispatch.core.reporter import canonical_json
from dispatch.store.eventlog import AT_FORMAT, EventRecord

MEDIA_TYPE = "application/x-ndjson"
# Every column of an event row, each a key of every line.
FIELDS = ("township_id", "seq", "call_id", "assignment_id", "type", "actor_id", "actor_role", "actor_name", "at",
          "body", "audience", "call_state", "assignment_state", "command_id", "prev_hash", "hash")
HASH_HEX = re.compile(r"[0-9a-f]{64}")


def encode_line(rec: EventRecord) -> bytes:
    """One line: the canonical fields plus ``prev_hash`` and ``hash`` in lowercase hex, ``\\n``-terminated."""
    doc = rec.canonical_doc()
    doc["prev_hash"] = rec.prev_hash.hex()
    doc["hash"] = rec.hash.hex()
    return canonical_json(doc) + b"\n"


class LineError(ValueError):
    """A line that is not an event of the format; ``seq`` when the line got as far as naming one."""

    def __init__(self, reason: str, seq: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.seq = seq


def decode_line(raw: bytes | str) -> EventRecord:
    """The event a line holds, with its ``prev_hash`` and ``hash`` as read (not checked here)."""
    text = raw.decode() if isinstance(raw, bytes) else raw
    text = text.rstrip("\r\n")
    if not text.strip():
        raise LineError("empty line")
    try:
        doc = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except ValueError as exc:  # JSONDecodeError, duplicate keys, NaN
        raise LineError(f"not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise LineError("not a JSON object")
    seq = doc.get("seq") if _is_int(doc.get("seq")) else None
    missing = [f for f in FIELDS if f not in doc]
    if missing:
        raise LineError(f"missing field(s): {', '.join(missing)}", seq)
    unknown = sorted(set(doc) - set(FIELDS))
    if unknown:
        raise LineError(f"unknown field(s): {', '.join(unknown)}", seq)
    try:
        return EventRecord(
            township_id=_int(doc, "township_id", minimum=1), seq=_int(doc, "seq", minimum=1),
            call_id=_uuid(doc, "call_id"), assignment_id=_uuid(doc, "assignment_id"), type=_str(doc, "type"),
            actor_id=_opt_int(doc, "actor_id"), actor_role=_str(doc, "actor_role"),
            actor_name=_str(doc, "actor_name"), at=_at(doc), body=_body(doc), audience=_audience(doc),
            call_state=_opt_str(doc, "call_state"), assignment_state=_opt_str(doc, "assignment_state"),
            command_id=_uuid(doc, "command_id"), prev_hash=_prev_hash(doc), hash=_hash(doc),
        )
    except _FieldError as exc:
        raise LineError(str(exc), seq) from None


@dataclass(frozen=True)
class FileReport:
    """What ``verify_lines`` found: the chain it checked, or the first line that breaks it."""

    ok: bool
    count: int  # lines verified (before the broken one, when not ok)
    township_id: int | None = None
    first_seq: int | None = None
    last_seq: int | None = None
    first_prev_hash: bytes = b""  # what the file's chain hangs from: the hash of the event before it
    last_hash: bytes = b""
    line: int | None = None  # the broken line, from 1
    seq: int | None = None
    reason: str = ""

    @property
    def empty(self) -> bool:
        return self.ok is False and self.line is None


def verify_lines(lines: Iterable[bytes | str]) -> FileReport:
    """Check a file line by line (a file object streams): every line an event of the format, one township,
    consecutive ``seq``, each ``prev_hash`` the previous line's ``hash``, each ``hash`` recomputed."""
    first: EventRecord | None = None
    prev: EventRecord | None = None
    count = 0
    for number, raw in enumerate(lines, start=1):
        try:
            rec = decode_line(raw)
        except UnicodeDecodeError as exc:
            return _broken(first, prev, count, number, None, f"not UTF-8: {exc}")
        except LineError as exc:
            return _broken(first, prev, count, number, exc.seq, exc.reason)
        reason = _link_error(prev, rec)
        if reason:
            return _broken(first, prev, count, number, rec.seq, reason)
        first = first or rec
        prev = rec
        count += 1
    if first is None or prev is None:
        return FileReport(False, 0, reason="the file holds no event")
    return FileReport(True, count, first.township_id, first.seq, prev.seq, first.prev_hash, prev.hash)


def _link_error(prev: EventRecord | None, rec: EventRecord) -> str:
    """Why ``rec`` cannot follow ``prev`` (None: the file's first line) in a chain, or ``""``."""
    if prev is not None:
        if rec.township_id != prev.township_id:
            return f"township_id {rec.township_id} differs from {prev.township_id} on the lines above"
        if rec.seq != prev.seq + 1:
            return f"sequence gap: expected seq {prev.seq + 1}, found {rec.seq}"
        if rec.prev_hash != prev.hash:
            return "prev_hash does not match the previous line's hash"
    if rec.seq == 1 and rec.prev_hash:
        return "the township's first event (seq 1) must have an empty prev_hash"
    if rec.seq > 1 and not rec.prev_hash:
        return "prev_hash is empty, which only the township's first event (seq 1) may have"
    if rec.chained(rec.prev_hash).hash != rec.hash:
        return "hash does not match the line's content"
    return ""


def _broken(first: EventRecord | None, prev: EventRecord | None, count: int, line: int, seq: int | None,
            reason: str) -> FileReport:
    return FileReport(False, count, None if first is None else first.township_id,
                      None if first is None else first.seq, None if prev is None else prev.seq,
                      b"" if first is None else first.prev_hash, b"" if prev is None else prev.hash,
                      line, seq, reason)


# -- strict field readers ------------------------------------------------------------------------

class _FieldError(ValueError):
    pass


def _fail(name: str, expected: str, doc: dict[str, Any]) -> NoReturn:
    raise _FieldError(f"{name}: expected {expected}, found {json.dumps(doc[name], ensure_ascii=False)[:80]}")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Readers differ on which of two equal keys wins; the hash must not depend on that choice.
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def _no_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a JSON number")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _int(doc: dict[str, Any], name: str, minimum: int) -> int:
    value = doc[name]
    if not _is_int(value) or value < minimum:
        _fail(name, f"an integer >= {minimum}", doc)
    result: int = value
    return result


def _opt_int(doc: dict[str, Any], name: str) -> int | None:
    value = doc[name]
    if value is not None and not _is_int(value):
        _fail(name, "an integer or null", doc)
    result: int | None = value
    return result


def _str(doc: dict[str, Any], name: str) -> str:
    value = doc[name]
    if not isinstance(value, str):
        _fail(name, "a string", doc)
    return value


def _opt_str(doc: dict[str, Any], name: str) -> str | None:
    value = doc[name]
    if value is not None and not isinstance(value, str):
        _fail(name, "a string or null", doc)
    result: str | None = value
    return result


def _uuid(doc: dict[str, Any], name: str) -> UUID | None:
    value = doc[name]
    if value is None:
        return None
    try:
        parsed = UUID(value) if isinstance(value, str) else None
    except ValueError:
        parsed = None
    if parsed is None or str(parsed) != value:
        _fail(name, "a UUID in lowercase 8-4-4-4-12 form, or null", doc)
    return parsed


def _at(doc: dict[str, Any]) -> datetime:
    value = doc["at"]
    try:
        parsed = datetime.strptime(value, AT_FORMAT).replace(tzinfo=UTC) if isinstance(value, str) else None
    except ValueError:
        parsed = None
    if parsed is None or parsed.strftime(AT_FORMAT) != value:
        _fail("at", "UTC time as YYYY-MM-DDTHH:MM:SS.ffffffZ (six fraction digits)", doc)
    return parsed


def _body(doc: dict[str, Any]) -> dict[str, Any]:
    value = doc["body"]
    if not isinstance(value, dict):
        _fail("body", "an object", doc)
    return value


def _audience(doc: dict[str, Any]) -> tuple[str, ...]:
    value = doc["audience"]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        _fail("audience", "an array of strings", doc)
    return tuple(value)


def _prev_hash(doc: dict[str, Any]) -> bytes:
    value = doc["prev_hash"]
    if value != "" and not (isinstance(value, str) and HASH_HEX.fullmatch(value)):
        _fail("prev_hash", "64 lowercase hex digits, or \"\" for the township's first event", doc)
    return bytes.fromhex(value)


def _hash(doc: dict[str, Any]) -> bytes:
    value = doc["hash"]
    if not (isinstance(value, str) and HASH_HEX.fullmatch(value)):
        _fail("hash", "64 lowercase hex digits", doc)
    return bytes.fromhex(value)
