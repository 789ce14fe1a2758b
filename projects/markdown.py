"""Initiators' Markdown (story, FAQ, risks) turned into HTML that is safe to show as it is.

Two layers, so that a mistake in one is caught by the other:

1. markdown-it-py renders CommonMark with raw HTML off (a script tag comes out as text) and only
   the rules the page offers: paragraphs, headings, lists, emphasis, links and images. Its link
   check refuses ``javascript:``, ``vbscript:``, ``file:`` and ``data:`` URLs; an image whose
   address is not one of our own media files is shown as its alt text.
2. nh3 (the Rust ammonia sanitiser) keeps only those tags and attributes, only http(s) and mailto
   links, and puts ``rel="nofollow ugc noopener"`` on every link.

Headings start at ``<h3>``: the page already has its ``<h1>`` (the title) and an ``<h2>`` per
section, and an initiator's "# About us" belongs below them.

Pages never call this per request: the services render once on save and store the HTML beside
the source (``Campaign.description_html`` and friends).
"""

from urllib.parse import urlsplit

import nh3
from django.conf import settings
from markdown_it import MarkdownIt

ALLOWED_TAGS = {"p", "br", "h3", "h4", "h5", "h6", "ul", "ol", "li", "em", "strong", "a", "img"}
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "img": {"src", "alt", "title"}, "ol": {"start"}}
LINK_REL = "nofollow ugc noopener"
# Where uploaded images are served when no MEDIA_URL is set.
DEFAULT_MEDIA_PREFIX = "/media/"
HEADING_OFFSET = 2

_ENABLED_RULES = ["heading", "lheading", "list", "paragraph", "emphasis", "link", "image", "newline", "escape"]


def _media_prefix() -> str:
    return settings.MEDIA_URL or DEFAULT_MEDIA_PREFIX


def is_own_media_url(url: str) -> bool:
    """Return True if ``url`` points at one of our media files (``MEDIA_URL``), nowhere else."""
    prefix = _media_prefix()
    if ".." in url or "\\" in url:
        return False
    if prefix.startswith("/"):
        # A path on this site: "//evil.example/media/" starts with "/" but is another host.
        return url.startswith(prefix) and not url.startswith("//") and not urlsplit(url).netloc
    return url.startswith(prefix)


def _render_heading_open(renderer, tokens, idx, options, env):
    token = tokens[idx]
    level = min(int(token.tag[1]) + HEADING_OFFSET, 6)
    return f"<h{level}>"


def _render_heading_close(renderer, tokens, idx, options, env):
    token = tokens[idx]
    level = min(int(token.tag[1]) + HEADING_OFFSET, 6)
    return f"</h{level}>\n"


def _render_image(renderer, tokens, idx, options, env):
    token = tokens[idx]
    src = token.attrGet("src") or ""
    if not is_own_media_url(src):
        # Someone else's image would tell its host who reads the page: show the alt text instead.
        return renderer.renderInlineAsText(token.children or [], options, env)
    return renderer.image(tokens, idx, options, env)


def _parser() -> MarkdownIt:
    md = MarkdownIt("zero", {"html": False, "linkify": False, "typographer": False, "breaks": False})
    md.enable(_ENABLED_RULES)
    md.add_render_rule("heading_open", _render_heading_open)
    md.add_render_rule("heading_close", _render_heading_close)
    md.add_render_rule("image", _render_image)
    return md


_MARKDOWN = _parser()


def _keep_attribute(element: str, attribute: str, value: str) -> str | None:
    if element == "img" and attribute == "src" and not is_own_media_url(value):
        return None
    if element == "ol" and attribute == "start" and not value.isdigit():
        return None
    return value


def markdown_render(source: str) -> str:
    """Return the sanitised HTML for ``source`` Markdown ("" for blank). Never raises for any text."""
    if not (source or "").strip():
        return ""
    html = _MARKDOWN.render(source)
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel=LINK_REL,
        attribute_filter=_keep_attribute,
        strip_comments=True,
    ).strip()
