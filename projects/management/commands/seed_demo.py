"""Fill an empty database with demo data so the site looks alive: categories, people,
campaigns in every interesting state, and pledges made through the real services.

Safe to run again: it does nothing once the demo initiator exists.
"""

import random
from datetime import date, timedelta

from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from accounts.models import User
from accounts.services import user_create
from pledges.services import pledge_create
from projects.models import Campaign, Category, FundingModel
from projects.services import (
    campaign_approve,
    campaign_create,
    campaign_submit_for_review,
    reward_tier_create,
)
from risk.services import risk_assess_unscored_in_review
from settlement.services import campaigns_close_due, settlement_run
from settlement.verification import ledger_verify

DEMO_PASSWORD = "demo-pass-123"  # noqa: S105 - documented demo credential for local use only

CATEGORIES = ["Games", "Technology", "Design", "Film", "Music", "Food", "Publishing"]

CAMPAIGNS = [
    # title, category, goal (USD cents), model, share of goal pledged, fate
    ("Tiny Dungeon: a pocket roguelike board game", "Games", 1_500_000, FundingModel.ALL_OR_NOTHING, 1.3, "live"),
    ("Solar-powered e-ink weather station", "Technology", 2_500_000, FundingModel.ALL_OR_NOTHING, 0.45, "live"),
    ("Handmade walnut desk organiser", "Design", 600_000, FundingModel.FLEXIBLE, 0.8, "live"),
    ("Community darkroom for the old mill", "Film", 900_000, FundingModel.ALL_OR_NOTHING, 0.15, "live"),
    ("Field recordings of the northern coast", "Music", 300_000, FundingModel.ALL_OR_NOTHING, 1.1, "succeeded"),
    ("A cookbook of grandmothers' dumplings", "Food", 800_000, FundingModel.ALL_OR_NOTHING, 0.3, "failed"),
    ("Illustrated atlas of imaginary islands", "Publishing", 1_200_000, FundingModel.FLEXIBLE, 0.6, "succeeded"),
    ("Open-source modular synthesizer kit", "Music", 2_000_000, FundingModel.ALL_OR_NOTHING, 0.0, "in_review"),
]

STORY = (
    "We have been building this for two years in evenings and weekends.\n\n"
    "Your pledge pays for the first production run. If we do not reach the goal, nobody is "
    "charged a cent: every pledge is refunded in full.\n\nThank you for being part of it."
)
RISKS = "Our supplier could be late. We have a second one lined up, and we will post an update every month."


class Command(BaseCommand):
    help = "Create demo users, campaigns and pledges (once)."

    def handle(self, *args, **options):
        if User.objects.filter(username="initiator").exists():
            self.stdout.write("Demo data already present; nothing to do.")
            return
        rng = random.Random(2026)
        staff, initiator, backers = self._people()
        categories = {
            name: Category.objects.get_or_create(slug=name.lower(), defaults={"name": name})[0] for name in CATEGORIES
        }
        for title, category, goal, model, share, fate in CAMPAIGNS:
            campaign = self._campaign(initiator, staff, title, categories[category], goal, model, fate)
            if fate != "in_review":
                self._pledges(campaign, backers, int(goal * share), rng)
            if fate in ("succeeded", "failed"):
                # Demo only: pretend the deadline has passed so the closing path runs for real.
                Campaign.objects.filter(pk=campaign.pk).update(deadline=timezone.now() - timedelta(minutes=1))
        # The campaign left in review shows its risk score at once, not after beat's next round.
        risk_assess_unscored_in_review()
        for campaign_id in campaigns_close_due(enqueue_settlement=False):
            settlement_run(campaign_id=campaign_id)
        # Debt campaigns and their loans, lent by the people made here (lending's own command).
        call_command("seed_lending_demo")
        problems = ledger_verify()
        if problems:
            raise RuntimeError(f"Demo data broke the ledger: {problems}")
        call_command("seed_matching_demo", stdout=self.stdout)
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo data ready. Log in as admin / initiator / backer1..backer8 with password {DEMO_PASSWORD}"
            )
        )

    def _people(self):
        staff = user_create(
            username="admin", email="admin@example.com", password=DEMO_PASSWORD, display_name="Ada Admin"
        )
        User.objects.filter(pk=staff.pk).update(is_staff=True, is_superuser=True)
        staff.refresh_from_db()
        initiator = user_create(
            username="initiator", email="initiator@example.com", password=DEMO_PASSWORD, display_name="Ines Initiator"
        )
        backers = [
            user_create(
                username=f"backer{n}",
                email=f"backer{n}@example.com",
                password=DEMO_PASSWORD,
                display_name=f"Backer {n}",
            )
            for n in range(1, 9)
        ]
        return staff, initiator, backers

    @transaction.atomic
    def _campaign(self, initiator, staff, title, category, goal, model, fate):
        campaign = campaign_create(
            initiator=initiator,
            title=title,
            summary=f"{title} — made carefully, shipped to backers first.",
            description=STORY,
            risks=RISKS,
            category=category,
            goal=goal,
            funding_model=model,
            duration_days=21,
        )
        for n, (name, minimum, limit) in enumerate(
            [("Early bird", goal // 100, 25), ("Supporter", goal // 50, None), ("Patron", goal // 10, 5)]
        ):
            reward_tier_create(
                campaign=campaign,
                actor=initiator,
                title=name,
                description=f"{name} edition, with our thanks in the credits.",
                minimum_amount=max(minimum, 100),
                quantity_limit=limit,
                estimated_delivery=date.today() + timedelta(days=90 + 30 * n),
            )
        campaign_submit_for_review(campaign=campaign, actor=initiator)
        if fate == "in_review":
            return campaign
        # Approval puts it live at once (launch_on_approval is the default).
        return campaign_approve(campaign=campaign, reviewer=staff, note="Looks good.")

    def _pledges(self, campaign, backers, target, rng):
        rewards = list(campaign.rewards.all())
        pledged, n = 0, 0
        while pledged < target:
            backer = backers[n % len(backers)]
            reward = rng.choice([*rewards, None])
            if reward is not None:
                reward.refresh_from_db()
                if reward.sold_out:
                    reward = None
            amount = max(reward.minimum_amount if reward else 1000, rng.randrange(1000, max(2000, target // 6), 100))
            pledge_create(
                backer=backer,
                campaign=campaign,
                amount=amount,
                currency=campaign.currency,
                payment_token="tok_visa",  # noqa: S106 - the sandbox test card, not a secret
                idempotency_key=f"demo-{campaign.pk}-{n}",
                reward=reward,
            )
            pledged += amount
            n += 1
