"""E-mails of matching pools, each sent once (``accounts.emails``)."""

from accounts.emails import emails_send_once

from .models import PoolApplication


def application_decided_email_send(*, application_id: int) -> int:
    """Tell the initiator whether staff accepted or declined their campaign's application, and why."""
    application = PoolApplication.objects.select_related("pool", "campaign__initiator").get(pk=application_id)
    context = {"application": application, "pool": application.pool, "campaign": application.campaign}
    return emails_send_once(
        template="matching_application_decided",
        object_id=application.pk,
        recipients=[(application.campaign.initiator, context)],
    )
