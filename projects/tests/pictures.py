"""Picture files for tests, made in memory with Pillow."""

import io

from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image


def picture_bytes(width: int = 640, height: int = 480, fmt: str = "JPEG", **save) -> bytes:
    image = Image.new("RGB", (width, height), (200, 90, 40))
    for x in range(0, width, max(1, width // 8)):
        image.paste((30, 120, 200), (x, 0, min(width, x + max(1, width // 16)), height))
    out = io.BytesIO()
    image.save(out, fmt, **save)
    return out.getvalue()


def upload(data: bytes | None = None, name: str = "photo.jpg", content_type: str = "image/jpeg") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, picture_bytes() if data is None else data, content_type=content_type)
