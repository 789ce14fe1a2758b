"""Campaigns applying to a pool that takes applications: the initiator applies, staff decide, the pool matches."""

from datetime import timedelta

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEvent
from accounts.tests.factories import ReviewerFactory, UserFactory
from crowdfund_site.api.testing import api_client, assert_error
from crowdfund_site.exceptions import Conflict, InvalidInput, NotAllowed
from matching.models import ApplicationStatus, PoolApplication
from matching.selectors import match_estimates
from matching.services import pool_application_decide, pool_application_submit, pool_close
from matching.tests.factories import funded_pool, open_round
from matching.tests.test_services import pay
from pledges.tests.factories import pledge_held
from projects.models import CampaignStatus, FundingModel
from projects.tests.factories import CategoryFactory, LiveCampaignFactory
from settlement.verification import ledger_verify

pytestmark = pytest.mark.django_db


@pytest.fixture
def open_pool():
    """A funded quadratic pool matching no campaign yet but those that apply and are accepted."""
    return funded_pool(name="Neighbourhood fund", accepts_applications=True, per_campaign_cap=100_000)


def apply(pool, campaign, statement="A choir for the whole street."):
    return pool_application_submit(pool=pool, campaign=campaign, actor=campaign.initiator, statement=statement)


def decide(application, *, accept, reviewer=None, reason="Fits the fund's aims."):
    return pool_application_decide(
        application_id=application.pk, actor=reviewer or ReviewerFactory(), accept=accept, reason=reason
    )


def test_an_accepted_campaign_is_matched_and_a_pending_one_is_not(open_pool):
    accepted, pending = LiveCampaignFactory(title="Street choir"), LiveCampaignFactory(title="Tool library")
    decide(apply(open_pool, accepted), accept=True)
    apply(open_pool, pending)
    matching_round = open_round(open_pool)
    for _ in range(3):
        pledge_held(campaign=accepted, amount=2_000)
        pledge_held(campaign=pending, amount=2_000)
    # The open round matches the accepted campaign (its estimate is 0 here: alone, it already has it all).
    assert [e.pool for e in match_estimates(campaign=accepted, amount=1_000)] == [open_pool]
    assert match_estimates(campaign=pending, amount=1_000) == []
    paid = pay(matching_round)
    assert {a.campaign_id: a.amount for a in paid.allocations.all()} == {accepted.pk: 100_000}
    assert ledger_verify() == []


def test_a_decision_is_audited_and_the_initiator_is_emailed(
    open_pool, celery_eager, django_capture_on_commit_callbacks
):
    campaign = LiveCampaignFactory(title="Street choir")
    application = apply(open_pool, campaign)
    reviewer = ReviewerFactory()
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        decide(application, accept=False, reviewer=reviewer, reason="Outside the neighbourhood.")
    application.refresh_from_db()
    assert (application.status, application.decided_by, application.reason) == (
        ApplicationStatus.DECLINED,
        reviewer,
        "Outside the neighbourhood.",
    )
    event = AuditEvent.objects.get(action="matching_application_decline")
    assert (event.actor, event.reason) == (reviewer, "Outside the neighbourhood.")
    (message,) = mail.outbox
    assert message.to == [campaign.initiator.email]
    assert "declined" in message.subject
    assert "Outside the neighbourhood." in message.body
    assert reverse("matching:pool_detail", args=[open_pool.slug]) in message.body
    assert not open_pool.campaigns.filter(pk=campaign.pk).exists()


@pytest.mark.parametrize(
    ("setup", "error", "code"),
    [
        (lambda pool, c: apply(pool, c), Conflict, "already_applied"),
        (lambda pool, c: pool.campaigns.add(c), Conflict, "already_eligible"),
        (lambda pool, c: pool_close_now(pool), Conflict, "pool_closed"),
        (lambda pool, c: pool.categories.add(c.category), Conflict, "already_eligible"),
        (lambda pool, c: set_campaign(c, status=CampaignStatus.FAILED), Conflict, "campaign_closed"),
        (lambda pool, c: set_campaign(c, funding_model=FundingModel.DEBT), InvalidInput, "debt_campaign"),
        (lambda pool, c: set_campaign(c, currency="EUR"), InvalidInput, "currency_mismatch"),
        (lambda pool, c: set_campaign(c, initiator=pool.sponsor), NotAllowed, "own_campaign"),
        (lambda pool, c: set_pool(pool, accepts_applications=False), Conflict, "not_taking_applications"),
    ],
)
def test_a_refused_application_changes_nothing(open_pool, setup, error, code):
    campaign = LiveCampaignFactory(category=CategoryFactory())
    setup(open_pool, campaign)
    before = PoolApplication.objects.count()
    with pytest.raises(error) as refused:
        apply(open_pool, campaign)
    assert refused.value.code == code
    assert PoolApplication.objects.count() == before


def pool_close_now(pool):
    pool.ends_at = timezone.now() - timedelta(seconds=1)
    pool.starts_at = pool.ends_at - timedelta(days=1)
    pool.save(update_fields=["starts_at", "ends_at"])


def set_campaign(campaign, **fields):
    for name, value in fields.items():
        setattr(campaign, name, value)
    campaign.save(update_fields=list(fields))


def set_pool(pool, **fields):
    set_campaign(pool, **fields)


@pytest.mark.parametrize(("statement", "code"), [("   ", "statement_required"), ("x" * 2_001, "statement_too_long")])
def test_a_statement_is_needed_and_short(open_pool, statement, code):
    with pytest.raises(InvalidInput) as refused:
        apply(open_pool, LiveCampaignFactory(), statement=statement)
    assert refused.value.code == code
    assert not PoolApplication.objects.exists()


def test_only_the_initiator_applies_and_only_reviewers_decide(open_pool):
    campaign = LiveCampaignFactory()
    with pytest.raises(NotAllowed) as refused:
        pool_application_submit(pool=open_pool, campaign=campaign, actor=UserFactory(), statement="Mine now.")
    assert refused.value.code == "not_initiator"
    application = apply(open_pool, campaign)
    for outsider in (campaign.initiator, open_pool.sponsor, UserFactory(is_staff=True)):
        with pytest.raises(NotAllowed):
            pool_application_decide(application_id=application.pk, actor=outsider, accept=True, reason="Yes.")
    application.refresh_from_db()
    assert application.status == ApplicationStatus.PENDING
    assert not open_pool.campaigns.exists()


def test_an_application_is_decided_once_and_needs_a_reason(open_pool):
    application = apply(open_pool, LiveCampaignFactory())
    with pytest.raises(InvalidInput) as refused:
        decide(application, accept=True, reason=" ")
    assert refused.value.code == "reason_required"
    decide(application, accept=True)
    with pytest.raises(Conflict) as again:
        decide(application, accept=False)
    assert again.value.code == "already_decided"
    application.refresh_from_db()
    assert application.status == ApplicationStatus.ACCEPTED
    assert list(open_pool.campaigns.all()) == [application.campaign]


def test_a_closed_pool_decides_no_more(open_pool):
    application = apply(open_pool, LiveCampaignFactory())
    pool_close_now(open_pool)
    pool_close(pool=open_pool, actor=open_pool.sponsor)
    with pytest.raises(Conflict) as refused:
        decide(application, accept=True)
    assert refused.value.code == "pool_closed"
    assert ledger_verify() == []


def test_an_initiator_applies_from_the_pool_page(client, open_pool):
    campaign = LiveCampaignFactory(title="Street choir")
    client.force_login(campaign.initiator)
    page = client.get(reverse("matching:pool_detail", args=[open_pool.slug])).content.decode()
    assert "Apply for matching" in page
    assert "Street choir" in page
    url = reverse("matching:pool_apply", args=[open_pool.slug])
    response = client.post(url, {"campaign": campaign.pk, "statement": "Songs for everyone."}, follow=True)
    assert "Applied: staff will look at Street choir" in response.content.decode()
    assert "Waiting for a decision" in response.content.decode()
    again = client.post(url, {"campaign": campaign.pk, "statement": "Again."}, follow=True).content.decode()
    assert "Your campaign has already applied to this pool." in again
    assert PoolApplication.objects.get().statement == "Songs for everyone."


def test_the_pool_page_refuses_someone_elses_campaign_and_an_empty_statement(client, open_pool):
    campaign = LiveCampaignFactory()
    client.force_login(UserFactory())
    url = reverse("matching:pool_apply", args=[open_pool.slug])
    response = client.post(url, {"campaign": campaign.pk, "statement": "Not mine."}, follow=True)
    assert "Only the campaign&#x27;s initiator can apply" in response.content.decode()
    client.force_login(campaign.initiator)
    response = client.post(url, {"campaign": campaign.pk, "statement": ""}, follow=True)
    assert "Say in a few words why" in response.content.decode()
    assert client.post(url, {"campaign": "x"}).status_code == 302
    assert not PoolApplication.objects.exists()


def test_the_campaign_dashboard_lists_pools_to_apply_to_and_the_decisions(client, open_pool):
    campaign = LiveCampaignFactory()
    client.force_login(campaign.initiator)
    dashboard = reverse("dashboard:campaign_dashboard", kwargs={"slug": campaign.slug})
    page = client.get(dashboard).content.decode()
    assert "Neighbourhood fund" in page
    assert f"?campaign={campaign.slug}" in page
    decide(apply(open_pool, campaign), accept=False, reason="Not this year.")
    page = client.get(dashboard).content.decode()
    assert "Declined" in page
    assert "Not this year." in page


def test_the_page_in_chinese(client, open_pool):
    campaign = LiveCampaignFactory()
    client.force_login(campaign.initiator)
    page = client.get(
        reverse("matching:pool_detail", args=[open_pool.slug]), HTTP_ACCEPT_LANGUAGE="zh-hans"
    ).content.decode()
    assert "申请配捐" in page


def test_applying_and_deciding_through_the_api(open_pool):
    campaign = LiveCampaignFactory()
    initiator = api_client(campaign.initiator)
    url = f"/api/v1/matching/pools/{open_pool.slug}/applications/"
    created = initiator.post(url, {"campaign": campaign.pk, "statement": "Songs."}, format="json")
    assert created.status_code == 201, created.content
    data = created.json()
    assert (data["status"], data["campaign"], data["pool"]) == ("pending", campaign.pk, open_pool.slug)
    assert_error(
        initiator.post(url, {"campaign": campaign.pk, "statement": "Again."}, format="json"), 409, "already_applied"
    )
    decision = f"/api/v1/matching/applications/{data['id']}/decision/"
    assert_error(initiator.post(decision, {"decision": "accept", "reason": "Me."}, format="json"), 403, "not_allowed")
    reviewer = api_client(ReviewerFactory())
    assert_error(reviewer.post(decision, {"decision": "maybe", "reason": "Hm."}, format="json"), 400)
    assert_error(
        reviewer.post(
            "/api/v1/matching/applications/999999/decision/", {"decision": "accept", "reason": "Yes."}, format="json"
        ),
        404,
    )
    accepted = reviewer.post(decision, {"decision": "accept", "reason": "Fits."}, format="json")
    assert (accepted.status_code, accepted.json()["status"], accepted.json()["reason"]) == (200, "accepted", "Fits.")
    assert list(open_pool.campaigns.all()) == [campaign]
    assert_error(
        reviewer.post(decision, {"decision": "decline", "reason": "Oops."}, format="json"), 409, "already_decided"
    )


def test_the_api_refuses_another_users_campaign_and_an_unknown_pool(open_pool):
    campaign = LiveCampaignFactory()
    stranger = api_client(UserFactory())
    url = f"/api/v1/matching/pools/{open_pool.slug}/applications/"
    assert_error(
        stranger.post(url, {"campaign": campaign.pk, "statement": "Mine."}, format="json"), 403, "not_initiator"
    )
    unknown = api_client(campaign.initiator).post(
        "/api/v1/matching/pools/nope/applications/", {"campaign": campaign.pk, "statement": "Hi."}, format="json"
    )
    assert_error(unknown, 404)
    assert not PoolApplication.objects.exists()


def test_no_campaign_joins_while_a_round_is_being_settled(open_pool):
    from matching.services import round_end

    first, later = LiveCampaignFactory(), LiveCampaignFactory()
    decide(apply(open_pool, first), accept=True)
    matching_round = open_round(open_pool)
    pledge_held(campaign=first, amount=2_000)
    round_end(matching_round=matching_round, now=matching_round.ends_at + timedelta(seconds=1))
    application = apply(open_pool, later)
    with pytest.raises(Conflict) as refused:
        decide(application, accept=True)
    assert refused.value.code == "round_being_settled"
    assert list(open_pool.campaigns.all()) == [first]
    decide(application, accept=False, reason="Not this round.")  # declining changes no result


def test_reviewers_decide_in_the_admin_and_a_refusal_is_recorded(client, open_pool):
    accepted, declined = apply(open_pool, LiveCampaignFactory()), apply(open_pool, LiveCampaignFactory())
    changelist = reverse("admin:matching_poolapplication_changelist")
    client.force_login(ReviewerFactory())
    assert client.get(changelist).status_code == 200
    client.post(changelist, {"action": "accept", "_selected_action": [accepted.pk], "apply": "1", "reason": "Fits."})
    client.post(changelist, {"action": "decline", "_selected_action": [declined.pk], "apply": "1", "reason": "No."})
    client.post(changelist, {"action": "decline", "_selected_action": [accepted.pk], "apply": "1", "reason": "Oops."})
    accepted.refresh_from_db()
    declined.refresh_from_db()
    assert (accepted.status, declined.status, declined.reason) == ("accepted", "declined", "No.")
    assert list(open_pool.campaigns.all()) == [accepted.campaign]
    refused = AuditEvent.objects.get(action="matching_application_decline", outcome="refused")
    assert refused.details["code"] == "already_decided"
