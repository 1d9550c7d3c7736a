"""Uploaded evidence (photos, PDFs): stored, resolved and bound to a call by the write path, read back.

The bytes live in the ``attachments`` row (``[attachments] store = "database"``) or in the configured folder
as files named by their SHA-256 hex digest (``"folder"``: the same bytes uploaded twice share one file);
thumbnails always live in the row. An upload belongs to its uploader until a command of theirs names it:
the write path (``dispatch/store/writer.py``) locks the rows, checks them (``resolve``) and binds them to
the call and the event that records their digests (``bind``), in the command's transaction.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from dispatch.core.config import AttachmentsConfig
from dispatch.core.media import Inspected
from dispatch.store.pool import Conn
from protocols.errors import Conflict, Forbidden, InternalError, NotFound

INSERT_ATTACHMENT = """
insert into attachments (id, township_id, uploaded_by, uploaded_at, sha256, content_type, size, width, height,
                         data, thumbnail)
values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
"""
SELECT_ATTACHMENT = """
select a.id, a.township_id, a.uploaded_by, a.uploaded_at, a.sha256, a.content_type, a.size, a.width, a.height,
       a.call_id, a.event_seq, a.step, a.assignment_id, e.audience,
       array(select distinct s.target from assignments s where s.call_id = a.call_id) as call_targets
  from attachments a
  left join events e on e.township_id = a.township_id and e.seq = a.event_seq
 where a.id = $1
"""
SELECT_DATA = "select data from attachments where id = $1"
SELECT_THUMBNAIL = "select thumbnail from attachments where id = $1"
# The uploads a command names, locked until it commits: a second command naming one waits, then sees it bound.
LOCK_FOR_COMMAND = """
select id, uploaded_by, sha256, content_type, size, call_id
  from attachments
 where id = any($1::uuid[])
   for update
"""
BIND = """
update attachments a
   set call_id = $2, event_seq = $3, step = $4, assignment_id = $5, position = named.n
  from unnest($1::uuid[]) with ordinality as named (id, n)
 where a.id = named.id and a.call_id is null
"""
SELECT_FOR_CALL = """
select a.id, a.uploaded_by, a.sha256, a.content_type, a.size, a.width, a.height, a.step, a.assignment_id,
       a.event_seq,
       a.uploaded_at, e.audience
  from attachments a
  join events e on e.township_id = a.township_id and e.seq = a.event_seq
 where a.call_id = $1
 order by a.event_seq, a.position
"""
# Unbound uploads past their time, skipping any a command is binding right now.
DELETE_UNBOUND = """
delete from attachments
 where id in (select id from attachments
               where call_id is null and uploaded_at < $1
               order by uploaded_at
               limit 500
                 for update skip locked)
returning sha256
"""
SHA256_IN_USE = "select exists (select 1 from attachments where sha256 = $1)"
# The bound files of a township's events in a seq range (the export's companions).
SELECT_FOR_EXPORT = """
select id, sha256
  from attachments
 where township_id = $1 and event_seq between $2 and $3
 order by event_seq, position
"""
STEP_OF_EVENT = {"call.created": "intake", "assignment.arrived": "arrive", "assignment.reported": "report_result"}


@dataclass(frozen=True, slots=True)
class Attachment:
    id: UUID
    township_id: int
    uploaded_by: int
    uploaded_at: datetime
    sha256: bytes
    content_type: str
    size: int
    width: int | None
    height: int | None
    call_id: UUID | None
    step: str | None
    assignment_id: UUID | None
    audience: tuple[str, ...]  # of the event that bound it (who may read that step); () while unbound
    call_targets: tuple[str, ...]  # every department or unit the call has (had) a part for


def urls(attachment_id: UUID | str, content_type: str) -> dict[str, str | None]:
    base = f"/api/v1/attachments/{attachment_id}"
    return {"url": base, "thumbnail_url": f"{base}/thumbnail" if content_type.startswith("image/") else None}


def ref(row: Any) -> dict[str, Any]:
    """What an event body records of one attachment: the hash-chained log carries its digest."""
    return {"id": str(row["id"]), "sha256": bytes(row["sha256"]).hex(), "content_type": row["content_type"],
            "size": row["size"]}


class Folder:
    """Files named by their SHA-256 hex digest in one folder, written atomically (temporary file, rename)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def file(self, sha256: bytes) -> Path:
        return self.path / bytes(sha256).hex()

    def _write(self, sha256: bytes, data: bytes) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        target = self.file(sha256)
        if target.exists() and target.stat().st_size == len(data):
            return
        fd, tmp = tempfile.mkstemp(dir=self.path, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    async def write(self, sha256: bytes, data: bytes) -> None:
        await asyncio.to_thread(self._write, sha256, data)

    async def read(self, sha256: bytes) -> bytes:
        try:
            return await asyncio.to_thread(self.file(sha256).read_bytes)
        except FileNotFoundError:
            raise InternalError(f"attachment file {bytes(sha256).hex()} is missing from {self.path}") from None

    async def remove(self, sha256: bytes) -> None:
        await asyncio.to_thread(self.file(sha256).unlink, missing_ok=True)


def folder_of(cfg: AttachmentsConfig) -> Folder | None:
    return Folder(cfg.folder) if cfg.store == "folder" else None


async def save(conn: Conn, cfg: AttachmentsConfig, *, id: UUID, township_id: int, user_id: int, at: datetime,
               file: Inspected, data: bytes) -> None:
    """Store one checked upload (the file first in folder mode: a row never names a file not yet written)."""
    folder = folder_of(cfg)
    if folder is not None:
        await folder.write(file.sha256, data)
    await conn.execute(INSERT_ATTACHMENT, id, township_id, user_id, at, file.sha256, file.content_type, file.size,
                       file.width, file.height, None if folder is not None else data, file.thumbnail)


async def remove_unbound(conn: Conn, cfg: AttachmentsConfig, before: datetime) -> int:
    """Delete uploads no command named before ``before`` (and, in folder mode, files no row names any more)."""
    async with conn.transaction():
        rows = await conn.fetch(DELETE_UNBOUND, before)
    folder = folder_of(cfg)
    if folder is not None:
        for digest in {bytes(r["sha256"]) for r in rows}:
            if not await conn.fetchval(SHA256_IN_USE, digest):
                await folder.remove(digest)
    return len(rows)


async def fetch(conn: Conn, attachment_id: UUID) -> Attachment | None:
    row = await conn.fetchrow(SELECT_ATTACHMENT, attachment_id)
    if row is None:
        return None
    return Attachment(
        id=row["id"], township_id=row["township_id"], uploaded_by=row["uploaded_by"],
        uploaded_at=row["uploaded_at"], sha256=bytes(row["sha256"]), content_type=row["content_type"],
        size=row["size"], width=row["width"], height=row["height"], call_id=row["call_id"], step=row["step"],
        assignment_id=row["assignment_id"], audience=tuple(row["audience"] or ()),
        call_targets=tuple(row["call_targets"] or ()))


async def read_bytes(conn: Conn, cfg: AttachmentsConfig, a: Attachment) -> bytes:
    data = await conn.fetchval(SELECT_DATA, a.id)
    if data is not None:
        return bytes(data)
    # Stored in a folder (this or an earlier configuration): the file named by the digest.
    return await Folder(cfg.folder).read(a.sha256)


async def read_thumbnail(conn: Conn, a: Attachment) -> bytes | None:
    data = await conn.fetchval(SELECT_THUMBNAIL, a.id)
    return None if data is None else bytes(data)


async def resolve(conn: Conn, user_id: int | None, ids: list[UUID]) -> tuple[dict[str, Any], ...]:
    """Lock the uploads a command names and check them: each exists, was uploaded by ``user_id`` and is not
    bound to a call yet; their event refs in the command's order. Errors name ``attachments.<i>``."""
    if not ids:
        return ()
    rows = {r["id"]: r for r in await conn.fetch(LOCK_FOR_COMMAND, ids)}
    out = []
    for i, aid in enumerate(ids):
        field = f"attachments.{i}"
        row = rows.get(aid)
        if row is None:
            raise NotFound(f"{field}: no attachment {aid} (unknown, or removed a day after upload)", field=field)
        if row["uploaded_by"] != user_id:
            raise Forbidden(f"{field}: attachment {aid} was uploaded by someone else", field=field)
        if row["call_id"] is not None:
            raise Conflict(f"{field}: attachment {aid} is already attached to a call", field=field)
        out.append(ref(row))
    return tuple(out)


async def bind(conn: Conn, ids: list[UUID], call_id: UUID, event_seq: int, event_type: str,
               assignment_id: UUID | None) -> None:
    """Attach the (locked, checked) uploads to the call and the event that recorded them."""
    done = await conn.execute(BIND, ids, call_id, event_seq, STEP_OF_EVENT[event_type], assignment_id)
    if done != f"UPDATE {len(ids)}":
        raise InternalError(f"bound {done} of {len(ids)} attachments")


async def for_call(conn: Conn, call_id: UUID) -> list[Any]:
    """The call's attachments with the audience of the event each came with, in the order of the steps."""
    return list(await conn.fetch(SELECT_FOR_CALL, call_id))


def listing(row: Any) -> dict[str, Any]:
    """One attachment as the call detail lists it."""
    return {**ref(row), "width": row["width"], "height": row["height"], "step": row["step"],
            "assignment_id": None if row["assignment_id"] is None else str(row["assignment_id"]),
            "seq": row["event_seq"], "uploaded_at": row["uploaded_at"].isoformat(),
            **urls(row["id"], row["content_type"])}


async def export_files(conn: Conn, cfg: AttachmentsConfig, township_id: int, first_seq: int, last_seq: int,
                       into: Path) -> int:
    """Write the files bound to the township's events ``first_seq``..``last_seq`` into ``into``, each named by
    its SHA-256 hex digest (what the event body records), one at a time; how many distinct files."""
    out = Folder(into)
    written: set[bytes] = set()
    for row in await conn.fetch(SELECT_FOR_EXPORT, township_id, first_seq, last_seq):
        digest = bytes(row["sha256"])
        if digest in written:
            continue
        data = await conn.fetchval(SELECT_DATA, row["id"])
        await out.write(digest, bytes(data) if data is not None else await Folder(cfg.folder).read(digest))
        written.add(digest)
    return len(written)
