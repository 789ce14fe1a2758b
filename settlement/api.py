"""REST API for what settlement orchestrates: cancelling a campaign, and the ledger check for staff."""

from django.urls import path
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from crowdfund_site.api.fields import StrictCharField, StrictInputSerializer
from crowdfund_site.api.idempotency import idempotent
from crowdfund_site.api.schema import IDEMPOTENCY_KEY_HEADER, errors
from crowdfund_site.exceptions import NotAllowed
from projects.selectors import campaign_get_visible
from projects.serializers import CampaignDetailSerializer, campaign_detail_data

from .services import campaign_cancel
from .verification import ledger_verify


class CampaignCancelApi(APIView):
    class InputSerializer(StrictInputSerializer):
        reason = StrictCharField(
            required=False, allow_blank=True, default="", max_length=1000, help_text="Required for staff."
        )

    @extend_schema(
        operation_id="campaigns_cancel",
        parameters=[IDEMPOTENCY_KEY_HEADER],
        request=InputSerializer,
        responses={200: CampaignDetailSerializer, **errors(409)},
        description=(
            "Cancel a campaign that has not ended; every held pledge is refunded. The initiator may cancel "
            "their own campaign; staff may cancel any, with a reason."
        ),
    )
    @idempotent
    def post(self, request, pk: int):
        campaign = campaign_get_visible(user=request.user, campaign_id=pk)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        campaign = campaign_cancel(campaign=campaign, actor=request.user, reason=serializer.validated_data["reason"])
        return Response(campaign_detail_data(campaign))


class LedgerVerificationApi(APIView):
    class OutputSerializer(serializers.Serializer):
        ok = serializers.BooleanField(help_text="True when every money invariant holds.")
        problems = serializers.ListField(child=serializers.CharField(), help_text="Each broken invariant.")
        checked_at = serializers.DateTimeField()

    @extend_schema(
        operation_id="ledger_verification",
        responses={200: OutputSerializer},
        description="Check every money invariant of the ledger now (finance staff only).",
    )
    def get(self, request):
        if not request.user.has_perm("settlement.verify_ledger"):
            raise NotAllowed("Only finance staff can verify the ledger.", code="not_staff")
        problems = ledger_verify()
        data = {"ok": not problems, "problems": problems, "checked_at": timezone.now()}
        return Response(self.OutputSerializer(data).data)


urlpatterns = [
    path("campaigns/<api_id:pk>/cancel/", CampaignCancelApi.as_view(), name="campaign_cancel"),
    path("ledger/verification/", LedgerVerificationApi.as_view(), name="ledger_verification"),
]
