"""Fraud signals around one pledge, measured from our own records (see ``risk.fraud``)."""

from dataclasses import dataclass

from django.db.models import Count, Q

from pledges.models import Pledge, PledgeStatus
from projects.models import Campaign

from .. import fraud
from ..algorithms import poisson_z
from ..models import PledgeRiskCheck


def _pledges_with_card(card: str):
    """Return the pledges charged to the card with fingerprint ``card`` (not empty)."""
    # The redundant exclude repeats the partial index's condition, so SQLite uses the index too
    # (it cannot tell from a bound value that ``card`` is not empty).
    return Pledge.objects.filter(card_fingerprint=card).exclude(card_fingerprint="")


def pledge_fraud_evaluation(*, pledge: Pledge, ip: str | None = None) -> fraud.FraudEvaluation:
    """Measure every fraud signal around ``pledge`` and combine them (see ``risk.fraud``).

    Windows end at the pledge's creation, so evaluating the same pledge later gives the same
    answer. Everything comes from our own records of what the processor answered: declines
    from the pledges' failure codes, the card from the fingerprint the charge result carried.
    Without ``ip`` the IP signals are skipped; without a card fingerprint, the card ones.
    """
    t0 = pledge.created_at
    hour_ago = t0 - fraud.VELOCITY_WINDOW
    campaign = Campaign.objects.only("id", "initiator_id", "launched_at").get(pk=pledge.campaign_id)
    initiator_id = campaign.initiator_id
    values: dict[str, float | None] = {}

    by_backer = Pledge.objects.filter(backer_id=pledge.backer_id, created_at__gte=hour_ago, created_at__lte=t0)
    values["backer_velocity"] = by_backer.count()
    values["card_testing"] = (
        by_backer.filter(status=PledgeStatus.FAILED)
        .exclude(pk=pledge.pk)
        .exclude(failure_code__in=fraud.NON_CARD_FAILURE_CODES)
        .count()
    )

    card = pledge.card_fingerprint
    if card:
        card_pledges = _pledges_with_card(card).filter(
            created_at__gte=t0 - fraud.CARD_SHARING_WINDOW, created_at__lte=t0
        )
        values["card_velocity"] = card_pledges.filter(created_at__gte=hour_ago).count()
        values["card_shared"] = (
            card_pledges.exclude(backer_id__in=[pledge.backer_id, initiator_id])
            .order_by()
            .values("backer_id")
            .distinct()
            .count()
        )
        values["initiator_card"] = int(_pledges_with_card(card).filter(backer_id=initiator_id).exists())

    if ip:
        values["ip_shared"] = (
            PledgeRiskCheck.objects.filter(
                ip=ip, pledge__created_at__gte=t0 - fraud.IP_WINDOW, pledge__created_at__lte=t0
            )
            .exclude(pledge__backer_id__in=[pledge.backer_id, initiator_id])
            .order_by()
            .values("pledge__backer_id")
            .distinct()
            .count()
        )
        values["initiator_ip"] = int(PledgeRiskCheck.objects.filter(ip=ip, pledge__backer_id=initiator_id).exists())

    launched_at = campaign.launched_at
    if launched_at is not None and t0 - launched_at >= fraud.SPIKE_MIN_HISTORY:
        # Only pledges that were charged: a run of declines is card testing, not a spike.
        counts = Pledge.objects.filter(
            campaign_id=campaign.pk, created_at__gte=launched_at, created_at__lte=t0, held_at__isnull=False
        ).aggregate(
            recent=Count("id", filter=Q(created_at__gte=hour_ago)),
            before=Count("id", filter=Q(created_at__lt=hour_ago)),
        )
        hours_before = (hour_ago - launched_at).total_seconds() / 3600
        values["campaign_spike"] = round(float(poisson_z(counts["recent"], counts["before"] / hours_before)), 3)

    return fraud.evaluate(values)


@dataclass(frozen=True)
class PledgeFraudSummary:
    probability: float
    # The signals that raised it, strongest first, in words (``fraud.reasons_in_words``).
    reasons: list[str]


def pledges_fraud_summaries(*, pledge_ids) -> dict[int, PledgeFraudSummary]:
    """Return the stored fraud check of each of ``pledge_ids`` that has one, as probability and reasons.

    One query; pledges never checked (the check runs after the pledge, off its path) are left out.
    """
    rows = PledgeRiskCheck.objects.filter(pledge_id__in=list(pledge_ids)).values_list(
        "pledge_id", "probability", "signals"
    )
    return {
        pledge_id: PledgeFraudSummary(
            probability=probability,
            reasons=fraud.reasons_in_words(
                (signal.get("text", name), signal.get("log_ratio", 0)) for name, signal in (signals or {}).items()
            ),
        )
        for pledge_id, probability, signals in rows
    }
