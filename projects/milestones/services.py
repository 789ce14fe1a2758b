"""Writes about milestones: the plan, proof, votes, staff decisions, extensions and overdue ones.

Every move of a milestone goes through ``milestone_set_status`` (the transitions table, a
recorded change). Money is not moved here: settlement releases a signed-off tranche and refunds
the remainder, calling ``milestones_amounts_fix`` and ``milestones_fail_open`` in its own
transactions. Locks are taken campaign first, then its milestones in position order.
"""

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.services import audit_record, user_note_delivery_record
from crowdfund_site.exceptions import Conflict, InvalidInput, NotAllowed
from crowdfund_site.money import allocate, format_amount
from crowdfund_site.page_cache import campaign_page_group, page_cache_invalidate
from crowdfund_site.transitions import ensure_transition_allowed
from projects.models import EDITABLE_STATUSES, Campaign, CampaignStatus, FundingModel

from .models import MILESTONE_TRANSITIONS, Milestone, MilestoneStatus, MilestoneStatusChange, MilestoneVote
from .selectors import backer_vote_weight, campaign_released_pledged, milestone_vote_tally

MAX_MILESTONES = 8
FULL_BPS = 10_000


@dataclass(frozen=True)
class MilestoneInput:
    title: str
    proof_required: str
    target_date: date
    share_bps: int


def milestone_plan_validate(
    *, plan: list[MilestoneInput], goal: int, today: date | None = None
) -> list[MilestoneInput]:
    """Return the plan cleaned, or raise InvalidInput saying what is wrong with it.

    1 to 8 milestones, each with a title, the proof to be shown, a target date after today (in
    order) and a share in basis points above zero; shares sum to 10,000; the first share is at
    most ``MILESTONE_FIRST_TRANCHE_MAX_BPS``. An empty plan is refused when the goal is above
    ``MILESTONES_REQUIRED_ABOVE_GOAL`` (when that is set).
    """
    today = today or timezone.localdate()
    required_above = settings.MILESTONES_REQUIRED_ABOVE_GOAL
    if not plan:
        if required_above and goal > required_above:
            raise InvalidInput(
                _("Campaigns with a goal this size must plan their milestones."),
                code="milestones_required",
                field="milestones",
            )
        return []
    if len(plan) > MAX_MILESTONES:
        raise InvalidInput(
            _("Plan at most %(n)d milestones.") % {"n": MAX_MILESTONES}, code="too_many_milestones", field="milestones"
        )
    cleaned = []
    for index, item in enumerate(plan, start=1):
        title, proof = (item.title or "").strip(), (item.proof_required or "").strip()
        if not title or not proof:
            raise InvalidInput(
                _("Milestone %(n)d needs a title and the proof you will show.") % {"n": index},
                code="milestone_incomplete",
                field="milestones",
            )
        if len(title) > Milestone._meta.get_field("title").max_length or len(proof) > 2_000:
            raise InvalidInput(
                _("Milestone %(n)d's title or proof is too long.") % {"n": index}, code="too_long", field="milestones"
            )
        if (
            not isinstance(item.share_bps, int)
            or isinstance(item.share_bps, bool)
            or not 0 < item.share_bps <= FULL_BPS
        ):
            raise InvalidInput(
                _("Milestone %(n)d's share must be between 1 and 10,000 basis points.") % {"n": index},
                code="share_out_of_range",
                field="milestones",
            )
        if not isinstance(item.target_date, date) or item.target_date <= today:
            raise InvalidInput(
                _("Milestone %(n)d's target date must be after today.") % {"n": index},
                code="target_date_past",
                field="milestones",
            )
        if cleaned and item.target_date < cleaned[-1].target_date:
            raise InvalidInput(
                _("Milestones' target dates must be in order."), code="target_dates_out_of_order", field="milestones"
            )
        cleaned.append(MilestoneInput(title, proof, item.target_date, item.share_bps))
    if sum(m.share_bps for m in cleaned) != FULL_BPS:
        raise InvalidInput(
            _("Milestone shares must add up to 10,000 basis points (100 %%); they add up to %(sum)d.")
            % {"sum": sum(m.share_bps for m in cleaned)},
            code="shares_not_whole",
            field="milestones",
        )
    cap = settings.MILESTONE_FIRST_TRANCHE_MAX_BPS
    if cleaned[0].share_bps > cap:
        raise InvalidInput(
            _("The first tranche, released at success, can be at most %(cap)s %% of what is raised.")
            % {"cap": f"{cap / 100:g}"},
            code="first_tranche_over_cap",
            field="milestones",
        )
    return cleaned


def milestones_plan_replace(*, campaign: Campaign, plan: list[MilestoneInput]) -> list[Milestone]:
    """Validate and store ``plan`` as the campaign's milestones (the caller holds the campaign).

    Only while the campaign can be edited (draft, changes requested). Raises InvalidInput or Conflict.
    """
    if campaign.status not in EDITABLE_STATUSES:
        raise Conflict(_("Milestones can only be changed before review."), code="not_editable")
    if plan and campaign.funding_model == FundingModel.DEBT:
        raise InvalidInput(_("A loan is disbursed whole: debt campaigns have no milestones."), code="debt_milestones")
    cleaned = milestone_plan_validate(plan=plan, goal=campaign.goal)
    Milestone.objects.filter(campaign=campaign).delete()
    # On the row for the campaign page, which skips the milestones query for a campaign without a plan.
    campaign.has_milestone_plan = bool(cleaned)
    Campaign.objects.filter(pk=campaign.pk).update(has_milestone_plan=campaign.has_milestone_plan)
    if cleaned:  # the initiator's delivery record now counts this plan's milestones as they fall due
        user_note_delivery_record(user_id=campaign.initiator_id)
    return Milestone.objects.bulk_create(
        [
            Milestone(
                campaign=campaign,
                position=position,
                title=m.title,
                proof_required=m.proof_required,
                target_date=m.target_date,
                share_bps=m.share_bps,
            )
            for position, m in enumerate(cleaned, start=1)
        ]
    )


@transaction.atomic
def milestones_plan_set(*, campaign: Campaign, actor, plan: list[MilestoneInput]) -> list[Milestone]:
    """Replace the campaign's milestone plan on the initiator's behalf; return the milestones.

    Raises NotAllowed (not the initiator), Conflict (under review or later) or InvalidInput.
    """
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if actor is None or actor.pk != campaign.initiator_id:
        raise NotAllowed(_("Only the initiator can plan this campaign's milestones."), code="not_allowed")
    return milestones_plan_replace(campaign=campaign, plan=plan)


def milestone_set_status(*, milestone: Milestone, to_status: str, actor=None, reason: str = "") -> Milestone:
    """Move a locked milestone to ``to_status`` if the transitions table allows it; record the change.

    Raises Conflict for any other move.
    """
    ensure_transition_allowed(
        transitions=MILESTONE_TRANSITIONS, current=milestone.status, target=to_status, what="milestone"
    )
    MilestoneStatusChange.objects.create(
        milestone=milestone, from_status=milestone.status, to_status=to_status, actor=actor, reason=reason
    )
    milestone.status = to_status
    milestone.save()
    # Visitors must see the new state at once, not after the page cache's timer.
    slug = Campaign.objects.filter(pk=milestone.campaign_id).values_list("slug", flat=True).first()
    if slug:
        page_cache_invalidate(campaign_page_group(slug))
    return milestone


def _milestone_lock(milestone_id: int) -> Milestone:
    return Milestone.objects.select_for_update().select_related("campaign").get(pk=milestone_id)


def _campaign_and_milestone_lock(milestone_id: int) -> Milestone:
    campaign_id = Milestone.objects.values_list("campaign_id", flat=True).get(pk=milestone_id)
    Campaign.objects.select_for_update().filter(pk=campaign_id).first()
    return _milestone_lock(milestone_id)


@transaction.atomic
def milestone_submit_proof(*, milestone: Milestone, actor, proof_text: str, now: datetime | None = None) -> Milestone:
    """Submit proof for a milestone and open the backers' vote (``MILESTONE_VOTE_DAYS``); return it.

    Only the initiator, on a succeeded campaign, for the next milestone not yet released (all
    before it released). A rejected milestone may be resubmitted ``MILESTONE_MAX_RESUBMISSIONS``
    times. Raises NotAllowed, InvalidInput (no proof) or Conflict (wrong state, out of turn).
    """
    now = now or timezone.now()
    proof_text = (proof_text or "").strip()
    milestone = _campaign_and_milestone_lock(milestone.pk)
    campaign = milestone.campaign
    if actor is None or actor.pk != campaign.initiator_id:
        raise NotAllowed(_("Only the campaign's initiator can submit proof."), code="not_allowed")
    if not proof_text:
        raise InvalidInput(_("Describe the proof for backers to vote on."), code="proof_required", field="proof_text")
    if len(proof_text) > 10_000:
        raise InvalidInput(_("The proof is too long (10,000 characters at most)."), code="too_long", field="proof_text")
    if campaign.status != CampaignStatus.SUCCEEDED or milestone.amount is None:
        raise Conflict(_("Proof can be submitted once the campaign has succeeded."), code="not_succeeded")
    earlier = Milestone.objects.filter(campaign=campaign, position__lt=milestone.position)
    if earlier.exclude(status=MilestoneStatus.RELEASED).exists():
        raise Conflict(_("Earlier milestones must be released first."), code="out_of_turn")
    if milestone.status == MilestoneStatus.REJECTED:
        if milestone.resubmissions >= settings.MILESTONE_MAX_RESUBMISSIONS:
            raise Conflict(_("This milestone cannot be resubmitted again."), code="no_resubmissions_left")
        milestone.resubmissions += 1
        milestone_set_status(
            milestone=milestone, to_status=MilestoneStatus.RESUBMITTED, actor=actor, reason="proof resubmitted"
        )
    else:
        milestone_set_status(
            milestone=milestone, to_status=MilestoneStatus.SUBMITTED, actor=actor, reason="proof submitted"
        )
    milestone.proof_text = proof_text
    milestone.submitted_at = now
    milestone.vote_round += 1
    milestone.vote_closes_at = now + timedelta(days=settings.MILESTONE_VOTE_DAYS)
    milestone.vote_basis = campaign_released_pledged(campaign_id=campaign.pk)
    milestone.approve_amount = milestone.reject_amount = 0
    milestone.decision_reason = ""
    milestone_set_status(milestone=milestone, to_status=MilestoneStatus.VOTING, reason="vote opened")
    audit_record(actor=actor, action="milestone_submit_proof", obj=milestone)
    transaction.on_commit(lambda: _notify("vote_opened", milestone.pk))
    return milestone


def milestone_vote(*, milestone: Milestone, backer, approve: bool, now: datetime | None = None) -> MilestoneVote:
    """Record a backer's vote on a milestone's proof, weighted by what they pledged; return it.

    Raises NotAllowed (not a backer), Conflict (no vote open, or already voted in this round).
    One vote per backer per round is enforced by a unique constraint, so a double click or two
    requests at once record one vote.
    """
    now = now or timezone.now()
    milestone = Milestone.objects.get(pk=milestone.pk)
    if (
        milestone.status != MilestoneStatus.VOTING
        or milestone.vote_closes_at is None
        or now >= milestone.vote_closes_at
    ):
        raise Conflict(_("There is no vote open on this milestone."), code="vote_not_open")
    if backer is None or not backer.is_authenticated:
        raise NotAllowed(_("Only the campaign's backers can vote."), code="not_a_backer")
    weight = backer_vote_weight(campaign_id=milestone.campaign_id, backer_id=backer.pk)
    if weight <= 0:
        raise NotAllowed(_("Only the campaign's backers can vote."), code="not_a_backer")
    try:
        with transaction.atomic():
            return MilestoneVote.objects.create(
                milestone=milestone,
                vote_round=milestone.vote_round,
                backer=backer,
                approve=bool(approve),
                weight=weight,
            )
    except IntegrityError:
        raise Conflict(_("You have already voted on this proof."), code="already_voted") from None


def milestone_vote_outcome(*, milestone: Milestone) -> tuple[bool, str]:
    """Return whether the milestone's vote passes, and the reason if it does not."""
    yes, no = milestone_vote_tally(milestone=milestone)
    voted = yes + no
    basis = milestone.vote_basis
    if basis <= 0 or voted * FULL_BPS < basis * settings.MILESTONE_VOTE_TURNOUT_BPS:
        share = voted * 100 / basis if basis else 0
        return False, _("Only %(share).1f %% of the pledged amount voted; %(need)s %% must.") % {
            "share": share,
            "need": f"{settings.MILESTONE_VOTE_TURNOUT_BPS / 100:g}",
        }
    if yes * FULL_BPS < voted * settings.MILESTONE_VOTE_APPROVE_BPS:
        return False, _("%(share).1f %% of the amount voted approved; %(need)s %% must.") % {
            "share": yes * 100 / voted,
            "need": f"{settings.MILESTONE_VOTE_APPROVE_BPS / 100:g}",
        }
    return True, ""


def milestone_votes_close_due(*, now: datetime | None = None, limit: int = 100) -> list[int]:
    """Close votes past their end: approved (to wait for Finance) or rejected with the reason; return ids.

    Claims due milestones with ``skip_locked``, so two workers never close the same vote.
    """
    now = now or timezone.now()
    closed = []
    with transaction.atomic(durable=True):
        due = list(
            Milestone.objects.select_for_update(skip_locked=True)
            .filter(status=MilestoneStatus.VOTING, vote_closes_at__lte=now)
            .order_by("vote_closes_at", "id")[:limit]
        )
        for milestone in due:
            yes, no = milestone_vote_tally(milestone=milestone)
            milestone.approve_amount, milestone.reject_amount = yes, no
            passed, reason = milestone_vote_outcome(milestone=milestone)
            milestone.decision_reason = reason
            milestone_set_status(
                milestone=milestone,
                to_status=MilestoneStatus.APPROVED if passed else MilestoneStatus.REJECTED,
                reason="backers approved" if passed else reason,
            )
            closed.append(milestone.pk)
        for milestone_id in closed:
            transaction.on_commit(lambda milestone_id=milestone_id: _notify("vote_closed", milestone_id))
    return closed


def _require_finance(actor, perm: str = "projects.sign_off_milestone") -> None:
    if actor is None or not actor.has_perm(perm):
        raise NotAllowed(_("Only finance staff can decide on milestones."), code="not_allowed")


@transaction.atomic
def milestone_sign_off(*, milestone: Milestone, actor) -> Milestone:
    """Record Finance's sign-off on a milestone the backers approved; settlement then releases it.

    Audited ("milestone_sign_off"). Raises NotAllowed or Conflict (not approved, already signed off).
    """
    _require_finance(actor)
    milestone = _campaign_and_milestone_lock(milestone.pk)
    if milestone.status != MilestoneStatus.APPROVED or milestone.signed_off_at is not None:
        raise Conflict(_("Only a milestone the backers approved can be signed off, once."), code="invalid_state")
    milestone.signed_off_by = actor
    milestone.signed_off_at = timezone.now()
    milestone.save(update_fields=["signed_off_by", "signed_off_at", "updated_at"])
    audit_record(actor=actor, action="milestone_sign_off", obj=milestone)
    return milestone


@transaction.atomic
def milestone_reject(*, milestone: Milestone, actor, reason: str) -> Milestone:
    """Reject a milestone the backers approved (Finance, with a reason; audited); the initiator may resubmit."""
    _require_finance(actor)
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput(_("Give a reason for rejecting."), code="reason_required", field="reason")
    milestone = _campaign_and_milestone_lock(milestone.pk)
    if milestone.status != MilestoneStatus.APPROVED or milestone.signed_off_at is not None:
        raise Conflict(_("Only a milestone waiting for sign-off can be rejected."), code="invalid_state")
    milestone.decision_reason = reason
    milestone_set_status(milestone=milestone, to_status=MilestoneStatus.REJECTED, actor=actor, reason=reason)
    audit_record(actor=actor, action="milestone_reject", obj=milestone, reason=reason)
    transaction.on_commit(lambda: _notify("rejected", milestone.pk))
    return milestone


@transaction.atomic
def milestone_extend(*, milestone: Milestone, actor, new_date: date) -> Milestone:
    """Move a milestone's due date once, by up to ``MILESTONE_MAX_EXTENSION_DAYS``; return it.

    An overdue milestone becomes planned again. Raises NotAllowed, InvalidInput or Conflict.
    """
    milestone = _campaign_and_milestone_lock(milestone.pk)
    if actor is None or actor.pk != milestone.campaign.initiator_id:
        raise NotAllowed(_("Only the campaign's initiator can ask for an extension."), code="not_allowed")
    if milestone.extended_to is not None:
        raise Conflict(_("This milestone has already been extended once."), code="already_extended")
    if milestone.status not in (MilestoneStatus.PLANNED, MilestoneStatus.REJECTED, MilestoneStatus.OVERDUE):
        raise Conflict(_("This milestone cannot be extended now."), code="invalid_state")
    latest = milestone.target_date + timedelta(days=settings.MILESTONE_MAX_EXTENSION_DAYS)
    if (
        not isinstance(new_date, date)
        or new_date <= max(milestone.target_date, timezone.localdate())
        or new_date > latest
    ):
        raise InvalidInput(
            _("Choose a new date after today and at most %(days)d days after the target date.")
            % {"days": settings.MILESTONE_MAX_EXTENSION_DAYS},
            code="extension_out_of_range",
            field="new_date",
        )
    milestone.extended_to = new_date
    if milestone.status == MilestoneStatus.OVERDUE:
        milestone_set_status(
            milestone=milestone, to_status=MilestoneStatus.PLANNED, actor=actor, reason=f"extended to {new_date}"
        )
    else:
        milestone.save(update_fields=["extended_to", "updated_at"])
    audit_record(actor=actor, action="milestone_extend", obj=milestone, details={"extended_to": str(new_date)})
    return milestone


def milestones_mark_overdue(*, today: date | None = None, limit: int = 500) -> list[int]:
    """Mark planned or rejected milestones past their due date overdue; return their ids."""
    today = today or timezone.localdate()
    marked = []
    with transaction.atomic(durable=True):
        due = (
            Milestone.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(status__in=[MilestoneStatus.PLANNED, MilestoneStatus.REJECTED], position__gt=1)
            .filter(campaign__status=CampaignStatus.SUCCEEDED, amount__isnull=False)
            .order_by("id")
        )
        for milestone in due[:limit]:
            if milestone.due_date >= today:
                continue
            milestone_set_status(
                milestone=milestone,
                to_status=MilestoneStatus.OVERDUE,
                reason=f"no approved proof by {milestone.due_date}",
            )
            marked.append(milestone.pk)
        for milestone_id in marked:
            transaction.on_commit(lambda milestone_id=milestone_id: _notify("overdue", milestone_id))
    return marked


def milestones_amounts_fix(*, campaign: Campaign, raised: int) -> list[Milestone]:
    """Fix each milestone's tranche (its share of ``raised``, largest remainder) and release the first.

    Called by settlement inside the transaction that finishes a succeeded campaign, which holds
    the campaign's lock. Idempotent: amounts already fixed are kept.
    """
    milestones = list(Milestone.objects.select_for_update().filter(campaign=campaign).order_by("position"))
    if not milestones or milestones[0].amount is not None:
        return milestones
    amounts = allocate(raised, [m.share_bps for m in milestones]) if raised else [0] * len(milestones)
    for milestone, amount in zip(milestones, amounts, strict=True):
        milestone.amount = amount
        milestone.save(update_fields=["amount", "updated_at"])
    first = milestones[0]
    first.released_at = timezone.now()
    milestone_set_status(
        milestone=first,
        to_status=MilestoneStatus.RELEASED,
        reason=f"first tranche of {format_amount(first.amount, campaign.currency)} released at success",
    )
    return milestones


def milestones_fail_open(*, campaign: Campaign, actor, reason: str) -> list[int]:
    """Fail every milestone neither released nor signed off (the caller holds the campaign's lock)."""
    failed = []
    for milestone in Milestone.objects.select_for_update().filter(campaign=campaign).order_by("position"):
        if milestone.status == MilestoneStatus.RELEASED or milestone.signed_off_at is not None:
            continue
        if milestone.status != MilestoneStatus.FAILED:
            milestone_set_status(milestone=milestone, to_status=MilestoneStatus.FAILED, actor=actor, reason=reason)
            failed.append(milestone.pk)
    return failed


def milestone_mark_released(*, milestone: Milestone, now: datetime | None = None) -> Milestone:
    """Record a signed-off tranche as released (settlement, holding the milestone's lock, after posting it)."""
    milestone.released_at = now or timezone.now()
    return milestone_set_status(milestone=milestone, to_status=MilestoneStatus.RELEASED, reason="tranche released")


def _notify(event: str, milestone_id: int) -> None:
    from projects.tasks import send_milestone_emails  # tasks import services

    send_milestone_emails.delay(event, milestone_id)


def milestones_holdback_check(*, has_plan: bool, delivery_holdback_bps: int | None) -> None:
    """Raise InvalidInput if a campaign with milestones asks for a delivery holdback.

    A campaign with milestones keeps none (``fulfilment.selectors.holdback_bps_of``): each later
    tranche already waits for the backers' vote and staff's sign-off, and what is never released
    goes back to the backers, so a holdback would hold the same money twice under two rules.
    Delivering the rewards can be the last milestone's proof instead.
    """
    if has_plan and delivery_holdback_bps:
        raise InvalidInput(
            _(
                "A campaign with milestones keeps no delivery holdback: each tranche already waits for "
                "your backers' vote, and what is never released goes back to them. Choose 0, and make "
                "delivering the rewards your last milestone."
            ),
            code="holdback_with_milestones",
            field="delivery_holdback_bps",
        )


@transaction.atomic
def campaign_create_with_milestones(*, initiator, milestones: list[MilestoneInput], **fields) -> Campaign:
    """Create a draft campaign and its milestone plan together (``campaign_create`` + the plan); return it.

    Nothing is created when either is refused (InvalidInput), nor when a plan comes with a
    delivery holdback (``milestones_holdback_check``).
    """
    from projects.services import campaign_create  # projects.services checks plans at submission

    milestones_holdback_check(has_plan=bool(milestones), delivery_holdback_bps=fields.get("delivery_holdback_bps"))
    campaign = campaign_create(initiator=initiator, **fields)
    if milestones or settings.MILESTONES_REQUIRED_ABOVE_GOAL:
        milestones_plan_replace(campaign=campaign, plan=milestones)
    return campaign


def milestone_plan_required_check(*, campaign: Campaign) -> None:
    """Raise InvalidInput if the campaign's goal requires milestones and it has none."""
    required_above = settings.MILESTONES_REQUIRED_ABOVE_GOAL
    if required_above and campaign.goal > required_above and not Milestone.objects.filter(campaign=campaign).exists():
        raise InvalidInput(
            _("Campaigns with a goal this size must plan their milestones."),
            code="milestones_required",
            field="milestones",
        )
