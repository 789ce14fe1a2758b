"""Reads of deliveries and holdbacks, and the one rule that splits a holdback into parts."""

from dataclasses import dataclass
from datetime import date, timedelta
from statistics import median

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, DateField, Exists, F, OuterRef, Q, Sum, Value
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from crowdfund_site.money import allocate
from pledges.models import Pledge, PledgeStatus
from projects.milestones.models import Milestone, MilestoneStatus
from projects.milestones.selectors import campaign_has_milestones
from projects.models import Campaign, CampaignStatus, FundingModel, RewardTier

from .models import (
    OPEN_STATUSES,
    REFUNDED_STATUSES,
    Delivery,
    DeliveryStatus,
    Holdback,
    NonDelivery,
    Resolution,
    Shipment,
    Survey,
    SurveyAnswer,
)


def holdback_bps_of(campaign: Campaign) -> int:
    """Return the share of the reward pledges a campaign keeps back at success, in basis points.

    The campaign's own choice (made at creation, 0 allowed) or the setting. A debt campaign
    promises repayment, not rewards, and keeps none; nor does one with milestones, whose
    tranches already wait on progress (staged escrow is settled by its own rules).
    """
    if campaign.funding_model == FundingModel.DEBT or campaign_has_milestones(campaign_id=campaign.pk):
        return 0
    bps = campaign.delivery_holdback_bps
    return settings.DELIVERY_HOLDBACK_BPS if bps is None else bps


def holdback_split(*, bps: int, paid: list[int]) -> tuple[int, list[int]]:
    """Return the holdback kept of reward pledges that paid ``paid``, and each pledge's part of it.

    The holdback is ``bps`` of their total (largest remainder, as the fee); the parts split it in
    proportion to what each paid, so they sum to it exactly and none is above what its pledge paid.
    """
    total = sum(paid)
    if not total or bps <= 0:
        return 0, [0] * len(paid)
    amount = allocate(total, [bps, 10_000 - bps])[0]
    return amount, (allocate(amount, paid) if amount else [0] * len(paid))


def reward_pledges_released(*, campaign_id: int) -> list[tuple[int, int, int, int]]:
    """Return (pledge id, backer id, reward id, paid) of a campaign's released reward pledges, by id."""
    return list(
        Pledge.objects.filter(campaign_id=campaign_id, status=PledgeStatus.RELEASED, reward__isnull=False)
        .order_by("id")
        .values_list("id", "backer_id", "reward_id", F("amount") - F("unheld_amount"))
    )


def holdback_amount_for(*, campaign: Campaign) -> int:
    """Return what a succeeding campaign keeps back: the recorded holdback once kept, else its split."""
    kept = Holdback.objects.filter(campaign_id=campaign.pk).values_list("amount", flat=True).first()
    if kept is not None:
        return kept
    paid = [row[3] for row in reward_pledges_released(campaign_id=campaign.pk)]
    return holdback_split(bps=holdback_bps_of(campaign), paid=paid)[0]


def shipments_ready_to_settle():
    """Shipments not yet settled whose every delivery is decided (received, dismissed or upheld)."""
    open_deliveries = Delivery.objects.filter(tier_id=OuterRef("tier_id"), status__in=OPEN_STATUSES)
    return Shipment.objects.filter(settled_at__isnull=True).filter(~Exists(open_deliveries))


def non_deliveries_to_settle():
    """Tiers declared not delivered whose backers' parts are not all refunded yet."""
    return NonDelivery.objects.filter(settled_at__isnull=True)


def holdback_refunds_due(*, tier_id: int):
    """A tier's deliveries owed their part of the holdback back and not yet refunded, by id."""
    return Delivery.objects.filter(tier_id=tier_id, status__in=REFUNDED_STATUSES, part__gt=0, refunded_amount=0)


def tiers_awaiting_shipment():
    """Reward tiers of succeeded campaigns whose backers hold a part of the holdback, never marked
    shipped nor declared not delivered; each annotated with ``delivery_due``, the day delivery was
    promised (its estimated delivery; none given: the campaign's deadline)."""
    holding = Delivery.objects.filter(tier_id=OuterRef("pk"), part__gt=0)
    return (
        RewardTier.objects.filter(campaign__status=CampaignStatus.SUCCEEDED, shipment__isnull=True)
        .filter(non_delivery__isnull=True)
        .filter(Exists(holding))
        .annotate(delivery_due=Coalesce("estimated_delivery", TruncDate("campaign__deadline")))
    )


def not_delivered_after(delivery_due: date) -> date:
    """Return the first day staff may declare a tier due on ``delivery_due`` not delivered."""
    return delivery_due + timedelta(days=settings.FULFILMENT_NOT_DELIVERED_GRACE_DAYS + 1)


def tiers_overdue_for_delivery(*, today: date | None = None):
    """Tiers awaiting shipment past their delivery day and the grace: staff may declare them not
    delivered (``fulfilment.services.tier_declare_not_delivered``). Oldest promise first."""
    today = today or timezone.localdate()
    last_due = today - timedelta(days=settings.FULFILMENT_NOT_DELIVERED_GRACE_DAYS + 1)
    return tiers_awaiting_shipment().filter(delivery_due__lte=last_due).order_by("delivery_due", "pk")


def tiers_overdue_for_staff(*, today: date | None = None):
    """``tiers_overdue_for_delivery`` as Finance sees them (console and API): each with its campaign,
    ``backer_count`` (its reward pledges) and ``holdback_held`` (their parts of the holdback, minor
    units, what declaring it not delivered would refund)."""
    return (
        tiers_overdue_for_delivery(today=today)
        .select_related("campaign")
        .annotate(backer_count=Count("deliveries"), holdback_held=Sum("deliveries__part"))
    )


def deliveries_of_backer(*, backer_id: int):
    """A backer's deliveries with their tier, shipment and report, newest pledge first."""
    return (
        Delivery.objects.filter(backer_id=backer_id)
        .select_related("tier", "tier__shipment", "campaign", "campaign__survey", "report", "pledge__survey_answer")
        .prefetch_related("campaign__survey__questions")
        .order_by("-pledge_id")
    )


@dataclass(frozen=True)
class DeliveryRecord:
    """An initiator's record of keeping promises, over all their campaigns."""

    milestones_due: int
    milestones_on_time: int
    shipments: int
    shipments_on_time: int
    median_delay_days: int | None
    deliveries: int
    confirmed: int
    refunded_backers: int
    # Tiers never shipped that staff declared not delivered (their backers are in refunded_backers).
    rewards_not_delivered: int = 0

    @property
    def confirmed_percent(self) -> int | None:
        return self.confirmed * 100 // self.deliveries if self.deliveries else None

    @property
    def empty(self) -> bool:
        return not (self.milestones_due or self.shipments or self.rewards_not_delivered)


def _delivery_record_cache_key(initiator_id: int) -> str:
    return f"delivery-record:{initiator_id}"


def delivery_record_cached(*, initiator_id: int) -> DeliveryRecord:
    """Return the initiator's delivery record, computed at most once per ``DELIVERY_RECORD_CACHE_SECONDS``.

    Every campaign page with rewards shows it, and it costs two queries over all the initiator's
    campaigns; it is a record of what already happened, so it may be as far behind as a visitor's
    copy of the page (``PAGE_CACHE_MAX_SECONDS``). Marking a tier shipped forgets it at once
    (``delivery_record_forget``), since the initiator looks for it right after.
    """
    key = _delivery_record_cache_key(initiator_id)
    record = cache.get(key)
    if record is None:
        record = delivery_record_of(initiator_id=initiator_id)
        cache.set(key, record, settings.DELIVERY_RECORD_CACHE_SECONDS)
    return record


def delivery_record_forget(*, initiator_id: int) -> None:
    cache.delete(_delivery_record_cache_key(initiator_id))


def delivery_record_of(*, initiator_id: int, today: date | None = None) -> DeliveryRecord:
    """Return the initiator's delivery record (one query when there is nothing to count, at most three).

    A milestone counts once it is due (its target day passed) or released, on time when its proof
    came by the target day; a shipment is on time by its reward's estimated delivery (none given:
    on time), late by the days after it. Confirmed: backers of shipped rewards who said so
    themselves (silence counts as received for the money, not here). A tier staff declared not
    delivered counts against the record, its backers among the refunded.

    Most initiators have neither a milestone plan (the campaign row's flag, kept by the one
    service that writes plans) nor a shipment or a tier declared not delivered, so one plain
    query over their campaigns says which of the two counting queries is needed, and usually
    that neither is.
    """
    today = today or timezone.localdate()
    promises = list(
        Campaign.objects.filter(initiator_id=initiator_id)
        .filter(Q(has_milestone_plan=True) | Q(shipments__isnull=False) | Q(non_deliveries__isnull=False))
        .order_by()
        .values_list("has_milestone_plan", "shipments__id", "non_deliveries__id")
    )
    has_plan = any(planned for planned, _shipment, _declared in promises)
    has_deliveries = any(shipment is not None or declared is not None for _planned, shipment, declared in promises)
    milestones = (
        list(
            Milestone.objects.filter(campaign__initiator_id=initiator_id, position__gt=1)
            .filter(Q(target_date__lt=today) | Q(status=MilestoneStatus.RELEASED))
            .values_list("target_date", "submitted_at")
        )
        if has_plan
        else []
    )
    on_time = sum(1 for target, submitted in milestones if submitted and timezone.localdate(submitted) <= target)
    rows = _delivery_rows(initiator_id=initiator_id) if has_deliveries else []
    shipped = [row for row in rows if not row[5]]
    delays = sorted(max((day - estimated).days, 0) if estimated else 0 for day, estimated, *_ in shipped)
    return DeliveryRecord(
        milestones_due=len(milestones),
        milestones_on_time=on_time,
        shipments=len(shipped),
        shipments_on_time=sum(1 for d in delays if d == 0),
        median_delay_days=int(median(delays)) if delays else None,
        deliveries=sum(row[2] for row in rows),
        confirmed=sum(row[3] for row in rows),
        refunded_backers=sum(row[4] for row in rows),
        rewards_not_delivered=len(rows) - len(shipped),
    )


def _delivery_rows(*, initiator_id: int) -> list[tuple]:
    """One row per shipment with its backers counted, then (in the same query) one per tier declared
    not delivered: its backers were refunded and none confirmed. Other unshipped tiers are not in it.
    """
    shipments = Shipment.objects.filter(campaign__initiator_id=initiator_id).annotate(
        total=Count("tier__deliveries"),
        confirmed=Count("tier__deliveries", filter=Q(tier__deliveries__resolution=Resolution.BACKER)),
        refunded=Count("tier__deliveries", filter=Q(tier__deliveries__status=DeliveryStatus.UPHELD)),
        undelivered=Value(False),
    )
    declared = NonDelivery.objects.filter(campaign__initiator_id=initiator_id).annotate(
        shipped_on=Value(None, output_field=DateField()),
        total=Count("tier__deliveries"),
        confirmed=Value(0),
        refunded=Count("tier__deliveries"),
        undelivered=Value(True),
    )
    columns = ["shipped_on", "tier__estimated_delivery", "total", "confirmed", "refunded", "undelivered"]
    return list(shipments.values_list(*columns).union(declared.values_list(*columns), all=True))


def survey_answers_of_initiator(*, campaign_id: int, user_id: int):
    """Return (survey, its questions, its answers with pledge and backer) for the campaign's initiator only.

    None for anyone else, or before a survey was sent: backers' addresses are the initiator's to see.
    """
    survey = Survey.objects.filter(campaign_id=campaign_id, campaign__initiator_id=user_id).first()
    if survey is None:
        return None
    answers = (
        SurveyAnswer.objects.filter(survey=survey)
        .select_related("pledge__backer", "pledge__reward")
        .order_by("pledge_id")
    )
    return survey, list(survey.questions.all()), answers
