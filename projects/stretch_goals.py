"""Stretch goals: amounts above a campaign's goal that the initiator promises more for.

The initiator adds, edits and removes them (``stretch_goal_create`` / ``_update`` / ``_delete``);
the campaign row's ``stretch_goal_count`` follows, so the campaign page reads none for a campaign
without any. They are marked unlocked by beat's task, not by the pledge path, whose hold is one
conditional UPDATE that must stay one statement:

1. ``stretch_goals_unlock_due`` finds the campaigns whose total reached a goal not yet unlocked,
   and marks each campaign's goals with one conditional UPDATE (``unlocked_at IS NULL``), so a
   goal is unlocked once however often, and by however many workers, it runs;
2. ``stretch_goal_emails_send_due`` claims unlocked goals whose e-mail is owed with
   ``select_for_update(skip_locked=True)``, commits the claim, e-mails the backers outside any
   transaction (each once: ``emails_send_once`` keyed by the goal) and marks the goal sent. A
   claim older than CLAIM_STALE_AFTER belongs to a worker that died and is taken again.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone
from django.utils.translation import gettext

from accounts.emails import emails_send_once
from crowdfund_site.exceptions import Conflict, InvalidInput, NotAllowed
from crowdfund_site.money import check_amount, format_amount
from crowdfund_site.page_cache import campaign_page_group, page_cache_invalidate

from .models import (
    EDITABLE_STATUSES,
    MAX_STRETCH_GOALS,
    STRETCH_GOAL_DESCRIPTION_MAX_LENGTH,
    STRETCH_GOAL_TITLE_MAX_LENGTH,
    Campaign,
    CampaignStatus,
    StretchGoal,
)
from .notifications import campaign_backers

# Before review, or once live: not while a reviewer reads the campaign, nor after it ended.
EDIT_STATUSES = EDITABLE_STATUSES | {CampaignStatus.APPROVED, CampaignStatus.LIVE}
# Where a total can reach a goal: pledges are taken, or were (closing, succeeded).
UNLOCK_STATUSES = {CampaignStatus.LIVE, CampaignStatus.CLOSING, CampaignStatus.SUCCEEDED}
CLAIM_STALE_AFTER = timedelta(minutes=15)
EMAIL_TEMPLATE = "stretch_goal_unlocked"


@dataclass(frozen=True)
class _Fields:
    amount: int
    title: str
    description: str


def _campaign_for_edit(campaign_id: int, actor) -> Campaign:
    campaign = Campaign.objects.select_for_update().get(pk=campaign_id)
    if actor is None or actor.pk != campaign.initiator_id:
        raise NotAllowed("Only the campaign's initiator can do this.", code="not_initiator")
    if campaign.status not in EDIT_STATUSES:
        raise Conflict(
            gettext("Stretch goals can be changed before review or while the campaign is live."), code="invalid_state"
        )
    return campaign


def _clean(campaign: Campaign, *, amount, title: str, description: str, other_amounts: set[int]) -> _Fields:
    check_amount(amount, campaign.currency)
    if amount <= campaign.goal:
        raise InvalidInput(
            gettext("A stretch goal must be more than the campaign's goal (%(goal)s).")
            % {"goal": format_amount(campaign.goal, campaign.currency)},
            code="stretch_goal_not_above_goal",
            field="amount",
        )
    if amount in other_amounts:
        raise InvalidInput(
            gettext("The campaign already has a stretch goal of this amount."),
            code="stretch_goal_duplicate",
            field="amount",
        )
    title = (title or "").strip()
    if not title:
        raise InvalidInput(gettext("Give the stretch goal a title."), code="required", field="title")
    for value, field, limit in (
        (title, "title", STRETCH_GOAL_TITLE_MAX_LENGTH),
        (description, "description", STRETCH_GOAL_DESCRIPTION_MAX_LENGTH),
    ):
        if len(value) > limit:
            raise InvalidInput(
                gettext("This may be at most %(limit)s characters (it has %(length)s).")
                % {"limit": f"{limit:,}", "length": f"{len(value):,}"},
                code="too_long",
                field=field,
            )
    return _Fields(amount=amount, title=title, description=(description or "").strip())


def _amounts(campaign: Campaign, *, excluding: int | None = None) -> set[int]:
    return set(StretchGoal.objects.filter(campaign=campaign).exclude(pk=excluding).values_list("amount", flat=True))


def _changed(campaign: Campaign) -> None:
    page_cache_invalidate(campaign_page_group(campaign.slug))


def stretch_goals_campaign_change_check(*, campaign: Campaign, goal: int, currency: str) -> None:
    """Refuse a new goal or currency of a campaign (locked by the caller) that its stretch goals no longer fit.

    Every stretch goal stays above the goal, and in minor units of the currency it was set in.
    """
    if not campaign.stretch_goal_count:
        return
    if currency != campaign.currency:
        raise Conflict(
            gettext("Remove the stretch goals before changing the currency, then add them again in the new one."),
            code="currency_locked",
            field="currency",
        )
    lowest = StretchGoal.objects.filter(campaign=campaign).order_by("amount").values_list("amount", flat=True).first()
    if lowest is not None and goal >= lowest:
        raise InvalidInput(
            gettext("The goal must stay below your lowest stretch goal (%(amount)s).")
            % {"amount": format_amount(lowest, campaign.currency)},
            code="goal_above_stretch_goal",
            field="goal",
        )


@transaction.atomic
def stretch_goal_create(*, campaign: Campaign, actor, amount: int, title: str, description: str = "") -> StretchGoal:
    """Add a stretch goal (initiator; before review or while live). Refuses bad input and an 11th."""
    campaign = _campaign_for_edit(campaign.pk, actor)
    amounts = _amounts(campaign)
    if len(amounts) >= MAX_STRETCH_GOALS:
        raise InvalidInput(
            gettext("A campaign may have at most %(max)s stretch goals.") % {"max": MAX_STRETCH_GOALS},
            code="too_many_stretch_goals",
        )
    fields = _clean(campaign, amount=amount, title=title, description=description, other_amounts=amounts)
    goal = StretchGoal.objects.create(
        campaign=campaign, amount=fields.amount, title=fields.title, description=fields.description
    )
    Campaign.objects.filter(pk=campaign.pk).update(stretch_goal_count=F("stretch_goal_count") + 1)
    _changed(campaign)
    return goal


@transaction.atomic
def stretch_goal_update(*, goal: StretchGoal, actor, **fields) -> StretchGoal:
    """Change a stretch goal's amount, title or description; an unlocked goal keeps its amount."""
    campaign = _campaign_for_edit(goal.campaign_id, actor)
    goal = StretchGoal.objects.select_for_update().get(pk=goal.pk)
    unknown = set(fields) - {"amount", "title", "description"}
    if unknown:
        raise InvalidInput(f"Unknown fields: {', '.join(sorted(unknown))}.", code="unknown_field")
    amount = fields.get("amount", goal.amount)
    if goal.unlocked_at is not None and amount != goal.amount:
        raise Conflict(
            gettext("This stretch goal is unlocked: its amount can no longer change."), code="stretch_goal_unlocked"
        )
    cleaned = _clean(
        campaign,
        amount=amount,
        title=fields.get("title", goal.title),
        description=fields.get("description", goal.description),
        other_amounts=_amounts(campaign, excluding=goal.pk),
    )
    goal.amount, goal.title, goal.description = cleaned.amount, cleaned.title, cleaned.description
    # The campaign's row lock makes the distinct-amount check above final.
    goal.save(update_fields=["amount", "title", "description"])
    _changed(campaign)
    return goal


@transaction.atomic
def stretch_goal_delete(*, goal: StretchGoal, actor) -> None:
    """Remove a stretch goal that is not unlocked (backers were told of an unlocked one)."""
    campaign = _campaign_for_edit(goal.campaign_id, actor)
    deleted, _ = StretchGoal.objects.filter(pk=goal.pk, unlocked_at__isnull=True).delete()
    if not deleted:
        raise Conflict(
            gettext("This stretch goal is unlocked and can no longer be removed."), code="stretch_goal_unlocked"
        )
    Campaign.objects.filter(pk=campaign.pk).update(stretch_goal_count=F("stretch_goal_count") - 1)
    _changed(campaign)


def stretch_goals_unlock_due(*, now: datetime | None = None) -> int:
    """Mark unlocked every goal a campaign's total reached; return how many were marked.

    One SELECT finds the campaigns with a goal to unlock, then one conditional UPDATE per campaign
    marks its reached goals; a goal already marked (by an earlier or a concurrent run) is left out
    by ``unlocked_at IS NULL``, so it is marked, and its e-mail owed, once.
    """
    now = now or timezone.now()
    reached = StretchGoal.objects.filter(
        campaign_id=OuterRef("pk"), unlocked_at__isnull=True, amount__lte=OuterRef("pledged_amount")
    )
    due = Campaign.objects.filter(stretch_goal_count__gt=0, status__in=UNLOCK_STATUSES).filter(Exists(reached))
    marked = 0
    for campaign_id, slug, pledged in due.values_list("pk", "slug", "pledged_amount"):
        count = StretchGoal.objects.filter(
            campaign_id=campaign_id, unlocked_at__isnull=True, amount__lte=pledged
        ).update(unlocked_at=now)
        if count:
            marked += count
            page_cache_invalidate(campaign_page_group(slug))
    return marked


def stretch_goal_emails_send_due(*, now: datetime | None = None, batch_size: int = 20) -> int:
    """E-mail the backers of every unlocked goal not yet announced, each goal once; return e-mails sent."""
    now = now or timezone.now()
    sent = 0
    while claimed := _claim_due(now=now, batch_size=batch_size):
        for goal in claimed:
            sent += _announce(goal)
    return sent


def _claim_due(*, now: datetime, batch_size: int) -> list[StretchGoal]:
    with transaction.atomic(durable=True):
        due = list(
            StretchGoal.objects.select_for_update(skip_locked=True)
            .filter(unlocked_at__isnull=False, email_sent_at__isnull=True)
            .filter(Q(email_claimed_at__isnull=True) | Q(email_claimed_at__lte=now - CLAIM_STALE_AFTER))
            .order_by("unlocked_at", "id")[:batch_size]
        )
        claimed_at = timezone.now()
        StretchGoal.objects.filter(pk__in=[g.pk for g in due]).update(email_claimed_at=claimed_at)
    for goal in due:
        goal.email_claimed_at = claimed_at
    return due


def _announce(goal: StretchGoal) -> int:
    campaign = Campaign.objects.get(pk=goal.campaign_id)
    context = {"campaign": campaign, "goal": goal}
    sent = emails_send_once(
        template=EMAIL_TEMPLATE,
        object_id=goal.pk,
        recipients=((b, context) for b in campaign_backers(campaign_id=campaign.pk).iterator(chunk_size=1_000)),
    )
    # Only our claim: a goal claimed again meanwhile is the other worker's to finish.
    StretchGoal.objects.filter(pk=goal.pk, email_claimed_at=goal.email_claimed_at).update(
        email_sent_at=timezone.now(), recipients=F("recipients") + sent
    )
    return sent
