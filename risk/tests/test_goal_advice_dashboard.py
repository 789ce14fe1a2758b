"""Rules 2 and 3 on the initiator's dashboard, end to end: shown with the chance of the goal without
and with each, applied with one click through a service (audited; backers e-mailed about a later
deadline), refused with a clear message and nothing changed when stale or bad, in English and Chinese.
"""

from datetime import timedelta

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from accounts.models import AuditEvent
from accounts.tests.factories import UserFactory
from crowdfund_site.exceptions import Conflict
from pledges.dashboard import RENDERED_ADVICE_KINDS
from pledges.tests.factories import pledge_held
from projects.live_changes import campaign_deadline_extend, reward_price_lower
from projects.models import CampaignDeadlineExtension, RewardTier, RewardTierChange
from projects.tests.factories import LiveCampaignFactory, RewardTierFactory
from promotion.models import Notice
from promotion.services import REMIND_BEFORE_END, reminder_request
from risk.selectors import ADD_LOWER_TIER, EXTEND_DEADLINE, LOWER_PRICE, OPEN_PRICE_STEP

pytestmark = pytest.mark.django_db


@pytest.fixture
def struggling(db):
    """12 days into 30, $100.00 of a $10,000.00 goal; "Patron" ($100.00) taken by nobody, the others selling."""
    now = timezone.now()
    campaign = LiveCampaignFactory(
        goal=1_000_000, title="Tide clocks", launched_at=now - timedelta(days=12), deadline=now + timedelta(days=18)
    )
    card = RewardTierFactory(campaign=campaign, title="Postcard", minimum_amount=2_500)
    poster = RewardTierFactory(campaign=campaign, title="Poster", minimum_amount=5_000)
    patron = RewardTierFactory(campaign=campaign, title="Patron", minimum_amount=10_000)
    backers = [pledge_held(campaign=campaign, amount=2_500, reward=card) for _ in range(2)]
    backers.append(pledge_held(campaign=campaign, amount=5_000, reward=poster))
    return campaign, patron, backers


def _url(name: str, campaign) -> str:
    return reverse(f"dashboard:{name}", kwargs={"slug": campaign.slug})


def _page(client, campaign) -> str:
    return client.get(_url("campaign_dashboard", campaign)).content.decode()


def test_every_kind_of_advice_has_its_place_on_the_dashboard():
    assert set(RENDERED_ADVICE_KINDS) == {OPEN_PRICE_STEP, LOWER_PRICE, ADD_LOWER_TIER, EXTEND_DEADLINE}


def test_the_dashboard_shows_each_suggestion_with_the_chance_of_the_goal_without_and_with_it(client, struggling):
    campaign, patron, _backers = struggling
    client.force_login(campaign.initiator)
    page = _page(client, campaign)
    assert "Lower the price of “Patron” for new backers" in page
    assert "Nobody has chosen “Patron” at $100.00 in 12 days" in page
    assert "Add a lower-priced tier" in page
    assert "Add a tier at $12.00, below your cheapest ($25.00)" in page
    assert "Extend the deadline once" in page
    assert "Extend the deadline by 14 days" in page
    assert page.count('data-figure="chance-without"') == 3
    assert page.count('data-figure="chance-with"') == 3
    assert f'name="reward" value="{patron.pk}"' in page
    assert 'name="price" value="80.00"' in page
    assert 'name="price" value="12.00"' in page
    assert 'name="days" value="14"' in page
    assert "The goal itself never changes after launch" in page


def test_one_click_extends_the_deadline_once_audited_reminders_moved_and_backers_told(
    client, struggling, celery_eager, django_capture_on_commit_callbacks
):
    campaign, _patron, backers = struggling
    old_deadline, goal = campaign.deadline, campaign.goal
    watcher = UserFactory()
    reminder_request(user=watcher, campaign=campaign)
    client.force_login(campaign.initiator)
    mail.outbox.clear()

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(_url("pricing_advice_extend", campaign), {"days": "14"}, follow=True)

    assert "The deadline is now" in response.content.decode()
    campaign.refresh_from_db()
    assert campaign.deadline == old_deadline + timedelta(days=14)
    assert campaign.goal == goal
    extension = CampaignDeadlineExtension.objects.get(campaign=campaign)
    assert (extension.from_deadline, extension.to_deadline, extension.actor) == (
        old_deadline,
        campaign.deadline,
        campaign.initiator,
    )
    notice = Notice.objects.get(user=watcher, campaign=campaign)
    assert notice.due_at == campaign.deadline - REMIND_BEFORE_END
    event = AuditEvent.objects.get(action="pricing_advice_apply")
    assert (event.actor, event.object_id, event.details["kind"]) == (
        campaign.initiator,
        str(campaign.pk),
        EXTEND_DEADLINE,
    )
    assert event.details["chance_with"] > event.details["chance_without"]
    told = sorted(message.to[0] for message in mail.outbox)
    assert told == sorted({pledge.backer.email for pledge in backers})
    assert "has extended its deadline once" in mail.outbox[0].body
    assert "Tide clocks now ends later" in mail.outbox[0].subject

    # Once only: the dashboard offers it no more, and a second click changes nothing.
    assert "Extend the deadline once" not in _page(client, campaign)
    again = client.post(_url("pricing_advice_extend", campaign), {"days": "3"}, follow=True)
    assert "This advice no longer applies" in again.content.decode()
    with pytest.raises(Conflict) as refused:
        campaign_deadline_extend(campaign=campaign, actor=campaign.initiator, days=3)
    assert refused.value.code == "already_extended"
    campaign.refresh_from_db()
    assert campaign.deadline == old_deadline + timedelta(days=14)


def test_an_extension_past_60_days_or_by_someone_else_changes_nothing(client, struggling):
    campaign, _patron, _backers = struggling
    old_deadline = campaign.deadline
    client.force_login(campaign.initiator)
    too_long = client.post(_url("pricing_advice_extend", campaign), {"days": "31"}, follow=True)
    assert "the deadline can move from 1 to 30 days later" in too_long.content.decode()
    not_a_number = client.post(_url("pricing_advice_extend", campaign), {"days": "soon"}, follow=True)
    assert "Enter a whole number." in not_a_number.content.decode()
    client.force_login(UserFactory())
    assert client.post(_url("pricing_advice_extend", campaign), {"days": "14"}).status_code == 404
    campaign.refresh_from_db()
    assert campaign.deadline == old_deadline
    assert not CampaignDeadlineExtension.objects.exists()
    assert not AuditEvent.objects.filter(action="pricing_advice_apply").exists()


def test_one_click_lowers_an_untaken_tier_for_new_backers_only(client, struggling):
    campaign, patron, backers = struggling
    client.force_login(campaign.initiator)
    response = client.post(
        _url("pricing_advice_lower_price", campaign), {"reward": patron.pk, "price": "80.00"}, follow=True
    )
    assert "“Patron” now costs $80.00 for new backers." in response.content.decode()
    patron.refresh_from_db()
    assert patron.minimum_amount == 8_000
    assert RewardTierChange.objects.get(reward=patron).changes == {"minimum_amount": [10_000, 8_000]}
    event = AuditEvent.objects.get(action="pricing_advice_apply")
    assert (event.object_id, event.details["kind"], event.details["price"]) == (str(patron.pk), LOWER_PRICE, 8_000)
    assert [pledge.amount for pledge in backers] == [2_500, 2_500, 5_000]
    for pledge in backers:
        pledge.refresh_from_db()
    assert [pledge.amount for pledge in backers] == [2_500, 2_500, 5_000]  # nobody else's pledge moved
    newcomer = pledge_held(campaign=campaign, amount=8_000, reward=patron)
    assert newcomer.reward_id == patron.pk


def test_a_lower_price_is_refused_once_someone_holds_the_tier_or_for_bad_input(client, struggling):
    campaign, patron, _backers = struggling
    client.force_login(campaign.initiator)
    for price, message in [
        ("120.00", "The new price must be lower than the price now ($100.00)."),
        ("80.001", "USD amounts have at most 2 decimals."),
        ("eighty", "“eighty” is not an amount."),
    ]:
        response = client.post(
            _url("pricing_advice_lower_price", campaign), {"reward": patron.pk, "price": price}, follow=True
        )
        assert response.status_code == 200
        assert message in response.content.decode()
    other = RewardTierFactory(campaign=LiveCampaignFactory(), minimum_amount=10_000)
    response = client.post(
        _url("pricing_advice_lower_price", campaign), {"reward": other.pk, "price": "80.00"}, follow=True
    )
    assert "This advice no longer applies" in response.content.decode()
    holder = pledge_held(campaign=campaign, amount=10_000, reward=patron)
    with pytest.raises(Conflict) as refused:
        reward_price_lower(reward=patron, actor=campaign.initiator, price=8_000)
    assert refused.value.code == "reward_has_backers"
    patron.refresh_from_db()
    other.refresh_from_db()
    assert (patron.minimum_amount, other.minimum_amount) == (10_000, 10_000)
    holder.refresh_from_db()
    assert holder.amount == 10_000
    assert not AuditEvent.objects.filter(action="pricing_advice_apply").exists()


def test_one_click_adds_a_lower_priced_tier_and_refuses_one_not_lower(client, struggling):
    campaign, _patron, _backers = struggling
    client.force_login(campaign.initiator)
    refused = client.post(_url("pricing_advice_add_tier", campaign), {"title": "Fan", "price": "25.00"}, follow=True)
    assert escape("The new tier's price must be below your cheapest tier's ($25.00).") in refused.content.decode()
    untitled = client.post(_url("pricing_advice_add_tier", campaign), {"title": " ", "price": "12.00"}, follow=True)
    assert "This field is required." in untitled.content.decode()
    assert campaign.rewards.count() == 3

    response = client.post(
        _url("pricing_advice_add_tier", campaign), {"title": "Thank-you note", "price": "12.00"}, follow=True
    )
    assert "“Thank-you note” added at $12.00: backers can choose it now." in response.content.decode()
    tier = RewardTier.objects.get(campaign=campaign, title="Thank-you note")
    assert (tier.minimum_amount, tier.quantity_limit, tier.ships) == (1_200, None, False)
    event = AuditEvent.objects.get(action="pricing_advice_apply")
    assert (event.object_id, event.details["kind"], event.details["suggested_price"]) == (
        str(tier.pk),
        ADD_LOWER_TIER,
        1_200,
    )
    assert pledge_held(campaign=campaign, amount=1_200, reward=tier).reward_id == tier.pk


def test_rules_2_and_3_are_in_chinese(client, struggling, settings):
    campaign, patron, _backers = struggling
    client.force_login(campaign.initiator)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"
    page = _page(client, campaign)
    assert "为新支持者降低“Patron”的价格" in page
    assert "新增一档更低价的回报" in page
    assert "延长一次截止时间" in page
    assert "达成目标的可能性" in page
    response = client.post(
        _url("pricing_advice_lower_price", campaign), {"reward": patron.pk, "price": "80.00"}, follow=True
    )
    assert "“Patron”对新支持者的价格现为 $80.00。" in response.content.decode()
