"""Promotion API: the initiator's referral report and web address (slug) for one campaign."""

from django.core.validators import RegexValidator
from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from crowdfund_site.api.fields import StrictCharField, StrictInputSerializer
from crowdfund_site.api.schema import errors
from crowdfund_site.exceptions import NotFound
from projects.selectors import campaigns_of_initiator

from .models import CAMPAIGN_SLUG_CHANGES_MAX, CAMPAIGN_SLUG_MAX_LENGTH, CAMPAIGN_SLUG_MIN_LENGTH, CAMPAIGN_SLUG_PATTERN
from .selectors import campaign_old_slugs, campaign_slug_changes_left, referral_report
from .services import CAMPAIGN_SLUG_FORMAT_MESSAGE, campaign_slug_change


class SourceSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["tag", "site", "direct"])
    name = serializers.CharField(help_text="The tag, the referring site's host, or empty for direct.")
    label = serializers.CharField()
    clicks = serializers.IntegerField()
    sessions = serializers.IntegerField(help_text="Distinct visitors (browsers).")
    started = serializers.IntegerField(help_text="Signed-in visitors who opened the pledge form.")
    pledges = serializers.IntegerField()
    dropped = serializers.IntegerField(help_text="Started and no pledge.")
    amount = serializers.IntegerField(help_text="Minor units of the campaign's currency.")
    utm = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))


class ReferralReportSerializer(serializers.Serializer):
    campaign = serializers.IntegerField(source="campaign.pk")
    currency = serializers.CharField(source="campaign.currency")
    attribution_window_days = serializers.IntegerField()
    sources = SourceSerializer(many=True, source="rows")


class ReferralReportApi(APIView):
    @extend_schema(
        operation_id="campaigns_referrals_retrieve",
        responses={200: ReferralReportSerializer, **errors(401, 404)},
        description=(
            "Clicks, sessions, pledges, dropped pledges and amounts per referral tag, per referring site and "
            "direct (last arrival within 30 days before the pledge). The campaign's initiator only."
        ),
    )
    def get(self, request, pk: int):
        campaign = campaigns_of_initiator(user=request.user).filter(pk=pk).first()
        if campaign is None:
            raise NotFound("No such campaign.")
        report = referral_report(campaign=campaign)
        return Response(ReferralReportSerializer(report).data)


class CampaignSlugSerializer(serializers.Serializer):
    campaign = serializers.IntegerField(source="pk")
    slug = serializers.CharField()
    old_slugs = serializers.ListField(
        child=serializers.CharField(), help_text="Earlier slugs, newest first; each answers 301 to the current one."
    )
    changes_left = serializers.IntegerField(help_text="How many more times the initiator may change the slug.")


def _slug_data(campaign) -> dict:
    return CampaignSlugSerializer(
        {
            "pk": campaign.pk,
            "slug": campaign.slug,
            "old_slugs": campaign_old_slugs(campaign=campaign),
            "changes_left": campaign_slug_changes_left(campaign=campaign),
        }
    ).data


class CampaignSlugApi(APIView):
    class InputSerializer(StrictInputSerializer):
        # The length and format stated in the schema; who holds a slug is the service's to say.
        slug = StrictCharField(
            min_length=CAMPAIGN_SLUG_MIN_LENGTH,
            max_length=CAMPAIGN_SLUG_MAX_LENGTH,
            validators=[RegexValidator(CAMPAIGN_SLUG_PATTERN, message=CAMPAIGN_SLUG_FORMAT_MESSAGE)],
            help_text="Lower-case letters and digits joined by single hyphens, e.g. solar-lamps-2027.",
        )

    def _campaign(self, request, pk: int):
        campaign = campaigns_of_initiator(user=request.user).filter(pk=pk).first()
        if campaign is None:
            raise NotFound("No such campaign.")
        return campaign

    @extend_schema(
        operation_id="campaigns_slug_retrieve",
        responses={200: CampaignSlugSerializer, **errors(401, 404)},
        description="The campaign's slug, its old slugs and the renames left. The campaign's initiator only.",
    )
    def get(self, request, pk: int):
        return Response(_slug_data(self._campaign(request, pk)))

    @extend_schema(
        operation_id="campaigns_slug_update",
        request=InputSerializer,
        responses={200: CampaignSlugSerializer, **errors(400, 401, 404, 409)},
        description=(
            "Change the campaign's slug (its web address); the old slug keeps answering 301 to the new one. "
            "409 `slug_taken` if another campaign has or had it, 409 `slug_change_limit` after "
            f"{CAMPAIGN_SLUG_CHANGES_MAX} renames; the same slug again changes nothing. The campaign's initiator only."
        ),
    )
    def put(self, request, pk: int):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        campaign = self._campaign(request, pk)
        campaign = campaign_slug_change(campaign=campaign, actor=request.user, slug=serializer.validated_data["slug"])
        return Response(_slug_data(campaign))


urlpatterns = [
    path("campaigns/<api_id:pk>/slug/", CampaignSlugApi.as_view(), name="campaign_slug"),
    path("campaigns/<api_id:pk>/referrals/", ReferralReportApi.as_view(), name="campaign_referrals"),
]
