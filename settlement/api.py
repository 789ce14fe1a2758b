"""REST API for what settlement orchestrates: cancelling a campaign, where its money is, the ledger check."""

from django.urls import path
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from crowdfund_site.api.fields import StrictCharField, StrictInputSerializer
from crowdfund_site.api.idempotency import idempotent
from crowdfund_site.api.schema import IDEMPOTENCY_KEY_HEADER, errors
from crowdfund_site.exceptions import NotAllowed
from projects.selectors import campaign_get_visible
from projects.serializers import CampaignDetailSerializer, campaign_detail_data

from .money import campaign_money
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


class MoneyReleaseSerializer(serializers.Serializer):
    about = serializers.CharField(help_text="The released transactions' reference; empty for the backers' pledges.")
    day = serializers.DateField()
    amount = serializers.IntegerField(help_text="Minor units.")
    transactions = serializers.IntegerField()
    first_at = serializers.DateTimeField()
    last_at = serializers.DateTimeField()


class CheckpointSerializer(serializers.Serializer):
    sequence = serializers.IntegerField()
    hash = serializers.CharField(help_text="SHA-256, hex, chained to the previous checkpoint's hash.")
    sealed_at = serializers.DateTimeField(source="created_at")
    last_transaction_id = serializers.IntegerField()
    sealed_total = serializers.IntegerField(help_text="Ledger transactions of the whole platform sealed so far.")


class CampaignMoneyApi(APIView):
    permission_classes = [AllowAny]

    class OutputSerializer(serializers.Serializer):
        currency = serializers.CharField()
        raised = serializers.IntegerField(help_text="From backers into escrow (minor units, as every amount here).")
        matched = serializers.IntegerField(help_text="From sponsors' matching pools into escrow.")
        released = serializers.IntegerField(help_text="Out of escrow to what the campaign is owed.")
        refunded = serializers.IntegerField(help_text="Out of escrow back to backers.")
        matched_returned = serializers.IntegerField(help_text="Matched money returned to its pool.")
        adjusted = serializers.IntegerField(help_text="Net of any other postings on the escrow account.")
        held = serializers.IntegerField(help_text="In escrow now.")
        fees = serializers.IntegerField(help_text="The platform's fee, taken on released money only.")
        paid_out = serializers.IntegerField()
        owed = serializers.IntegerField(help_text="Released and not paid out yet.")
        holdback_kept = serializers.IntegerField(help_text="Delivery holdback kept at success.")
        holdback_released = serializers.IntegerField(help_text="Holdback released as backers received rewards.")
        holdback_refunded = serializers.IntegerField(
            help_text="Holdback refunded to backers whose report was upheld or whose reward was declared not delivered."
        )
        holdback_held = serializers.IntegerField(help_text="Holdback still waiting on delivery.")
        releases = MoneyReleaseSerializer(many=True, help_text="Per tranche (what it is about) and day.")
        transactions = serializers.IntegerField(help_text="The campaign's ledger transactions.")
        sealed_transactions = serializers.IntegerField(help_text="How many of them a checkpoint seals.")
        checkpoint = CheckpointSerializer(allow_null=True, help_text="The platform's latest checkpoint.")

    @extend_schema(
        operation_id="campaigns_money",
        responses={200: OutputSerializer},
        description=(
            "Where the campaign's money is, summed from its ledger entries: raised, matched, released per "
            "tranche and day, refunded, held, fees, paid out, and the latest sealed checkpoint."
        ),
    )
    def get(self, request, pk: int):
        campaign = campaign_get_visible(user=request.user, campaign_id=pk)
        return Response(self.OutputSerializer(campaign_money(campaign=campaign)).data)


urlpatterns = [
    path("campaigns/<api_id:pk>/cancel/", CampaignCancelApi.as_view(), name="campaign_cancel"),
    path("campaigns/<api_id:pk>/money/", CampaignMoneyApi.as_view(), name="campaign_money"),
    path("ledger/verification/", LedgerVerificationApi.as_view(), name="ledger_verification"),
]
