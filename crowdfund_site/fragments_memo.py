"""``{% per_language %}...{% endper_language %}``: a template's fixed text rendered once per language.

Most of a page's template work is not the page's data but its fixed words and links: headings,
labels, the header's and footer's links, each a ``{% translate %}`` or ``{% url %}`` node that
Django renders afresh on every request. A block marked ``per_language`` holds only such things:
it is rendered once per template, place in it, language, script prefix and URLconf, and the text
is reused afterwards (a pure function's memo, as ``crowdfund_site.urls_memo``).

What makes it safe: the block is rendered with an empty context (``Context.new``), so it cannot
depend on the request, the viewer or the page's objects. A variable put inside by mistake
renders as nothing the first time already, and a test of the page shows it, instead of one
visitor's data being shown to the next.
"""

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.template import Library, Node
from django.template.base import UNKNOWN_SOURCE
from django.urls import get_script_prefix, get_urlconf
from django.utils.safestring import mark_safe
from django.utils.translation import get_language

register = Library()


class PerLanguageNode(Node):
    def __init__(self, nodelist, place: str | None):
        self.nodelist = nodelist
        self.place = place

    def render(self, context):
        # A template made from a string has no file to name its place; with DEBUG on, templates
        # are read afresh on every render (no cached loader), so an edited one must not be remembered.
        if self.place is None or settings.DEBUG:
            return self.nodelist.render(context.new())
        urlconf = get_urlconf() or settings.ROOT_URLCONF
        # The view's namespace too: ``{% url %}`` reverses with it as the current application.
        match = getattr(getattr(context, "request", None), "resolver_match", None)
        namespace = getattr(match, "namespace", None)
        key = (self.place, get_language(), get_script_prefix(), urlconf, namespace, context.autoescape)
        text = _memo.get(key)
        if text is None:
            text = self.nodelist.render(context.new())
            if len(_memo) >= MEMO_SIZE:
                _memo.clear()
            _memo[key] = text
        return mark_safe(text)  # noqa: S308 - rendered by the template engine, escaped there


# Keys are template places times languages: a few hundred at most. The bound is a guard only.
MEMO_SIZE = 10_000
_memo: dict[tuple, str] = {}


@receiver(setting_changed)
def _forget_on_setting_change(*, setting, **kwargs) -> None:
    if setting in ("ROOT_URLCONF", "LANGUAGES", "LANGUAGE_CODE", "LOCALE_PATHS", "STATIC_URL", "STORAGES"):
        _memo.clear()


@register.tag
def per_language(parser, token):
    """Render the block once per language and reuse its text (see the module): no variables inside."""
    nodelist = parser.parse(("endper_language",))
    parser.delete_first_token()
    # The template's file and the block's rank in it name its place (the same whenever the file
    # is compiled again; a line may hold several blocks, and tokens carry no position outside debug).
    rank = getattr(parser, "per_language_blocks", 0)
    parser.per_language_blocks = rank + 1
    name = getattr(getattr(parser, "origin", None), "name", UNKNOWN_SOURCE)
    place = None if name == UNKNOWN_SOURCE else f"{name}:{rank}"
    return PerLanguageNode(nodelist, place)
