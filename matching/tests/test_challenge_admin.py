"""Staff exclude contributions found fraudulent in a round's challenge window, from the admin."""

from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEvent
from accounts.tests.factories import FinanceFactory, ReviewerFactory, StaffFactory, UserFactory
from matching.models import Allocation, Round, RoundExclusion
from matching.services import round_end, round_publish
from matching.tests.factories import funded_pool, open_round
from pledges.tests.factories import pledge_held
from projects.tests.factories import LiveCampaignFactory
from risk.services import risk_check_pledge

pytestmark = pytest.mark.django_db


@pytest.fixture
def challenged():
    """A published quadratic round: A has four honest backers, B three accounts paying with one card."""
    a = LiveCampaignFactory(title="Street choir")
    b = LiveCampaignFactory(title="Tool library")
    pool = funded_pool(amount=100_000, campaigns=[a, b], per_campaign_cap=100_000)
    matching_round = open_round(pool)
    for _ in range(4):
        pledge_held(campaign=a, amount=2_500)
    ring = [pledge_held(campaign=b, amount=2_500, token="tok_card_ring") for _ in range(3)]
    for pledge in ring:
        risk_check_pledge(pledge=pledge)
    later = matching_round.ends_at + timedelta(seconds=1)
    round_end(matching_round=matching_round, now=later)
    round_publish(matching_round=matching_round)
    return matching_round, a, b, ring


def _url(matching_round):
    return reverse("admin:matching_round_contributions", args=[matching_round.pk])


def _messages(response):
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_the_screen_shows_each_contribution_beside_the_risk_signals(client, challenged):
    matching_round, _a, _b, ring = challenged
    client.force_login(StaffFactory())
    page = client.get(_url(matching_round)).content.decode()
    assert page.count('name="pledge"') == 7
    row = page[page.index(f'data-pledge="{ring[2].pk}"') :]
    row = row[: row.index("</tr>")]
    assert "2 other backer accounts used this card." in row
    assert "0 days" in row  # the account was made the same day
    assert "not checked" in page  # A's pledges were never checked
    # The round's changelist links to the screen, and the action opens it.
    assert _url(matching_round) in client.get(reverse("admin:matching_round_changelist")).content.decode()
    response = client.post(
        reverse("admin:matching_round_changelist"),
        {"action": "review_contributions", "_selected_action": [matching_round.pk]},
    )
    assert response.status_code == 302
    assert response["Location"] == _url(matching_round)


def test_excluding_with_a_reason_recomputes_the_allocation_and_is_audited(client, challenged):
    matching_round, a, b, ring = challenged
    before = dict(Allocation.objects.filter(round=matching_round).values_list("campaign_id", "amount"))
    assert before[b.pk] > 0
    finance = FinanceFactory()
    client.force_login(finance)
    response = client.post(
        _url(matching_round), {"pledge": [ring[1].pk, ring[2].pk], "reason": "one card behind three backers"}
    )
    assert response.status_code == 302
    assert "Excluded 2 contribution(s); the allocation was computed again." in _messages(response)
    # B keeps a single backer: no quadratic weight, so A gets the whole pool.
    assert dict(Allocation.objects.filter(round=matching_round).values_list("campaign_id", "amount")) == {a.pk: 100_000}
    assert set(RoundExclusion.objects.values_list("pledge_id", "reason")) == {
        (ring[1].pk, "one card behind three backers"),
        (ring[2].pk, "one card behind three backers"),
    }
    events = AuditEvent.objects.filter(action="matching_contribution_exclude", outcome="done")
    assert {(e.actor_id, e.reason, e.details["pledge"]) for e in events} == {
        (finance.pk, "one card behind three backers", ring[1].pk),
        (finance.pk, "one card behind three backers", ring[2].pk),
    }
    page = client.get(_url(matching_round)).content.decode()
    assert page.count('name="pledge"') == 5  # the excluded ones can no longer be picked
    assert page.count("one card behind three backers") == 2


def test_a_reason_is_required(client, challenged):
    matching_round, _a, _b, ring = challenged
    client.force_login(ReviewerFactory())
    response = client.post(_url(matching_round), {"pledge": [ring[0].pk], "reason": "  "})
    assert any("Give a reason" in m for m in _messages(response))
    assert not RoundExclusion.objects.exists()
    refused = AuditEvent.objects.get(action="matching_contribution_exclude")
    assert refused.outcome == "refused"
    assert refused.details["code"] == "reason_required"


def test_nothing_selected_is_said_plainly(client, challenged):
    matching_round, _a, _b, _ring = challenged
    client.force_login(StaffFactory())
    response = client.post(_url(matching_round), {"reason": "fraud"})
    assert "Select the contributions to exclude." in _messages(response)


def test_an_open_round_refuses_with_a_clear_message(client):
    campaign = LiveCampaignFactory()
    matching_round = open_round(funded_pool(campaigns=[campaign]))
    pledge = pledge_held(campaign=campaign)
    client.force_login(StaffFactory())
    page = client.get(_url(matching_round)).content.decode()
    assert "can be excluded only in the round's challenge window" in page
    assert 'name="pledge"' not in page
    response = client.post(_url(matching_round), {"pledge": [pledge.pk], "reason": "fraud"})
    assert any(
        m.startswith(
            f"Pledge {pledge.pk}: This round is open: contributions can be excluded only in its challenge window"
        )
        for m in _messages(response)
    )
    assert not RoundExclusion.objects.exists()


def test_once_the_window_is_over_nothing_can_be_excluded(client, challenged):
    matching_round, _a, b, ring = challenged
    before = dict(Allocation.objects.filter(round=matching_round).values_list("campaign_id", "amount"))
    Round.objects.filter(pk=matching_round.pk).update(challenge_ends_at=timezone.now() - timedelta(minutes=1))
    client.force_login(StaffFactory())
    response = client.post(_url(matching_round), {"pledge": [ring[0].pk], "reason": "fraud"})
    assert any("The challenge window closed at" in m for m in _messages(response))
    assert not RoundExclusion.objects.exists()
    assert dict(Allocation.objects.filter(round=matching_round).values_list("campaign_id", "amount")) == before
    assert before[b.pk] > 0


def test_a_user_without_the_permission_cannot_exclude(client, challenged):
    matching_round, _a, _b, ring = challenged
    client.force_login(UserFactory(is_staff=True))
    response = client.post(_url(matching_round), {"pledge": [ring[0].pk], "reason": "fraud"})
    assert response.status_code == 302
    assert "You cannot review matching contributions." in _messages(response)
    assert not RoundExclusion.objects.exists()
