"""Matching API: pools and rounds with their published results, the live estimate, sponsors' actions.

A sponsor (a member of the Sponsors group, or staff on one's behalf) creates and funds a pool
(``Idempotency-Key``, kept on the pool itself as on a pledge), opens rounds on it, chooses what
it leaves and closes it. Every rule is the services'; the views parse, look up and call one.

An unknown pool or round, or one not public (a pool not funded), is a 404; a public pool the
caller may not act on is a 403 (``not_allowed``), from the service, like a public campaign
someone else runs: that it exists is no secret.
"""

from django.contrib.auth import get_user_model
from django.urls import path
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from crowdfund_site.api.fields import (
    AmountField,
    IdField,
    PagePagination,
    StrictBooleanField,
    StrictCharField,
    StrictInputSerializer,
    StrictIntegerField,
    query_params_check,
)
from crowdfund_site.api.idempotency import idempotency_key_of, idempotent
from crowdfund_site.api.schema import IDEMPOTENCY_KEY_HEADER, errors
from crowdfund_site.bounds import field_max_length
from crowdfund_site.exceptions import InvalidInput, NotFound
from crowdfund_site.money import CURRENCY_CHOICES
from escrow.models import GatewayOperation
from projects.models import Category
from projects.selectors import campaign_get_visible, campaigns_visible_to
from projects.serializers import PictureSerializer

from .allocation import DEFAULT_QUADRATIC_MINIMUM
from .models import (
    APPLICATION_REASON_MAX_LENGTH,
    APPLICATION_STATEMENT_MAX_LENGTH,
    POOL_DESCRIPTION_MAX_LENGTH,
    POOL_RATIO_MAX_BPS,
    ApplicationStatus,
    LeftoverChoice,
    Pool,
    PoolMode,
    PoolStatus,
    RoundStatus,
)
from .selectors import (
    match_estimates,
    pool_balance,
    pool_balances,
    pool_public_get,
    pool_rounds_with_results,
    pools_public,
    round_public_get,
    sponsor_get,
)
from .services import (
    pool_application_decide,
    pool_application_submit,
    pool_choose_leftover,
    pool_close,
    pool_create_and_fund,
    pool_logo_set,
    round_create,
)

# The gateway stores the token with each charge (as for a pledge's).
PAYMENT_TOKEN_MAX_LENGTH = field_max_length(GatewayOperation, "token")
# Campaigns or categories named in one request: more than a page of them is no sponsor's list.
MAX_ELIGIBLE = 500


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


class PoolRefSerializer(serializers.Serializer):
    """What names a pool wherever one is shown: the base of every pool serializer here."""

    slug = serializers.CharField()
    name = serializers.CharField()
    sponsor = serializers.CharField(source="sponsor.public_name")
    logo = serializers.SerializerMethodField()

    @extend_schema_field(PictureSerializer(allow_null=True))
    def get_logo(self, pool: Pool) -> dict | None:
        return PictureSerializer(pool.logo).data if pool.logo else None


class PoolBaseSerializer(PoolRefSerializer):
    """A pool in the list and on its own: what it is, holds and when it runs (``left`` set by the view)."""

    description = serializers.CharField()
    mode = serializers.ChoiceField(choices=PoolMode.choices)
    currency = serializers.CharField()
    amount = serializers.IntegerField(help_text="Minor units.")
    left = serializers.IntegerField(help_text="What the pool holds now, in minor units.")
    starts_at = serializers.DateTimeField()
    ends_at = serializers.DateTimeField()
    accepts_applications = serializers.BooleanField(help_text="Campaigns may apply; those staff accept are matched.")


class PoolSummarySerializer(PoolBaseSerializer):
    status = serializers.ChoiceField(choices=PoolStatus.choices)


class PoolSerializer(PoolBaseSerializer):
    per_campaign_cap = serializers.IntegerField(allow_null=True)
    rounds = RoundSerializer(many=True, source="rounds_list")


class PoolRulesSerializer(serializers.Serializer):
    mode = serializers.ChoiceField(choices=PoolMode.choices)
    currency = serializers.CharField()
    ratio_bps = serializers.IntegerField(help_text="Fixed ratio: the match per unit given (10000 = 1:1).")
    per_contribution_cap = serializers.IntegerField(allow_null=True, help_text="Minor units.")
    per_backer_cap = serializers.IntegerField(allow_null=True, help_text="Per backer per campaign, minor units.")
    per_campaign_cap = serializers.IntegerField(allow_null=True, help_text="Minor units.")
    minimum_contribution = serializers.IntegerField(help_text="Quadratic: smaller contributions do not count.")
    pairwise_damping = serializers.IntegerField(allow_null=True, help_text="Quadratic: Gitcoin's pairwise M.")


class PoolListCreateApi(APIView):
    class FilterSerializer(serializers.Serializer):
        status = serializers.ChoiceField(choices=PoolStatus.choices, required=False)

        def to_internal_value(self, data):
            # A plain dict, not the QueryDict: DRF reads an empty form value as "not given", but
            # `?status=` names no status and is refused.
            return super().to_internal_value({k: data.get(k) for k in data})

    class InputSerializer(StrictInputSerializer):
        name = StrictCharField(max_length=field_max_length(Pool, "name"))
        description = StrictCharField(
            required=False, allow_blank=True, default="", max_length=POOL_DESCRIPTION_MAX_LENGTH
        )
        currency = serializers.ChoiceField(choices=CURRENCY_CHOICES)
        amount = AmountField(help_text="What the sponsor puts in (charged now), in minor units.")
        mode = serializers.ChoiceField(choices=PoolMode.choices)
        starts_at = serializers.DateTimeField()
        ends_at = serializers.DateTimeField(help_text="After `starts_at`.")
        ratio_bps = StrictIntegerField(
            required=False, default=10_000, min_value=1, max_value=POOL_RATIO_MAX_BPS, help_text="Fixed ratio only."
        )
        per_contribution_cap = AmountField(required=False, allow_null=True, default=None)
        per_backer_cap = AmountField(required=False, allow_null=True, default=None)
        per_campaign_cap = AmountField(
            required=False, allow_null=True, default=None, help_text="Quadratic: empty for 10 % of the pool."
        )
        minimum_contribution = AmountField(required=False, default=DEFAULT_QUADRATIC_MINIMUM)
        pairwise_damping = AmountField(required=False, allow_null=True, default=None)
        categories = serializers.ListField(child=IdField(), required=False, default=list, max_length=MAX_ELIGIBLE)
        campaigns = serializers.ListField(child=IdField(), required=False, default=list, max_length=MAX_ELIGIBLE)
        accepts_applications = StrictBooleanField(
            required=False, default=False, help_text="Campaigns may apply; those staff accept are matched too."
        )
        payment_token = StrictCharField(max_length=PAYMENT_TOKEN_MAX_LENGTH, help_text="Sandbox: tok_visa, ...")
        sponsor = StrictCharField(
            required=False,
            max_length=field_max_length(get_user_model(), "username"),
            help_text="Staff only: the username of the sponsor the pool is for; omitted: the caller.",
        )

    pagination_class = PagePagination

    def get_permissions(self):
        return [AllowAny()] if self.request.method == "GET" else [IsAuthenticated()]

    @extend_schema(
        operation_id="matching_pools_list",
        parameters=[FilterSerializer],
        responses={200: PoolSummarySerializer(many=True), **errors(404)},
        description="Funded pools, newest first, 20 per page; `status` keeps those upcoming, running, ended or closed.",
    )
    def get(self, request):
        query_params_check(request, ["status"])
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(pools_public(status=filters.validated_data.get("status")), request, self)
        balances = pool_balances(pools=page)
        for pool in page:
            pool.left = balances[pool.pk]
        return paginator.get_paginated_response(PoolSummarySerializer(page, many=True).data)

    @extend_schema(
        operation_id="matching_pools_create",
        parameters=[IDEMPOTENCY_KEY_HEADER],
        request=InputSerializer,
        responses={201: PoolSerializer, **errors(402, 409, 503)},
        description=(
            "Put up a matching pool: its `amount` is charged to `payment_token` now and held in the pool's own "
            "account. The caller is the sponsor (a member of the Sponsors group), or staff naming one. Eligible: "
            "`categories` and/or `campaigns` (ids). A retry with the same Idempotency-Key and body answers with "
            "the same pool, charged once. 400 codes include `cap_above_pool`, `ends_before_start`, "
            "`eligibility_required`, `invalid_campaign`, `invalid_category`, `currency_mismatch`; 403 "
            "`not_a_sponsor`, `not_allowed`, `own_campaign`; 409 `idempotency_key_reused`."
        ),
    )
    def post(self, request):
        key = idempotency_key_of(request)
        body = self.InputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = dict(body.validated_data)
        sponsor = request.user
        if "sponsor" in data:
            sponsor = sponsor_get(username=data.pop("sponsor"))
            if sponsor is None:
                raise InvalidInput("No such sponsor.", code="invalid_sponsor", field="sponsor")
        data["categories"] = _by_ids(Category.objects.filter(pk__in=data["categories"]), data["categories"], "category")
        campaigns = campaigns_visible_to(user=request.user).filter(pk__in=data["campaigns"])
        data["campaigns"] = _by_ids(campaigns, data["campaigns"], "campaign")
        pool = pool_create_and_fund(
            actor=request.user, sponsor=sponsor, idempotency_key=key, payment_token=data.pop("payment_token"), **data
        )
        return Response(_pool_data(pool_public_get(slug=pool.slug)), status=status.HTTP_201_CREATED)


def _by_ids(rows, ids: list[int], what: str) -> list:
    """Return the rows for ``ids``; raise InvalidInput naming the first id that is not one of them."""
    found = {row.pk: row for row in rows}
    missing = [i for i in ids if i not in found]
    if missing:
        raise InvalidInput(f"No such {what}: {missing[0]}.", code=f"invalid_{what}", field=f"{what}s")
    return [found[i] for i in dict.fromkeys(ids)]


def _pool_data(pool) -> dict:
    pool.left = pool_balance(pool=pool)
    pool.rounds_list = pool_rounds_with_results(pool=pool)
    return PoolSerializer(pool).data


class PoolDetailApi(APIView):
    permission_classes = [AllowAny]

    @extend_schema(operation_id="matching_pools_retrieve", responses={200: PoolSerializer, **errors(404)})
    def get(self, request, slug: str):
        pool = pool_public_get(slug=slug)
        if pool is None:
            raise NotFound("No such pool.")
        return Response(_pool_data(pool))


class RoundDetailSerializer(RoundSerializer):
    pool = PoolRefSerializer()
    rules = PoolRulesSerializer(source="pool", help_text="The pool's rules, which the round shares by.")
    budget = serializers.IntegerField(
        allow_null=True, help_text="What the round shares, fixed when it ends (minor units); null while open."
    )


class RoundDetailApi(APIView):
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="matching_rounds_retrieve",
        responses={200: RoundDetailSerializer, **errors(404)},
        description="A round of a funded pool: its pool's rules, dates, status, and its results once published.",
    )
    def get(self, request, pk: int):
        matching_round = round_public_get(round_id=pk)
        if matching_round is None:
            raise NotFound("No such round.")
        return Response(RoundDetailSerializer(matching_round).data)


def _pool_to_manage(slug: str):
    """Return the public pool ``slug``; who may manage it is the service's to say."""
    pool = pool_public_get(slug=slug)
    if pool is None:
        raise NotFound("No such pool.")
    return pool


class RoundCreateApi(APIView):
    class InputSerializer(StrictInputSerializer):
        starts_at = serializers.DateTimeField()
        ends_at = serializers.DateTimeField(help_text="After `starts_at`; the round lies within the pool's dates.")

    @extend_schema(
        operation_id="matching_pools_rounds_create",
        parameters=[IDEMPOTENCY_KEY_HEADER],
        request=InputSerializer,
        responses={201: RoundDetailSerializer, **errors(409)},
        description=(
            "Open a round on your pool (sponsor or staff). 400 `ends_before_start`, `round_outside_pool`; "
            "403 `not_allowed` (not your pool); 409 `pool_closed`, `idempotency_key_reused`."
        ),
    )
    @idempotent
    def post(self, request, slug: str):
        body = self.InputSerializer(data=request.data)  # a bad body is refused before any lookup
        body.is_valid(raise_exception=True)
        matching_round = round_create(pool=_pool_to_manage(slug), actor=request.user, **body.validated_data)
        return Response(
            RoundDetailSerializer(round_public_get(round_id=matching_round.pk)).data, status=status.HTTP_201_CREATED
        )


class PoolLogoApi(APIView):
    parser_classes = [MultiPartParser]

    class InputSerializer(StrictInputSerializer):
        # Empty files reach the check, which says so in its own words (code `image_empty`).
        logo = serializers.FileField(
            allow_empty_file=True,
            help_text="JPEG, PNG or WebP (checked from the content, not the name), at most 10 MB and 40 megapixels.",
        )

    @extend_schema(
        operation_id="matching_pools_logo_set",
        request={"multipart/form-data": InputSerializer},
        responses={200: PoolSerializer, **errors(400, 401, 403, 404)},
        description=(
            "Set or replace your pool's logo (sponsor or staff), shown on its page, the list of pools and beside "
            '"matched by" on the campaigns it matches. 400 `invalid_image` codes (`image_format`, '
            "`image_too_large`, `image_too_many_pixels`, `image_damaged`, `image_empty`); 403 `not_allowed`."
        ),
    )
    def put(self, request, slug: str):
        body = self.InputSerializer(data=request.data)  # a bad body is refused before any lookup
        body.is_valid(raise_exception=True)
        pool = pool_logo_set(pool=_pool_to_manage(slug), actor=request.user, upload=body.validated_data["logo"])
        return Response(_pool_data(pool_public_get(slug=pool.slug)))


class PoolCloseApi(APIView):
    @extend_schema(
        operation_id="matching_pools_close",
        parameters=[IDEMPOTENCY_KEY_HEADER],
        request=None,
        responses={200: PoolSerializer, **errors(409, 503)},
        description=(
            "Close your pool after its end: what it holds goes back to you, or on to the next pool you chose "
            "(`POST .../leftover/`). 403 `not_allowed`; 409 `pool_not_over`, `round_outstanding`, "
            "`match_outstanding`, `next_pool_closed`."
        ),
    )
    @idempotent
    def post(self, request, slug: str):
        pool = pool_close(pool=_pool_to_manage(slug), actor=request.user)
        return Response(_pool_data(pool_public_get(slug=pool.slug)))


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
        pool = _pool_to_manage(slug)
        next_slug = body.validated_data.get("next_pool")
        next_pool = pool_public_get(slug=next_slug) if next_slug else None
        if next_slug and next_pool is None:
            raise NotFound("No such next pool.")
        pool = pool_choose_leftover(
            pool=pool, actor=request.user, choice=body.validated_data["choice"], next_pool=next_pool
        )
        return Response({"choice": pool.leftover_choice, "next_pool": pool.next_pool.slug if pool.next_pool else None})


class ApplicationSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    pool = serializers.CharField(source="pool.slug", help_text="The pool's slug.")
    campaign = serializers.IntegerField(source="campaign_id")
    statement = serializers.CharField()
    status = serializers.ChoiceField(choices=ApplicationStatus.choices)
    reason = serializers.CharField(help_text="Staff's reason, once decided; empty before.")
    created_at = serializers.DateTimeField()
    decided_at = serializers.DateTimeField(allow_null=True)


class PoolApplyApi(APIView):
    permission_classes = [IsAuthenticated]

    class InputSerializer(StrictInputSerializer):
        campaign = IdField(help_text="Your campaign's id.")
        statement = StrictCharField(
            max_length=APPLICATION_STATEMENT_MAX_LENGTH, help_text="Why the pool should match it, in a few words."
        )

    @extend_schema(
        operation_id="matching_pools_applications_create",
        request=InputSerializer,
        responses={201: ApplicationSerializer, **errors(400, 401, 403, 404, 409)},
        description=(
            "Apply with your campaign to a pool that takes applications; staff accept or decline it. 400 "
            "`statement_required`, `debt_campaign`, `currency_mismatch`; 403 `not_initiator`, `own_campaign`; "
            "409 `not_taking_applications`, `pool_closed`, `campaign_closed`, `already_eligible`, `already_applied`."
        ),
    )
    def post(self, request, slug: str):
        body = self.InputSerializer(data=request.data)  # a bad body is refused before any lookup
        body.is_valid(raise_exception=True)
        pool = _pool_to_manage(slug)
        campaign = campaign_get_visible(user=request.user, campaign_id=body.validated_data["campaign"])
        application = pool_application_submit(
            pool=pool, campaign=campaign, actor=request.user, statement=body.validated_data["statement"]
        )
        return Response(ApplicationSerializer(application).data, status=status.HTTP_201_CREATED)


class ApplicationDecisionApi(APIView):
    permission_classes = [IsAuthenticated]

    class InputSerializer(StrictInputSerializer):
        decision = serializers.ChoiceField(choices=[("accept", "accept"), ("decline", "decline")])
        reason = StrictCharField(max_length=APPLICATION_REASON_MAX_LENGTH, help_text="Told to the initiator.")

    @extend_schema(
        operation_id="matching_applications_decide",
        request=InputSerializer,
        responses={200: ApplicationSerializer, **errors(400, 401, 403, 404, 409)},
        description=(
            "Staff (reviewers) accept a campaign's application (the pool then matches it) or decline it, with a "
            "reason the initiator is e-mailed. 403 `not_allowed`; 409 `already_decided`, `pool_closed`."
        ),
    )
    def post(self, request, pk: int):
        body = self.InputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        application = pool_application_decide(
            application_id=pk,
            actor=request.user,
            accept=body.validated_data["decision"] == "accept",
            reason=body.validated_data["reason"],
        )
        return Response(ApplicationSerializer(application).data)


urlpatterns = [
    path("matching/pools/", PoolListCreateApi.as_view(), name="matching_pools"),
    path("matching/pools/<slug:slug>/", PoolDetailApi.as_view(), name="matching_pool_detail"),
    path("matching/pools/<slug:slug>/rounds/", RoundCreateApi.as_view(), name="matching_pool_rounds"),
    path("matching/pools/<slug:slug>/logo/", PoolLogoApi.as_view(), name="matching_pool_logo"),
    path("matching/pools/<slug:slug>/close/", PoolCloseApi.as_view(), name="matching_pool_close"),
    path("matching/pools/<slug:slug>/applications/", PoolApplyApi.as_view(), name="matching_pool_applications"),
    path(
        "matching/applications/<api_id:pk>/decision/",
        ApplicationDecisionApi.as_view(),
        name="matching_application_decision",
    ),
    path("matching/rounds/<api_id:pk>/", RoundDetailApi.as_view(), name="matching_round_detail"),
    path("matching/pools/<slug:slug>/leftover/", PoolLeftoverApi.as_view(), name="matching_pool_leftover"),
    path("campaigns/<api_id:pk>/match-estimate/", MatchEstimateApi.as_view(), name="campaign_match_estimate"),
]
