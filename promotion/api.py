"""Promotion API: the initiator's referral report for one campaign."""

from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from crowdfund_site.api.schema import errors
from crowdfund_site.exceptions import NotFound
from projects.selectors import campaigns_of_initiator

from .selectors import referral_report


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


urlpatterns = [
    path("campaigns/<api_id:pk>/referrals/", ReferralReportApi.as_view(), name="campaign_referrals"),
]
