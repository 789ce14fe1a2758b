"""E-mails about pledges: receipts, refunds, and how the campaign ended for each backer.

Called by the thin tasks in ``pledges.tasks``; each loads what it needs by id.
"""

from crowdfund_site.emails import email_to, emails_send
from projects.models import Campaign, CampaignStatus

from .models import Pledge, PledgeStatus

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
    return emails_send([email_to(user=pledge.backer, template="pledge_receipt", context=context)])


def pledge_refund_email_send(*, pledge_id: int) -> int:
    """E-mail the backer that their pledge was refunded (cancelled by them, or by the platform)."""
    pledge = Pledge.objects.select_related("backer", "campaign").get(pk=pledge_id)
    if pledge.status not in (PledgeStatus.REFUNDED, PledgeStatus.CANCELLED):
        return 0
    context = {"pledge": pledge, "campaign": pledge.campaign}
    return emails_send([email_to(user=pledge.backer, template="pledge_refunded", context=context)])


def campaign_outcome_emails_send(*, campaign_id: int) -> int:
    """E-mail the initiator and every backer how a settled campaign ended, with their own amount.

    Each backer gets one message listing what happened to their pledges (released or refunded).
    """
    campaign = Campaign.objects.select_related("initiator").get(pk=campaign_id)
    initiator_template, backer_template = OUTCOME_TEMPLATES.get(campaign.status, (None, None))
    messages = []
    if initiator_template:
        messages.append(email_to(user=campaign.initiator, template=initiator_template, context={"campaign": campaign}))
    if backer_template:
        messages.extend(_backer_messages(campaign, backer_template))
    return emails_send(messages)


def _backer_messages(campaign: Campaign, template: str):
    settled = (
        Pledge.objects.filter(campaign=campaign, status__in=(PledgeStatus.RELEASED, PledgeStatus.REFUNDED))
        .select_related("backer")
        .order_by("backer_id", "id")
        .iterator(chunk_size=1_000)
    )
    backer, total = None, 0
    for pledge in settled:
        if backer is not None and pledge.backer_id != backer.pk:
            yield email_to(user=backer, template=template, context={"campaign": campaign, "amount": total})
            total = 0
        backer = pledge.backer
        total += pledge.amount
    if backer is not None:
        yield email_to(user=backer, template=template, context={"campaign": campaign, "amount": total})
