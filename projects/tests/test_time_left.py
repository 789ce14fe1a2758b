"""The "time left" a card and a campaign page show: never less than is really left."""

from datetime import timedelta

import pytest
from django.utils import timezone

from projects.templatetags.campaigns import time_left


@pytest.mark.parametrize(
    ("left", "shown"),
    [
        (timedelta(days=21) - timedelta(seconds=5), "21 days left"),  # just after a 21-day launch
        (timedelta(days=20, hours=1), "21 days left"),
        (timedelta(days=2, hours=12), "3 days left"),
        (timedelta(days=2) - timedelta(seconds=5), "48 hours left"),
        (timedelta(hours=25, minutes=10), "26 hours left"),
        (timedelta(hours=2) - timedelta(seconds=5), "120 minutes left"),
        (timedelta(minutes=3, seconds=1), "4 minutes left"),
        (timedelta(seconds=30), "Less than a minute left"),
        (timedelta(seconds=-1), "Ended"),
    ],
)
def test_time_left_rounds_up_and_shows_hours_under_two_days(left, shown):
    assert time_left(timezone.now() + left) == shown
