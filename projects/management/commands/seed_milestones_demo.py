"""Demo data for staged release: a campaign in the middle of its milestones.

Its first tranche was released when it succeeded; the initiator has shown proof for the second,
which its backers are voting on now (a few have voted). Run by ``seed_demo`` after the people
exist; does nothing once the campaign is there.
"""

from datetime import timedelta

from django.core.management.base import BaseCommand
from django.utils import timezone

from accounts.models import User
from pledges.services import pledge_create
from projects.milestones.services import (
    MilestoneInput,
    campaign_create_with_milestones,
    milestone_submit_proof,
    milestone_vote,
)
from projects.models import Campaign, Category
from projects.services import campaign_approve, campaign_submit_for_review
from settlement.services import campaigns_close_due, settlement_run

TITLE = "Repair café in a shipping container"


class Command(BaseCommand):
    help = "Create a campaign with one milestone released and one being voted on (once)."

    def handle(self, *args, **options):
        if Campaign.objects.filter(title=TITLE).exists():
            return
        initiator = User.objects.get(username="initiator")
        staff = User.objects.filter(is_superuser=True).order_by("pk").first()
        backers = list(User.objects.filter(username__startswith="backer").order_by("pk")[:8])
        category = Category.objects.get_or_create(slug="design", defaults={"name": "Design"})[0]
        today = timezone.localdate()
        campaign = campaign_create_with_milestones(
            initiator=initiator,
            title=TITLE,
            summary="Tools, benches and volunteers to fix what the neighbourhood would throw away.",
            description="We release the money milestone by milestone: you vote on each step's proof.",
            category=category,
            goal=400_000,
            duration_days=21,
            milestones=[
                MilestoneInput(
                    "Container bought", "The bill of sale and photos on site", today + timedelta(days=20), 3_000
                ),
                MilestoneInput("Benches and tools", "Photos of the fitted workshop", today + timedelta(days=60), 3_000),
                MilestoneInput(
                    "Open to the public", "The first repair evening, with photos", today + timedelta(days=120), 4_000
                ),
            ],
        )
        campaign_submit_for_review(campaign=campaign, actor=initiator)
        campaign = campaign_approve(campaign=campaign, reviewer=staff, note="A clear plan.")
        for n, backer in enumerate(backers):
            pledge_create(
                backer=backer,
                campaign=campaign,
                amount=50_000 + 2_500 * n,
                currency=campaign.currency,
                payment_token="tok_visa",  # noqa: S106 - the sandbox test card, not a secret
                idempotency_key=f"demo-milestones-{n}",
            )
        # Demo only: the deadline has passed, so it closes and its first tranche is released for real.
        Campaign.objects.filter(pk=campaign.pk).update(deadline=timezone.now() - timedelta(minutes=1))
        for campaign_id in campaigns_close_due(enqueue_settlement=False):
            settlement_run(campaign_id=campaign_id)
        second = campaign.milestones.get(position=2)
        second = milestone_submit_proof(
            milestone=second,
            actor=initiator,
            proof_text="The container is on site, benches fitted: photos in the update.",
        )
        for backer, approve in zip(backers[:3], [True, True, False], strict=True):
            milestone_vote(milestone=second, backer=backer, approve=approve)
        self.stdout.write(f"Milestones demo: {campaign.get_absolute_url()} (one tranche released, one being voted on)")
