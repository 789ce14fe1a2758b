"""Matching API: a pool with its rounds' published results, and the live estimate for an amount."""

from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from crowdfund_site.api.fields import AmountField, query_params_check
from crowdfund_site.api.schema import errors
from crowdfund_site.exceptions import NotFound
from projects.selectors import campaign_get_visible

from .models import LeftoverChoice, PoolMode, RoundStatus
from .selectors import match_estimates, pool_balance, pool_public_get, pool_rounds_with_results
from .services import pool_choose_leftover


class AllocationSerializer(serializers.Serializer):
    campaign = serializers.IntegerField(source="campaign_id")
    campaign_title = serializers.CharField(source="campaign.title")
    contributions = serializers.IntegerField()
    backers = serializers.IntegerField()
    raised = serializers.IntegerField(help_text="Minor units.")
    matched = serializers.IntegerField(source="amount", help_text="Minor units.")


class RoundSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=RoundStatus.choices)
    starts_at = serializers.DateTimeField()
    ends_at = serializers.DateTimeField()
    challenge_ends_at = serializers.DateTimeField(allow_null=True)
    results = AllocationSerializer(many=True, help_text="Published rounds only; empty before.")


class PoolSerializer(serializers.Serializer):
    slug = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField()
    sponsor = serializers.CharField(source="sponsor.public_name")
    mode = serializers.ChoiceField(choices=PoolMode.choices)
    currency = serializers.CharField()
    amount = serializers.IntegerField(help_text="Minor units.")
    left = serializers.IntegerField(help_text="What the pool holds now, in minor units.")
    per_campaign_cap = serializers.IntegerField(allow_null=True)
    starts_at = serializers.DateTimeField()
    ends_at = serializers.DateTimeField()
    rounds = RoundSerializer(many=True, source="rounds_list")


class PoolDetailApi(APIView):
    permission_classes = [AllowAny]

    @extend_schema(operation_id="matching_pools_retrieve", responses={200: PoolSerializer, **errors(404)})
    def get(self, request, slug: str):
        pool = pool_public_get(slug=slug)
        if pool is None:
            raise NotFound("No such pool.")
        pool.left = pool_balance(pool=pool)
        pool.rounds_list = pool_rounds_with_results(pool=pool)
        return Response(PoolSerializer(pool).data)


class MatchEstimateSerializer(serializers.Serializer):
    pool = serializers.CharField(help_text="The pool's slug.")
    pool_name = serializers.CharField()
    low = serializers.IntegerField(help_text="Minor units, if as much again is given by others before the end.")
    high = serializers.IntegerField(help_text="Minor units, if the round ended now.")


class MatchEstimateListSerializer(serializers.Serializer):
    amount = serializers.IntegerField()
    currency = serializers.CharField()
    estimates = MatchEstimateSerializer(many=True)


class MatchEstimateApi(APIView):
    permission_classes = [AllowAny]

    class QuerySerializer(serializers.Serializer):
        amount = AmountField()

        def to_internal_value(self, data):
            # Query strings carry text; the strict integer field wants a number.
            data = {k: data.get(k) for k in data}
            if str(data.get("amount", "")).isdigit():
                data["amount"] = int(data["amount"])
            return super().to_internal_value(data)

    @extend_schema(
        operation_id="campaigns_match_estimate",
        parameters=[QuerySerializer],
        responses={200: MatchEstimateListSerializer, **errors(400, 404)},
        description=(
            "What giving `amount` (minor units) to the campaign now would add to its matching, per open round, "
            "as a range: matching can fall as others give."
        ),
    )
    def get(self, request, pk: int):
        query_params_check(request, ["amount"])
        campaign = campaign_get_visible(user=request.user, campaign_id=pk)
        query = self.QuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        amount = query.validated_data["amount"]
        backer_id = request.user.pk if request.user.is_authenticated else None
        estimates = match_estimates(campaign=campaign, amount=amount, backer_id=backer_id)
        data = {
            "amount": amount,
            "currency": campaign.currency,
            "estimates": [
                {"pool": e.pool.slug, "pool_name": e.pool.name, "low": e.low, "high": e.high} for e in estimates
            ],
        }
        return Response(MatchEstimateListSerializer(data).data)


class PoolLeftoverSerializer(serializers.Serializer):
    choice = serializers.ChoiceField(choices=LeftoverChoice.choices)
    next_pool = serializers.CharField(
        required=False, allow_null=True, max_length=140, help_text="The slug of the sponsor's next pool, to roll over."
    )


class PoolLeftoverApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="matching_pools_leftover",
        request=PoolLeftoverSerializer,
        responses={200: PoolLeftoverSerializer, **errors(400, 401, 403, 404, 409)},
        description=(
            "The sponsor's choice for what the pool leaves at its end: `refund` (back to them) or "
            "`roll_over` into `next_pool`, another of their funded, open pools in the same currency."
        ),
    )
    def post(self, request, slug: str):
        body = PoolLeftoverSerializer(data=request.data)  # a bad body is refused before any lookup
        body.is_valid(raise_exception=True)
        pool = pool_public_get(slug=slug)
        if pool is None or not (request.user.pk == pool.sponsor_id or request.user.is_staff):
            raise NotFound("No such pool.")
        next_slug = body.validated_data.get("next_pool")
        next_pool = pool_public_get(slug=next_slug) if next_slug else None
        if next_slug and next_pool is None:
            raise NotFound("No such next pool.")
        pool = pool_choose_leftover(
            pool=pool, actor=request.user, choice=body.validated_data["choice"], next_pool=next_pool
        )
        return Response({"choice": pool.leftover_choice, "next_pool": pool.next_pool.slug if pool.next_pool else None})


urlpatterns = [
    path("matching/pools/<slug:slug>/", PoolDetailApi.as_view(), name="matching_pool_detail"),
    path("matching/pools/<slug:slug>/leftover/", PoolLeftoverApi.as_view(), name="matching_pool_leftover"),
    path("campaigns/<api_id:pk>/match-estimate/", MatchEstimateApi.as_view(), name="campaign_match_estimate"),
]
