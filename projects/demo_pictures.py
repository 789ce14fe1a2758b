"""Pictures for demo data, drawn here with Pillow (no network, no files in the repository).

Each category has its colours and a motif; a title's hash varies the layout, so two campaigns
never look alike. The result goes through the same upload path as a person's photo.
"""

import hashlib
import io
import random

from PIL import Image, ImageDraw, ImageFont

# Two gradient ends and an accent per category slug; unknown categories get "default".
PALETTES = {
    "art": ((122, 31, 92), (240, 128, 90), (255, 220, 120)),
    "community": ((20, 90, 70), (120, 200, 140), (250, 240, 200)),
    "design": ((35, 35, 45), (150, 120, 90), (230, 200, 150)),
    "film": ((15, 15, 30), (90, 40, 110), (250, 200, 60)),
    "food": ((160, 60, 20), (245, 180, 60), (255, 245, 220)),
    "games": ((30, 30, 110), (60, 170, 210), (255, 210, 60)),
    "music": ((60, 10, 80), (220, 60, 120), (120, 230, 255)),
    "publishing": ((70, 50, 30), (200, 170, 120), (250, 245, 230)),
    "technology": ((10, 40, 70), (30, 160, 170), (200, 255, 230)),
    "default": ((40, 60, 90), (140, 170, 200), (255, 255, 255)),
}
SIZE = (800, 450)


def demo_picture(*, title: str, category_slug: str, size: tuple[int, int] = SIZE) -> io.BytesIO:
    """Return a PNG (in memory) for ``title`` in ``category_slug``'s colours."""
    rng = random.Random(hashlib.sha256(title.encode()).digest())
    top, bottom, accent = PALETTES.get(category_slug, PALETTES["default"])
    width, height = size
    image = _gradient(size, top, bottom, vertical=rng.random() < 0.5)
    draw = ImageDraw.Draw(image, "RGBA")
    _MOTIFS.get(category_slug, _circles)(draw, rng, size, accent)
    # The title on a translucent band, so the picture reads at card size.
    band = height * 2 // 7
    draw.rectangle((0, height - band, width, height), fill=(0, 0, 0, 110))
    font = ImageFont.load_default(size=max(18, width // 24))
    draw.text((width // 24, height - band // 2), _shorten(title, 38), font=font, fill=(255, 255, 255), anchor="lm")
    out = io.BytesIO()
    image.save(out, "PNG")
    out.seek(0)
    return out


def demo_logo(*, initials: str, palette: str, size: int = 384) -> io.BytesIO:
    """Return a square PNG logo (in memory): ``initials`` on a disc, in ``palette``'s colours (a category slug)."""
    top, bottom, accent = PALETTES.get(palette, PALETTES["default"])
    image = _gradient((size, size), top, bottom, vertical=True)
    draw = ImageDraw.Draw(image, "RGBA")
    margin = size // 8
    draw.ellipse((margin, margin, size - margin, size - margin), fill=(*accent, 230), outline=(255, 255, 255), width=6)
    font = ImageFont.load_default(size=size // 3)
    draw.text((size // 2, size // 2), initials[:3], font=font, fill=top, anchor="mm")
    out = io.BytesIO()
    image.save(out, "PNG")
    out.seek(0)
    return out


def _gradient(size, start, end, *, vertical: bool) -> Image.Image:
    steps = size[1] if vertical else size[0]
    line = Image.new("RGB", (1, steps) if vertical else (steps, 1))
    for i in range(steps):
        t = i / max(1, steps - 1)
        colour = tuple(round(a + (b - a) * t) for a, b in zip(start, end, strict=True))
        line.putpixel((0, i) if vertical else (i, 0), colour)
    return line.resize(size)


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _circles(draw, rng, size, accent):
    for _ in range(rng.randint(5, 9)):
        r = rng.randint(size[1] // 12, size[1] // 3)
        x, y = rng.randint(0, size[0]), rng.randint(0, size[1] * 2 // 3)
        draw.ellipse((x - r, y - r, x + r, y + r), fill=(*accent, rng.randint(50, 140)))


def _grid(draw, rng, size, accent):
    cell = rng.choice((40, 50, 60))
    for x in range(0, size[0], cell):
        for y in range(0, size[1] * 3 // 4, cell):
            if rng.random() < 0.35:
                draw.rectangle((x + 4, y + 4, x + cell - 4, y + cell - 4), fill=(*accent, rng.randint(60, 170)))


def _waves(draw, rng, size, accent):
    for n in range(rng.randint(4, 7)):
        y0 = rng.randint(size[1] // 8, size[1] * 2 // 3)
        amplitude, period = rng.randint(10, 40), rng.randint(80, 200)
        points = [
            (x, y0 + amplitude * ((x // period) % 2 * 2 - 1) * ((x % period) / period)) for x in range(0, size[0], 8)
        ]
        draw.line(points, fill=(*accent, 90 + n * 20), width=rng.randint(3, 9))


def _stripes(draw, rng, size, accent):
    for _ in range(rng.randint(6, 12)):
        x = rng.randint(-size[1], size[0])
        w = rng.randint(10, 50)
        draw.polygon([(x, 0), (x + w, 0), (x + w + size[1], size[1]), (x + size[1], size[1])], fill=(*accent, 80))


def _triangles(draw, rng, size, accent):
    for _ in range(rng.randint(5, 10)):
        x, y = rng.randint(0, size[0]), rng.randint(0, size[1] * 2 // 3)
        s = rng.randint(30, 140)
        draw.polygon([(x, y - s), (x - s, y + s), (x + s, y + s)], fill=(*accent, rng.randint(60, 150)))


_MOTIFS = {
    "art": _circles,
    "community": _circles,
    "design": _grid,
    "film": _stripes,
    "food": _circles,
    "games": _grid,
    "music": _waves,
    "publishing": _stripes,
    "technology": _triangles,
}
