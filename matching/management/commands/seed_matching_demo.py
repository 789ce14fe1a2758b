"""Demo matching pools on top of ``seed_demo``'s campaigns: a running quadratic round and a fixed-ratio pool.

Both have a logo (drawn with Pillow, as the other demo pictures); the fixed-ratio pool takes
applications: one campaign's is accepted (it joined the pool), another's waits for a reviewer.
Safe to run again: it does nothing once the demo sponsor exists. Goes through the real services
(the pools are charged through the sandbox gateway into their own ledger accounts).
"""

from datetime import timedelta

from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from accounts.services import user_create
from matching.models import SPONSORS_GROUP, PoolMode
from matching.services import (
    pool_application_decide,
    pool_application_submit,
    pool_create,
    pool_fund,
    pool_logo_set,
    round_create,
)
from projects.demo_pictures import demo_logo
from projects.models import Campaign, CampaignStatus, Category
from settlement.verification import ledger_verify

DEMO_PASSWORD = "demo-pass-123"  # noqa: S105 - documented demo credential for local use only
TOKEN = "tok_visa"  # noqa: S105 - a public sandbox test token, not a secret


class Command(BaseCommand):
    help = "Create a demo sponsor with a quadratic and a fixed-ratio matching pool (once)."

    def handle(self, *args, **options):
        if User.objects.filter(username="sponsor").exists():
            self.stdout.write("Matching demo already present; nothing to do.")
            return
        live = list(Campaign.objects.filter(status=CampaignStatus.LIVE, currency="USD").order_by("pk"))
        if not live:
            self.stdout.write("No live campaigns to match; run seed_demo first.")
            return
        sponsor = user_create(
            username="sponsor",
            email="sponsor@example.com",
            password=DEMO_PASSWORD,
            display_name="Northern Arts Council",
        )
        sponsor.groups.add(Group.objects.get_or_create(name=SPONSORS_GROUP)[0])
        now = timezone.now()
        quadratic = pool_create(
            actor=sponsor,
            sponsor=sponsor,
            name="Northern Arts quadratic fund",
            description="Many small gifts count for more than a few large ones.",
            currency="USD",
            amount=500_000,
            mode=PoolMode.QUADRATIC,
            starts_at=now - timedelta(days=2),
            ends_at=now + timedelta(days=60),
            categories=list(Category.objects.filter(campaigns__in=live).distinct()),
        )
        pool_fund(pool=quadratic, actor=sponsor, payment_token=TOKEN)
        round_create(pool=quadratic, actor=sponsor, starts_at=now - timedelta(days=2), ends_at=now + timedelta(days=14))
        fixed = pool_create(
            actor=sponsor,
            sponsor=sponsor,
            name="Makers' 1:1 match",
            description="Every gift doubled, up to 50.00 per backer.",
            currency="USD",
            amount=200_000,
            mode=PoolMode.FIXED_RATIO,
            per_contribution_cap=5_000,
            per_backer_cap=5_000,
            per_campaign_cap=100_000,
            starts_at=now - timedelta(days=2),
            ends_at=now + timedelta(days=60),
            campaigns=live[:2],
            accepts_applications=True,
        )
        pool_fund(pool=fixed, actor=sponsor, payment_token=TOKEN)
        round_create(pool=fixed, actor=sponsor, starts_at=now - timedelta(days=2), ends_at=now + timedelta(days=14))
        pool_logo_set(pool=quadratic, actor=sponsor, upload=demo_logo(initials="NA", palette="art"))
        pool_logo_set(pool=fixed, actor=sponsor, upload=demo_logo(initials="1:1", palette="design"))
        fixed.refresh_from_db()  # funded by pool_fund
        self._applications(fixed, live[2:4])
        problems = ledger_verify()
        if problems:
            raise RuntimeError(f"Matching demo broke the ledger: {problems}")
        pages = ", ".join(reverse("matching:pool_detail", args=[pool.slug]) for pool in (quadratic, fixed))
        self.stdout.write(self.style.SUCCESS(f"Matching demo ready: sponsor / demo-pass-123, pools at {pages}"))

    def _applications(self, pool, campaigns):
        """The first campaign applied and a reviewer accepted it; the second's application is pending."""
        statements = (
            "Most of our backers give small amounts: a match lets the first run reach twice as many of them.",
            "We are a small team making everything by hand; matched gifts would pay for the first batch.",
        )
        reviewer = User.objects.filter(is_superuser=True).order_by("pk").first()
        for n, (campaign, statement) in enumerate(zip(campaigns, statements, strict=False)):
            application = pool_application_submit(
                pool=pool, campaign=campaign, actor=campaign.initiator, statement=statement
            )
            if n == 0 and reviewer is not None:
                pool_application_decide(
                    application_id=application.pk,
                    actor=reviewer,
                    accept=True,
                    reason="A maker project with many small backers: what this pool is for.",
                )
