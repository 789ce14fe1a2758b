"""Share cards: the 1200 x 630 picture social sites show for a campaign link, drawn with Pillow.

``share_card_jpeg`` draws the campaign's title, a progress bar and its figures, over its cover
when it has one (darkened, so the words stay readable) and over a plain colour otherwise.
``share_card_cached`` keeps each drawing in the cache under a key made of everything drawn, so
a card is redrawn exactly when the figures (or the cover, title, language) move.
"""

import hashlib
import io
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings
from django.core.cache import cache
from django.core.files.storage import default_storage
from PIL import Image, ImageDraw, ImageFont

WIDTH, HEIGHT = 1200, 630
MARGIN = 64
BACKGROUND = (22, 50, 79)
BAR_TRACK = (255, 255, 255)
BAR_FILL = (46, 160, 67)
TEXT = (255, 255, 255)
CACHE_SECONDS = 86_400


@dataclass(frozen=True)
class CardContent:
    """Everything a card shows, already formatted in the reader's language."""

    title: str
    percent: int
    raised: str  # "$1,234 pledged of $5,000"
    backers: str  # "12 backers"
    time_left: str  # "9 days to go"
    site_name: str = "Crowdfund"
    # The cover's name in media storage ("": none); read only when the card is drawn.
    cover_name: str = ""


def _needs_cjk(text: str) -> bool:
    return any(ord(character) >= 0x2E80 for character in text)


@lru_cache(maxsize=16)
def _loaded_font(size: int, cjk: bool) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    # The CJK font covers Latin too, but draws it more slowly: it is used only where needed.
    paths = [settings.SHARE_CARD_CJK_FONT, settings.SHARE_CARD_FONT] if cjk else [settings.SHARE_CARD_FONT]
    for path in paths:
        try:
            # BASIC layout: a quarter faster than Raqm, and these titles need no complex shaping.
            return ImageFont.truetype(path, size, index=0, layout_engine=ImageFont.Layout.BASIC)
        except OSError:
            continue
    return ImageFont.load_default(size)


def _font(size: int, text: str) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return _loaded_font(size, _needs_cjk(text))


def _wrap(draw: ImageDraw.ImageDraw, text: str, font, width: int, max_lines: int) -> list[str]:
    """Break ``text`` into at most ``max_lines`` lines of ``width`` pixels (by word, or by character for CJK)."""
    units = text.split(" ") if " " in text else list(text)
    joiner = " " if " " in text else ""
    lines, line = [], ""
    for unit in units:
        candidate = f"{line}{joiner}{unit}" if line else unit
        if draw.textlength(candidate, font=font) <= width:
            line = candidate
            continue
        if line:
            lines.append(line)
        line = unit
        if len(lines) == max_lines:
            break
    if line and len(lines) < max_lines:
        lines.append(line)
    if len(lines) == max_lines and joiner.join(lines) != text:
        last = lines[-1]
        while last and draw.textlength(last + "…", font=font) > width:
            last = last[:-1]
        lines[-1] = last + "…"
    return lines


def _background(cover_name: str) -> Image.Image:
    if cover_name:
        try:
            with default_storage.open(cover_name) as stored, Image.open(stored) as picture:
                picture.draft("RGB", (WIDTH, HEIGHT))  # JPEG: decode at a fraction of the size
                picture = picture.convert("RGB")
                scale = max(WIDTH / picture.width, HEIGHT / picture.height)
                picture = picture.resize((round(picture.width * scale) + 1, round(picture.height * scale) + 1))
                left, top = (picture.width - WIDTH) // 2, (picture.height - HEIGHT) // 2
                picture = picture.crop((left, top, left + WIDTH, top + HEIGHT))
                return Image.blend(picture, Image.new("RGB", (WIDTH, HEIGHT), (0, 0, 0)), 0.55)
        except (OSError, ValueError, Image.DecompressionBombError):
            pass  # an unreadable cover: the plain card is better than none
    return Image.new("RGB", (WIDTH, HEIGHT), BACKGROUND)


def share_card_jpeg(content: CardContent) -> bytes:
    """Return the card as JPEG bytes, 1200 x 630."""
    image = _background(content.cover_name)
    draw = ImageDraw.Draw(image)
    draw.text((MARGIN, MARGIN - 8), content.site_name, font=_font(30, content.site_name), fill=TEXT)
    title_font = _font(64, content.title)
    y = MARGIN + 60
    for line in _wrap(draw, content.title, title_font, WIDTH - 2 * MARGIN, 3):
        draw.text((MARGIN, y), line, font=title_font, fill=TEXT)
        y += 80
    bar_top = HEIGHT - MARGIN - 150
    draw.rounded_rectangle((MARGIN, bar_top, WIDTH - MARGIN, bar_top + 28), radius=14, fill=BAR_TRACK)
    filled = round((WIDTH - 2 * MARGIN) * min(content.percent, 100) / 100)
    if filled > 0:
        draw.rounded_rectangle((MARGIN, bar_top, MARGIN + max(filled, 28), bar_top + 28), radius=14, fill=BAR_FILL)
    raised = f"{content.percent}%  ·  {content.raised}"
    draw.text((MARGIN, bar_top + 50), raised, font=_font(40, raised), fill=TEXT)
    counts = f"{content.backers}  ·  {content.time_left}"
    draw.text((MARGIN, bar_top + 104), counts, font=_font(34, counts), fill=TEXT)
    out = io.BytesIO()
    # JPEG: about six times faster to encode than PNG at this size (benchmarks/promotion.py),
    # and what social sites expect of a photo-like cover.
    image.save(out, format="JPEG", quality=85)
    return out.getvalue()


def share_card_key(content: CardContent) -> str:
    """Return the cache key of a card: a digest of everything it shows."""
    digest = hashlib.blake2b(digest_size=16)
    for part in (
        content.title,
        str(content.percent),
        content.raised,
        content.backers,
        content.time_left,
        content.cover_name,
    ):
        digest.update(part.encode() + b"\0")
    return f"share-card:v2:{digest.hexdigest()}"


def share_card_cached(content: CardContent) -> bytes:
    """Return the card from the cache, drawing and storing it first if its figures moved."""
    key = share_card_key(content)
    picture = cache.get(key)
    if picture is None:
        picture = share_card_jpeg(content)
        cache.set(key, picture, CACHE_SECONDS)
    return picture
