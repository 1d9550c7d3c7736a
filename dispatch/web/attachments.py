"""Evidence uploads: ``POST /api/v1/attachments`` (the file as the raw request body), then read back by those
who may read the step it came with (``GET /api/v1/attachments/{id}`` and ``/thumbnail``)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any
from uuid import UUID

from starlette.responses import Response

from dispatch.core import media, policy
from dispatch.core.domain import Actor
from dispatch.store import attachments as store
from dispatch.web.routing import Req, ZhJSONResponse, endpoint
from dispatch.web.schemas import AttachmentOut
from protocols.errors import Forbidden, NotFound

UPLOAD_PATH = "/api/v1/attachments"
# The bytes of an attachment never change (a new file is a new id): its reader's browser may keep them.
CACHE = "private, max-age=86400"
UPLOAD_TYPES = {
    "image/jpeg": "a JPEG photo", "image/png": "a PNG image", "image/webp": "a WebP image",
    "application/pdf": "a PDF (a small document)",
    "application/octet-stream": "any of those: the type is told from the bytes, never from this header",
}


@endpoint("POST", UPLOAD_PATH, summary="Upload a photo or PDF (the raw file as the body) to name in a command",
          tags=["attachments"], roles=policy.UPLOAD_ROLES, response=AttachmentOut, status=201,
          upload=UPLOAD_TYPES,
          errors={413: "the file is larger than [attachments] max_bytes"})
async def upload(call: Req) -> Response:
    actor = call.actor
    if actor.township_id is None or actor.user_id is None:
        raise Forbidden(f"a {actor.role.value} without a township cannot upload evidence")
    hub, cfg = call.hub, call.hub.cfg.attachments
    data = bytearray()
    async for chunk in call.request.stream():  # BodyLimit stops it past max_bytes (413)
        data += chunk
    raw = bytes(data)
    found = await asyncio.to_thread(media.inspect, raw, max_pixels=cfg.max_pixels, thumbnail_px=cfg.thumbnail_px)
    attachment_id = uuid.uuid4()
    now = hub.clock.now()
    async with hub.pool.acquire() as conn:
        await store.remove_unbound(conn, cfg, now - timedelta(seconds=cfg.unbound_ttl_s))
        await store.save(conn, cfg, id=attachment_id, township_id=actor.township_id, user_id=actor.user_id,
                         at=now, file=found, data=raw)
    return ZhJSONResponse({
        "id": str(attachment_id), "sha256": found.sha256.hex(), "content_type": found.content_type,
        "size": found.size, "width": found.width, "height": found.height,
        **store.urls(attachment_id, found.content_type)}, status_code=201)


async def _readable(call: Req) -> store.Attachment:
    attachment_id: UUID = call.request.path_params["attachment_id"]
    async with call.hub.pool.acquire() as conn:
        found = await store.fetch(conn, attachment_id)
    if found is None or not _may_read(call.actor, found):
        raise NotFound(f"no attachment {attachment_id}", field="attachment_id")  # never confirm it exists
    return found


def _may_read(actor: Actor, a: store.Attachment) -> bool:
    return policy.can_read_attachment(actor, uploaded_by=a.uploaded_by, township_id=a.township_id, step=a.step,
                                      call_targets=a.call_targets, step_audience=a.audience)


def _headers(a: store.Attachment, disposition: str, suffix: str, ext: str) -> dict[str, str]:
    return {"X-Content-Type-Options": "nosniff", "Cache-Control": CACHE, "ETag": f'"{a.sha256.hex()}{suffix}"',
            "Content-Disposition": f'{disposition}; filename="{a.sha256.hex()}{suffix}.{ext}"'}


SERVED_HEADERS = {"Content-Disposition": "inline for images, attachment for PDFs; named by the SHA-256",
                  "X-Content-Type-Options": "nosniff", "Cache-Control": CACHE, "ETag": "the SHA-256 of the bytes"}


@endpoint("GET", "/api/v1/attachments/{attachment_id:uuid}", summary="An attachment's bytes, exactly as uploaded",
          tags=["attachments"], media=", ".join(sorted(media.CONTENT_TYPES)), headers=SERVED_HEADERS)
async def original(call: Req) -> Response:
    a = await _readable(call)
    async with call.hub.pool.acquire() as conn:
        data = await store.read_bytes(conn, call.hub.cfg.attachments, a)
    # A PDF is downloaded rather than shown in the page's origin.
    disposition = "attachment" if a.content_type == media.PDF_TYPE else "inline"
    return Response(data, media_type=a.content_type,
                    headers=_headers(a, disposition, "", media.EXTENSIONS[a.content_type]))


@endpoint("GET", "/api/v1/attachments/{attachment_id:uuid}/thumbnail",
          summary="An image attachment's thumbnail (JPEG, upright, no metadata); 404 for a PDF",
          tags=["attachments"], media=media.THUMBNAIL_TYPE, headers=SERVED_HEADERS)
async def thumbnail(call: Req) -> Response:
    a = await _readable(call)
    async with call.hub.pool.acquire() as conn:
        data = await store.read_thumbnail(conn, a)
    if data is None:
        raise NotFound(f"attachment {a.id} is not an image and has no thumbnail", field="attachment_id")
    return Response(data, media_type=media.THUMBNAIL_TYPE, headers=_headers(a, "inline", "-thumbnail", "jpg"))


def listed(actor: Actor, township_id: int, call_targets: tuple[str, ...], rows: list[Any]) -> list[dict[str, Any]]:
    """The call's attachments ``actor`` may see, for the call detail."""
    return [store.listing(r) for r in rows
            if policy.can_read_attachment(actor, uploaded_by=r["uploaded_by"], township_id=township_id,
                                          step=r["step"], call_targets=call_targets,
                                          step_audience=r["audience"])]
