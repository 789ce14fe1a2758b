from django import template
from django.utils import timezone
from django.utils.translation import gettext, ngettext

from projects.selectors import ENDING_SOON_WITHIN

register = template.Library()

TIME_LEFT = {
    "day": lambda n: ngettext("%(count)d day left", "%(count)d days left", n),
    "hour": lambda n: ngettext("%(count)d hour left", "%(count)d hours left", n),
    "minute": lambda n: ngettext("%(count)d minute left", "%(count)d minutes left", n),
}


@register.filter
def time_left(deadline) -> str:
    """Return how long until ``deadline`` in the largest sensible unit: "3 days left", "Ended"."""
    if deadline is None:
        return ""
    seconds = int((deadline - timezone.now()).total_seconds())
    if seconds <= 0:
        return gettext("Ended")
    for unit, size in (("day", 86_400), ("hour", 3_600), ("minute", 60)):
        count = seconds // size
        if count >= 2 or (unit == "minute" and count >= 1):
            return TIME_LEFT[unit](count) % {"count": count}
    return gettext("Less than a minute left")


@register.filter
def ending_soon(deadline) -> bool:
    """Return True if ``deadline`` is in the future but within the ending-soon window."""
    if deadline is None:
        return False
    now = timezone.now()
    return now < deadline <= now + ENDING_SOON_WITHIN


@register.filter
def bar_width(percent: int) -> int:
    """Return a progress percentage clamped to 0..100 for a bar's width."""
    return max(0, min(int(percent or 0), 100))
