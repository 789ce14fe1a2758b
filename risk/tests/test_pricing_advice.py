"""Pricing advice: a limited tier the forecast says sells out before the deadline -> open a next
price step. The rule pinned on a known forecast, then the dashboard end to end (shown with its
explanation and the forecast with and without it, applied with one click, audited)."""

from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse

from accounts.models import AuditEvent
from accounts.tests.factories import UserFactory
from pledges.tests.factories import pledge_held
from projects.models import RewardTier
from projects.tests.factories import LiveCampaignFactory, RewardTierFactory
from risk.selectors import ConePoint, Forecast, next_step_price, price_step_advice

LAUNCH = datetime(2027, 3, 1, tzinfo=UTC)
NOW = LAUNCH + timedelta(days=10)
DEADLINE = LAUNCH + timedelta(days=30)


def _forecast(*, method: str = "curve") -> Forecast:
    """$2,000.00 pledged after 10 of 30 days, $6,000.00 forecast: every tier's claims to triple."""
    medians = {10: 200_000, 15: 300_000, 20: 400_000, 30: 600_000}
    return Forecast(
        campaign_id=1,
        currency="USD",
        goal=500_000,
        pledged=200_000,
        method=method,
        predicted_total=600_000,
        low=450_000,
        high=750_000,
        probability_of_goal=0.7,
        amplitude=None,
        rate_per_day=None,
        cone=tuple(ConePoint(at=LAUNCH + timedelta(days=day), low=m, median=m, high=m) for day, m in medians.items()),
        explanation="",
    )


def _tier(pk: int, *, limit, claimed: int, price: int = 2_500, **extra) -> RewardTier:
    return RewardTier(
        pk=pk,
        title=f"Tier {pk}",
        minimum_amount=price,
        quantity_limit=limit,
        claimed_count=claimed,
        price_steps=extra.pop("price_steps", []),
        **extra,
    )


def test_the_rule_on_a_known_forecast():
    tiers = [
        _tier(1, limit=25, claimed=20),  # 20 -> 60 by the deadline: full at $2,500.00 raised, day 12.5
        _tier(2, limit=100, claimed=20),  # 60 of 100: never full
        _tier(3, limit=None, claimed=40),  # unlimited
        _tier(4, limit=10, claimed=10, price=999),  # sold out already, 30 wanted
        _tier(5, limit=4, claimed=2),  # too few claims to tell
        _tier(6, limit=25, claimed=20, available_until=NOW),  # its window has ended
        _tier(7, limit=25, claimed=20, price_steps=[{"price": 2_000, "until_claimed": 25, "until": None}]),
    ]
    found = price_step_advice(forecast=_forecast(), rewards=tiers, deadline=DEADLINE, now=NOW)
    advice = {item.reward_id: item for item in found}
    assert set(advice) == {1, 4}

    first = advice[1]
    assert (first.claimed, first.limit, first.projected_claims) == (20, 25, 60)
    assert first.sells_out_at == LAUNCH + timedelta(days=12, hours=12)
    assert (first.current_price, first.price, first.slots) == (2_500, 3_000, 25)  # +20 %, at most the limit again
    assert first.forecast_total == 600_000
    assert first.total_without == 600_000 - 25 * 2_500  # the 25 who find it full pledge nothing
    assert first.total_with == 600_000 + 25 * 500  # they take the next step at $5.00 more
    assert "“Tier 1” has 20 of 25 claimed" in first.explanation
    assert "selling out around 13 March 2027" in first.explanation
    assert "25 more at $30.00, while the first 25 keep $25.00" in first.explanation

    sold_out = advice[4]
    assert sold_out.sells_out_at is None
    assert (sold_out.projected_claims, sold_out.slots, sold_out.price) == (30, 10, 1_200)
    assert "is sold out (10 of 10)" in sold_out.explanation


def test_no_advice_on_a_closed_forecast_or_one_where_nothing_sells_out_before_the_deadline():
    tier = [_tier(1, limit=25, claimed=20)]
    assert price_step_advice(forecast=_forecast(method="closed"), rewards=tier, deadline=DEADLINE, now=NOW) == []
    # The cone reaches the tier's limit ($2,500.00 raised) only after this deadline.
    early = LAUNCH + timedelta(days=12)
    assert price_step_advice(forecast=_forecast(), rewards=tier, deadline=early, now=NOW) == []


@pytest.mark.parametrize(
    ("price", "currency", "expected"),
    [(2_500, "USD", 3_000), (2_499, "USD", 3_000), (1_000, "USD", 1_200), (999, "USD", 1_200), (1_234, "JPY", 1_481)],
)
def test_the_next_price_is_a_fifth_more_rounded_up_to_a_whole_unit(price, currency, expected):
    assert next_step_price(price, currency) == expected


# --- The dashboard, end to end ---------------------------------------------------------------------


@pytest.fixture
def selling_out(db):
    """A campaign just launched whose 5-slot tier took 3 claims: the forecast has it full soon."""
    campaign = LiveCampaignFactory(goal=100_000, title="Field guides")
    tier = RewardTierFactory(campaign=campaign, title="Signed copy", minimum_amount=2_000, quantity_limit=5)
    RewardTierFactory(campaign=campaign, title="Thank-you card", minimum_amount=500)
    backers = [pledge_held(campaign=campaign, amount=2_000, reward=tier) for _ in range(3)]
    return campaign, tier, backers


def _dashboard(campaign) -> str:
    return reverse("dashboard:campaign_dashboard", kwargs={"slug": campaign.slug})


def _apply_url(campaign) -> str:
    return reverse("dashboard:pricing_advice_apply", kwargs={"slug": campaign.slug})


def test_the_dashboard_shows_the_advice_and_one_click_opens_the_step_audited(client, selling_out):
    campaign, tier, backers = selling_out
    client.force_login(campaign.initiator)
    page = client.get(_dashboard(campaign)).content.decode()
    assert "Pricing advice" in page
    assert "Open a next price step on “Signed copy”" in page
    assert "“Signed copy” has 3 of 5 claimed" in page
    assert 'data-figure="without"' in page  # the forecast without the step
    assert 'data-figure="with"' in page  # and with it
    assert 'name="price" value="24.00"' in page
    assert "Thank-you card”" not in page  # unlimited: nothing to suggest
    assert "The goal itself never changes after launch" in page

    response = client.post(_apply_url(campaign), {"reward": tier.pk, "price": "24.00", "slots": "5"}, follow=True)
    assert "Next step opened on “Signed copy”: 5 more at $24.00." in response.content.decode()
    tier.refresh_from_db()
    assert (tier.quantity_limit, tier.minimum_amount) == (10, 2_400)
    assert tier.price_steps == [{"price": 2_000, "until_claimed": 5, "until": None}]
    assert all(b.amount == 2_000 for b in backers)  # nobody who backed pays more
    event = AuditEvent.objects.get(action="pricing_advice_apply")
    assert event.actor == campaign.initiator
    assert event.object_id == str(tier.pk)
    assert event.details["kind"] == "open_price_step"
    assert (event.details["price"], event.details["slots"]) == (2_400, 5)
    assert event.details["total_with"] > event.details["total_without"]
    assert "“Signed copy” has 3 of 5 claimed" in event.reason


def test_a_click_on_advice_that_no_longer_applies_or_bad_input_changes_nothing(client, selling_out):
    campaign, tier, _backers = selling_out
    card = campaign.rewards.get(title="Thank-you card")
    client.force_login(campaign.initiator)
    response = client.post(_apply_url(campaign), {"reward": card.pk, "price": "9.00", "slots": "5"}, follow=True)
    assert "This advice no longer applies" in response.content.decode()
    for price, slots, message in [
        ("20.00", "5", "must be higher than the price now ($20.00)"),
        ("24.001", "5", "USD amounts have at most 2 decimals."),
    ]:
        response = client.post(_apply_url(campaign), {"reward": tier.pk, "price": price, "slots": slots}, follow=True)
        assert response.status_code == 200
        assert message in response.content.decode()
    response = client.post(_apply_url(campaign), {"reward": tier.pk, "price": "24.00", "slots": "0"}, follow=True)
    assert "greater than or equal to 1" in response.content.decode()
    tier.refresh_from_db()
    card.refresh_from_db()
    assert (tier.quantity_limit, tier.minimum_amount, tier.price_steps) == (5, 2_000, [])
    assert (card.quantity_limit, card.minimum_amount) == (None, 500)
    assert not AuditEvent.objects.filter(action="pricing_advice_apply").exists()


def test_only_the_initiator_sees_or_applies_the_advice(client, selling_out):
    campaign, tier, _backers = selling_out
    client.force_login(UserFactory())
    assert client.get(_dashboard(campaign)).status_code == 404
    assert client.post(_apply_url(campaign), {"reward": tier.pk, "price": "24.00", "slots": "5"}).status_code == 404
    tier.refresh_from_db()
    assert tier.quantity_limit == 5


def test_the_advice_is_in_chinese(client, selling_out, settings):
    campaign, tier, _backers = selling_out
    client.force_login(campaign.initiator)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"
    page = client.get(_dashboard(campaign)).content.decode()
    assert "定价建议" in page
    assert "“Signed copy”已售出 3 / 5 份" in page
    assert "开放这一档" in page
    response = client.post(_apply_url(campaign), {"reward": tier.pk, "price": "24.00", "slots": "5"}, follow=True)
    assert "已在“Signed copy”开放下一档价格：再开放 5 份，每份 $24.00。" in response.content.decode()
