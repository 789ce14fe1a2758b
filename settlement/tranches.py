"""Staged release: what a campaign with milestones releases at success, and each later tranche.

At success a campaign with milestones releases its pledges into its staged escrow account
(``settlement.services`` does that batch by batch); the first tranche then leaves with the
campaign's own fee and payout. Every later tranche is released here once the backers approved
it and Finance signed it off: the payout is sent first, outside any lock (keyed by milestone),
then one transaction posts release, fee and payout and marks the milestone released, so a crash
anywhere leaves all of it or none of it and a rerun finishes it. The fee is taken only on what
is released.
"""

from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.services import audit_record
from crowdfund_site.exceptions import Conflict
from crowdfund_site.money import allocate
from escrow.gateway import get_gateway
from escrow.ledger import ledger_accounts_get_or_create, ledger_post_many
from escrow.vocabulary import initiator_payout_code
from escrow.vocabulary_tranches import (
    tranche_account_specs,
    tranche_fee_posting,
    tranche_payout_key,
    tranche_payout_posting,
    tranche_release_posting,
)
from fulfilment.selectors import holdback_amount_for
from matching.selectors import campaign_matched_to_release
from projects.milestones.models import Milestone, MilestoneStatus
from projects.milestones.selectors import (
    campaign_has_milestones,
    campaign_released_pledged,
    milestone_shares_of,
    milestones_signed_off_unreleased,
)
from projects.milestones.services import milestone_mark_released, milestones_amounts_fix
from projects.models import Campaign


class TrancheError(Exception):
    """A tranche cannot be released without an operator (the gateway refused its payout)."""


@dataclass(frozen=True)
class FeeSplit:
    released: int
    bps: int
    fee: int
    net: int


def campaign_fee_bps(campaign: Campaign) -> int:
    """Return the platform fee agreed for the campaign (at launch), in basis points."""
    return campaign.platform_fee_bps if campaign.platform_fee_bps is not None else settings.PLATFORM_FEE_BPS


def fee_split(*, campaign: Campaign, released: int) -> FeeSplit | None:
    """Return the fee on ``released`` and what is left for the initiator (None if nothing is released)."""
    if released <= 0:
        return None
    bps = campaign_fee_bps(campaign)
    fee, net = allocate(released, [bps, 10_000 - bps])
    return FeeSplit(released=released, bps=bps, fee=fee, net=net)


def first_tranche_amount(*, campaign_id: int, raised: int) -> int:
    """Return the first milestone's share of ``raised`` (as ``milestones_amounts_fix`` fixes it)."""
    shares = [bps for _, bps in milestone_shares_of(campaign_id=campaign_id)]
    return allocate(raised, shares)[0] if raised else 0


def amount_released_at_success(*, campaign: Campaign) -> int:
    """Return what leaves escrow for the initiator when the campaign succeeds (before the fee).

    The one place that decides it: all released pledges, or, with milestones, only the first
    tranche of them; matched money is released whole with it. A campaign with reward pledges
    keeps its delivery holdback back (``settlement.holdback``); one with milestones keeps none,
    its tranches already wait on progress.
    """
    matched = campaign_matched_to_release(campaign_id=campaign.pk)
    pledged = campaign_released_pledged(campaign_id=campaign.pk)
    if campaign_has_milestones(campaign_id=campaign.pk):
        return first_tranche_amount(campaign_id=campaign.pk, raised=pledged) + matched
    return pledged - holdback_amount_for(campaign=campaign) + matched


def tranches_post_first(*, campaign: Campaign) -> Milestone | None:
    """Fix every tranche of a succeeding campaign and post the first, staged -> payable.

    Called by settlement's finish of a released campaign, in its transaction (campaign locked),
    before the fee and payout on ``amount_released_at_success``. Idempotent by key.
    """
    milestones = milestones_amounts_fix(campaign=campaign, raised=campaign_released_pledged(campaign_id=campaign.pk))
    if not milestones:
        return None
    first = milestones[0]
    if first.amount:
        _post_tranche(campaign=campaign, milestone=first, split=None)
    return first


def _post_tranche(*, campaign: Campaign, milestone: Milestone, split: FeeSplit | None) -> None:
    ids = {"campaign_id": campaign.pk}
    accounts = ledger_accounts_get_or_create(
        specs=tranche_account_specs(campaign_id=campaign.pk, initiator_id=campaign.initiator_id),
        currency=campaign.currency,
    )
    money = {"milestone_id": milestone.pk, "currency": campaign.currency, "accounts": accounts, **ids}
    postings = [tranche_release_posting(amount=milestone.amount, **money)]
    if split and split.fee:
        postings.append(tranche_fee_posting(fee=split.fee, released=split.released, bps=split.bps, **money))
    if split and split.net:
        postings.append(tranche_payout_posting(initiator_id=campaign.initiator_id, amount=split.net, **money))
    ledger_post_many(postings=postings)


def tranche_release(*, milestone_id: int) -> Milestone:
    """Release a signed-off milestone's tranche to the initiator, less the fee; return the milestone.

    Idempotent: a released milestone is returned as it is, a retry after a crash pays nothing
    twice (the payout's key is the milestone's). Raises Conflict before the backers' approval
    and Finance's sign-off, TrancheError if the gateway refuses the payout.
    """
    milestone = Milestone.objects.select_related("campaign").get(pk=milestone_id)
    if milestone.status == MilestoneStatus.RELEASED:
        return milestone
    if milestone.status != MilestoneStatus.APPROVED or milestone.signed_off_at is None or milestone.amount is None:
        raise Conflict(
            "A tranche is released only after the backers approved it and Finance signed it off.",
            code="not_signed_off",
        )
    campaign = milestone.campaign
    split = fee_split(campaign=campaign, released=milestone.amount)
    if split and split.net:
        result = get_gateway().payout(
            idempotency_key=tranche_payout_key(milestone.pk),
            amount=split.net,
            currency=campaign.currency,
            destination=initiator_payout_code(campaign.initiator_id),
        )
        if not result.ok:
            raise TrancheError(f"Payout of milestone {milestone.pk} failed: {result.code}")
    with transaction.atomic(durable=True):
        Campaign.objects.select_for_update().filter(pk=campaign.pk).first()
        milestone = Milestone.objects.select_for_update().select_related("campaign").get(pk=milestone_id)
        if milestone.status == MilestoneStatus.RELEASED:
            return milestone
        if milestone.amount:
            _post_tranche(campaign=campaign, milestone=milestone, split=split)
        milestone_mark_released(milestone=milestone, now=timezone.now())
        audit_record(
            actor=None,
            action="tranche_release",
            obj=milestone,
            details={"amount": milestone.amount, "fee": split.fee if split else 0},
        )
    return milestone


def tranches_release_signed_off(*, limit: int = 100) -> list[int]:
    """Release every signed-off tranche not yet released (beat's safety net); return their ids."""
    released = []
    for milestone_id in milestones_signed_off_unreleased().order_by("id").values_list("pk", flat=True)[:limit]:
        tranche_release(milestone_id=milestone_id)
        released.append(milestone_id)
    return released
