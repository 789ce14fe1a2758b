"""REST API for campaigns, their reward tiers, updates and comments: one view per operation, on the services.

Who sees which campaign is ``projects.selectors.campaigns_visible_to``, the rule the campaign page
and discover use too: anyone sees upcoming, live and ended campaigns; a suspended one only its
backers; initiators their own at every stage; campaign staff all. A campaign the caller may not
see is a 404, never a 403.
"""

from django.db.models import Q
from django.urls import path
from drf_spectacular.utils import extend_schema, extend_schema_field, extend_schema_view
from rest_framework import serializers, status
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
from crowdfund_site.api.schema import errors
from crowdfund_site.bounds import field_max_length
from crowdfund_site.exceptions import Conflict, InvalidInput, NotFound
from crowdfund_site.money import CURRENCY_CHOICES
from risk.tasks import enqueue_campaign_assessment

from .api_addons import urlpatterns as addon_urlpatterns
from .api_milestones import MilestoneInputSerializer, plan_from
from .api_milestones import urlpatterns as milestone_urlpatterns
from .api_stretch_goals import urlpatterns as stretch_goal_urlpatterns
from .milestones.services import MAX_MILESTONES, campaign_create_with_milestones
from .models import (
    CAMPAIGN_FAQ_MAX_LENGTH,
    CAMPAIGN_RISKS_MAX_LENGTH,
    CAMPAIGN_STORY_MAX_LENGTH,
    COMMENT_MAX_LENGTH,
    MAX_DELIVERY_HOLDBACK_BPS,
    REVIEW_NOTE_MAX_LENGTH,
    REWARD_DESCRIPTION_MAX_LENGTH,
    REWARD_QUANTITY_LIMIT_MAX,
    SEARCH_QUERY_MAX_LENGTH,
    UPDATE_BODY_MAX_LENGTH,
    Campaign,
    CampaignStatus,
    CampaignUpdate,
    Category,
    Comment,
    CommentReport,
    FundingModel,
    RewardTier,
)
from .picture_api import urlpatterns as picture_urlpatterns
from .selectors import (
    campaign_comment_list,
    campaign_get_visible,
    campaign_update_list,
    campaigns_of_initiator,
    campaigns_visible_to,
    user_reads_backer_updates,
)
from .serializers import (
    CampaignDetailSerializer,
    CampaignSerializer,
    CategorySerializer,
    RewardSerializer,
    campaign_detail_data,
)
from .services import (
    MAX_DURATION_DAYS,
    MIN_DURATION_DAYS,
    campaign_approve,
    campaign_launch,
    campaign_reject,
    campaign_request_changes,
    campaign_submit_for_review,
    campaign_update,
    campaign_update_create,
    comment_create,
    comment_hide,
    comment_report,
    reward_tier_create,
    reward_tier_delete,
    reward_tier_update,
)
from .shipping import DESTINATION_MAX_LENGTH, SHIPPING_COST_MAX_MINOR, SHIPPING_RULES_MAX

CAMPAIGN_ORDERINGS = ["created_at", "deadline", "pledged_amount", "goal", "backer_count", "title"]


def _category(category_id: int | None) -> Category | None:
    if category_id is None:
        return None
    category = Category.objects.filter(pk=category_id).first()
    if category is None:
        raise InvalidInput("No such category.", code="invalid_category", field="category")
    return category


class CampaignListCreateApi(APIView):
    class FilterSerializer(serializers.Serializer):
        status = serializers.ChoiceField(choices=CampaignStatus.choices, required=False)
        category = IdField(required=False)
        funding_model = serializers.ChoiceField(choices=FundingModel.choices, required=False)
        search = StrictCharField(
            required=False, max_length=SEARCH_QUERY_MAX_LENGTH, help_text="Words in title or summary."
        )
        ordering = serializers.ChoiceField(
            choices=[*CAMPAIGN_ORDERINGS, *(f"-{o}" for o in CAMPAIGN_ORDERINGS)], required=False
        )

        def to_internal_value(self, data):
            # Query strings carry text; the strict integer field wants a number.
            data = {k: data.get(k) for k in data}
            if str(data.get("category", "")).isdigit():
                data["category"] = int(data["category"])
            return super().to_internal_value(data)

    class InputSerializer(StrictInputSerializer):
        title = StrictCharField(max_length=field_max_length(Campaign, "title"))
        summary = StrictCharField(max_length=field_max_length(Campaign, "summary"))
        description = StrictCharField(
            required=False, allow_blank=True, default="", max_length=CAMPAIGN_STORY_MAX_LENGTH
        )
        faq = StrictCharField(required=False, allow_blank=True, default="", max_length=CAMPAIGN_FAQ_MAX_LENGTH)
        risks = StrictCharField(required=False, allow_blank=True, default="", max_length=CAMPAIGN_RISKS_MAX_LENGTH)
        category = IdField()
        currency = serializers.ChoiceField(choices=CURRENCY_CHOICES, default="USD")
        goal = AmountField()
        funding_model = serializers.ChoiceField(choices=FundingModel.choices, default=FundingModel.ALL_OR_NOTHING)
        duration_days = StrictIntegerField(min_value=MIN_DURATION_DAYS, max_value=MAX_DURATION_DAYS, default=30)
        launch_on_approval = StrictBooleanField(default=True)
        delivery_holdback_bps = StrictIntegerField(
            min_value=0,
            max_value=MAX_DELIVERY_HOLDBACK_BPS,
            required=False,
            allow_null=True,
            help_text="Share of reward pledges kept until delivery, in basis points (0 keeps none; "
            "omitted or null: the platform's default).",
        )
        # A ListField (not many=True) so that the schema states the limit (maxItems) it enforces.
        milestones = serializers.ListField(
            child=MilestoneInputSerializer(),
            required=False,
            max_length=MAX_MILESTONES,
            help_text="Staged release: 1 to 8 milestones, shares summing to 10,000 bps.",
        )

    pagination_class = PagePagination

    def get_permissions(self):
        return [AllowAny()] if self.request.method == "GET" else [IsAuthenticated()]

    @extend_schema(
        operation_id="campaigns_list",
        parameters=[FilterSerializer],
        responses={200: CampaignSerializer(many=True), **errors(404)},
        description="Campaigns the caller may see, 20 per page. An out-of-range page is a 404.",
    )
    def get(self, request):
        query_params_check(request, list(self.FilterSerializer().fields))
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        params = filters.validated_data
        campaigns = campaigns_visible_to(user=request.user)
        for name in ("status", "funding_model"):
            if name in params:
                campaigns = campaigns.filter(**{name: params[name]})
        if "category" in params:
            campaigns = campaigns.filter(category_id=params["category"])
        for word in params.get("search", "").split()[:8]:
            campaigns = campaigns.filter(Q(title__icontains=word) | Q(summary__icontains=word))
        ordering = params.get("ordering", "-created_at")
        campaigns = campaigns.order_by(ordering, "-id" if ordering.startswith("-") else "id")
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(campaigns, request, view=self)
        return paginator.get_paginated_response(CampaignSerializer(page, many=True).data)

    @extend_schema(operation_id="campaigns_create", request=InputSerializer, responses={201: CampaignDetailSerializer})
    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        plan = plan_from(data.pop("milestones", []))
        campaign = campaign_create_with_milestones(
            initiator=request.user, milestones=plan, **{**data, "category": _category(data["category"])}
        )
        return Response(campaign_detail_data(campaign), status=status.HTTP_201_CREATED)


class MyCampaignListApi(APIView):
    class OutputSerializer(CampaignSerializer):
        class Meta(CampaignSerializer.Meta):
            fields = [*CampaignSerializer.Meta.fields, "review_feedback"]

    pagination_class = PagePagination

    @extend_schema(
        operation_id="me_campaigns_list",
        responses={200: OutputSerializer(many=True), **errors(404)},
        description="The campaigns the caller started, at every stage, with their running totals.",
    )
    def get(self, request):
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(campaigns_of_initiator(user=request.user), request, view=self)
        return paginator.get_paginated_response(self.OutputSerializer(page, many=True).data)


class CampaignDetailApi(APIView):
    class InputSerializer(StrictInputSerializer):
        title = StrictCharField(max_length=field_max_length(Campaign, "title"), required=False)
        summary = StrictCharField(max_length=field_max_length(Campaign, "summary"), required=False)
        description = StrictCharField(required=False, allow_blank=True, max_length=CAMPAIGN_STORY_MAX_LENGTH)
        faq = StrictCharField(required=False, allow_blank=True, max_length=CAMPAIGN_FAQ_MAX_LENGTH)
        risks = StrictCharField(required=False, allow_blank=True, max_length=CAMPAIGN_RISKS_MAX_LENGTH)
        category = IdField(required=False)
        currency = serializers.ChoiceField(choices=CURRENCY_CHOICES, required=False)
        goal = AmountField(required=False)
        funding_model = serializers.ChoiceField(choices=FundingModel.choices, required=False)
        duration_days = StrictIntegerField(min_value=MIN_DURATION_DAYS, max_value=MAX_DURATION_DAYS, required=False)
        launch_on_approval = StrictBooleanField(required=False)
        delivery_holdback_bps = StrictIntegerField(
            min_value=0, max_value=MAX_DELIVERY_HOLDBACK_BPS, required=False, allow_null=True
        )

    def get_permissions(self):
        return [AllowAny()] if self.request.method == "GET" else [IsAuthenticated()]

    @extend_schema(operation_id="campaigns_retrieve", responses={200: CampaignDetailSerializer})
    def get(self, request, pk: int):
        campaign = campaign_get_visible(user=request.user, campaign_id=pk)
        return Response(campaign_detail_data(campaign))

    @extend_schema(
        operation_id="campaigns_update",
        request=InputSerializer,
        responses={200: CampaignDetailSerializer, **errors(409)},
        description="Change a campaign while it is a draft or changes are requested (initiator only).",
    )
    def patch(self, request, pk: int):
        campaign = campaign_get_visible(user=request.user, campaign_id=pk)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        fields = dict(serializer.validated_data)
        if "category" in fields:
            fields["category"] = _category(fields["category"])
        campaign = campaign_update(campaign=campaign, actor=request.user, **fields)
        return Response(campaign_detail_data(campaign))


class CampaignSubmitApi(APIView):
    @extend_schema(
        operation_id="campaigns_submit",
        request=None,
        responses={200: CampaignDetailSerializer, **errors(409)},
        description=(
            "Send a draft (or a revised campaign) to the reviewers (initiator only). "
            "409 `incomplete_campaign` when the summary, story or risks are missing."
        ),
    )
    def post(self, request, pk: int):
        campaign = campaign_get_visible(user=request.user, campaign_id=pk)
        try:
            campaign = campaign_submit_for_review(campaign=campaign, actor=request.user)
        except InvalidInput as error:
            # The request has no body to be wrong: what is missing is in the campaign's state.
            raise Conflict(error.message, code=error.code) from error
        enqueue_campaign_assessment(campaign.pk)
        return Response(campaign_detail_data(campaign))


class CampaignLaunchApi(APIView):
    @extend_schema(
        operation_id="campaigns_launch",
        request=None,
        responses={200: CampaignDetailSerializer, **errors(400, 409)},
        description="Put an approved campaign live, its deadline `duration_days` from now (initiator only).",
    )
    def post(self, request, pk: int):
        campaign = campaign_get_visible(user=request.user, campaign_id=pk)
        campaign = campaign_launch(campaign=campaign, actor=request.user)
        return Response(campaign_detail_data(campaign))


class CampaignApproveApi(APIView):
    class InputSerializer(StrictInputSerializer):
        note = StrictCharField(required=False, allow_blank=True, default="", max_length=REVIEW_NOTE_MAX_LENGTH)

    @extend_schema(
        operation_id="campaigns_approve",
        request=InputSerializer,
        responses={200: CampaignDetailSerializer, **errors(409)},
        description="Approve a campaign in review; it goes live at once if its initiator asked (reviewers only).",
    )
    def post(self, request, pk: int):
        campaign = campaign_get_visible(user=request.user, campaign_id=pk)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        campaign = campaign_approve(campaign=campaign, reviewer=request.user, note=serializer.validated_data["note"])
        return Response(campaign_detail_data(campaign))


class _ReviewWithReasonApi(APIView):
    class InputSerializer(StrictInputSerializer):
        reason = StrictCharField(max_length=REVIEW_NOTE_MAX_LENGTH, help_text="What the initiator should know.")

    decide = None

    def post(self, request, pk: int):
        campaign = campaign_get_visible(user=request.user, campaign_id=pk)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        campaign = type(self).decide(
            campaign=campaign, reviewer=request.user, reason=serializer.validated_data["reason"]
        )
        return Response(campaign_detail_data(campaign))


@extend_schema_view(
    post=extend_schema(
        operation_id="campaigns_request_changes",
        request=_ReviewWithReasonApi.InputSerializer,
        responses={200: CampaignDetailSerializer, **errors(409)},
        description="Send a campaign in review back to its initiator with the changes wanted (reviewers only).",
    )
)
class CampaignRequestChangesApi(_ReviewWithReasonApi):
    decide = campaign_request_changes


@extend_schema_view(
    post=extend_schema(
        operation_id="campaigns_reject",
        request=_ReviewWithReasonApi.InputSerializer,
        responses={200: CampaignDetailSerializer, **errors(409)},
        description="Refuse a campaign in review for good (reviewers only).",
    )
)
class CampaignRejectApi(_ReviewWithReasonApi):
    decide = campaign_reject


class ShippingRuleInputSerializer(StrictInputSerializer):
    destination = StrictCharField(
        max_length=DESTINATION_MAX_LENGTH,
        help_text="An ISO 3166-1 alpha-2 country code (DE), a region (eu, north_america) or anywhere.",
    )
    cost = StrictIntegerField(
        min_value=0, max_value=SHIPPING_COST_MAX_MINOR, help_text="In minor units of the campaign's currency."
    )


class PriceStepInputSerializer(StrictInputSerializer):
    price = AmountField()
    until_claimed = StrictIntegerField(
        required=False, allow_null=True, default=None, min_value=1, max_value=REWARD_QUANTITY_LIMIT_MAX
    )
    until = serializers.DateTimeField(required=False, allow_null=True, default=None)


class RewardListCreateApi(APIView):
    class InputSerializer(StrictInputSerializer):
        title = StrictCharField(max_length=field_max_length(RewardTier, "title"))
        description = StrictCharField(
            required=False, allow_blank=True, default="", max_length=REWARD_DESCRIPTION_MAX_LENGTH
        )
        minimum_amount = AmountField()
        quantity_limit = StrictIntegerField(
            required=False, allow_null=True, default=None, min_value=1, max_value=REWARD_QUANTITY_LIMIT_MAX
        )
        estimated_delivery = serializers.DateField(required=False, allow_null=True, default=None)
        ships = StrictBooleanField(required=False, default=False, help_text="Physical: shipped to backers.")
        shipping_rules = serializers.ListField(
            child=ShippingRuleInputSerializer(),
            max_length=SHIPPING_RULES_MAX,
            required=False,
            default=list,
            help_text="Required (at least one) when `ships`; each destination once.",
        )
        available_from = serializers.DateTimeField(
            required=False, allow_null=True, default=None, help_text="Empty: from launch."
        )
        available_until = serializers.DateTimeField(
            required=False,
            allow_null=True,
            default=None,
            help_text="Empty: until the deadline. After its start, not after the deadline.",
        )
        price_steps = PriceStepInputSerializer(
            many=True, required=False, default=list, help_text="Early prices before minimum_amount, in order."
        )

    def get_permissions(self):
        return [AllowAny()] if self.request.method == "GET" else [IsAuthenticated()]

    @extend_schema(operation_id="campaigns_rewards_list", responses={200: RewardSerializer(many=True)})
    def get(self, request, pk: int):
        campaign = campaign_get_visible(user=request.user, campaign_id=pk)
        return Response(RewardSerializer(campaign.rewards.prefetch_related("shipping_rules"), many=True).data)

    @extend_schema(
        operation_id="campaigns_rewards_create",
        request=InputSerializer,
        responses={201: RewardSerializer, **errors(409)},
        description="Add a reward tier while the campaign is editable (initiator only).",
    )
    def post(self, request, pk: int):
        campaign = campaign_get_visible(user=request.user, campaign_id=pk)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        reward = reward_tier_create(campaign=campaign, actor=request.user, **serializer.validated_data)
        return Response(RewardSerializer(reward).data, status=status.HTTP_201_CREATED)


class RewardDetailApi(APIView):
    class InputSerializer(StrictInputSerializer):
        title = StrictCharField(max_length=field_max_length(RewardTier, "title"), required=False)
        description = StrictCharField(required=False, allow_blank=True, max_length=REWARD_DESCRIPTION_MAX_LENGTH)
        minimum_amount = AmountField(required=False)
        quantity_limit = StrictIntegerField(
            required=False, allow_null=True, min_value=1, max_value=REWARD_QUANTITY_LIMIT_MAX
        )
        estimated_delivery = serializers.DateField(required=False, allow_null=True)
        ships = StrictBooleanField(required=False, help_text="Physical: shipped to backers (before launch only).")
        shipping_rules = serializers.ListField(
            child=ShippingRuleInputSerializer(),
            max_length=SHIPPING_RULES_MAX,
            required=False,
            help_text="Replaces all the reward's rules (before launch only).",
        )
        available_from = serializers.DateTimeField(required=False, allow_null=True)
        available_until = serializers.DateTimeField(required=False, allow_null=True)
        price_steps = PriceStepInputSerializer(many=True, required=False, help_text="Before launch only.")

    def get_permissions(self):
        return [AllowAny()] if self.request.method == "GET" else [IsAuthenticated()]

    def _reward(self, request, pk: int, reward_pk: int) -> RewardTier:
        campaign = campaign_get_visible(user=request.user, campaign_id=pk)
        reward = campaign.rewards.filter(pk=reward_pk).first()
        if reward is None:
            raise NotFound("No such reward.")
        return reward

    @extend_schema(operation_id="campaigns_rewards_retrieve", responses={200: RewardSerializer})
    def get(self, request, pk: int, reward_pk: int):
        return Response(RewardSerializer(self._reward(request, pk, reward_pk)).data)

    @extend_schema(
        operation_id="campaigns_rewards_update",
        request=InputSerializer,
        responses={200: RewardSerializer, **errors(409)},
        description=(
            "Change a reward tier (initiator only): anything before launch; after launch the description, "
            "estimated delivery, quantity limit and availability window only (409 `reward_locked` for price or "
            "title, 409 `limit_below_claimed` for a limit below what is claimed; 400 `window_ends_before_start`, "
            "`window_after_deadline`, `window_in_past` for a bad window). Its backers are e-mailed about a new "
            "description or delivery date. `ships` changes before launch only; `shipping_rules` also while "
            "live (backers who chose the reward keep the shipping they agreed to; new pledges get the new rules)."
        ),
    )
    def patch(self, request, pk: int, reward_pk: int):
        reward = self._reward(request, pk, reward_pk)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        reward = reward_tier_update(reward=reward, actor=request.user, **serializer.validated_data)
        return Response(RewardSerializer(reward).data)

    @extend_schema(
        operation_id="campaigns_rewards_destroy",
        responses={204: None, **errors(409)},
        description="Remove a reward tier while the campaign is editable (initiator only).",
    )
    def delete(self, request, pk: int, reward_pk: int):
        reward_tier_delete(reward=self._reward(request, pk, reward_pk), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class CampaignUpdateSerializer(serializers.ModelSerializer):
    """News from the campaign's initiator."""

    # Context ``reads_backer_updates``: whether the caller may read backers-only bodies.
    body = serializers.SerializerMethodField(
        help_text="Null for a backers-only update unless the caller backs the campaign or started it."
    )

    class Meta:
        model = CampaignUpdate
        fields = ["id", "title", "body", "backers_only", "created_at"]
        read_only_fields = fields
        extra_kwargs = {"backers_only": {"help_text": "Only backers and the initiator can read the body."}}

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_body(self, update: CampaignUpdate) -> str | None:
        if update.backers_only and not self.context["reads_backer_updates"]:
            return None
        return update.body


class CommentSerializer(serializers.ModelSerializer):
    """A comment by one of the campaign's backers or its initiator, or a reply to one (``parent``)."""

    author = serializers.SerializerMethodField(help_text="The author's display name.")
    # Context ``initiator_id`` marks the initiator's replies without loading the campaign per row.
    author_is_initiator = serializers.SerializerMethodField(help_text="True for the campaign initiator's replies.")
    parent = serializers.IntegerField(source="parent_id", allow_null=True, help_text="The comment this replies to.")
    hidden = serializers.SerializerMethodField(help_text="Hidden by the initiator or staff: the body is null.")
    body = serializers.SerializerMethodField()

    class Meta:
        model = Comment
        fields = ["id", "parent", "author", "author_is_initiator", "body", "hidden", "created_at"]
        read_only_fields = fields

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_body(self, comment: Comment) -> str | None:
        return None if comment.hidden_at is not None else comment.body

    def get_hidden(self, comment: Comment) -> bool:
        return comment.hidden_at is not None

    def get_author(self, comment: Comment) -> str:
        return comment.author.public_name

    def get_author_is_initiator(self, comment: Comment) -> bool:
        return comment.author_id == self.context["initiator_id"]


class CampaignUpdateListCreateApi(APIView):
    class InputSerializer(StrictInputSerializer):
        title = StrictCharField(max_length=field_max_length(CampaignUpdate, "title"))
        body = StrictCharField(max_length=UPDATE_BODY_MAX_LENGTH)
        backers_only = StrictBooleanField(default=False, help_text="Only backers and the initiator read the body.")

    pagination_class = PagePagination

    def get_permissions(self):
        return [AllowAny()] if self.request.method == "GET" else [IsAuthenticated()]

    @extend_schema(
        operation_id="campaigns_updates_list",
        responses={200: CampaignUpdateSerializer(many=True)},
        description=(
            "The campaign's updates, newest first, 20 per page. Everyone sees every title; the body of a "
            "backers-only update is null unless the caller backs the campaign or started it. "
            "An out-of-range page is a 404."
        ),
    )
    def get(self, request, pk: int):
        campaign = campaign_get_visible(user=request.user, campaign_id=pk)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(campaign_update_list(campaign=campaign), request, view=self)
        context = {"reads_backer_updates": user_reads_backer_updates(campaign=campaign, user=request.user)}
        return paginator.get_paginated_response(CampaignUpdateSerializer(page, many=True, context=context).data)

    @extend_schema(
        operation_id="campaigns_updates_create",
        request=InputSerializer,
        responses={201: CampaignUpdateSerializer, **errors(409)},
        description=(
            "Post news on a launched campaign; its backers are e-mailed. Anyone but the initiator is refused "
            "with 403 `not_initiator`; 409 `not_launched` before the campaign has been live."
        ),
    )
    def post(self, request, pk: int):
        campaign = campaign_get_visible(user=request.user, campaign_id=pk)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        update = campaign_update_create(campaign=campaign, actor=request.user, **serializer.validated_data)
        # Only the initiator gets this far, and they read every body.
        data = CampaignUpdateSerializer(update, context={"reads_backer_updates": True}).data
        return Response(data, status=status.HTTP_201_CREATED)


class CommentListCreateApi(APIView):
    class InputSerializer(StrictInputSerializer):
        body = StrictCharField(max_length=COMMENT_MAX_LENGTH)
        parent = IdField(
            required=False, allow_null=True, default=None, help_text="Reply to this comment (one level deep)."
        )

    pagination_class = PagePagination

    def get_permissions(self):
        return [AllowAny()] if self.request.method == "GET" else [IsAuthenticated()]

    @extend_schema(
        operation_id="campaigns_comments_list",
        responses={200: CommentSerializer(many=True)},
        description="The campaign's comments, oldest first, 20 per page. An out-of-range page is a 404.",
    )
    def get(self, request, pk: int):
        campaign = campaign_get_visible(user=request.user, campaign_id=pk)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(campaign_comment_list(campaign=campaign), request, view=self)
        context = {"initiator_id": campaign.initiator_id}
        return paginator.get_paginated_response(CommentSerializer(page, many=True, context=context).data)

    @extend_schema(
        operation_id="campaigns_comments_create",
        request=InputSerializer,
        responses={201: CommentSerializer, **errors(409)},
        description=(
            "Comment on a launched campaign as one of its backers (a held or paid-out pledge) or its initiator, "
            "or reply to a comment (`parent`; 400 `invalid_parent` for a reply to a reply); anyone else is "
            "refused with 403 `not_backer`. 409 `not_launched` before the campaign has been live."
        ),
    )
    def post(self, request, pk: int):
        campaign = campaign_get_visible(user=request.user, campaign_id=pk)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        parent = None
        if data["parent"] is not None:
            parent = Comment.objects.filter(pk=data["parent"], campaign=campaign).first()
            if parent is None:
                raise InvalidInput("No such comment on this campaign.", code="invalid_parent", field="parent")
        comment = comment_create(campaign=campaign, actor=request.user, body=data["body"], parent=parent)
        data = CommentSerializer(comment, context={"initiator_id": campaign.initiator_id}).data
        return Response(data, status=status.HTTP_201_CREATED)


def _comment_of(request, pk: int, comment_pk: int) -> Comment:
    """Return the comment on a campaign the caller may see; NotFound otherwise."""
    campaign = campaign_get_visible(user=request.user, campaign_id=pk)
    comment = Comment.objects.filter(pk=comment_pk, campaign=campaign).select_related("author").first()
    if comment is None:
        raise NotFound("No such comment.")
    comment.campaign = campaign
    return comment


class CommentReportApi(APIView):
    class InputSerializer(StrictInputSerializer):
        reason = StrictCharField(
            required=False, allow_blank=True, default="", max_length=field_max_length(CommentReport, "reason")
        )

    class OutputSerializer(serializers.Serializer):
        comment = serializers.IntegerField(source="comment_id")
        reason = serializers.CharField()
        created_at = serializers.DateTimeField()

    @extend_schema(
        operation_id="campaigns_comments_report",
        request=InputSerializer,
        responses={201: OutputSerializer},
        description="Report a comment to staff (anyone logged in). Reporting it again returns the first report.",
    )
    def post(self, request, pk: int, comment_pk: int):
        # The body is read first, as everywhere: a bad body is a 400 whichever comment it names.
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        comment = _comment_of(request, pk, comment_pk)
        report = comment_report(comment=comment, actor=request.user, reason=serializer.validated_data["reason"])
        return Response(self.OutputSerializer(report).data, status=status.HTTP_201_CREATED)


class CommentHideApi(APIView):
    class InputSerializer(StrictInputSerializer):
        reason = StrictCharField(required=False, allow_blank=True, default="", max_length=REVIEW_NOTE_MAX_LENGTH)

    @extend_schema(
        operation_id="campaigns_comments_hide",
        request=InputSerializer,
        responses={200: CommentSerializer},
        description=(
            "Hide a comment (the campaign's initiator or moderation staff; audited); its body then reads null. "
            "403 `not_allowed` for anyone else. Hiding a hidden comment changes nothing."
        ),
    )
    def post(self, request, pk: int, comment_pk: int):
        # The body is read first, as everywhere: a bad body is a 400 whichever comment it names.
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        comment = _comment_of(request, pk, comment_pk)
        comment = comment_hide(comment=comment, actor=request.user, reason=serializer.validated_data["reason"])
        data = CommentSerializer(comment, context={"initiator_id": comment.campaign.initiator_id}).data
        return Response(data)


class CategoryListApi(APIView):
    permission_classes = [AllowAny]

    @extend_schema(operation_id="categories_list", responses={200: CategorySerializer(many=True)})
    def get(self, request):
        return Response(CategorySerializer(Category.objects.order_by("name"), many=True).data)


urlpatterns = [
    path("categories/", CategoryListApi.as_view(), name="categories"),
    path("campaigns/", CampaignListCreateApi.as_view(), name="campaigns"),
    path("me/campaigns/", MyCampaignListApi.as_view(), name="my_campaigns"),
    path("campaigns/<api_id:pk>/", CampaignDetailApi.as_view(), name="campaign"),
    path("campaigns/<api_id:pk>/submit/", CampaignSubmitApi.as_view(), name="campaign_submit"),
    path("campaigns/<api_id:pk>/launch/", CampaignLaunchApi.as_view(), name="campaign_launch"),
    path("campaigns/<api_id:pk>/approve/", CampaignApproveApi.as_view(), name="campaign_approve"),
    path(
        "campaigns/<api_id:pk>/request-changes/", CampaignRequestChangesApi.as_view(), name="campaign_request_changes"
    ),
    path("campaigns/<api_id:pk>/reject/", CampaignRejectApi.as_view(), name="campaign_reject"),
    path("campaigns/<api_id:pk>/rewards/", RewardListCreateApi.as_view(), name="campaign_rewards"),
    path("campaigns/<api_id:pk>/rewards/<api_id:reward_pk>/", RewardDetailApi.as_view(), name="campaign_reward"),
    path("campaigns/<api_id:pk>/updates/", CampaignUpdateListCreateApi.as_view(), name="campaign_updates"),
    path("campaigns/<api_id:pk>/comments/", CommentListCreateApi.as_view(), name="campaign_comments"),
    path(
        "campaigns/<api_id:pk>/comments/<api_id:comment_pk>/report/",
        CommentReportApi.as_view(),
        name="campaign_comment_report",
    ),
    path(
        "campaigns/<api_id:pk>/comments/<api_id:comment_pk>/hide/",
        CommentHideApi.as_view(),
        name="campaign_comment_hide",
    ),
]
# Picture uploads (multipart) live in their own module.
urlpatterns += picture_urlpatterns
urlpatterns += milestone_urlpatterns
urlpatterns += stretch_goal_urlpatterns
urlpatterns += addon_urlpatterns
