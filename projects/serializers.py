"""How campaigns read in the API, shared by every app's API that answers with campaigns."""

from django.core.files.storage import default_storage
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from crowdfund_site.images import rendition_url

from .models import Campaign, Category, RewardTier
from .pricing import price_now, quote_sign


class CategorySerializer(serializers.ModelSerializer):
    class Meta:
        model = Category
        fields = ["id", "slug", "name"]


class PictureSizeSerializer(serializers.Serializer):
    width = serializers.IntegerField()
    height = serializers.IntegerField()
    webp = serializers.CharField(help_text="URL of this size as WebP.")
    jpeg = serializers.CharField(help_text="URL of this size as JPEG.")


class PictureSerializer(serializers.Serializer):
    """A stored picture (a descriptor from ``crowdfund_site.images.image_store``) with its sizes' URLs."""

    token = serializers.SerializerMethodField(help_text="The picture's name within its campaign.")
    alt = serializers.CharField()
    width = serializers.IntegerField(help_text="Of the widest size.")
    height = serializers.IntegerField(help_text="Of the widest size.")
    sizes = serializers.SerializerMethodField()

    def get_token(self, descriptor: dict) -> str:
        return descriptor["key"].rsplit("/", 1)[-1]

    @extend_schema_field(PictureSizeSerializer(many=True))
    def get_sizes(self, descriptor: dict) -> list[dict]:
        widest, base = descriptor["width"], default_storage.url(descriptor["key"])
        return [
            {
                "width": width,
                "height": max(1, round(descriptor["height"] * width / widest)),
                "webp": rendition_url(descriptor, width, "webp", storage=default_storage, base=base),
                "jpeg": rendition_url(descriptor, width, "jpg", storage=default_storage, base=base),
            }
            for width in descriptor["widths"]
        ]


def _picture_or_none(descriptor: dict) -> dict | None:
    return PictureSerializer(descriptor).data if descriptor else None


class ShippingRuleSerializer(serializers.Serializer):
    destination = serializers.CharField(
        help_text="An ISO 3166-1 alpha-2 country code (DE), a region (eu, north_america) or anywhere."
    )
    cost = serializers.IntegerField(help_text="In minor units of the campaign's currency; 0 ships free.")


class PriceStepSerializer(serializers.Serializer):
    price = serializers.IntegerField(help_text="In minor units.")
    until_claimed = serializers.IntegerField(allow_null=True, help_text="This price until this many are claimed.")
    until = serializers.DateTimeField(allow_null=True, help_text="Or this price until then.")


class RewardSerializer(serializers.ModelSerializer):
    """A reward tier; load it with ``shipping_rules`` prefetched to list many without a query each."""

    image = serializers.SerializerMethodField()
    remaining = serializers.IntegerField(allow_null=True, read_only=True, help_text="Empty: unlimited.")
    sold_out = serializers.BooleanField(read_only=True)
    shipping_rules = serializers.SerializerMethodField(
        help_text="Where a physical reward ships and what it costs; the most specific rule for a country applies."
    )
    available_now = serializers.BooleanField(read_only=True, help_text="Inside its availability window now.")
    price_now = serializers.IntegerField(
        source="price_now_amount",
        read_only=True,
        help_text="Its price now: its current price step's, else minimum_amount.",
    )
    price_steps = serializers.SerializerMethodField(help_text="Early prices before minimum_amount, in order.")
    price_quote = serializers.SerializerMethodField(
        help_text="Send with a pledge to keep price_now for 15 minutes; empty for a tier without price steps."
    )

    class Meta:
        model = RewardTier
        fields = [
            "id",
            "title",
            "description",
            "minimum_amount",
            "quantity_limit",
            "claimed_count",
            "remaining",
            "sold_out",
            "estimated_delivery",
            "available_from",
            "available_until",
            "available_now",
            "price_now",
            "price_steps",
            "price_quote",
            "image",
            "ships",
            "shipping_rules",
        ]

    @extend_schema_field(PriceStepSerializer(many=True))
    def get_price_steps(self, reward: RewardTier) -> list:
        return reward.price_steps or []

    def get_price_quote(self, reward: RewardTier) -> str:
        return quote_sign(reward, price_now(reward)) if reward.price_steps else ""

    @extend_schema_field(PictureSerializer(allow_null=True))
    def get_image(self, reward: RewardTier) -> dict | None:
        return _picture_or_none(reward.image)

    @extend_schema_field(ShippingRuleSerializer(many=True))
    def get_shipping_rules(self, reward: RewardTier) -> list[dict]:
        if not reward.ships:
            return []
        rules = sorted(reward.shipping_rules.all(), key=lambda rule: rule.pk)
        return [{"destination": rule.destination, "cost": rule.cost} for rule in rules]


class CampaignSerializer(serializers.ModelSerializer):
    """A campaign as every list shows it: running totals from the row itself, no per-row queries."""

    category = CategorySerializer()
    initiator = serializers.SerializerMethodField()
    percent_funded = serializers.IntegerField(read_only=True)
    cover = serializers.SerializerMethodField()

    class Meta:
        model = Campaign
        fields = [
            "id",
            "slug",
            "title",
            "summary",
            "category",
            "initiator",
            "currency",
            "goal",
            "pledged_amount",
            "backer_count",
            "percent_funded",
            "funding_model",
            "status",
            "duration_days",
            "launch_on_approval",
            "launched_at",
            "deadline",
            "created_at",
            "cover",
        ]

    @extend_schema_field(PictureSerializer(allow_null=True))
    def get_cover(self, campaign: Campaign) -> dict | None:
        return _picture_or_none(campaign.cover)

    def get_initiator(self, campaign: Campaign) -> str:
        return campaign.initiator.public_name


class CampaignDetailSerializer(CampaignSerializer):
    rewards = RewardSerializer(many=True, read_only=True)
    gallery = PictureSerializer(many=True, read_only=True)

    class Meta(CampaignSerializer.Meta):
        fields = [
            *CampaignSerializer.Meta.fields,
            "description",
            "description_html",
            "faq",
            "faq_html",
            "risks",
            "risks_html",
            "review_feedback",
            "delivery_holdback_bps",
            "rewards",
            "gallery",
        ]
        extra_kwargs = {
            "description_html": {"help_text": "The story as sanitised HTML (rendered from the Markdown on save)."},
            "faq_html": {"help_text": "The FAQ as sanitised HTML."},
            "risks_html": {"help_text": "Risks and challenges as sanitised HTML."},
        }


def campaign_detail_data(campaign: Campaign) -> dict:
    campaign = (
        Campaign.objects.select_related("category", "initiator")
        .prefetch_related("rewards__shipping_rules")
        .get(pk=campaign.pk)
    )
    return CampaignDetailSerializer(campaign).data
