import math

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
    """Return how long until ``deadline``: "21 days left", "47 hours left", "Ended".

    Days from two days on, hours below that, minutes below two hours; always rounded up, so the
    page never shows less time than is left ("20 days" a minute after a 21-day launch would).
    """
    if deadline is None:
        return ""
    seconds = (deadline - timezone.now()).total_seconds()
    if seconds <= 0:
        return gettext("Ended")
    if seconds < 60:
        return gettext("Less than a minute left")
    if seconds >= 2 * 86_400:
        unit, size = "day", 86_400
    elif seconds >= 2 * 3_600:
        unit, size = "hour", 3_600
    else:
        unit, size = "minute", 60
    count = math.ceil(seconds / size)
    return TIME_LEFT[unit](count) % {"count": count}


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
