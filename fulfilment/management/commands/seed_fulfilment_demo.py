"""Demo data for delivery: a succeeded campaign whose holdback is partly released and partly refunded.

Its mugs shipped five weeks ago: two backers confirmed, one reported the parcel lost and staff
upheld it (refunded), one stayed silent (received after 30 days), so the mugs' holdback is
settled; the posters have not shipped, so their holdback is still held. Run by ``seed_demo``
after the people exist; does nothing once the campaign is there.
"""

from datetime import timedelta

from django.core.management.base import BaseCommand
from django.utils import timezone

from accounts.models import User
from fulfilment.models import Shipment
from fulfilment.services import (
    deliveries_resolve_silent,
    delivery_confirm,
    delivery_report,
    report_answer,
    report_decide,
    survey_send,
    tier_mark_shipped,
)
from pledges.services import pledge_create
from projects.demo_pictures import demo_picture
from projects.media import campaign_cover_set
from projects.models import Campaign, Category
from projects.services import campaign_approve, campaign_create, campaign_submit_for_review, reward_tier_create
from settlement.holdback import holdbacks_settle_ready
from settlement.services import campaigns_close_due, settlement_run

TITLE = "Hand-thrown mugs from the river clay"


class Command(BaseCommand):
    help = "Create a succeeded campaign whose delivery holdback is partly released and partly refunded (once)."

    def handle(self, *args, **options):
        if Campaign.objects.filter(title=TITLE).exists():
            return
        initiator = User.objects.get(username="initiator")
        staff = User.objects.filter(is_superuser=True).order_by("pk").first()
        backers = list(User.objects.filter(username__startswith="backer").order_by("pk")[:6])
        category = Category.objects.get_or_create(slug="design", defaults={"name": "Design"})[0]
        today = timezone.localdate()
        campaign = campaign_create(
            initiator=initiator,
            title=TITLE,
            summary="A small run of mugs dug, thrown and fired by the river, posted to every backer.",
            description="We keep 10 % in escrow until you tell us your mug arrived.",
            risks="Kilns crack and parcels get lost: the holdback covers you.",
            category=category,
            goal=30_000,
            duration_days=14,
            delivery_holdback_bps=1_000,
        )
        mug = reward_tier_create(
            campaign=campaign, actor=initiator, title="A mug", minimum_amount=3_500, estimated_delivery=today
        )
        poster = reward_tier_create(campaign=campaign, actor=initiator, title="A kiln poster", minimum_amount=2_000)
        campaign_cover_set(
            campaign=campaign, actor=initiator, upload=demo_picture(title=TITLE, category_slug="design"), alt=TITLE
        )
        campaign_submit_for_review(campaign=campaign, actor=initiator)
        campaign = campaign_approve(campaign=campaign, reviewer=staff, note="Clear and small.")
        pledges = []
        for n, backer in enumerate(backers):
            tier = mug if n < 4 else poster
            pledges.append(
                pledge_create(
                    backer=backer,
                    campaign=campaign,
                    amount=tier.minimum_amount + 1_000 * n,
                    currency=campaign.currency,
                    payment_token="tok_visa",  # noqa: S106 - the sandbox test card, not a secret
                    idempotency_key=f"demo-fulfilment-{n}",
                    reward=tier,
                )
            )
        # Demo only: the deadline has passed, so it closes and succeeds for real, keeping its holdback.
        Campaign.objects.filter(pk=campaign.pk).update(deadline=timezone.now() - timedelta(minutes=1))
        for campaign_id in campaigns_close_due(enqueue_settlement=False):
            settlement_run(campaign_id=campaign_id)
        survey_send(campaign_id=campaign.pk, actor=initiator, asks_address=True, questions=[(mug.pk, "Glaze colour?")])
        tier_mark_shipped(
            tier_id=mug.pk, actor=initiator, shipped_on=today, note="Posted second class.", tracking_reference="RM123"
        )
        # Demo only: as if the mugs shipped five weeks ago.
        Shipment.objects.filter(tier=mug).update(
            shipped_on=today - timedelta(days=35), silence_until=today - timedelta(days=5)
        )
        for pledge in pledges[:2]:
            delivery_confirm(pledge_id=pledge.pk, actor=pledge.backer)
        lost = pledges[2]
        report = delivery_report(pledge_id=lost.pk, actor=lost.backer, message="The parcel never came.")
        report_answer(report_id=report.pk, actor=initiator, answer="The carrier lost it, sorry.")
        report_decide(report_id=report.pk, actor=staff, upheld=True, reason="The carrier confirmed the loss.")
        deliveries_resolve_silent(today=today)
        holdbacks_settle_ready()
        self.stdout.write(f"Fulfilment demo: {campaign.get_absolute_url()} (holdback partly released and refunded)")
