"""REST API of the lending app: loan terms, schedule previews and the lender's loans, on the services."""

from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from crowdfund_site.api.fields import (
    AmountField,
    NewestFirstCursorPagination,
    StrictCharField,
    StrictInputSerializer,
    StrictIntegerField,
    query_params_check,
)
from crowdfund_site.api.idempotency import HEADER, idempotency_key_of, idempotent
from crowdfund_site.api.schema import IDEMPOTENCY_KEY_HEADER, errors
from crowdfund_site.bounds import field_max_length
from crowdfund_site.money import CURRENCY_CHOICES
from escrow.models import GatewayOperation
from projects.selectors import campaign_get_visible

from .models import MAX_GRACE_MONTHS, MAX_RATE_BPS, MAX_TERM_MONTHS, Loan, RepaymentType
from .selectors import lender_loan_summaries, lender_withdrawals, loan_of_borrower_get, loan_schedule_preview
from .services import lender_withdraw, loan_autopay_set, loan_repay_by_card, loan_terms_set


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


class LoanAutopayApi(APIView):
    class InputSerializer(StrictInputSerializer):
        payment_token = StrictCharField(
            max_length=field_max_length(Loan, "autopay_token"),
            help_text="The saved payment method to charge on each due date. Sandbox: tok_visa, tok_chargeDeclined, ...",
        )

    class OutputSerializer(serializers.Serializer):
        loan = serializers.IntegerField(source="pk")
        autopay = serializers.BooleanField(source="autopay_on", help_text="Whether installments are charged.")
        status = serializers.CharField(help_text="The loan's status.")

    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="loans_autopay_set",
        request=InputSerializer,
        responses={200: OutputSerializer, **errors(404, 409)},
        description=(
            "The borrower turns on automatic repayment: each installment is charged to `payment_token` on its "
            "due date, once (a declined charge is retried a few days later and the borrower is told by e-mail). "
            "Saving another token replaces the first. 404 for anyone else's loan; 409 `loan_not_payable`."
        ),
    )
    def put(self, request, pk: int):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        loan = loan_of_borrower_get(borrower=request.user, loan_id=pk)
        loan = loan_autopay_set(loan=loan, actor=request.user, payment_token=serializer.validated_data["payment_token"])
        return Response(self.OutputSerializer(loan).data)

    @extend_schema(
        operation_id="loans_autopay_delete",
        request=None,
        responses={200: OutputSerializer, **errors(404)},
        description=(
            "The borrower turns off automatic repayment: no installment is charged from now on (a charge "
            "already at the payment service is still recorded). Harmless when it is already off."
        ),
    )
    def delete(self, request, pk: int):
        loan = loan_of_borrower_get(borrower=request.user, loan_id=pk)
        loan = loan_autopay_set(loan=loan, actor=request.user, payment_token="")
        return Response(self.OutputSerializer(loan).data)


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


class WithdrawalSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    currency = serializers.CharField()
    amount = serializers.IntegerField()
    status = serializers.CharField(help_text="`pending` (being paid out), `paid` or `failed` (nothing moved).")
    gateway_reference = serializers.CharField(help_text="The payout's reference at the gateway; empty until paid.")
    created_at = serializers.DateTimeField()


class WithdrawalListApi(APIView):
    class InputSerializer(StrictInputSerializer):
        currency = serializers.ChoiceField(choices=CURRENCY_CHOICES, help_text="The currency of the balance.")
        amount = AmountField(help_text="What to withdraw, in minor units; at most the available balance.")

    permission_classes = [IsAuthenticated]
    pagination_class = NewestFirstCursorPagination

    @extend_schema(
        operation_id="lending_withdrawals_create",
        parameters=[IDEMPOTENCY_KEY_HEADER],
        request=InputSerializer,
        responses={201: WithdrawalSerializer, **errors(409, 503)},
        description=(
            "Withdraw money from the caller's lender balance in one currency to their bank. "
            "400 `amount_above_balance` (more than the balance less pending withdrawals); 409 "
            "`idempotency_key_reused` (the key was used for another amount or currency); 503 "
            "`payout_unavailable` (the withdrawal stays pending and is finished later)."
        ),
    )
    # Not ``@idempotent``: the withdrawal's own key (unique per lender) answers a retry itself.
    def post(self, request):
        idempotency_key = idempotency_key_of(request)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        withdrawal = lender_withdraw(lender=request.user, idempotency_key=idempotency_key, **serializer.validated_data)
        return Response(WithdrawalSerializer(withdrawal).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        operation_id="lending_withdrawals_list",
        responses={200: WithdrawalSerializer(many=True), **errors(404)},
        description="The caller's withdrawals, newest first, by cursor (`next` / `previous`). A bad cursor is a 404.",
    )
    def get(self, request):
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(lender_withdrawals(user=request.user), request, view=self)
        return paginator.get_paginated_response(WithdrawalSerializer(page, many=True).data)


urlpatterns = [
    path("campaigns/<api_id:pk>/loan-terms/", LoanTermsApi.as_view(), name="campaign_loan_terms"),
    path("campaigns/<api_id:pk>/loan-schedule/", LoanSchedulePreviewApi.as_view(), name="campaign_loan_schedule"),
    path("me/loans/", MyLoansApi.as_view(), name="my_loans"),
    path("lending/withdrawals/", WithdrawalListApi.as_view(), name="lending_withdrawals"),
    path("loans/<api_id:pk>/repayments/", LoanRepaymentApi.as_view(), name="loan_repayments"),
    path("loans/<api_id:pk>/autopay/", LoanAutopayApi.as_view(), name="loan_autopay"),
]
