from datetime import date, timedelta

import pytest
from django.utils import timezone

from accounts.tests.factories import StaffFactory, UserFactory
from crowdfund_site.exceptions import Conflict, InvalidInput, NotAllowed
from projects.models import Campaign, CampaignStatus, CampaignStatusChange, FundingModel, RewardTier
from projects.services import (
    campaign_approve,
    campaign_create,
    campaign_launch,
    campaign_reinstate,
    campaign_reject,
    campaign_request_changes,
    campaign_submit_for_review,
    campaign_suspend,
    campaign_update,
    reward_tier_create,
    reward_tier_delete,
    reward_tier_update,
)
from projects.tests.factories import CampaignFactory, CategoryFactory, LiveCampaignFactory, RewardTierFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def initiator():
    return UserFactory()


@pytest.fixture
def draft(initiator):
    return CampaignFactory(initiator=initiator)


def campaign_in(status: str, **fields) -> Campaign:
    """Return a campaign already in ``status`` (live ones with a deadline ahead)."""
    if status in (CampaignStatus.LIVE, CampaignStatus.SUSPENDED, CampaignStatus.CLOSING, CampaignStatus.SUCCEEDED):
        return LiveCampaignFactory(status=status, **fields)
    return CampaignFactory(status=status, **fields)


def row_state(campaign: Campaign) -> dict:
    """Return everything a refused request must leave as it was."""
    fields = Campaign.objects.filter(pk=campaign.pk).values().get()
    fields.pop("updated_at")
    return {
        "campaign": fields,
        "status_changes": CampaignStatusChange.objects.filter(campaign=campaign).count(),
        "rewards": sorted(RewardTier.objects.filter(campaign=campaign).values_list("pk", "title", "minimum_amount")),
    }


def history(campaign: Campaign) -> list[tuple]:
    return list(
        CampaignStatusChange.objects.filter(campaign=campaign).values_list(
            "from_status", "to_status", "actor_id", "reason"
        )
    )


# --- Creating and editing ------------------------------------------------------------------------


def test_create_makes_a_draft_owned_by_the_initiator(initiator):
    category = CategoryFactory()
    campaign = campaign_create(
        initiator=initiator,
        title="  Solar Kettle  ",
        summary="Boil water with sunlight.",
        category=category,
        goal=250_000,
        currency="EUR",
        funding_model=FundingModel.FLEXIBLE,
        duration_days=45,
    )
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.DRAFT
    assert campaign.initiator == initiator
    assert (campaign.title, campaign.slug) == ("Solar Kettle", "solar-kettle")
    assert (campaign.goal, campaign.currency, campaign.funding_model) == (250_000, "EUR", FundingModel.FLEXIBLE)
    assert campaign.duration_days == 45
    assert (campaign.pledged_amount, campaign.backer_count, campaign.deadline) == (0, 0, None)


def test_campaigns_with_the_same_title_get_different_addresses(initiator):
    category = CategoryFactory()
    first, second = (
        campaign_create(initiator=initiator, title="Same", summary="s", category=category, goal=100) for _ in range(2)
    )
    assert first.slug != second.slug


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"title": "   "}, "title_required"),
        ({"title": "x" * 121}, "too_long"),
        ({"summary": "x" * 281}, "too_long"),
        ({"description": "x" * 20_001}, "too_long"),
        ({"currency": "XYZ"}, "invalid_currency"),
        ({"goal": 0}, "amount_not_positive"),
        ({"goal": -100}, "amount_not_positive"),
        ({"goal": 12.5}, "invalid_amount"),
        ({"goal": 10**16}, "amount_too_large"),
        ({"funding_model": "lottery"}, "invalid_funding_model"),
        ({"duration_days": 0}, "invalid_duration"),
        ({"duration_days": 61}, "invalid_duration"),
        ({"duration_days": "30"}, "invalid_duration"),
        ({"category": None}, "category_required"),
    ],
)
def test_create_refuses_bad_fields_and_creates_nothing(initiator, change, code):
    fields = {"title": "Kettle", "summary": "Hot water.", "category": CategoryFactory(), "goal": 10_000, **change}
    with pytest.raises(InvalidInput) as refused:
        campaign_create(initiator=initiator, **fields)
    assert refused.value.code == code
    assert not Campaign.objects.exists()


@pytest.mark.parametrize("status", [CampaignStatus.DRAFT, CampaignStatus.CHANGES_REQUESTED])
def test_initiator_edits_a_campaign_while_it_is_a_draft_or_changes_are_requested(initiator, status):
    campaign = campaign_in(status, initiator=initiator)
    campaign_update(campaign=campaign, actor=initiator, title="Better title", goal=5_000, duration_days=10)
    campaign.refresh_from_db()
    assert (campaign.title, campaign.goal, campaign.duration_days) == ("Better title", 5_000, 10)
    assert campaign.status == status


@pytest.mark.parametrize(
    "status",
    [
        CampaignStatus.IN_REVIEW,
        CampaignStatus.APPROVED,
        CampaignStatus.REJECTED,
        CampaignStatus.LIVE,
        CampaignStatus.SUSPENDED,
        CampaignStatus.CANCELLED,
    ],
)
def test_editing_is_refused_once_the_campaign_left_draft(initiator, status):
    campaign = campaign_in(status, initiator=initiator)
    before = row_state(campaign)
    with pytest.raises(Conflict) as refused:
        campaign_update(campaign=campaign, actor=initiator, goal=1)
    assert refused.value.code == "not_editable"
    assert row_state(campaign) == before


@pytest.mark.parametrize("actor", [None, "stranger", "staff"])
def test_only_the_initiator_edits_a_campaign(draft, actor):
    actor = {"stranger": UserFactory, "staff": StaffFactory}.get(actor, lambda: None)()
    before = row_state(draft)
    with pytest.raises(NotAllowed) as refused:
        campaign_update(campaign=draft, actor=actor, title="Mine now")
    assert refused.value.code == "not_initiator"
    assert row_state(draft) == before


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"status": CampaignStatus.LIVE}, "invalid_field"),
        ({"pledged_amount": 10**9}, "invalid_field"),
        ({"initiator": None}, "invalid_field"),
        ({"goal": 0}, "amount_not_positive"),
        ({"title": ""}, "title_required"),
        ({"currency": "ABC"}, "invalid_currency"),
        ({"duration_days": 90}, "invalid_duration"),
    ],
)
def test_update_refuses_bad_or_forbidden_fields_and_changes_nothing(draft, initiator, change, code):
    before = row_state(draft)
    with pytest.raises(InvalidInput) as refused:
        campaign_update(campaign=draft, actor=initiator, **change)
    assert refused.value.code == code
    assert row_state(draft) == before


# --- Reward tiers ----------------------------------------------------------------------------------


def test_initiator_adds_changes_and_removes_reward_tiers_while_draft(draft, initiator):
    tier = reward_tier_create(
        campaign=draft,
        actor=initiator,
        title=" Sticker ",
        minimum_amount=1_000,
        quantity_limit=50,
        estimated_delivery=date(2030, 1, 1),
    )
    assert (tier.title, tier.minimum_amount, tier.quantity_limit, tier.claimed_count) == ("Sticker", 1_000, 50, 0)
    reward_tier_update(reward=tier, actor=initiator, minimum_amount=1_500, quantity_limit=None)
    tier.refresh_from_db()
    assert (tier.minimum_amount, tier.quantity_limit) == (1_500, None)
    reward_tier_delete(reward=tier, actor=initiator)
    assert not RewardTier.objects.filter(pk=tier.pk).exists()


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"title": " "}, "title_required"),
        ({"minimum_amount": 0}, "amount_not_positive"),
        ({"minimum_amount": -500}, "amount_not_positive"),
        ({"quantity_limit": 0}, "invalid_quantity"),
        ({"quantity_limit": -3}, "invalid_quantity"),
        ({"estimated_delivery": "next spring"}, "invalid"),
    ],
)
def test_reward_tier_refuses_bad_fields(draft, initiator, fields, code):
    with pytest.raises(InvalidInput) as refused:
        reward_tier_create(campaign=draft, actor=initiator, **{"title": "Mug", "minimum_amount": 2_000, **fields})
    assert refused.value.code == code
    assert not RewardTier.objects.exists()


def test_reward_tiers_are_frozen_outside_draft_and_belong_to_the_initiator(initiator):
    live = campaign_in(CampaignStatus.LIVE, initiator=initiator)
    tier = RewardTierFactory(campaign=live, minimum_amount=2_500)
    before = row_state(live)
    with pytest.raises(Conflict):
        reward_tier_create(campaign=live, actor=initiator, title="Late", minimum_amount=100)
    with pytest.raises(Conflict):
        reward_tier_update(reward=tier, actor=initiator, minimum_amount=1)
    with pytest.raises(Conflict):
        reward_tier_delete(reward=tier, actor=initiator)
    draft_tier = RewardTierFactory(campaign=CampaignFactory(initiator=initiator))
    with pytest.raises(NotAllowed):
        reward_tier_update(reward=draft_tier, actor=UserFactory(), minimum_amount=1)
    with pytest.raises(NotAllowed):
        reward_tier_delete(reward=draft_tier, actor=UserFactory())
    assert row_state(live) == before
    assert RewardTier.objects.filter(pk=draft_tier.pk, minimum_amount=2_500).exists()


# --- Review workflow -------------------------------------------------------------------------------


def test_full_review_workflow_records_every_step_with_actor_and_reason(draft, initiator, staff, settings):
    settings.PLATFORM_FEE_BPS = 700
    campaign_submit_for_review(campaign=draft, actor=initiator)
    draft.refresh_from_db()
    assert draft.status == CampaignStatus.IN_REVIEW
    assert draft.submitted_at is not None

    campaign_request_changes(campaign=draft, reviewer=staff, reason="  Show a prototype photo.  ")
    draft.refresh_from_db()
    assert draft.status == CampaignStatus.CHANGES_REQUESTED
    assert (draft.reviewed_by, draft.review_feedback) == (staff, "Show a prototype photo.")

    campaign_update(campaign=draft, actor=initiator, description="Now with a prototype photo.")
    campaign_submit_for_review(campaign=draft, actor=initiator)
    campaign_approve(campaign=draft, reviewer=staff, note="Looks good.")
    draft.refresh_from_db()
    assert draft.status == CampaignStatus.APPROVED
    assert draft.launched_at is None

    before_launch = timezone.now()
    campaign_launch(campaign=draft, actor=initiator)
    draft.refresh_from_db()
    assert draft.status == CampaignStatus.LIVE
    assert draft.is_open_for_pledges
    assert draft.launched_at >= before_launch
    assert draft.deadline - draft.launched_at == timedelta(days=draft.duration_days)
    assert draft.platform_fee_bps == 700

    assert history(draft) == [
        (CampaignStatus.DRAFT, CampaignStatus.IN_REVIEW, initiator.pk, ""),
        (CampaignStatus.IN_REVIEW, CampaignStatus.CHANGES_REQUESTED, staff.pk, "Show a prototype photo."),
        (CampaignStatus.CHANGES_REQUESTED, CampaignStatus.IN_REVIEW, initiator.pk, ""),
        (CampaignStatus.IN_REVIEW, CampaignStatus.APPROVED, staff.pk, "Looks good."),
        (CampaignStatus.APPROVED, CampaignStatus.LIVE, initiator.pk, ""),
    ]


def test_fee_rate_is_fixed_at_launch(initiator, settings):
    campaign = campaign_in(CampaignStatus.APPROVED, initiator=initiator)
    settings.PLATFORM_FEE_BPS = 500
    campaign_launch(campaign=campaign, actor=initiator)
    settings.PLATFORM_FEE_BPS = 900
    campaign.refresh_from_db()
    assert campaign.platform_fee_bps == 500


def test_reject_is_final_and_records_the_reason(initiator, staff):
    campaign = campaign_in(CampaignStatus.IN_REVIEW, initiator=initiator)
    campaign_reject(campaign=campaign, reviewer=staff, reason="Prohibited item.")
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.REJECTED
    assert campaign.review_feedback == "Prohibited item."
    assert history(campaign) == [(CampaignStatus.IN_REVIEW, CampaignStatus.REJECTED, staff.pk, "Prohibited item.")]
    for action in (
        lambda: campaign_submit_for_review(campaign=campaign, actor=initiator),
        lambda: campaign_approve(campaign=campaign, reviewer=staff),
    ):
        with pytest.raises(Conflict):
            action()
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.REJECTED


@pytest.mark.parametrize("service", [campaign_reject, campaign_request_changes])
@pytest.mark.parametrize("reason", ["", "   ", None])
def test_reject_and_request_changes_need_a_reason(initiator, staff, service, reason):
    campaign = campaign_in(CampaignStatus.IN_REVIEW, initiator=initiator)
    before = row_state(campaign)
    with pytest.raises(InvalidInput) as refused:
        service(campaign=campaign, reviewer=staff, reason=reason)
    assert refused.value.code == "reason_required"
    assert row_state(campaign) == before


def test_approving_twice_is_refused(initiator, staff):
    campaign = campaign_in(CampaignStatus.IN_REVIEW, initiator=initiator)
    campaign_approve(campaign=campaign, reviewer=staff)
    before = row_state(campaign)
    with pytest.raises(Conflict) as refused:
        campaign_approve(campaign=campaign, reviewer=StaffFactory())
    assert refused.value.code == "invalid_state"
    assert row_state(campaign) == before


@pytest.mark.parametrize(
    "service", [campaign_approve, campaign_reject, campaign_request_changes], ids=lambda s: s.__name__
)
def test_only_staff_review_and_never_their_own_campaign(service, staff):
    campaign = campaign_in(CampaignStatus.IN_REVIEW)
    own = campaign_in(CampaignStatus.IN_REVIEW, initiator=staff)
    before, before_own = row_state(campaign), row_state(own)
    for reviewer, target, code in [
        (None, campaign, "not_reviewer"),
        (UserFactory(), campaign, "not_reviewer"),
        (campaign.initiator, campaign, "not_reviewer"),
        (staff, own, "own_campaign"),
    ]:
        decision = {"note": "because"} if service is campaign_approve else {"reason": "because"}
        with pytest.raises(NotAllowed) as refused:
            service(campaign=target, reviewer=reviewer, **decision)
        assert refused.value.code == code
    assert (row_state(campaign), row_state(own)) == (before, before_own)


def test_submitting_needs_a_story_and_the_initiator(initiator):
    campaign = CampaignFactory(initiator=initiator, description="   ")
    before = row_state(campaign)
    with pytest.raises(InvalidInput) as refused:
        campaign_submit_for_review(campaign=campaign, actor=initiator)
    assert refused.value.code == "incomplete_campaign"
    complete = CampaignFactory(initiator=initiator)
    with pytest.raises(NotAllowed):
        campaign_submit_for_review(campaign=complete, actor=UserFactory())
    assert row_state(campaign) == before
    complete.refresh_from_db()
    assert complete.status == CampaignStatus.DRAFT


# --- Launch -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ahead", [timedelta(days=1, minutes=1), timedelta(days=30), timedelta(days=60) - timedelta(minutes=1)]
)
def test_launch_accepts_a_deadline_one_to_sixty_days_ahead(initiator, ahead):
    campaign = campaign_in(CampaignStatus.APPROVED, initiator=initiator)
    deadline = timezone.now() + ahead
    campaign_launch(campaign=campaign, actor=initiator, deadline=deadline)
    campaign.refresh_from_db()
    assert (campaign.status, campaign.deadline) == (CampaignStatus.LIVE, deadline)


@pytest.mark.parametrize(
    "ahead",
    [timedelta(days=-1), timedelta(0), timedelta(hours=23), timedelta(days=60, minutes=1), timedelta(days=365)],
)
def test_launch_refuses_a_deadline_outside_one_to_sixty_days(initiator, ahead):
    campaign = campaign_in(CampaignStatus.APPROVED, initiator=initiator)
    before = row_state(campaign)
    with pytest.raises(InvalidInput) as refused:
        campaign_launch(campaign=campaign, actor=initiator, deadline=timezone.now() + ahead)
    assert refused.value.code == "invalid_deadline"
    assert row_state(campaign) == before


def test_only_the_initiator_launches(initiator, staff):
    campaign = campaign_in(CampaignStatus.APPROVED, initiator=initiator)
    before = row_state(campaign)
    for actor in (staff, UserFactory(), None):
        with pytest.raises(NotAllowed):
            campaign_launch(campaign=campaign, actor=actor)
    assert row_state(campaign) == before


# --- Suspension ---------------------------------------------------------------------------------------


def test_staff_suspend_a_live_campaign_and_reinstate_it(initiator, staff):
    campaign = campaign_in(CampaignStatus.LIVE, initiator=initiator)
    campaign_suspend(campaign=campaign, actor=staff, reason="Fraud report")
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.SUSPENDED
    assert not campaign.is_open_for_pledges
    campaign_reinstate(campaign=campaign, actor=staff, reason="Report unfounded")
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.LIVE
    assert history(campaign) == [
        (CampaignStatus.LIVE, CampaignStatus.SUSPENDED, staff.pk, "Fraud report"),
        (CampaignStatus.SUSPENDED, CampaignStatus.LIVE, staff.pk, "Report unfounded"),
    ]


@pytest.mark.parametrize(
    "status", [CampaignStatus.IN_REVIEW, CampaignStatus.CHANGES_REQUESTED, CampaignStatus.APPROVED]
)
def test_reinstating_a_campaign_suspended_before_launch_returns_it_where_it_was(initiator, staff, status):
    campaign = campaign_in(status, initiator=initiator)
    campaign_suspend(campaign=campaign, actor=staff, reason="Checking identity")
    campaign_reinstate(campaign=campaign, actor=staff, reason="Identity confirmed")
    campaign.refresh_from_db()
    assert campaign.status == status
    assert campaign.deadline is None
    assert history(campaign)[-1] == (CampaignStatus.SUSPENDED, status, staff.pk, "Identity confirmed")


def test_suspension_is_for_staff_with_a_reason(initiator, staff):
    campaign = campaign_in(CampaignStatus.LIVE, initiator=initiator)
    before = row_state(campaign)
    with pytest.raises(NotAllowed):
        campaign_suspend(campaign=campaign, actor=initiator, reason="I want a break")
    with pytest.raises(InvalidInput):
        campaign_suspend(campaign=campaign, actor=staff, reason=" ")
    assert row_state(campaign) == before
    suspended = campaign_in(CampaignStatus.SUSPENDED, initiator=initiator)
    with pytest.raises(NotAllowed):
        campaign_reinstate(campaign=suspended, actor=initiator)
    suspended.refresh_from_db()
    assert suspended.status == CampaignStatus.SUSPENDED


# --- Every refused transition ---------------------------------------------------------------------


def _submit(campaign, staff):
    return campaign_submit_for_review(campaign=campaign, actor=campaign.initiator)


def _approve(campaign, staff):
    return campaign_approve(campaign=campaign, reviewer=staff)


def _request_changes(campaign, staff):
    return campaign_request_changes(campaign=campaign, reviewer=staff, reason="More photos")


def _reject(campaign, staff):
    return campaign_reject(campaign=campaign, reviewer=staff, reason="No")


def _launch(campaign, staff):
    return campaign_launch(campaign=campaign, actor=campaign.initiator)


def _suspend(campaign, staff):
    return campaign_suspend(campaign=campaign, actor=staff, reason="Investigating")


def _reinstate(campaign, staff):
    return campaign_reinstate(campaign=campaign, actor=staff)


ACTIONS = {
    "submit": (_submit, {CampaignStatus.DRAFT, CampaignStatus.CHANGES_REQUESTED}),
    "approve": (_approve, {CampaignStatus.IN_REVIEW}),
    "request_changes": (_request_changes, {CampaignStatus.IN_REVIEW}),
    "reject": (_reject, {CampaignStatus.IN_REVIEW}),
    "launch": (_launch, {CampaignStatus.APPROVED}),
    "suspend": (
        _suspend,
        {CampaignStatus.IN_REVIEW, CampaignStatus.CHANGES_REQUESTED, CampaignStatus.APPROVED, CampaignStatus.LIVE},
    ),
    "reinstate": (_reinstate, {CampaignStatus.SUSPENDED}),
}
REFUSED = [
    (name, status)
    for name, (_, allowed) in ACTIONS.items()
    for status in CampaignStatus.values
    if status not in allowed
]


@pytest.mark.parametrize(("action", "status"), REFUSED)
def test_every_refused_transition_raises_conflict_and_changes_nothing(action, status, staff):
    campaign = campaign_in(status)
    before = row_state(campaign)
    with pytest.raises(Conflict):
        ACTIONS[action][0](campaign, staff)
    assert row_state(campaign) == before


@pytest.mark.parametrize(("action", "status"), [(n, s) for n, (_, allowed) in ACTIONS.items() for s in allowed])
def test_every_allowed_transition_is_recorded(action, status, staff):
    campaign = campaign_in(status)
    if action == "reinstate":
        # A suspension is always recorded with the status it interrupted.
        CampaignStatusChange.objects.create(
            campaign=campaign, from_status=CampaignStatus.LIVE, to_status=CampaignStatus.SUSPENDED
        )
    changes = CampaignStatusChange.objects.filter(campaign=campaign).count()
    ACTIONS[action][0](campaign, staff)
    campaign.refresh_from_db()
    assert campaign.status != status
    last = CampaignStatusChange.objects.filter(campaign=campaign).last()
    assert CampaignStatusChange.objects.filter(campaign=campaign).count() == changes + 1
    assert (last.from_status, last.to_status) == (status, campaign.status)
    assert last.actor in (staff, campaign.initiator)


@pytest.mark.django_db
def test_currency_cannot_change_under_priced_rewards(initiator):
    from projects.services import reward_tier_create

    draft = CampaignFactory(initiator=initiator, currency="USD")
    reward_tier_create(campaign=draft, actor=initiator, title="Mug", minimum_amount=2_500)

    with pytest.raises(Conflict) as refused:
        campaign_update(campaign=draft, actor=initiator, currency="JPY")

    draft.refresh_from_db()
    assert refused.value.code == "currency_locked"
    assert draft.currency == "USD"
    assert draft.rewards.get().minimum_amount == 2_500
