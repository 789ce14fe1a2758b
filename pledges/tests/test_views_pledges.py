from datetime import timedelta

import pytest
from django.http import QueryDict
from django.urls import reverse
from django.utils import timezone

from accounts.tests.factories import UserFactory
from pledges.models import Pledge, PledgeStatus
from pledges.tests.factories import pledge_held
from projects.models import CampaignStatus
from projects.tests.factories import LiveCampaignFactory, RewardTierFactory

CARD = {"card_number": "4242 4242 4242 4242", "expiry": "12/39", "cvc": "123"}


def pledge_url(campaign) -> str:
    return reverse("pledges:create", kwargs={"slug": campaign.slug})


def post_pledge(client, campaign, **fields):
    data = {**CARD, "reward": "", "amount": "25.00", "idempotency_key": "form-key-1", **fields}
    return client.post(pledge_url(campaign), data)


@pytest.fixture
def logged_in(client, backer):
    client.force_login(backer)
    return client


@pytest.mark.django_db
def test_a_logged_out_visitor_sees_the_rewards_and_logs_in_to_pledge_with_their_choice(client, live_campaign, backer):
    reward = RewardTierFactory(campaign=live_campaign, title="Poster", minimum_amount=2_500)
    response = client.get(pledge_url(live_campaign))
    assert response.status_code == 200
    page = response.content.decode()
    assert "Poster" in page
    assert "Log in to pledge" in page
    assert 'name="card_number"' not in page  # the card is asked for once logged in
    assert f'<link rel="canonical" href="http://testserver{pledge_url(live_campaign)}">' in page
    assert f"Back “{live_campaign.title}”: choose a reward or pledge any amount" in page  # its own description

    # "Log in to pledge" sends the choice through the log-in page, and nothing is pledged.
    response = client.post(pledge_url(live_campaign), {"reward": reward.pk, "amount": "30.00"})
    assert response.status_code == 302
    login, _, query = response["Location"].partition("?")
    assert login == reverse("accounts:login")
    back = QueryDict(query)["next"]
    assert back == f"{pledge_url(live_campaign)}?reward={reward.pk}&amount=30.00"
    assert not Pledge.objects.exists()

    client.force_login(backer)
    page = client.get(back).content.decode()
    assert 'name="card_number"' in page
    assert 'value="30.00"' in page  # the amount chosen before logging in
    assert f'value="{reward.pk}" data-minimum="25.00" data-minimum-text="25.00" checked' in page


@pytest.mark.django_db
def test_a_logged_out_visitors_choice_carries_only_a_reward_of_the_campaign_and_a_short_amount(client, live_campaign):
    other = RewardTierFactory()
    response = client.post(pledge_url(live_campaign), {"reward": other.pk, "amount": "9" * 40})
    back = QueryDict(response["Location"].partition("?")[2])["next"]
    assert back == pledge_url(live_campaign)


@pytest.mark.django_db
def test_pledge_form_offers_rewards_and_a_fresh_key(logged_in, live_campaign):
    reward = RewardTierFactory(campaign=live_campaign, title="Poster", minimum_amount=2_500)
    RewardTierFactory(campaign=live_campaign, title="Gone", quantity_limit=1, claimed_count=1)
    first = logged_in.get(pledge_url(live_campaign), {"reward": reward.pk})
    second = logged_in.get(pledge_url(live_campaign))
    page = first.content.decode()
    assert "Poster" in page
    assert 'value="25.00"' in page  # the reward's minimum, prefilled
    assert "Sold out" in page
    assert first.context["idempotency_key"] != second.context["idempotency_key"]


@pytest.mark.django_db
def test_a_custom_amount_pledge_is_held_and_confirmed(logged_in, backer, live_campaign):
    response = post_pledge(logged_in, live_campaign, amount="25.00")
    pledge = Pledge.objects.get(backer=backer)
    assert response.status_code == 302
    assert response["Location"] == reverse("pledges:detail", kwargs={"pk": pledge.pk}) + "?thanks=1"
    assert (pledge.amount, pledge.currency, pledge.status) == (2_500, "USD", PledgeStatus.HELD)
    page = logged_in.get(response["Location"]).content.decode()
    assert "Thank you for backing" in page
    assert "$25.00" in page
    live_campaign.refresh_from_db()
    assert live_campaign.pledged_amount == 2_500


@pytest.mark.django_db
def test_a_double_submit_makes_one_pledge(logged_in, backer, live_campaign):
    first = post_pledge(logged_in, live_campaign, idempotency_key="same-form")
    second = post_pledge(logged_in, live_campaign, idempotency_key="same-form")
    assert first["Location"] == second["Location"]
    assert Pledge.objects.filter(backer=backer).count() == 1
    live_campaign.refresh_from_db()
    assert (live_campaign.pledged_amount, live_campaign.backer_count) == (2_500, 1)


@pytest.mark.django_db
def test_pledge_with_a_reward(logged_in, backer, live_campaign):
    reward = RewardTierFactory(campaign=live_campaign, minimum_amount=5_000, quantity_limit=10)
    post_pledge(logged_in, live_campaign, reward=str(reward.pk), amount="60")
    pledge = Pledge.objects.get(backer=backer)
    assert (pledge.reward, pledge.amount) == (reward, 6_000)
    reward.refresh_from_db()
    assert reward.claimed_count == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("card", "message"),
    [
        ("4000 0000 0000 0002", "Your card was declined: The card was declined."),
        ("4000000000009995", "Your card was declined: The card has insufficient funds."),
    ],
)
def test_a_declined_card_is_explained_and_nothing_is_held(logged_in, backer, live_campaign, card, message):
    response = post_pledge(logged_in, live_campaign, card_number=card)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert Pledge.objects.get(backer=backer).status == PledgeStatus.FAILED
    # A fresh key, so trying another card is a new request rather than the same failed one.
    assert response.context["idempotency_key"] != "form-key-1"
    retry = post_pledge(logged_in, live_campaign, idempotency_key=response.context["idempotency_key"])
    assert retry.status_code == 302
    live_campaign.refresh_from_db()
    assert live_campaign.pledged_amount == 2_500


@pytest.mark.django_db
def test_a_processing_error_is_retried_and_goes_through(logged_in, backer, live_campaign):
    response = post_pledge(logged_in, live_campaign, card_number="4000 0000 0000 0119")
    assert response.status_code == 302
    assert Pledge.objects.get(backer=backer).status == PledgeStatus.HELD


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"amount": "25.001"}, "amount", "USD amounts have at most 2 decimals."),
        ({"amount": "0"}, "amount", "The amount must be more than zero."),
        ({"amount": "-5"}, "amount", "The amount must be more than zero."),
        ({"amount": "lots"}, "amount", "is not an amount"),
        ({"card_number": "4111 1111 1111 1111"}, "card_number", "Use one of the test cards"),
        ({"expiry": "01/20"}, "expiry", "This card has expired."),
        ({"cvc": "1"}, "cvc", "3 or 4 digits"),
    ],
)
def test_form_errors(logged_in, backer, live_campaign, fields, field, message):
    response = post_pledge(logged_in, live_campaign, **fields)
    assert response.status_code == 200
    assert message in " ".join(response.context["form"].errors[field])
    assert not Pledge.objects.filter(backer=backer).exists()


@pytest.mark.django_db
def test_amount_below_the_reward_minimum(logged_in, backer, live_campaign):
    reward = RewardTierFactory(campaign=live_campaign, title="Mug", minimum_amount=5_000)
    response = post_pledge(logged_in, live_campaign, reward=str(reward.pk), amount="10")
    assert "The “Mug” reward needs a pledge of at least $50.00." in response.context["form"].errors["amount"]


@pytest.mark.django_db
def test_a_sold_out_reward_is_refused_with_409_and_the_form(logged_in, backer, live_campaign):
    reward = RewardTierFactory(campaign=live_campaign, title="Signed copy", quantity_limit=1)
    pledge_held(campaign=live_campaign, reward=reward)
    response = post_pledge(logged_in, live_campaign, reward=str(reward.pk))
    # A status a program can count (as the API's sold_out), a page a person can read.
    assert response.status_code == 409
    assert "pledges/pledge_create.html" in [t.name for t in response.templates]
    errors = response.context["form"].errors["reward"]
    assert "The “Signed copy” reward is sold out." in errors[0]
    assert "The “Signed copy” reward is sold out." in response.content.decode()
    assert not Pledge.objects.filter(backer=backer).exists()


@pytest.mark.django_db
def test_a_closed_campaign_takes_no_pledges(logged_in, backer):
    ended = LiveCampaignFactory(deadline=timezone.now() - timedelta(minutes=1))
    assert "This campaign is not taking pledges" in logged_in.get(pledge_url(ended)).content.decode()
    response = post_pledge(logged_in, ended)
    assert "This campaign is not taking pledges" in response.content.decode()
    succeeded = LiveCampaignFactory(status=CampaignStatus.SUCCEEDED)
    assert "It is succeeded" in logged_in.get(pledge_url(succeeded)).content.decode()
    assert not Pledge.objects.filter(backer=backer).exists()


@pytest.mark.django_db
def test_the_initiator_cannot_back_their_own_campaign(client, live_campaign):
    client.force_login(live_campaign.initiator)
    assert "you cannot back it" in client.get(pledge_url(live_campaign)).content.decode()
    response = post_pledge(client, live_campaign)
    assert "you cannot back it" in response.content.decode()
    assert not Pledge.objects.exists()


@pytest.mark.django_db
def test_pledge_form_needs_csrf(backer, live_campaign):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(backer)
    assert post_pledge(strict, live_campaign).status_code == 403


@pytest.mark.django_db
def test_my_pledges_lists_only_mine_with_statuses(logged_in, backer, live_campaign):
    mine = pledge_held(campaign=live_campaign, backer=backer, amount=1_234)
    other = pledge_held(campaign=live_campaign, amount=9_999)
    page = logged_in.get(reverse("pledges:list")).content.decode()
    assert "$12.34" in page
    assert "Held in escrow" in page
    assert "$99.99" not in page
    assert logged_in.get(reverse("pledges:detail", kwargs={"pk": mine.pk})).status_code == 200
    assert logged_in.get(reverse("pledges:detail", kwargs={"pk": other.pk})).status_code == 404
    assert logged_in.get(reverse("pledges:cancel", kwargs={"pk": other.pk})).status_code == 404
    assert logged_in.post(reverse("pledges:cancel", kwargs={"pk": other.pk})).status_code == 404
    other.refresh_from_db()
    assert other.status == PledgeStatus.HELD


@pytest.mark.django_db
def test_my_pledges_requires_login(client):
    assert client.get(reverse("pledges:list")).status_code == 302


@pytest.mark.django_db
def test_cancel_asks_first_then_refunds(logged_in, backer, live_campaign):
    pledge = pledge_held(campaign=live_campaign, backer=backer, amount=4_000)
    url = reverse("pledges:cancel", kwargs={"pk": pledge.pk})
    assert "Yes, cancel and refund" in logged_in.get(url).content.decode()
    pledge.refresh_from_db()
    assert pledge.status == PledgeStatus.HELD  # GET changes nothing

    response = logged_in.post(url, follow=True)
    pledge.refresh_from_db()
    assert pledge.status == PledgeStatus.CANCELLED
    assert "is cancelled" in response.content.decode()
    live_campaign.refresh_from_db()
    assert (live_campaign.pledged_amount, live_campaign.backer_count) == (0, 0)


@pytest.mark.django_db
def test_cancel_after_the_deadline_is_refused_with_a_message(logged_in, backer, live_campaign):
    pledge = pledge_held(campaign=live_campaign, backer=backer)
    live_campaign.deadline = timezone.now() - timedelta(seconds=1)
    live_campaign.save(update_fields=["deadline"])
    response = logged_in.post(reverse("pledges:cancel", kwargs={"pk": pledge.pk}), follow=True)
    assert "can no longer be changed" in response.content.decode()
    pledge.refresh_from_db()
    assert pledge.status == PledgeStatus.HELD


@pytest.mark.django_db
def test_my_pledges_runs_a_constant_number_of_queries(logged_in, backer, django_assert_max_num_queries):
    for _ in range(3):
        pledge_held(campaign=LiveCampaignFactory(), backer=backer)
    with django_assert_max_num_queries(6):  # session, user, count, page, rewards to confirm, change histories
        logged_in.get(reverse("pledges:list"))
    for _ in range(10):
        pledge_held(campaign=LiveCampaignFactory(), backer=backer, reward=None)
    with django_assert_max_num_queries(6):
        logged_in.get(reverse("pledges:list"))


@pytest.mark.django_db
def test_someone_elses_pledge_page_is_404_even_for_another_backer(client, live_campaign):
    pledge = pledge_held(campaign=live_campaign)
    client.force_login(UserFactory())
    assert client.get(reverse("pledges:detail", kwargs={"pk": pledge.pk})).status_code == 404
