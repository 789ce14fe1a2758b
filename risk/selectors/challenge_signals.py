"""Signals for a matching round's challenge window, measured from our own pledges and accounts.

``risk.fraud`` says what a burst and a new account are; this reads what they need for one page
of contributions in two queries, however many pledges and campaigns the page has.
"""

from collections import defaultdict
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Exists, OuterRef, Q

from pledges.models import Pledge

from .. import fraud
from .common import EpochSeconds, _unique_ids


def _single_campaign_pledges(*, spans: dict[int, tuple[datetime, datetime]], until: datetime | None):
    """Return (pledge id, campaign, backer, epoch seconds) of charged pledges in ``spans`` by single-campaign backers.

    ``spans``: {campaign id: (first, last)} creation times, widened by the caller. A backer
    gives only to one campaign when no pledge of theirs to another campaign was ever charged
    (before ``until``, when given).
    """
    elsewhere = Pledge.objects.filter(backer_id=OuterRef("backer_id"), held_at__isnull=False).exclude(
        campaign_id=OuterRef("campaign_id")
    )
    if until is not None:
        elsewhere = elsewhere.filter(created_at__lt=until)
    in_spans = Q()
    for campaign_id, (first, last) in spans.items():
        in_spans |= Q(campaign_id=campaign_id, created_at__gte=first, created_at__lte=last)
    return (
        Pledge.objects.filter(in_spans, held_at__isnull=False)
        .filter(~Exists(elsewhere))
        .annotate(seconds=EpochSeconds("created_at"))
        .order_by()
        .values_list("pk", "campaign_id", "backer_id", "seconds")
    )


def pledges_challenge_signals(*, pledge_ids, until: datetime | None = None) -> dict[int, list[fraud.ChallengeSignal]]:
    """Return {pledge id: its challenge-window signals} for ``pledge_ids``, burst first; [] when none.

    ``backer_burst``: the pledge's backer gives only to its campaign and is one of at least
    ``FRAUD_BURST_MIN_BACKERS`` such backers who pledged to it within
    ``FRAUD_BURST_WINDOW_SECONDS``; the neighbours may be on other pages. ``new_account``: the
    account was younger than ``FRAUD_NEW_ACCOUNT_DAYS`` when it made the pledge. ``until``
    (a round's end): pledges to other campaigns made from then on do not count as giving
    elsewhere, so the answer stays what the round saw. Two queries.
    """
    ids = _unique_ids(pledge_ids)
    if not ids:
        return {}
    window = settings.FRAUD_BURST_WINDOW_SECONDS
    pledges = list(
        Pledge.objects.filter(pk__in=ids).values_list("pk", "campaign_id", "created_at", "backer__date_joined")
    )
    spans: dict[int, tuple[datetime, datetime]] = {}
    for _pk, campaign_id, created_at, _joined in pledges:
        first, last = spans.get(campaign_id, (created_at, created_at))
        spans[campaign_id] = (min(first, created_at), max(last, created_at))
    # A burst around a pledge reaches at most one window either side of it.
    reach = timedelta(seconds=window)
    spans = {cid: (first - reach, last + reach) for cid, (first, last) in spans.items()}
    by_campaign: dict[int, list[tuple[int, int, float]]] = defaultdict(list)
    for pk, campaign_id, backer_id, seconds in _single_campaign_pledges(spans=spans, until=until):
        by_campaign[campaign_id].append((pk, backer_id, seconds))
    burst_size: dict[int, int] = {}
    for rows in by_campaign.values():
        sizes = fraud.burst_sizes(
            [r[2] for r in rows],
            [r[1] for r in rows],
            min_backers=settings.FRAUD_BURST_MIN_BACKERS,
            window_seconds=window,
        )
        burst_size.update((row[0], int(size)) for row, size in zip(rows, sizes, strict=True) if size)
    signals: dict[int, list[fraud.ChallengeSignal]] = {}
    for pk, _campaign_id, created_at, date_joined in pledges:
        found = [
            fraud.backer_burst_signal(burst_size.get(pk, 0), window_seconds=window),
            fraud.new_account_signal(created_at - date_joined, days=settings.FRAUD_NEW_ACCOUNT_DAYS),
        ]
        signals[pk] = [signal for signal in found if signal is not None]
    return signals
