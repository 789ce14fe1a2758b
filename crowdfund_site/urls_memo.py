"""URL reversing remembered per process, for the pages that link to the same views on every render.

Django's ``reverse`` walks its resolver's dictionaries, each looked up by the active language
through thread-local state, on every call: a campaign page reverses about fifteen URLs and a
discover page one per card. The answer only depends on the view, its arguments, the URLconf,
the script prefix, the language and the current application namespace, so it is kept under
exactly those (a pure function's memo, like Django's own resolver caches: nothing a request
could change is kept). Only plain ``str``/``int`` arguments are remembered; anything else
(a model instance, whose text may change while its hash does not) is reversed each time.
"""

from functools import lru_cache

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.template import Library
from django.template.defaulttags import URLNode
from django.template.defaulttags import url as url_tag
from django.urls import NoReverseMatch, get_script_prefix, get_urlconf, reverse
from django.utils.html import conditional_escape
from django.utils.translation import get_language

# Enough for every campaign page's few links of a large site; the oldest are dropped beyond it.
MEMO_SIZE = 20_000


def reverse_memo(viewname: str, *args: str | int, current_app: str | None = None) -> str:
    """Return ``reverse(viewname, args=args, current_app=current_app)``, remembered (see the module)."""
    if not all(type(arg) in (str, int) for arg in args):
        return reverse(viewname, args=args, current_app=current_app)
    urlconf = get_urlconf() or settings.ROOT_URLCONF
    return _reverse(urlconf, get_script_prefix(), get_language(), current_app, viewname, args)


@lru_cache(maxsize=MEMO_SIZE)
def _reverse(urlconf, _prefix, _language, current_app, viewname, args) -> str:
    # The prefix and language are part of the key only: reverse() reads the same from this thread.
    return reverse(viewname, urlconf=urlconf, args=args, current_app=current_app)


@receiver(setting_changed)
def _forget_on_urlconf_change(*, setting, **kwargs) -> None:
    if setting == "ROOT_URLCONF":  # the same module name may now hold other patterns (tests)
        _reverse.cache_clear()


register = Library()


class MemoURLNode(URLNode):
    """Django's ``{% url %}`` (same arguments, ``as``, errors and escaping) through ``reverse_memo``."""

    def render(self, context):
        if self.kwargs:  # not used by our templates: Django's own
            return super().render(context)
        args = [arg.resolve(context) for arg in self.args]
        try:
            current_app = context.request.current_app
        except AttributeError:
            try:
                current_app = context.request.resolver_match.namespace
            except AttributeError:
                current_app = None
        url = ""
        try:
            url = reverse_memo(self.view_name.resolve(context), *args, current_app=current_app)
        except NoReverseMatch:
            if self.asvar is None:
                raise
        if self.asvar:
            context[self.asvar] = url
            return ""
        return conditional_escape(url) if context.autoescape else url


@register.tag
def url(parser, token):
    """``{% url %}`` as Django's, its answers remembered (``reverse_memo``).

    Listed in ``TEMPLATES``' builtins, so it takes the place of Django's tag in every template.
    """
    node = url_tag(parser, token)
    return MemoURLNode(node.view_name, node.args, node.kwargs, node.asvar)
