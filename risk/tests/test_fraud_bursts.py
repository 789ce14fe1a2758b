"""Challenge-window signals: bursts of backers who give only to one campaign, and new accounts.

Measured from our own pledges and accounts (``risk.selectors.pledges_challenge_signals``) and
shown on a matching round's challenge screen beside each pledge's fraud check.
"""

from datetime import timedelta

import pytest
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from accounts.tests.factories import StaffFactory
from matching.services import round_end, round_publish
from matching.tests.factories import funded_pool, open_round
from projects.tests.factories import LiveCampaignFactory
from risk.fraud import burst_sizes
from risk.selectors import pledges_challenge_signals

from .factories import backers_create, pledge_history

pytestmark = pytest.mark.django_db

BURST_TEXT = "6 backers who gave only to this campaign pledged within 60 seconds of each other."


def _old_backers(count):
    """Backers whose accounts are a year old: no new-account signal, so only the burst is at stake."""
    return backers_create(count, joined=timezone.now() - timedelta(days=365))


def _at(start, seconds):
    return [start + timedelta(seconds=s) for s in seconds]


def _signals(pledges, **kwargs):
    return pledges_challenge_signals(pledge_ids=[p.pk for p in pledges], **kwargs)


def _names(signals):
    return {pk: [s.name for s in found] for pk, found in signals.items()}


def test_a_burst_of_backers_who_give_only_to_one_campaign_is_flagged():
    campaign = LiveCampaignFactory()
    start = timezone.now() - timedelta(hours=2)
    burst = pledge_history(campaign, times=_at(start, range(0, 60, 10)), amounts=[2_500] * 6, backers=_old_backers(6))
    # A regular gives in the same minute, but backs another campaign too: not part of the burst.
    regular = _old_backers(1)
    pledge_history(LiveCampaignFactory(), times=[start - timedelta(days=3)], amounts=[1_000], backers=regular)
    alongside = pledge_history(campaign, times=[start + timedelta(seconds=5)], amounts=[2_500], backers=regular)
    later = pledge_history(campaign, times=[start + timedelta(hours=1)], amounts=[2_500], backers=_old_backers(1))

    signals = _signals(burst + alongside + later)

    assert {pk: [s.text for s in found] for pk, found in signals.items() if pk in {p.pk for p in burst}} == {
        p.pk: [BURST_TEXT] for p in burst
    }
    assert signals[alongside[0].pk] == []
    assert signals[later[0].pk] == []
    # One pledge of the burst alone (the rest on another page of the screen) is still flagged.
    assert _names(_signals(burst[-1:])) == {burst[-1].pk: ["backer_burst"]}


def test_ordinary_pledging_is_not_flagged():
    campaign = LiveCampaignFactory()
    start = timezone.now() - timedelta(hours=3)
    # Four in a minute (one short of a burst), then one every two minutes.
    few = pledge_history(campaign, times=_at(start, [0, 10, 20, 30]), amounts=[2_500] * 4, backers=_old_backers(4))
    spread = pledge_history(
        campaign,
        times=_at(start + timedelta(minutes=10), range(0, 1200, 120)),
        amounts=[2_500] * 10,
        backers=_old_backers(10),
    )
    # Eight in one minute who all back other campaigns too: a newsletter going out, not a ring.
    regulars = _old_backers(8)
    pledge_history(LiveCampaignFactory(), times=[start - timedelta(days=30)] * 8, amounts=[1_000] * 8, backers=regulars)
    rush = pledge_history(
        campaign, times=_at(start + timedelta(hours=1), range(0, 40, 5)), amounts=[2_500] * 8, backers=regulars
    )

    signals = _signals(few + spread + rush)

    assert len(signals) == 22
    assert all(found == [] for found in signals.values())


def test_a_burst_needs_distinct_backers_within_the_window_edges_included():
    t = [0, 15, 30, 45, 60]
    assert burst_sizes(t, [1, 2, 3, 4, 5], min_backers=5, window_seconds=60).tolist() == [5] * 5
    assert burst_sizes([0, 15, 30, 45, 61], [1, 2, 3, 4, 5], min_backers=5, window_seconds=60).tolist() == [0] * 5
    # One backer pledging five times in a minute is one backer.
    assert burst_sizes(t, [1, 1, 1, 1, 1], min_backers=5, window_seconds=60).tolist() == [0] * 5
    # Out of order, and a pledge of a bigger burst reports its size; the late one is alone.
    times = [50, 0, 10, 200, 20, 30, 40]
    assert burst_sizes(times, [6, 1, 2, 7, 3, 4, 5], min_backers=5, window_seconds=60).tolist() == [
        6,
        6,
        6,
        0,
        6,
        6,
        6,
    ]


@override_settings(FRAUD_BURST_MIN_BACKERS=3, FRAUD_BURST_WINDOW_SECONDS=10)
def test_the_thresholds_come_from_the_settings():
    campaign = LiveCampaignFactory()
    start = timezone.now() - timedelta(hours=1)
    tight = pledge_history(campaign, times=_at(start, [0, 4, 8]), amounts=[1_000] * 3, backers=_old_backers(3))
    loose = pledge_history(
        campaign, times=_at(start + timedelta(minutes=5), [0, 6, 12]), amounts=[1_000] * 3, backers=_old_backers(3)
    )

    signals = _signals(tight + loose)

    assert [s.text for s in signals[tight[0].pk]] == [
        "3 backers who gave only to this campaign pledged within 10 seconds of each other."
    ]
    assert all(signals[p.pk] == [] for p in loose)


def test_giving_elsewhere_after_the_round_ended_does_not_hide_the_burst():
    campaign = LiveCampaignFactory()
    round_end_at = timezone.now() - timedelta(hours=1)
    backers = _old_backers(5)
    burst = pledge_history(
        campaign, times=_at(round_end_at - timedelta(hours=1), range(0, 50, 10)), amounts=[2_500] * 5, backers=backers
    )
    # After the round, one of them backs another campaign: four single-campaign backers remain.
    after = [round_end_at + timedelta(minutes=5)]
    pledge_history(LiveCampaignFactory(), times=after, amounts=[500], backers=backers[:1])

    assert all(names == ["backer_burst"] for names in _names(_signals(burst, until=round_end_at)).values())
    assert all(names == [] for names in _names(_signals(burst)).values())


def test_an_account_younger_than_a_week_when_it_gave_is_flagged():
    campaign = LiveCampaignFactory()
    now = timezone.now()
    new = backers_create(1, joined=now - timedelta(days=2, hours=1))
    week_old = backers_create(1, joined=now - timedelta(days=8))
    # Ten days old now, but a day old when it gave: the age at the pledge is what counts.
    new_then = backers_create(1, joined=now - timedelta(days=10))
    pledges = [
        *pledge_history(campaign, times=[now - timedelta(hours=1)], amounts=[1_000], backers=new),
        *pledge_history(campaign, times=[now - timedelta(hours=2)], amounts=[1_000], backers=week_old),
        *pledge_history(campaign, times=[now - timedelta(days=9)], amounts=[1_000], backers=new_then),
    ]

    signals = _signals(pledges)

    assert [s.text for s in signals[pledges[0].pk]] == ["The account was 2 days old when it gave (under 7 days)."]
    assert signals[pledges[1].pk] == []
    assert [s.text for s in signals[pledges[2].pk]] == ["The account was 1 day old when it gave (under 7 days)."]


def test_the_queries_do_not_grow_with_the_page(django_assert_num_queries):
    start = timezone.now() - timedelta(hours=2)
    campaigns = [LiveCampaignFactory() for _ in range(10)]
    pledges = []
    for i, campaign in enumerate(campaigns):
        pledges += pledge_history(
            campaign,
            times=_at(start + timedelta(minutes=5 * i), range(0, 60, 6)),
            amounts=[1_000] * 10,
            backers=_old_backers(10),
        )

    with django_assert_num_queries(2):
        small = _signals(pledges[:3])
    with django_assert_num_queries(2):
        page = _signals(pledges)
    with django_assert_num_queries(0):
        assert _signals([]) == {}

    assert all(names == ["backer_burst"] for names in _names(small).values())
    assert len(page) == 100
    assert all(names == ["backer_burst"] for names in _names(page).values())


def test_the_challenge_screen_shows_the_signals_beside_each_contribution(client):
    steady, rushed = LiveCampaignFactory(title="Street choir"), LiveCampaignFactory(title="Tool library")
    matching_round = open_round(funded_pool(amount=100_000, campaigns=[steady, rushed], per_campaign_cap=100_000))
    start = timezone.now() - timedelta(minutes=50)
    honest = pledge_history(steady, times=_at(start, range(0, 2400, 600)), amounts=[2_500] * 4, backers=_old_backers(4))
    newcomer = pledge_history(
        steady,
        times=[start + timedelta(minutes=45)],
        amounts=[2_500],
        backers=backers_create(1, joined=start - timedelta(days=3)),
    )
    ring = pledge_history(
        rushed, times=_at(start + timedelta(minutes=20), range(0, 36, 6)), amounts=[2_500] * 6, backers=_old_backers(6)
    )
    round_end(matching_round=matching_round, now=matching_round.ends_at + timedelta(seconds=1))
    round_publish(matching_round=matching_round)
    client.force_login(StaffFactory())

    page = client.get(reverse("admin:matching_round_contributions", args=[matching_round.pk])).content.decode()

    def row(pledge):
        found = page[page.index(f'data-pledge="{pledge.pk}"') :]
        return found[: found.index("</tr>")]

    assert page.count('name="pledge"') == 11  # every one can still be excluded, with a reason
    for pledge in ring:
        assert 'data-signals="backer_burst"' in row(pledge)
        assert BURST_TEXT in row(pledge)
    assert "The account was 3 days old when it gave (under 7 days)." in row(newcomer[0])
    assert 'data-signals="new_account"' in row(newcomer[0])
    for pledge in honest:
        assert 'data-signals=""' in row(pledge)
        assert "gave only to this campaign" not in row(pledge)
