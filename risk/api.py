"""REST API for the risk app: a campaign's funding forecast, recommendations, and allocation previews.

The forecast follows the campaigns API's visibility rule: a campaign the caller may not see is a
404. Recommendations are for the signed-in caller. The allocation preview is for staff and writes
nothing.
"""

from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from crowdfund_site.api.fields import (
    AmountField,
    IdField,
    StrictInputSerializer,
    StrictIntegerField,
    query_params_check,
)
from crowdfund_site.exceptions import InvalidInput, NotAllowed
from crowdfund_site.money import CURRENCY_CHOICES
from projects.models import Campaign
from projects.selectors import campaign_get_visible
from projects.serializers import CampaignSerializer

from .selectors import forecast_for_campaign, live_campaign_pool_cached, recommendations_for
from .services import risk_allocate

MAX_RECOMMENDATIONS = 50
MAX_ALLOCATION_PARTS = 1_000
MAX_WEIGHT = 10**12


class ForecastApi(APIView):
    class OutputSerializer(serializers.Serializer):
        class ConePointSerializer(serializers.Serializer):
            at = serializers.DateTimeField()
            low = serializers.IntegerField(help_text="Lower edge of the band, minor units.")
            median = serializers.IntegerField()
            high = serializers.IntegerField(help_text="Upper edge of the band, minor units.")

        campaign = serializers.IntegerField(source="campaign_id")
        currency = serializers.CharField()
        goal = serializers.IntegerField()
        pledged = serializers.IntegerField(help_text="Pledged so far, minor units.")
        method = serializers.ChoiceField(
            choices=["curve", "prior", "closed"],
            help_text="`curve`: fitted to this campaign's pledges; `prior`: similar campaigns; `closed`: final.",
        )
        predicted_total = serializers.IntegerField(help_text="Predicted total at the deadline, minor units.")
        low = serializers.IntegerField(help_text="Lower edge of the band at the deadline, minor units.")
        high = serializers.IntegerField(help_text="Upper edge of the band at the deadline, minor units.")
        band = serializers.ListField(
            child=serializers.FloatField(), help_text="The quantiles `low` and `high` stand for, e.g. [0.1, 0.9]."
        )
        probability_of_goal = serializers.FloatField(min_value=0, max_value=1)
        amplitude = serializers.FloatField(allow_null=True, help_text="A in F(t) = A(1 - e^(-kt)), minor units.")
        rate_per_day = serializers.FloatField(allow_null=True, help_text="k in F(t) = A(1 - e^(-kt)), per day.")
        cone = ConePointSerializer(many=True)
        explanation = serializers.CharField()

    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="campaigns_forecast",
        responses={200: OutputSerializer},
        description=(
            "Where the campaign's funding is heading: the predicted total at the deadline with a band, "
            "the probability of reaching the goal, the cone to draw, and the method in words."
        ),
    )
    def get(self, request, pk: int):
        campaign = campaign_get_visible(user=request.user, campaign_id=pk)
        return Response(self.OutputSerializer(forecast_for_campaign(campaign)).data)


class RecommendationListApi(APIView):
    class FilterSerializer(serializers.Serializer):
        limit = serializers.IntegerField(
            min_value=1, max_value=MAX_RECOMMENDATIONS, required=False, default=10, help_text="How many, best first."
        )

    class OutputSerializer(serializers.Serializer):
        campaign = CampaignSerializer()
        score = serializers.FloatField()
        reason = serializers.CharField(help_text='Why, in words, e.g. "because you backed 3 Games campaigns".')

    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="recommendations_list",
        parameters=[FilterSerializer],
        responses={200: OutputSerializer(many=True)},
        description=(
            "Live campaigns for the caller, best first, each with its reason: categories they backed or "
            "declared, then safety, progress, time left and popularity. Without history: popular campaigns "
            "and those ending soon. Totals may be up to a minute old."
        ),
    )
    def get(self, request):
        query_params_check(request, list(self.FilterSerializer().fields))
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        ranked = recommendations_for(request.user, filters.validated_data["limit"], pool=live_campaign_pool_cached())
        items = [r for r in ranked if r.campaign is not None]
        return Response(self.OutputSerializer(items, many=True).data)


class AllocationPreviewApi(APIView):
    class InputSerializer(StrictInputSerializer):
        class PartSerializer(StrictInputSerializer):
            campaign = IdField()
            weight = StrictIntegerField(min_value=0, max_value=MAX_WEIGHT)

        total = AmountField()
        currency = serializers.ChoiceField(choices=CURRENCY_CHOICES)
        parts = PartSerializer(many=True, allow_empty=False, max_length=MAX_ALLOCATION_PARTS)

    class OutputSerializer(serializers.Serializer):
        class PartSerializer(serializers.Serializer):
            campaign = serializers.IntegerField()
            weight = serializers.IntegerField()
            amount = serializers.IntegerField(help_text="Minor units; the amounts add up to the total exactly.")

        total = serializers.IntegerField()
        currency = serializers.CharField()
        parts = PartSerializer(many=True)

    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="allocations_preview",
        request=InputSerializer,
        responses={200: OutputSerializer},
        description=(
            "Split a total across campaigns in proportion to whole-number weights, in exact minor units "
            "(largest remainder: the parts always add up to the total). Staff only; moves no money. "
            "400 `invalid_weights` when every weight is zero; `invalid_campaign` for a repeated or unknown campaign."
        ),
    )
    def post(self, request):
        if not request.user.is_staff:
            raise NotAllowed("Only staff can preview allocations.", code="not_staff")
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        weights = {part["campaign"]: part["weight"] for part in data["parts"]}
        if len(weights) != len(data["parts"]):
            raise InvalidInput("Give each campaign once.", code="invalid_campaign", field="parts")
        known = set(Campaign.objects.filter(pk__in=weights).values_list("pk", flat=True))
        unknown = sorted(set(weights) - known)
        if unknown:
            raise InvalidInput(f"No such campaign: {unknown[0]}.", code="invalid_campaign", field="parts")
        amounts = risk_allocate(total=data["total"], currency=data["currency"], weights=weights)
        parts = [{"campaign": c, "weight": w, "amount": amounts[c]} for c, w in weights.items()]
        return Response(
            self.OutputSerializer({"total": data["total"], "currency": data["currency"], "parts": parts}).data
        )


urlpatterns = [
    path("campaigns/<api_id:pk>/forecast/", ForecastApi.as_view(), name="campaign_forecast"),
    path("recommendations/", RecommendationListApi.as_view(), name="recommendations"),
    path("allocations/preview/", AllocationPreviewApi.as_view(), name="allocations_preview"),
]
