"""Who reported a call, kept out of the hash chain (DESIGN.md idea 10): the chained ``call.created`` body
carries ``reporter_digest`` instead of the name and phone, which live in the ``reporters`` table until erased;
the call snapshot a dispatch carries (``assignment.dispatched``'s ``call``) carries neither.

The digest is SHA-256 over the call's random salt followed by the canonical JSON (sorted keys, no
whitespace, UTF-8, non-ASCII as itself: the chain's own encoding) of ``{"name": …, "phone": …}``; null when
neither was given. Anyone holding the name, phone and salt can check it (docs/EXPORT.md, "Reporters").
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

PLAIN_FIELDS = ("reporter_name", "reporter_phone")
DIGEST_FIELD = "reporter_digest"
SALT_BYTES = 16


def canonical_json(doc: Any) -> bytes:
    """Sorted keys at every depth, no whitespace, non-ASCII characters as themselves, UTF-8."""
    return _CANONICAL.encode(doc).encode()


# ``json.dumps(doc, sort_keys=True, ensure_ascii=False, separators=(",", ":"))``, the same text, without a new
# encoder per document (the chain encodes one per event).
_CANONICAL = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def reporter_digest(salt: bytes, name: str | None, phone: str | None) -> bytes:
    return hashlib.sha256(salt + canonical_json({"name": name, "phone": phone})).digest()


@dataclass(frozen=True, slots=True)
class Reporter:
    """The part of a ``call.created`` body that stays out of the chain."""

    name: str | None
    phone: str | None
    salt: bytes
    digest: bytes


def has_plaintext(type_: str, body: dict[str, Any]) -> bool:
    """Whether an event body still carries a name or phone field (the shape before migration 0010): at the top of
    ``call.created``, or in the call snapshot (``call``) a dispatch carries."""
    if type_ == "call.created":
        return any(f in body for f in PLAIN_FIELDS)
    snapshot = body.get("call")
    return isinstance(snapshot, dict) and any(f in snapshot for f in PLAIN_FIELDS)


def without_snapshot_reporter(body: dict[str, Any]) -> dict[str, Any]:
    """A body whose call snapshot (``assignment.dispatched``) loses the name and phone: the call's
    ``call.created`` holds their digest; delivery joins them back from ``reporters``."""
    snapshot = body.get("call")
    if not isinstance(snapshot, dict):
        return body
    return {**body, "call": {k: v for k, v in snapshot.items() if k not in PLAIN_FIELDS}}


def separate(body: dict[str, Any], salt: bytes) -> tuple[dict[str, Any], Reporter | None]:
    """The body to chain (name and phone replaced by ``reporter_digest``) and the reporter to keep aside;
    no reporter (and a null digest) when neither a name nor a phone was given."""
    name, phone = body.get("reporter_name"), body.get("reporter_phone")
    chained = {k: v for k, v in body.items() if k not in PLAIN_FIELDS}
    if name is None and phone is None:
        chained[DIGEST_FIELD] = None
        return chained, None
    digest = reporter_digest(salt, name, phone)
    chained[DIGEST_FIELD] = digest.hex()
    return chained, Reporter(name, phone, salt, digest)
