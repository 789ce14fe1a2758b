"""Fill an empty database with demo data so the site looks like a platform: six initiators with
avatars, 24 campaigns across every category with covers drawn here (no network), one campaign in
each state, pledges spread over each campaign's weeks so charts and forecasts have a shape,
updates and comments; then the lending and matching demos on top.

Everything goes through the real services (pledges are charged through the sandbox and held in
escrow; settlement closes the ended ones). Only timestamps are moved back afterwards, demo only,
so that a campaign launched "12 days ago" has 12 days of pledges. Safe to run again: it does
nothing once the demo initiator exists.
"""

import random
from datetime import date, timedelta

from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from accounts.avatars import user_avatar_set
from accounts.models import User
from accounts.services import user_create
from pledges.models import Pledge
from pledges.services import pledge_create
from projects.demo_pictures import demo_picture
from projects.media import campaign_cover_set, campaign_gallery_add, reward_image_set
from projects.models import DEFAULT_CATEGORY_NAMES, Campaign, CampaignUpdate, Category, Comment
from projects.services import (
    campaign_approve,
    campaign_create,
    campaign_reject,
    campaign_request_changes,
    campaign_submit_for_review,
    campaign_suspend,
    campaign_update_create,
    comment_create,
    reward_tier_create,
)
from risk.services import risk_assess_unscored_in_review
from settlement.services import campaign_cancel, campaigns_close_due, settlement_run
from settlement.verification import ledger_verify

from ._demo_content import CAMPAIGNS, INITIATORS

DEMO_PASSWORD = "demo-pass-123"  # noqa: S105 - documented demo credential for local use only
TOKEN = "tok_visa"  # noqa: S105 - the sandbox test card, not a secret
# backer1..backer8 log in; the others only fill the backer lists.
BACKER_NAMES = [
    "Ana Sousa", "Ben Carter", "Chen Wei", "Dara Kelly", "Elif Demir", "Femi Bello", "Greta Lund", "Hugo Brun",
    "Isla Grant", "Jun Park", "Kofi Mensah", "Lena Vogel", "Marco Rossi", "Nadia Haddad", "Oskar Nilsson",
    "Priya Nair", "Quinn Hayes", "Rosa Díaz", "Sami Aalto", "Tara Singh", "Umar Farouk", "Vera Novak",
    "Wen Li", "Ximena Ruiz", "Yusuf Kaya", "Zoe Martin", "Aiko Sato", "Bruno Costa", "Clara Weiss", "Diego Lima",
]  # fmt: skip
COMMENTS = [
    "Backed! Can't wait to see this arrive.",
    "Will there be an international shipping option?",
    "Love the progress photos, keep them coming.",
    "Just upped my pledge. Good luck with the last stretch!",
    "Is the delivery date still on track?",
]
UPDATES = [
    ("Thank you for the first week!", "We passed a third of the goal in seven days. Here is what happens next."),
    ("Prototype news", "The latest sample arrived this morning; photos and notes from the workshop inside."),
]


# A physical reward's shipping, in minor units: cheapest at home, then the EU, North America, the world.
DEMO_SHIPPING_RULES = [
    {"destination": "DE", "cost": 500},
    {"destination": "eu", "cost": 900},
    {"destination": "north_america", "cost": 1_400},
    {"destination": "anywhere", "cost": 1_900},
]
# Where the demo's backers of a physical reward live, in turn (no random draw: the demo's other
# figures come from a seeded generator this would shift).
DEMO_SHIPPING_COUNTRIES = ["DE", "FR", "US", "CN", "JP", "NL"]


class Command(BaseCommand):
    help = "Create demo users, campaigns and pledges (once)."

    def handle(self, *args, **options):
        if User.objects.filter(username="initiator").exists():
            self.stdout.write("Demo data already present; nothing to do.")
            return
        rng = random.Random(2026)
        staff, initiators, backers = self._people()
        categories = {
            name.lower(): Category.objects.get_or_create(slug=name.lower(), defaults={"name": name})[0]
            for name in DEFAULT_CATEGORY_NAMES
        }
        now = timezone.now()
        for spec in CAMPAIGNS:
            self._campaign(spec, staff, initiators, backers, categories, now, rng)
        # The campaign left in review shows its risk score at once, not after beat's next round.
        risk_assess_unscored_in_review()
        for campaign_id in campaigns_close_due(enqueue_settlement=False):
            settlement_run(campaign_id=campaign_id)
        # Debt campaigns and their loans, lent by the people made here (lending's own command).
        call_command("seed_lending_demo")
        # A campaign in the middle of its milestones (one tranche released, one being voted on).
        call_command("seed_milestones_demo", stdout=self.stdout)
        # A succeeded campaign whose delivery holdback is partly released and partly refunded.
        call_command("seed_fulfilment_demo", stdout=self.stdout)
        problems = ledger_verify()
        if problems:
            raise RuntimeError(f"Demo data broke the ledger: {problems}")
        call_command("seed_matching_demo", stdout=self.stdout)
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo data ready. Log in as admin / initiator / maya / tomas / lin / ruth / kenji / "
                f"backer1..backer8 with password {DEMO_PASSWORD}"
            )
        )

    def _people(self):
        staff = user_create(
            username="admin", email="admin@example.com", password=DEMO_PASSWORD, display_name="Ada Admin"
        )
        User.objects.filter(pk=staff.pk).update(is_staff=True, is_superuser=True)
        staff.refresh_from_db()
        initiators = {}
        for username, name, bio in INITIATORS:
            user = user_create(username=username, email=f"{username}@example.com", display_name=name)
            User.objects.filter(pk=user.pk).update(bio=bio)
            user_avatar_set(user=user, upload=demo_picture(title=name[:1], category_slug=username, size=(256, 256)))
            initiators[username] = user
        backers = [
            user_create(username=f"backer{n}", email=f"backer{n}@example.com", display_name=name)
            for n, name in enumerate(BACKER_NAMES, start=1)
        ]
        # One password hash (with its salt) for every demo login: hashing is deliberately slow,
        # and 40 of them would be most of the seeding time.
        User.objects.filter(pk__in=[u.pk for u in [*initiators.values(), *backers]]).update(password=staff.password)
        return staff, initiators, backers

    def _campaign(self, spec, staff, initiators, backers, categories, now, rng):
        title, slug, owner, goal, model, share, fate, age, summary, story, rewards = spec
        initiator = initiators[owner]
        duration = max(30, age + 7) if fate not in ("succeeded", "failed") else 30
        with transaction.atomic():
            campaign = campaign_create(
                initiator=initiator,
                title=title,
                summary=summary,
                description="\n\n".join(story),
                risks=(
                    f"{title} depends on suppliers we do not control: a late part could delay delivery by a "
                    "month or two. We have a second supplier lined up and will post an update every month."
                ),
                category=categories[slug],
                goal=goal,
                funding_model=model,
                duration_days=duration,
                launch_on_approval=fate != "approved",
            )
            tiers = [
                reward_tier_create(
                    campaign=campaign,
                    actor=initiator,
                    title=name,
                    description=f"{name}: {summary[:1].lower()}{summary[1:]}",
                    minimum_amount=minimum,
                    quantity_limit=limit,
                    estimated_delivery=date.today() + timedelta(days=90 + 30 * n),
                    # The dearest tier is a thing in a box, shipped at a cost by destination.
                    ships=n == len(rewards) - 1,
                    shipping_rules=DEMO_SHIPPING_RULES if n == len(rewards) - 1 else None,
                )
                for n, (name, minimum, limit) in enumerate(rewards)
            ]
        campaign_cover_set(
            campaign=campaign,
            actor=initiator,
            upload=demo_picture(title=title, category_slug=slug),
            alt=f"{title}: the cover picture",
        )
        if owner == "initiator" and fate == "live" and share > 1:
            # One campaign shows a gallery and reward pictures.
            for n in range(3):
                campaign_gallery_add(
                    campaign=campaign,
                    actor=initiator,
                    upload=demo_picture(title=f"{title} #{n + 1}", category_slug=slug),
                    alt=f"{title}, picture {n + 1}",
                )
            for tier in tiers:
                reward_image_set(
                    reward=tier,
                    actor=initiator,
                    upload=demo_picture(title=tier.title, category_slug=slug, size=(400, 300)),
                    alt=tier.title,
                )
        if fate == "draft":
            return
        campaign_submit_for_review(campaign=campaign, actor=initiator)
        if fate == "in_review":
            return
        if fate == "changes_requested":
            campaign_request_changes(
                campaign=campaign, reviewer=staff, reason="Please say who holds the rights to the two archive songs."
            )
            return
        if fate == "rejected":
            campaign_reject(campaign=campaign, reviewer=staff, reason="Promises financial returns: not allowed here.")
            return
        campaign = campaign_approve(campaign=campaign, reviewer=staff, note="Looks good.")
        if fate == "approved":
            return
        launched_at = now - timedelta(days=age, hours=rng.randint(1, 20))
        deadline = launched_at + timedelta(days=duration)
        self._pledges(campaign, tiers, backers, int(goal * share), launched_at, min(now, deadline), rng)
        # Demo only: the campaign went live ``age`` days ago (an ended one is closed below).
        Campaign.objects.filter(pk=campaign.pk).update(launched_at=launched_at, deadline=deadline)
        self._news(campaign, initiator, launched_at, now, rng)
        if fate == "cancelled":
            campaign_cancel(
                campaign=campaign, actor=initiator, reason="Our paper mill closed.", enqueue_settlement=False
            )
            settlement_run(campaign_id=campaign.pk)
        elif fate == "suspended":
            campaign_suspend(campaign=campaign, actor=staff, reason="Waiting for the beach permit to be confirmed.")

    def _pledges(self, campaign, tiers, backers, target, start, end, rng):
        """Pledge about ``target`` from different backers, then spread the pledges from ``start`` to ``end``.

        Like real campaigns: a rush at launch, a quieter middle, a push before the deadline.
        """
        if target <= 0:
            return
        count = max(4, min(18, len(backers), target // 40_000))
        people = rng.sample(backers, count)
        pledged, ids = 0, []
        for n, backer in enumerate(people):
            left = target - pledged
            if left <= 0:
                break
            amount = max(500, round(left / (count - n) * rng.uniform(0.6, 1.4) / 100) * 100)
            affordable = [t for t in tiers if t.minimum_amount <= amount and not t.sold_out]
            reward = rng.choice(affordable) if affordable and rng.random() < 0.8 else None
            pledge = pledge_create(
                backer=backer,
                campaign=campaign,
                amount=amount,
                currency=campaign.currency,
                payment_token=TOKEN,
                idempotency_key=f"demo-{campaign.pk}-{n}",
                reward=reward,
                shipping_country=DEMO_SHIPPING_COUNTRIES[n % len(DEMO_SHIPPING_COUNTRIES)] if reward else "",
            )
            if reward is not None:
                reward.refresh_from_db(fields=["claimed_count"])
            pledged += amount
            ids.append(pledge.pk)
        span = (end - start).total_seconds()
        for pledge_id in ids:
            phase = rng.random()
            if phase < 0.4:
                fraction = rng.uniform(0, 0.15)
            elif phase < 0.75:
                fraction = rng.uniform(0.15, 0.85)
            else:
                fraction = rng.uniform(0.85, 0.99)
            when = start + timedelta(seconds=span * fraction)
            Pledge.objects.filter(pk=pledge_id).update(created_at=when, held_at=when)

    def _news(self, campaign, initiator, launched_at, now, rng):
        backer_ids = list(campaign.pledges.values_list("backer_id", flat=True)[:3])
        span = (now - launched_at).total_seconds()
        for n, (title, body) in enumerate(UPDATES[: 1 + (span > 10 * 86400)]):
            update = campaign_update_create(campaign=campaign, actor=initiator, title=title, body=body)
            when = launched_at + timedelta(seconds=span * (0.35 + 0.4 * n))
            CampaignUpdate.objects.filter(pk=update.pk).update(created_at=when)
        for n, backer_id in enumerate(backer_ids):
            comment = comment_create(
                campaign=campaign,
                actor=User.objects.get(pk=backer_id),
                body=COMMENTS[(campaign.pk + n) % len(COMMENTS)],
            )
            Comment.objects.filter(pk=comment.pk).update(
                created_at=launched_at + timedelta(seconds=span * rng.random())
            )
        if backer_ids:
            reply = comment_create(campaign=campaign, actor=initiator, body="Thank you all, it means a lot!")
            Comment.objects.filter(pk=reply.pk).update(created_at=now - timedelta(hours=rng.randint(1, 30)))
