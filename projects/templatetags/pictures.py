"""``{% picture descriptor sizes=... %}``: a stored picture as ``<picture>`` with WebP and JPEG sizes.

The descriptor is what ``crowdfund_site.images.image_store`` returned (kept on the campaign,
reward, gallery or user row), so rendering needs no query. Width and height are always set, so
the page does not move while pictures load; pictures are lazy unless ``eager`` (the one picture
seen first, e.g. the campaign page's cover).
"""

from django import template
from django.core.files.storage import default_storage
from django.utils.html import escape
from django.utils.safestring import mark_safe

from crowdfund_site.images import rendition_url

register = template.Library()


@register.simple_tag
def picture(descriptor, sizes: str = "100vw", css_class: str = "", eager: bool = False, alt: str | None = None):
    if not descriptor:
        return ""
    widths = descriptor["widths"]
    base = default_storage.url(descriptor["key"])

    def srcset(fmt: str) -> str:
        return ", ".join(
            f"{rendition_url(descriptor, width, fmt, storage=default_storage, base=base)} {width}w" for width in widths
        )

    # Browsers without srcset get a middle size. Built as one string (every value escaped): cards
    # render dozens of these, and format_html's per-argument work showed in page timings.
    fallback = rendition_url(descriptor, widths[len(widths) // 2], "jpg", storage=default_storage, base=base)
    sizes = escape(sizes)
    text = escape(descriptor.get("alt", "") if alt is None else alt)
    css = f' class="{escape(css_class)}"' if css_class else ""
    loading = 'loading="eager" decoding="async" fetchpriority="high"' if eager else 'loading="lazy" decoding="async"'
    return mark_safe(  # noqa: S308 - every value above is escaped
        f'<picture><source type="image/webp" srcset="{escape(srcset("webp"))}" sizes="{sizes}">'
        f'<img src="{escape(fallback)}" srcset="{escape(srcset("jpg"))}" sizes="{sizes}" '
        f'width="{int(descriptor["width"])}" height="{int(descriptor["height"])}" alt="{text}"{css} {loading}>'
        "</picture>"
    )
