"""Uploaded pictures: check what a file really is, then make the sizes pages show.

A library like ``money``: it takes bytes and gives bytes, and knows nothing of campaigns or
people. Apps store what it makes through Django's storage API and keep the returned
``descriptor`` (a small dict) on their own rows, so a page renders a picture without a query.

What is refused, each with a message a person can act on (``ImageRejected``, an InvalidInput):
a file over ``MAX_UPLOAD_BYTES``; anything that is not really JPEG, PNG or WebP whatever its
name says (text, SVG, GIF, ...); more than ``MAX_PIXELS`` (checked from the header, before the
pixels are decoded, so a decompression bomb costs nothing); a file that does not decode to the
end (truncated or corrupt). What is kept: the pixels, turned upright from the EXIF orientation.
Everything else in the file (EXIF with its GPS position, comments, XMP) is dropped, because the
sizes are encoded afresh from the pixels alone.
"""

import io
import secrets
import warnings
from dataclasses import dataclass

from django.utils.translation import gettext
from PIL import Image, ImageOps, UnidentifiedImageError

from .exceptions import InvalidInput

MAX_UPLOAD_BYTES = 10 * 1024 * 1024
MAX_PIXELS = 40_000_000
# Pillow's names for the formats accepted; the extension of the upload is never consulted.
ACCEPTED_FORMATS = frozenset({"JPEG", "PNG", "WEBP"})
# What file pickers are told to offer (the server checks the content regardless).
ACCEPT_ATTRIBUTE = "image/jpeg,image/png,image/webp"
WEBP_QUALITY = 80
JPEG_QUALITY = 82


class ImageRejected(InvalidInput):
    default_code = "invalid_image"


@dataclass(frozen=True)
class Shape:
    """The sizes one kind of picture needs: widths, and an aspect ratio to crop to (or None)."""

    widths: tuple[int, ...]
    aspect: tuple[int, int] | None = None


# Covers are cropped to 16:9 so that every card has the same shape; gallery and reward pictures
# keep theirs, and so do pools' logos (a wordmark is wide), shown small; avatars are square.
COVER = Shape(widths=(400, 800, 1600), aspect=(16, 9))
GALLERY = Shape(widths=(400, 800, 1600))
REWARD = Shape(widths=(200, 400, 800))
AVATAR = Shape(widths=(64, 128, 256), aspect=(1, 1))
LOGO = Shape(widths=(96, 192, 384))


@dataclass(frozen=True)
class Rendition:
    width: int
    height: int
    webp: bytes
    jpeg: bytes


def image_open_checked(upload) -> Image.Image:
    """Return the upload's pixels, upright and in RGB, or raise ImageRejected saying why.

    ``upload`` is a file-like object (a Django UploadedFile, an open file, BytesIO) with
    ``size`` or a seekable end.
    """
    size = getattr(upload, "size", None)
    if size is None:
        upload.seek(0, io.SEEK_END)
        size = upload.tell()
    if size > MAX_UPLOAD_BYTES:
        raise ImageRejected(
            gettext("This file is %(size)s MB; a picture may be at most %(limit)s MB.")
            % {"size": f"{size / 1024 / 1024:.1f}", "limit": MAX_UPLOAD_BYTES // 1024 // 1024},
            code="image_too_large",
        )
    if size == 0:
        raise ImageRejected(gettext("This file is empty."), code="image_empty")
    upload.seek(0)
    not_a_picture = ImageRejected(
        gettext("This file is not a JPEG, PNG or WebP picture. Upload a photo or an image in one of those formats."),
        code="image_format",
    )
    try:
        with warnings.catch_warnings():
            # Our own pixel limit below is lower than Pillow's, so its bomb warning adds nothing.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(upload, formats=sorted(ACCEPTED_FORMATS))
    except Image.DecompressionBombError:
        raise _too_many_pixels(None) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise not_a_picture from None
    if image.format not in ACCEPTED_FORMATS:
        raise not_a_picture
    width, height = image.size
    if width * height > MAX_PIXELS:
        raise _too_many_pixels(image.size)
    if width < 1 or height < 1:
        raise not_a_picture
    return image


def _too_many_pixels(size: tuple[int, int] | None) -> ImageRejected:
    limit = MAX_PIXELS // 1_000_000
    if size is None:
        message = gettext("This picture has more than %(limit)s megapixels, the most accepted.") % {"limit": limit}
    else:
        message = gettext(
            "This picture is %(width)s × %(height)s pixels (%(mp)s megapixels); "
            "at most %(limit)s megapixels are accepted."
        ) % {"width": size[0], "height": size[1], "mp": f"{size[0] * size[1] / 1e6:.0f}", "limit": limit}
    return ImageRejected(message, code="image_too_many_pixels")


def image_renditions(image: Image.Image, *, shape: Shape) -> list[Rendition]:
    """Decode ``image`` (from ``image_open_checked``) and return its sizes for ``shape``, widest last.

    Never wider than the original (a small upload gives fewer sizes). Raises ImageRejected if
    the file does not decode to the end.
    """
    largest = max(shape.widths)
    if image.format == "JPEG":
        # Let the JPEG decoder scale down by a power of two on the way in: far less to decode
        # for a camera photo, and still larger than the widest size.
        # (Only the width matters: the requested height of 1 never limits the scale.)
        image.draft("RGB", (largest, 1))
    try:
        image.load()
        image = ImageOps.exif_transpose(image)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        raise ImageRejected(
            gettext("This picture is damaged or incomplete (it may have been cut off while uploading). Try again."),
            code="image_damaged",
        ) from None
    image = _flatten(image)
    if shape.aspect is not None:
        image = _crop(image, shape.aspect)
    widths = [w for w in sorted(shape.widths) if w < image.width] or [image.width]
    if image.width <= largest and image.width not in widths:
        widths.append(image.width)
    renditions = []
    source = image
    for width in sorted(widths, reverse=True):
        height = max(1, round(image.height * width / image.width))
        # Each size from the next larger one: the same quality, a fraction of the work.
        source = source if source.width == width else source.resize((width, height), Image.Resampling.LANCZOS)
        renditions.append(
            Rendition(width=width, height=height, webp=_encode(source, "WEBP"), jpeg=_encode(source, "JPEG"))
        )
    return sorted(renditions, key=lambda r: r.width)


def _flatten(image: Image.Image) -> Image.Image:
    """Return RGB pixels; transparency goes onto white (JPEG has none, and pages are white)."""
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGB", rgba.size, (255, 255, 255))
        white.paste(rgba, mask=rgba.getchannel("A"))
        return white
    return image.convert("RGB") if image.mode != "RGB" else image


def _crop(image: Image.Image, aspect: tuple[int, int]) -> Image.Image:
    ratio = aspect[0] / aspect[1]
    if abs(image.width / image.height - ratio) < 0.01:
        return image
    # The middle of the picture, at full resolution: a crop costs nothing, the resize comes after.
    if image.width / image.height > ratio:
        width, height = round(image.height * ratio), image.height
    else:
        width, height = image.width, round(image.width / ratio)
    left, top = (image.width - width) // 2, (image.height - height) // 2
    return image.crop((left, top, left + width, top + height))


def _encode(image: Image.Image, fmt: str) -> bytes:
    out = io.BytesIO()
    if fmt == "WEBP":
        image.save(out, "WEBP", quality=WEBP_QUALITY, method=2)
    else:
        image.save(out, "JPEG", quality=JPEG_QUALITY, progressive=True)
    return out.getvalue()


# --- Storage: where the sizes go and how pages find them ---------------------------------


def rendition_name(key: str, width: int, fmt: str) -> str:
    """Return the storage name of one size: ``<key>-<width>.<webp|jpg>``."""
    return f"{key}-{width}.{'webp' if fmt == 'webp' else 'jpg'}"


def image_store(*, upload, shape: Shape, folder: str, alt: str, storage) -> dict:
    """Check ``upload``, save its sizes under ``folder`` in ``storage`` and return its descriptor.

    The descriptor is what a row keeps: ``{"key", "widths", "width", "height", "alt"}`` (the
    widest size's dimensions). Every name has a fresh random part, so a new picture never
    overwrites one a cached page still shows. Raises ImageRejected (nothing saved).
    """
    renditions = image_renditions(image_open_checked(upload), shape=shape)
    key = f"{folder.strip('/')}/{secrets.token_urlsafe(9)}"
    saved = []
    try:
        for rendition in renditions:
            for fmt, data in (("webp", rendition.webp), ("jpg", rendition.jpeg)):
                name = storage.save(rendition_name(key, rendition.width, fmt), io.BytesIO(data))
                saved.append(name)
    except Exception:
        for name in saved:
            storage.delete(name)
        raise
    widest = renditions[-1]
    return {
        "key": key,
        "widths": [r.width for r in renditions],
        "width": widest.width,
        "height": widest.height,
        "alt": alt,
    }


def rendition_url(descriptor: dict, width: int, fmt: str, *, storage, base: str | None = None) -> str:
    """Return the URL of one size; pass ``base`` (``storage.url(descriptor["key"])``) to reuse it.

    A storage's ``url`` costs tens of microseconds and a page shows dozens of sizes, so the sizes
    share one call: their names only add a suffix to the key. A storage whose URLs carry a query
    string (signed URLs) is asked for each one.
    """
    base = storage.url(descriptor["key"]) if base is None else base
    if "?" in base:
        return storage.url(rendition_name(descriptor["key"], width, fmt))
    return f"{base}-{width}.{'webp' if fmt == 'webp' else 'jpg'}"


def image_delete(*, descriptor: dict, storage) -> None:
    """Delete every size of a stored picture (missing files are fine)."""
    if not descriptor:
        return
    for width in descriptor.get("widths", ()):
        for fmt in ("webp", "jpg"):
            storage.delete(rendition_name(descriptor["key"], width, fmt))


def image_open_largest(*, descriptor: dict, storage) -> Image.Image:
    """Return the widest JPEG size of a stored picture, opened with Pillow (e.g. for share cards)."""
    name = rendition_name(descriptor["key"], max(descriptor["widths"]), "jpg")
    with storage.open(name, "rb") as handle:
        image = Image.open(io.BytesIO(handle.read()))
        image.load()
    return image
