"""Data for the API fuzzer (``test_api_schemathesis``): campaigns, rewards, a pledge, a matching pool.

In the tests, not in ``crowdfund_site.api.testing``, because it builds them with the apps'
services and ``crowdfund_site`` imports no app.
"""

from datetime import timedelta

from django.contrib.auth.models import Group
from django.utils import timezone
from rest_framework.authtoken.models import Token

from accounts.services import user_create
from matching.models import SPONSORS_GROUP, PoolMode
from matching.services import pool_create, pool_fund, round_create
from pledges.services import pledge_create
from projects.models import Campaign, CampaignStatus, Category, RewardShippingRule, RewardTier
from projects.services import comment_create

# The pool's slug, fixed for the pool operations' path in ``crowdfund_site/api/schemathesis.toml``.
FUZZ_POOL_SLUG = "fuzz-pool"


def fuzz_data_create() -> dict:
    """Create what a fuzzer needs to reach past 404s: a signed-in backer, campaigns, rewards, a pledge.

    The backer is a sponsor too, of a funded quadratic pool (slug ``FUZZ_POOL_SLUG``, which
    ``schemathesis.toml`` gives the pool operations) matching the live campaign, with a round
    open: so the sponsors' operations (open a round, choose the leftover, close, create another
    pool) reach their rules instead of a 404 or a 403.

    Returns the backer's token and the ids created, for ``manage.py shell`` in a fresh database.
    """
    initiator = user_create(username="fuzz-initiator", email="initiator@example.com")
    backer = user_create(username="fuzz-backer", email="backer@example.com", password="fuzz-password-123")
    category, _ = Category.objects.get_or_create(slug="fuzz-games", defaults={"name": "Fuzz games"})
    common = {"summary": "Summary.", "description": "Story.", "category": category, "goal": 100_000}
    live = Campaign.objects.create(
        initiator=initiator,
        title="Live",
        slug="live",
        status=CampaignStatus.LIVE,
        launched_at=timezone.now(),
        deadline=timezone.now() + timedelta(days=30),
        platform_fee_bps=500,
        **common,
    )
    reward = RewardTier.objects.create(campaign=live, title="Poster", minimum_amount=1, quantity_limit=1000)
    # A reward that ships anywhere, so that a generated country code can be taken.
    shipped = RewardTier.objects.create(campaign=live, title="Mug", minimum_amount=1, ships=True)
    RewardShippingRule.objects.create(reward=shipped, destination="anywhere", cost=500)
    draft = Campaign.objects.create(initiator=backer, title="Draft", slug="draft", **common)
    RewardTier.objects.create(campaign=draft, title="Sticker", minimum_amount=100)
    pledge = pledge_create(
        backer=backer,
        campaign=live,
        amount=2_500,
        currency="USD",
        payment_token="tok_visa",
        idempotency_key="fuzz-seed",
        reward=reward,
    )
    comment_create(campaign=live, actor=backer, body="First!")
    backer.groups.add(Group.objects.get_or_create(name=SPONSORS_GROUP)[0])
    now = timezone.now()
    pool = pool_create(
        actor=backer,
        sponsor=backer,
        name="Fuzz pool",
        currency="USD",
        amount=100_000,
        mode=PoolMode.QUADRATIC,
        starts_at=now - timedelta(days=1),
        ends_at=now + timedelta(days=60),
        campaigns=[live],
    )
    assert pool.slug == FUZZ_POOL_SLUG, pool.slug
    pool_fund(pool=pool, actor=backer, payment_token="tok_visa")
    matching_round = round_create(
        pool=pool, actor=backer, starts_at=now - timedelta(hours=1), ends_at=now + timedelta(days=7)
    )
    token, _ = Token.objects.get_or_create(user=backer)
    return {
        "token": token.key,
        "live": live.pk,
        "draft": draft.pk,
        "reward": reward.pk,
        "pledge": pledge.pk,
        "pool": pool.slug,
        "round": matching_round.pk,
    }
