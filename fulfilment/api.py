"""REST API of delivery: a backer's rewards, receipt and reports; shipments, answers and staff decisions."""

from datetime import date

from django.urls import path
from django.utils.translation import gettext
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from crowdfund_site.api.fields import PagePagination, StrictBooleanField, StrictCharField, StrictInputSerializer
from crowdfund_site.api.idempotency import idempotent
from crowdfund_site.api.schema import IDEMPOTENCY_KEY_HEADER, errors
from crowdfund_site.exceptions import NotAllowed, NotFound
from settlement.holdback import holdback_declare_not_delivered

from . import services
from .models import (
    DECIDE_PERMISSION,
    SURVEY_ANSWER_MAX_LENGTH,
    SURVEY_MAX_QUESTIONS,
    SURVEY_QUESTION_MAX_LENGTH,
    TEXT_MAX_LENGTH,
    Delivery,
    DeliveryReport,
    NonDelivery,
    Shipment,
    Survey,
    SurveyAnswer,
)
from .selectors import deliveries_of_backer, not_delivered_after, survey_answers_of_initiator, tiers_overdue_for_staff


class ShipmentSerializer(serializers.ModelSerializer):
    class Meta:
        model = Shipment
        fields = ["id", "tier", "shipped_on", "note", "tracking_reference", "silence_until", "settled_at"]


class DeliverySerializer(serializers.ModelSerializer):
    reward = serializers.CharField(source="tier.title")
    campaign = serializers.CharField(source="campaign.slug")
    shipped_on = serializers.SerializerMethodField()

    class Meta:
        model = Delivery
        fields = ["pledge", "campaign", "reward", "status", "part", "refunded_amount", "shipped_on"]

    def get_shipped_on(self, delivery) -> str | None:
        shipment = getattr(delivery.tier, "shipment", None)
        return shipment.shipped_on.isoformat() if shipment else None


class ReportSerializer(serializers.ModelSerializer):
    class Meta:
        model = DeliveryReport
        fields = ["id", "delivery", "message", "created_at", "answer", "answered_at", "decision", "decided_at"]


class MyDeliveriesApi(APIView):
    @extend_schema(
        operation_id="me_deliveries_list",
        responses={200: DeliverySerializer(many=True)},
        description="The caller's reward pledges of succeeded campaigns and where their delivery stands (latest 100).",
    )
    def get(self, request):
        return Response(DeliverySerializer(deliveries_of_backer(backer_id=request.user.pk)[:100], many=True).data)


class DeliveryConfirmApi(APIView):
    @extend_schema(
        operation_id="pledges_delivery_confirm",
        request=None,
        responses={200: DeliverySerializer, **errors(404, 409)},
        description="Confirm the pledge's reward was received (the backer only, once its tier shipped).",
    )
    def post(self, request, pk: int):
        return Response(DeliverySerializer(services.delivery_confirm(pledge_id=pk, actor=request.user)).data)


class DeliveryReportApi(APIView):
    class InputSerializer(StrictInputSerializer):
        message = StrictCharField(max_length=TEXT_MAX_LENGTH, help_text="What went wrong.")

    @extend_schema(
        operation_id="pledges_delivery_report",
        request=InputSerializer,
        responses={201: ReportSerializer, **errors(404, 409)},
        description="Report that the pledge's reward did not arrive (the backer only, once).",
    )
    def post(self, request, pk: int):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        report = services.delivery_report(pledge_id=pk, actor=request.user, **serializer.validated_data)
        return Response(ReportSerializer(report).data, status=201)


class TierShipApi(APIView):
    class InputSerializer(StrictInputSerializer):
        shipped_on = serializers.DateField()
        note = StrictCharField(max_length=TEXT_MAX_LENGTH, required=False, allow_blank=True, default="")
        tracking_reference = StrictCharField(max_length=120, required=False, allow_blank=True, default="")

    @extend_schema(
        operation_id="rewards_ship",
        request=InputSerializer,
        responses={201: ShipmentSerializer, **errors(404, 409)},
        description="Mark a reward tier of a succeeded campaign shipped (its initiator, once).",
    )
    def post(self, request, pk: int):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        shipment = services.tier_mark_shipped(tier_id=pk, actor=request.user, **serializer.validated_data)
        return Response(ShipmentSerializer(shipment).data, status=201)


class ReportAnswerApi(APIView):
    class InputSerializer(StrictInputSerializer):
        answer = StrictCharField(max_length=TEXT_MAX_LENGTH)

    @extend_schema(
        operation_id="delivery_reports_answer",
        request=InputSerializer,
        responses={200: ReportSerializer, **errors(404, 409)},
        description="Answer a backer's report on your campaign before staff decide it.",
    )
    def post(self, request, pk: int):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        report = services.report_answer(report_id=pk, actor=request.user, **serializer.validated_data)
        return Response(ReportSerializer(report).data)


class ReportDecideApi(APIView):
    class InputSerializer(StrictInputSerializer):
        upheld = StrictBooleanField(
            help_text="True refunds the backer's part of the holdback; false counts it delivered."
        )
        reason = StrictCharField(max_length=TEXT_MAX_LENGTH)

    @extend_schema(
        operation_id="delivery_reports_decide",
        request=InputSerializer,
        responses={200: ReportSerializer, **errors(404, 409)},
        description="Uphold or dismiss a non-delivery report (finance staff, once; audited).",
    )
    def post(self, request, pk: int):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        report = services.report_decide(report_id=pk, actor=request.user, **serializer.validated_data)
        return Response(ReportSerializer(report).data)


def _finance_only(request, what: str) -> None:
    if not request.user.has_perm(DECIDE_PERMISSION):
        raise NotAllowed(f"Only finance staff can {what}.", code="not_staff")


class NonDeliverySerializer(serializers.ModelSerializer):
    reward = serializers.IntegerField(source="tier_id")
    campaign = serializers.IntegerField(source="campaign_id")
    refunded_amount = serializers.IntegerField(
        help_text="Minor units refunded to the tier's backers; 0 until settled_at (the refunds run after the answer)."
    )

    class Meta:
        model = NonDelivery
        fields = ["id", "reward", "campaign", "reason", "declared_at", "settled_at", "refunded_amount"]


class TierNotDeliveredApi(APIView):
    class InputSerializer(StrictInputSerializer):
        reason = StrictCharField(
            max_length=TEXT_MAX_LENGTH, help_text="Why (audited; told to the tier's backers and the initiator)."
        )

    @extend_schema(
        operation_id="rewards_not_delivered",
        parameters=[IDEMPOTENCY_KEY_HEADER],
        request=InputSerializer,
        responses={201: NonDeliverySerializer, **errors(409)},
        description=(
            "Declare a reward tier never shipped past its delivery day and the grace not delivered (finance "
            "staff, once, audited): every backer of it gets their part of the delivery holdback back through "
            "the gateway, in batches started at once. 403 `not_staff`; 409 `already_declared` (refunds under "
            "way), `already_refunded`, `already_shipped`, `not_overdue`, `no_holdback`, "
            "`idempotency_key_reused`."
        ),
    )
    @idempotent
    def post(self, request, pk: int):
        _finance_only(request, "declare a reward not delivered")
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        declaration = holdback_declare_not_delivered(
            tier_id=pk, actor=request.user, reason=serializer.validated_data["reason"]
        )
        return Response(NonDeliverySerializer(declaration).data, status=201)


class OverdueDeliverySerializer(serializers.Serializer):
    reward = serializers.IntegerField(source="pk")
    title = serializers.CharField()
    campaign = serializers.IntegerField(source="campaign_id")
    campaign_slug = serializers.CharField(source="campaign.slug")
    currency = serializers.CharField(source="campaign.currency")
    delivery_due = serializers.DateField(help_text="Its estimated delivery; none given: the campaign's deadline.")
    declarable_from = serializers.SerializerMethodField()
    backers = serializers.IntegerField(source="backer_count")
    holdback_held = serializers.IntegerField(
        help_text="Its backers' parts of the holdback (minor units): what declaring it not delivered refunds."
    )

    def get_declarable_from(self, tier) -> date:
        return not_delivered_after(tier.delivery_due)


class OverdueDeliveriesApi(APIView):
    pagination_class = PagePagination

    @extend_schema(
        operation_id="deliveries_overdue",
        responses={200: OverdueDeliverySerializer(many=True), **errors(404)},
        description=(
            "Reward tiers never marked shipped past their delivery day and the grace, their holdback stuck "
            "(finance staff only), oldest promise first, 20 a page: each may be declared not delivered."
        ),
    )
    def get(self, request):
        _finance_only(request, "see overdue deliveries")
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(tiers_overdue_for_staff(), request, self)
        return paginator.get_paginated_response(OverdueDeliverySerializer(page, many=True).data)


class SurveyQuestionInputSerializer(StrictInputSerializer):
    reward = serializers.IntegerField(required=False, allow_null=True, help_text="Asked of this reward's backers only.")
    prompt = StrictCharField(max_length=SURVEY_QUESTION_MAX_LENGTH)


class SurveySerializer(serializers.ModelSerializer):
    questions = serializers.SerializerMethodField()

    class Meta:
        model = Survey
        fields = ["id", "campaign", "asks_address", "sent_at", "questions"]

    def get_questions(self, survey) -> list[dict]:
        return [{"id": q.pk, "reward": q.tier_id, "prompt": q.prompt} for q in survey.questions.all()]


class SurveyAnswerSerializer(serializers.ModelSerializer):
    class Meta:
        model = SurveyAnswer
        fields = ["pledge", "address", "address_erased_at", "answers", "answered_at"]


class CampaignSurveyApi(APIView):
    class InputSerializer(StrictInputSerializer):
        asks_address = StrictBooleanField(default=True)
        questions = serializers.ListField(
            child=SurveyQuestionInputSerializer(), max_length=SURVEY_MAX_QUESTIONS, required=False, default=list
        )

    @extend_schema(
        operation_id="campaigns_survey_send",
        request=InputSerializer,
        responses={201: SurveySerializer, **errors(404, 409)},
        description="Send the backer survey of a succeeded campaign (its initiator, once).",
    )
    def post(self, request, pk: int):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        survey = services.survey_send(
            campaign_id=pk,
            actor=request.user,
            asks_address=data["asks_address"],
            questions=[(q.get("reward"), q["prompt"]) for q in data["questions"]],
        )
        return Response(SurveySerializer(survey).data, status=201)


class CampaignSurveyAnswersApi(APIView):
    @extend_schema(
        operation_id="campaigns_survey_answers",
        responses={200: SurveyAnswerSerializer(many=True), **errors(404)},
        description="Every backer's answers with their shipping address (the campaign's initiator only; latest 1,000).",
    )
    def get(self, request, pk: int):
        found = survey_answers_of_initiator(campaign_id=pk, user_id=request.user.pk)
        if found is None:
            raise NotFound(gettext("No survey of a campaign of yours."), code="not_found")
        return Response(SurveyAnswerSerializer(found[2][:1000], many=True).data)


class PledgeSurveyAnswerApi(APIView):
    class InputSerializer(StrictInputSerializer):
        address = StrictCharField(max_length=SURVEY_ANSWER_MAX_LENGTH, required=False, allow_blank=True, default="")
        answers = serializers.DictField(
            child=StrictCharField(max_length=SURVEY_ANSWER_MAX_LENGTH, allow_blank=True),
            required=False,
            default=dict,
            help_text="Answers by question id.",
        )

    @extend_schema(
        operation_id="pledges_survey_answer",
        request=InputSerializer,
        responses={200: SurveyAnswerSerializer, **errors(404, 409)},
        description="Answer (or change the answer to) the survey for your reward pledge.",
    )
    def put(self, request, pk: int):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        answer = services.survey_answer(pledge_id=pk, actor=request.user, **serializer.validated_data)
        return Response(SurveyAnswerSerializer(answer).data)


urlpatterns = [
    path("campaigns/<api_id:pk>/survey/", CampaignSurveyApi.as_view(), name="campaign_survey"),
    path("campaigns/<api_id:pk>/survey/answers/", CampaignSurveyAnswersApi.as_view(), name="campaign_survey_answers"),
    path("pledges/<api_id:pk>/survey-answer/", PledgeSurveyAnswerApi.as_view(), name="pledge_survey_answer"),
    path("me/deliveries/", MyDeliveriesApi.as_view(), name="me_deliveries"),
    path("pledges/<api_id:pk>/delivery/received/", DeliveryConfirmApi.as_view(), name="pledge_delivery_confirm"),
    path("pledges/<api_id:pk>/delivery/report/", DeliveryReportApi.as_view(), name="pledge_delivery_report"),
    path("rewards/<api_id:pk>/shipment/", TierShipApi.as_view(), name="reward_ship"),
    path("rewards/<api_id:pk>/not-delivered/", TierNotDeliveredApi.as_view(), name="reward_not_delivered"),
    path("deliveries/overdue/", OverdueDeliveriesApi.as_view(), name="deliveries_overdue"),
    path("delivery-reports/<api_id:pk>/answer/", ReportAnswerApi.as_view(), name="delivery_report_answer"),
    path("delivery-reports/<api_id:pk>/decision/", ReportDecideApi.as_view(), name="delivery_report_decide"),
]
