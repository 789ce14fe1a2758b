"""E-mails about pledges: receipts, changes, refunds, and how the campaign ended for each backer.

Called by the thin tasks in ``pledges.tasks``; each loads what it needs by id. Each e-mail goes
to each person once per pledge or campaign, however often its task runs (``emails_send_once``).
"""

from accounts.emails import emails_send_once
from crowdfund_site.money import format_amount
from projects.models import Campaign, CampaignStatus

from .models import Pledge, PledgeChange, PledgeChangeStatus, PledgeStatus

OUTCOME_TEMPLATES = {
    CampaignStatus.SUCCEEDED: ("campaign_succeeded_initiator", "campaign_succeeded_backer"),
    CampaignStatus.FAILED: ("campaign_failed_initiator", "campaign_failed_backer"),
    CampaignStatus.CANCELLED: (None, "campaign_cancelled_backer"),
}


def pledge_receipt_send(*, pledge_id: int) -> int:
    """E-mail the backer a receipt for their held pledge."""
    pledge = Pledge.objects.select_related("backer", "campaign", "reward").get(pk=pledge_id)
    if pledge.status not in (PledgeStatus.HELD, PledgeStatus.RELEASED):
        return 0
    context = {"pledge": pledge, "campaign": pledge.campaign}
    template = "late_pledge_receipt" if pledge.is_late else "pledge_receipt"
    return emails_send_once(template=template, object_id=pledge.pk, recipients=[(pledge.backer, context)])


def pledge_refund_email_send(*, pledge_id: int) -> int:
    """E-mail the backer that their pledge was refunded (cancelled by them, or by the platform)."""
    pledge = Pledge.objects.select_related("backer", "campaign").get(pk=pledge_id)
    if pledge.status not in (PledgeStatus.REFUNDED, PledgeStatus.CANCELLED):
        return 0
    context = {"pledge": pledge, "campaign": pledge.campaign}
    return emails_send_once(template="pledge_refunded", object_id=pledge.pk, recipients=[(pledge.backer, context)])


def pledge_change_email_send(*, change_id: int) -> int:
    """E-mail the backer that their pledge changed: old and new amount and reward, what moved.

    Only a change that was made (done); one refused or still being charged sends nothing.
    """
    change = PledgeChange.objects.select_related("pledge__backer", "pledge__campaign", "from_reward", "to_reward").get(
        pk=change_id
    )
    if change.status != PledgeChangeStatus.DONE:
        return 0
    pledge = change.pledge
    difference = change.difference
    context = {
        "change": change,
        "pledge": pledge,
        "campaign": pledge.campaign,
        "charged": format_amount(difference, pledge.currency) if difference > 0 else "",
        "refunded": format_amount(-difference, pledge.currency) if difference < 0 else "",
    }
    return emails_send_once(template="pledge_changed", object_id=change.pk, recipients=[(pledge.backer, context)])


def campaign_outcome_emails_send(*, campaign_id: int) -> int:
    """E-mail the initiator and every backer how a settled campaign ended, with their own amount.

    Each backer gets one message listing what happened to their pledges (released or refunded).
    """
    campaign = Campaign.objects.select_related("initiator").get(pk=campaign_id)
    initiator_template, backer_template = OUTCOME_TEMPLATES.get(campaign.status, (None, None))
    sent = 0
    if initiator_template:
        sent += emails_send_once(
            template=initiator_template,
            object_id=campaign.pk,
            recipients=[(campaign.initiator, {"campaign": campaign})],
        )
    if backer_template:
        sent += emails_send_once(
            template=backer_template, object_id=campaign.pk, recipients=_backer_recipients(campaign)
        )
    return sent


def _backer_recipients(campaign: Campaign):
    """Yield (backer, context) once per backer, with the total of their settled pledges."""
    settled = (
        Pledge.objects.filter(campaign=campaign, status__in=(PledgeStatus.RELEASED, PledgeStatus.REFUNDED))
        .select_related("backer")
        .order_by("backer_id", "id")
        .iterator(chunk_size=1_000)
    )
    backer, total = None, 0
    for pledge in settled:
        if backer is not None and pledge.backer_id != backer.pk:
            yield backer, {"campaign": campaign, "amount": total}
            total = 0
        backer = pledge.backer
        total += pledge.amount
    if backer is not None:
        yield backer, {"campaign": campaign, "amount": total}


def installments_ended_email_send(*, pledge_id: int) -> int:
    """E-mail the backer that their plan ended after its last declined installment: what the pledge is now."""
    pledge = Pledge.objects.select_related("backer", "campaign", "reward").get(pk=pledge_id)
    failed = pledge.installments.filter(status="failed").first() if pledge.installment_plan else None
    if failed is None:
        return 0
    context = {"pledge": pledge, "campaign": pledge.campaign, "installment": failed}
    return emails_send_once(template="installments_ended", object_id=pledge.pk, recipients=[(pledge.backer, context)])
