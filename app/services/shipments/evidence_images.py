"""Proof-of-delivery images (a drawn signature, a photo of the parcel at the door): checked and re-encoded.

Rules: only JPEG or PNG are accepted, at most MAX_UPLOAD_BYTES and MAX_PIXELS; the image is decoded and encoded
again (so what is stored is pixels only: no EXIF, GPS position, comments or trailing data), turned upright from
its EXIF orientation first, and scaled down to at most MAX_SIDE pixels on its longer side.
"""
from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from app.errors import ValidationError

MAX_UPLOAD_BYTES = 5 * 1024 * 1024
MAX_PIXELS = 40_000_000  # decoding more than this is refused (decompression bombs)
MAX_SIDE = 1600
ACCEPTED_FORMATS = {"JPEG", "PNG"}


@dataclass(frozen=True)
class CleanImage:
    data: bytes
    content_type: str
    extension: str
    width: int
    height: int


def clean_image(data: bytes, field: str, *, as_png: bool = False) -> CleanImage:
    """The image re-encoded without metadata (PNG when `as_png`, e.g. signatures; else JPEG for photos).
    ValidationError naming `field` for anything that is not a sane JPEG or PNG."""
    if not data:
        raise ValidationError(fields={field: "The file is empty."})
    if len(data) > MAX_UPLOAD_BYTES:
        raise ValidationError(fields={field: f"At most {MAX_UPLOAD_BYTES // (1024 * 1024)} MB."})
    try:
        with Image.open(io.BytesIO(data)) as probe:
            if probe.format not in ACCEPTED_FORMATS:
                raise ValidationError(fields={field: "Must be a JPEG or PNG image."})
            if probe.width * probe.height > MAX_PIXELS:
                raise ValidationError(fields={field: "The image has too many pixels."})
            probe.verify()
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            image = ImageOps.exif_transpose(image)
            image.thumbnail((MAX_SIDE, MAX_SIDE))
            return _encode(image, as_png)
    except ValidationError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError, SyntaxError) as exc:
        raise ValidationError(fields={field: "Must be a JPEG or PNG image."}) from exc


def _encode(image: Image.Image, as_png: bool) -> CleanImage:
    # Pillow writes some of what it read back out (JPEG comments, ICC profiles, PNG text): pixels only.
    image.info = {}
    out = io.BytesIO()
    if as_png:
        if image.mode not in ("RGBA", "LA", "L", "RGB", "P"):
            image = image.convert("RGBA")
        image.save(out, format="PNG", optimize=True)
        return CleanImage(out.getvalue(), "image/png", "png", image.width, image.height)
    if image.mode != "RGB":
        image = image.convert("RGB")
    image.save(out, format="JPEG", quality=85, optimize=True)
    return CleanImage(out.getvalue(), "image/jpeg", "jpg", image.width, image.height)
