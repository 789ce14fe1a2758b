"""How campaigns read in the API, shared by every app's API that answers with campaigns."""

from rest_framework import serializers

from .models import Campaign, Category, RewardTier


class CategorySerializer(serializers.ModelSerializer):
    class Meta:
        model = Category
        fields = ["id", "slug", "name"]


class RewardSerializer(serializers.ModelSerializer):
    remaining = serializers.IntegerField(allow_null=True, read_only=True, help_text="Empty: unlimited.")
    sold_out = serializers.BooleanField(read_only=True)

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
        ]


class CampaignSerializer(serializers.ModelSerializer):
    """A campaign as every list shows it: running totals from the row itself, no per-row queries."""

    category = CategorySerializer()
    initiator = serializers.SerializerMethodField()
    percent_funded = serializers.IntegerField(read_only=True)

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
        ]

    def get_initiator(self, campaign: Campaign) -> str:
        return campaign.initiator.public_name


class CampaignDetailSerializer(CampaignSerializer):
    rewards = RewardSerializer(many=True, read_only=True)

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
            "rewards",
        ]
        extra_kwargs = {
            "description_html": {"help_text": "The story as sanitised HTML (rendered from the Markdown on save)."},
            "faq_html": {"help_text": "The FAQ as sanitised HTML."},
            "risks_html": {"help_text": "Risks and challenges as sanitised HTML."},
        }


def campaign_detail_data(campaign: Campaign) -> dict:
    campaign = Campaign.objects.select_related("category", "initiator").prefetch_related("rewards").get(pk=campaign.pk)
    return CampaignDetailSerializer(campaign).data
