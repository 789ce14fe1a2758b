"""REST API of the lending app: loan terms, schedule previews and the lender's loans, on the services."""

from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from crowdfund_site.api.fields import (
    AmountField,
    StrictCharField,
    StrictInputSerializer,
    StrictIntegerField,
    query_params_check,
)
from crowdfund_site.api.idempotency import HEADER, idempotent
from crowdfund_site.api.schema import IDEMPOTENCY_KEY_HEADER, errors
from crowdfund_site.bounds import field_max_length
from escrow.models import GatewayOperation
from projects.selectors import campaign_get_visible

from .models import MAX_GRACE_MONTHS, MAX_RATE_BPS, MAX_TERM_MONTHS, RepaymentType
from .selectors import lender_loan_summaries, loan_of_borrower_get, loan_schedule_preview
from .services import loan_repay_by_card, loan_terms_set


class LoanTermsSerializer(serializers.Serializer):
    rate_bps = serializers.IntegerField()
    term_months = serializers.IntegerField()
    repayment_type = serializers.ChoiceField(choices=RepaymentType.choices)
    grace_months = serializers.IntegerField()
    servicing_fee_bps = serializers.IntegerField()


class LoanTermsApi(APIView):
    class InputSerializer(StrictInputSerializer):
        rate_bps = StrictIntegerField(min_value=0, max_value=MAX_RATE_BPS, help_text="Annual rate, basis points.")
        term_months = StrictIntegerField(min_value=1, max_value=MAX_TERM_MONTHS)
        repayment_type = serializers.ChoiceField(choices=RepaymentType.choices)
        grace_months = StrictIntegerField(min_value=0, max_value=MAX_GRACE_MONTHS, default=0)

    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="campaigns_loan_terms_set",
        request=InputSerializer,
        responses={200: LoanTermsSerializer, **errors(409)},
        description=(
            "Set the loan terms of a debt campaign while it is a draft or changes are requested "
            "(initiator only). 409 `terms_fixed` once it has been submitted."
        ),
    )
    def put(self, request, pk: int):
        campaign = campaign_get_visible(user=request.user, campaign_id=pk)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        terms = loan_terms_set(campaign=campaign, actor=request.user, **serializer.validated_data)
        return Response(LoanTermsSerializer(terms).data)


class LoanSchedulePreviewApi(APIView):
    class FilterSerializer(serializers.Serializer):
        amount = AmountField(help_text="What the lender would lend, in minor units of the campaign's currency.")

        def to_internal_value(self, data):
            # Query strings carry text; the strict integer field wants a number.
            data = {k: data.get(k) for k in data}
            if str(data.get("amount", "")).isdigit():
                data["amount"] = int(data["amount"])
            return super().to_internal_value(data)

    class OutputSerializer(serializers.Serializer):
        class InstallmentSerializer(serializers.Serializer):
            number = serializers.IntegerField()
            due_date = serializers.DateField()
            principal = serializers.IntegerField()
            interest = serializers.IntegerField()
            total = serializers.IntegerField(source="to_lenders")

        currency = serializers.CharField()
        amount = serializers.IntegerField()
        terms = LoanTermsSerializer()
        total_interest = serializers.IntegerField()
        total_back = serializers.IntegerField()
        installments = InstallmentSerializer(many=True)

    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="campaigns_loan_schedule",
        parameters=[FilterSerializer],
        responses={200: OutputSerializer, **errors(404)},
        description="What a lender of `amount` would get back each month if the loan were funded today.",
    )
    def get(self, request, pk: int):
        query_params_check(request, ["amount"])
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        campaign = campaign_get_visible(user=request.user, campaign_id=pk)
        preview = loan_schedule_preview(campaign=campaign, amount=filters.validated_data["amount"])
        return Response(self.OutputSerializer(preview).data)


class RepaymentSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    loan = serializers.IntegerField(source="loan_id")
    amount = serializers.IntegerField()
    fee = serializers.IntegerField(help_text="Servicing fee, kept by the platform.")
    late_fee = serializers.IntegerField()
    interest = serializers.IntegerField()
    principal = serializers.IntegerField()
    to_lenders = serializers.IntegerField()
    created_at = serializers.DateTimeField()


class LoanRepaymentApi(APIView):
    class InputSerializer(StrictInputSerializer):
        amount = AmountField(help_text="What to pay now, in minor units; at most what is owed.")
        payment_token = StrictCharField(
            max_length=field_max_length(GatewayOperation, "token"),
            help_text="Sandbox: tok_visa, tok_chargeDeclined, ...",
        )

    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="loans_repayments_create",
        parameters=[IDEMPOTENCY_KEY_HEADER],
        request=InputSerializer,
        responses={201: RepaymentSerializer, **errors(402, 409, 503)},
        description=(
            "The borrower pays on their loan by card: fees, then interest, then principal of the oldest "
            "installment, paid out to the lenders at once. 400 `amount_above_owed`; 409 `loan_not_payable`."
        ),
    )
    @idempotent
    def post(self, request, pk: int):
        loan = loan_of_borrower_get(borrower=request.user, loan_id=pk)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        repayment = loan_repay_by_card(
            loan=loan,
            actor=request.user,
            amount=serializer.validated_data["amount"],
            payment_token=serializer.validated_data["payment_token"],
            idempotency_key=request.headers[HEADER].strip(),
        )
        return Response(RepaymentSerializer(repayment).data, status=status.HTTP_201_CREATED)


class MyLoansApi(APIView):
    class OutputSerializer(serializers.Serializer):
        loan = serializers.IntegerField(source="share.loan_id")
        campaign = serializers.IntegerField(source="share.loan.campaign_id")
        title = serializers.CharField(source="share.loan.campaign.title")
        currency = serializers.CharField()
        status = serializers.CharField()
        principal_lent = serializers.IntegerField()
        principal_received = serializers.IntegerField()
        income_received = serializers.IntegerField(help_text="Interest and late fees received.")
        outstanding = serializers.IntegerField()
        next_due_date = serializers.DateField(allow_null=True)
        days_late = serializers.IntegerField()
        realised_return = serializers.FloatField(
            allow_null=True, help_text="XIRR of what was lent and received, a year's rate (0.08 is 8 %)."
        )

    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="me_loans_list",
        responses={200: OutputSerializer(many=True)},
        description="The loans the caller lent to, newest first.",
    )
    def get(self, request):
        return Response(self.OutputSerializer(lender_loan_summaries(user=request.user), many=True).data)


urlpatterns = [
    path("campaigns/<api_id:pk>/loan-terms/", LoanTermsApi.as_view(), name="campaign_loan_terms"),
    path("campaigns/<api_id:pk>/loan-schedule/", LoanSchedulePreviewApi.as_view(), name="campaign_loan_schedule"),
    path("me/loans/", MyLoansApi.as_view(), name="my_loans"),
    path("loans/<api_id:pk>/repayments/", LoanRepaymentApi.as_view(), name="loan_repayments"),
]
