from datetime import timedelta

import factory
from django.conf import settings
from django.utils import timezone

from accounts.tests.factories import UserFactory
from projects.markdown import markdown_render
from projects.models import Campaign, CampaignStatus, Category, RewardTier


class CategoryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Category
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Category {n}")
    slug = factory.LazyAttribute(lambda c: c.name.lower().replace(" ", "-"))


# A cover's descriptor as projects.media stores it; its files do not exist (pages only link them).
TEST_COVER = {"key": "test/cover", "widths": [400, 800], "width": 800, "height": 450, "alt": "The thing, pictured"}


class CampaignFactory(factory.django.DjangoModelFactory):
    """A draft campaign; use ``LiveCampaignFactory`` for one taking pledges."""

    class Meta:
        model = Campaign

    initiator = factory.SubFactory(UserFactory)
    title = factory.Sequence(lambda n: f"Campaign {n}")
    slug = factory.Sequence(lambda n: f"campaign-{n}")
    summary = "A thing worth making."
    description = "The whole story of the thing, and why it matters."
    description_html = factory.LazyAttribute(lambda c: markdown_render(c.description))
    risks = "The factory we work with could be late; a second one is ready."
    risks_html = factory.LazyAttribute(lambda c: markdown_render(c.risks))
    category = factory.SubFactory(CategoryFactory)
    currency = "USD"
    goal = 100_000
    duration_days = 30
    cover = factory.LazyFunction(lambda: dict(TEST_COVER))
    # Tests exercise approval and launch as separate steps unless they ask otherwise.
    launch_on_approval = False


class LiveCampaignFactory(CampaignFactory):
    status = CampaignStatus.LIVE
    launched_at = factory.LazyFunction(timezone.now)
    deadline = factory.LazyFunction(lambda: timezone.now() + timedelta(days=30))
    platform_fee_bps = factory.LazyFunction(lambda: settings.PLATFORM_FEE_BPS)


class RewardTierFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = RewardTier

    campaign = factory.SubFactory(CampaignFactory)
    title = factory.Sequence(lambda n: f"Reward {n}")
    description = "Something nice."
    minimum_amount = 2_500
