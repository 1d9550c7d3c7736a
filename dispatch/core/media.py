"""Evidence files (photos and PDFs): what a file is, told from its bytes alone, and its thumbnail.

The type comes from the content, never from a file name or a ``Content-Type`` header: an image must open
with Pillow as JPEG, PNG or WebP, pass ``verify`` and decode completely (a truncated JPEG does not); a PDF
must start with ``%PDF-`` and end with ``%%EOF``. Images larger than ``max_pixels`` are refused before they
are decoded (decompression bombs). The original bytes are kept as uploaded (their SHA-256 goes into the
hash-chained log); the thumbnail is re-encoded with the EXIF orientation applied and no metadata at all.
Pure functions over bytes (CPU-bound: the web layer runs them in a thread).
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from protocols.errors import ValidationFailed

IMAGE_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
PDF_TYPE = "application/pdf"
CONTENT_TYPES = frozenset({*IMAGE_TYPES.values(), PDF_TYPE})
THUMBNAIL_TYPE = "image/jpeg"
EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp", PDF_TYPE: "pdf"}
# How far from the end a PDF's last %%EOF may sit (writers add a newline or a few bytes of padding).
PDF_TAIL = 1024


@dataclass(frozen=True, slots=True)
class Inspected:
    """What an uploaded file turned out to be."""

    content_type: str
    sha256: bytes
    size: int
    width: int | None
    height: int | None
    thumbnail: bytes | None


def refuse(message: str) -> ValidationFailed:
    return ValidationFailed(f"file: {message}", field="file")


def inspect(data: bytes, *, max_pixels: int, thumbnail_px: int) -> Inspected:
    """Identify ``data`` (JPEG, PNG, WebP or PDF) and make its thumbnail; ``ValidationFailed`` (field
    ``file``) for anything else, a damaged or truncated image, or one of more than ``max_pixels``."""
    if not data:
        raise refuse("is empty")
    digest = hashlib.sha256(data).digest()
    if data.startswith(b"%PDF-"):
        if b"%%EOF" not in data[-PDF_TAIL:]:
            raise refuse("is a damaged or truncated PDF (no %%EOF at its end)")
        return Inspected(PDF_TYPE, digest, len(data), None, None, None)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=list(IMAGE_TYPES)) as probe:
                fmt, (width, height) = probe.format, probe.size
                if width * height > max_pixels:
                    raise refuse(f"is {width}×{height} pixels, more than the {max_pixels} allowed")
                probe.verify()
            with Image.open(io.BytesIO(data), formats=list(IMAGE_TYPES)) as image:
                image.load()  # verify() does not decode: a truncated file fails only here
                thumb = _thumbnail(image, thumbnail_px)
    except ValidationFailed:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise refuse("is not a JPEG, PNG, WebP image or a PDF (told from its content, not its name)") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise refuse(f"is a damaged or truncated image ({str(exc)[:120]})") from None
    if fmt not in IMAGE_TYPES:
        raise refuse("is not a JPEG, PNG, WebP image or a PDF")
    return Inspected(IMAGE_TYPES[fmt], digest, len(data), width, height, thumb)


def _thumbnail(image: Image.Image, px: int) -> bytes:
    """At most ``px`` on its longer side, upright (EXIF orientation applied), JPEG without metadata."""
    upright = ImageOps.exif_transpose(image) or image
    if upright.mode not in ("RGB", "L"):
        rgba = upright.convert("RGBA")
        flat = Image.new("RGB", rgba.size, (255, 255, 255))
        flat.paste(rgba, mask=rgba.getchannel("A"))
        upright = flat
    upright.thumbnail((px, px))
    out = io.BytesIO()
    upright.save(out, format="JPEG", quality=80, optimize=True)
    return out.getvalue()
