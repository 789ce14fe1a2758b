"""``{% picture descriptor sizes=... %}``: a stored picture as ``<picture>`` with WebP and JPEG sizes.

The descriptor is what ``crowdfund_site.images.image_store`` returned (kept on the campaign,
reward, gallery or user row), so rendering needs no query. Width and height are always set, so
the page does not move while pictures load; pictures are lazy unless ``eager`` (the one picture
seen first, e.g. the campaign page's cover).
"""

from django import template
from django.core.files.storage import default_storage
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from crowdfund_site.images import rendition_name

register = template.Library()


@register.simple_tag
def picture(descriptor, sizes: str = "100vw", css_class: str = "", eager: bool = False, alt: str | None = None):
    if not descriptor:
        return ""
    key, widths = descriptor["key"], descriptor["widths"]
    url = default_storage.url

    def srcset(fmt: str) -> str:
        return ", ".join(f"{url(rendition_name(key, width, fmt))} {width}w" for width in widths)

    # Browsers without srcset get a middle size.
    fallback = url(rendition_name(key, widths[len(widths) // 2], "jpg"))
    return format_html(
        '<picture><source type="image/webp" srcset="{}" sizes="{}">'
        '<img src="{}" srcset="{}" sizes="{}" width="{}" height="{}" alt="{}"{} loading="{}" decoding="async"{}>'
        "</picture>",
        srcset("webp"),
        sizes,
        fallback,
        srcset("jpg"),
        sizes,
        descriptor["width"],
        descriptor["height"],
        descriptor.get("alt", "") if alt is None else alt,
        format_html(' class="{}"', css_class) if css_class else "",
        "eager" if eager else "lazy",
        mark_safe(' fetchpriority="high"') if eager else "",
    )
