"""E-mails of delivery, each for a step someone must act on; each sent once (``accounts.emails``)."""

from accounts.emails import emails_send_once
from pledges.models import Pledge, PledgeStatus, pledge_paid_in_full_q

from .models import Delivery, DeliveryReport, NonDelivery, Shipment, Survey


def shipped_emails_send(*, shipment_id: int) -> int:
    """Tell each backer of a shipped tier to confirm receipt or report a problem."""
    shipment = Shipment.objects.select_related("tier", "campaign").get(pk=shipment_id)
    # A pledge paid over time is shipped once paid in full (the one rule, ``pledge_paid_in_full_q``).
    deliveries = (
        Delivery.objects.filter(tier_id=shipment.tier_id)
        .filter(pledge_paid_in_full_q("pledge__"))
        .select_related("backer")
        .order_by("id")
    )
    context = {"shipment": shipment, "tier": shipment.tier, "campaign": shipment.campaign}
    return emails_send_once(
        template="reward_shipped",
        object_id=shipment.pk,
        recipients=((d.backer, context) for d in deliveries.iterator()),
    )


def report_emails_send(*, report_id: int) -> int:
    """Tell the initiator a backer reported a problem, so they can answer before staff decide."""
    report = DeliveryReport.objects.select_related("delivery__campaign__initiator", "delivery__tier").get(pk=report_id)
    campaign = report.delivery.campaign
    context = {"report": report, "tier": report.delivery.tier, "campaign": campaign}
    return emails_send_once(
        template="delivery_reported", object_id=report.pk, recipients=[(campaign.initiator, context)]
    )


def decision_emails_send(*, report_id: int) -> int:
    """Tell the backer and the initiator how staff decided a report."""
    report = DeliveryReport.objects.select_related(
        "delivery__campaign__initiator", "delivery__backer", "delivery__tier"
    ).get(pk=report_id)
    delivery = report.delivery
    context = {"report": report, "delivery": delivery, "tier": delivery.tier, "campaign": delivery.campaign}
    return emails_send_once(
        template="delivery_report_decided",
        object_id=report.pk,
        recipients=[(delivery.backer, context), (delivery.campaign.initiator, context)],
    )


def not_delivered_emails_send(*, declaration_id: int) -> int:
    """Tell each backer of a tier staff declared not delivered that their part comes back, and the initiator why."""
    declaration = NonDelivery.objects.select_related("tier", "campaign__initiator").get(pk=declaration_id)
    deliveries = Delivery.objects.filter(tier_id=declaration.tier_id).select_related("backer").order_by("id")
    context = {"declaration": declaration, "tier": declaration.tier, "campaign": declaration.campaign}
    recipients = [(declaration.campaign.initiator, {**context, "to_initiator": True})]
    return emails_send_once(
        template="reward_not_delivered",
        object_id=declaration.pk,
        recipients=(*recipients, *((d.backer, context) for d in deliveries.iterator())),
    )


def survey_emails_send(*, survey_id: int) -> int:
    """Ask each backer of a reward to answer the campaign's survey."""
    survey = Survey.objects.select_related("campaign").get(pk=survey_id)
    backers = (
        Pledge.objects.filter(campaign_id=survey.campaign_id, status=PledgeStatus.RELEASED, reward__isnull=False)
        .filter(pledge_paid_in_full_q())  # a plan still being paid waits until it is paid in full
        .select_related("backer")
        .order_by("id")
    )
    context = {"survey": survey, "campaign": survey.campaign}
    return emails_send_once(
        template="survey_sent", object_id=survey.pk, recipients=((p.backer, context) for p in backers.iterator())
    )
