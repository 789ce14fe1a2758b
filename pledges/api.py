"""REST API for pledges: create (charge and hold), list and read one's own, change, cancel, staff refund.

Every POST here moves money and needs an ``Idempotency-Key`` header (see
``crowdfund_site.api.idempotency``). A new pledge keeps the key itself (unique per backer), so
``pledge_create`` answers a retry; the other POSTs store their response. Another backer's pledge
is a 404, never a 403.
"""

from django.conf import settings
from django.urls import path
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from crowdfund_site.api.fields import (
    AmountField,
    FieldsBuiltOnce,
    IdField,
    NewestFirstCursorPagination,
    StrictBooleanField,
    StrictCharField,
    StrictInputSerializer,
    StrictIntegerField,
)
from crowdfund_site.api.idempotency import HEADER, idempotency_key_of, idempotent
from crowdfund_site.api.schema import IDEMPOTENCY_KEY_HEADER, errors
from crowdfund_site.bounds import column_integer_range, field_max_length
from crowdfund_site.exceptions import InvalidInput, NotAllowed, NotFound
from crowdfund_site.money import CURRENCY_CHOICES
from escrow.models import GatewayOperation
from projects.models import Campaign, RewardTier
from projects.selectors import campaign_visible_get

from .changes import UNCHANGED, pledge_change
from .models import Pledge, PledgeAddOn, PledgeChange, PledgeInstallment, PledgeStatusChange
from .selectors import installments_of_pledge, pledge_addons_attach, pledge_of_backer_get, pledges_of_backer
from .services import pledge_cancel, pledge_create, pledge_refund

# The gateway stores the token with each charge: a longer one is no card, and no row holds it.
PAYMENT_TOKEN_MAX_LENGTH = field_max_length(GatewayOperation, "token")


class AddOnQuantitySerializer(StrictInputSerializer):
    addon = IdField(help_text="An add-on of this campaign.")
    # The column's range; what a backer may take (0 to ADDONS_MAX_PER_BACKER) is the pledge services' rule.
    quantity = StrictIntegerField(
        min_value=0,
        max_value=column_integer_range(PledgeAddOn, "quantity")[1],
        help_text="How many, 0 to ADDONS_MAX_PER_BACKER (10); 0 removes it in a change.",
    )


def addons_input(items: list[dict] | None) -> dict[int, int] | None:
    """Turn the API's ``addons`` list into the services' ``{add-on id: quantity}``; an add-on named twice is a 400."""
    if items is None:
        return None
    quantities = {}
    for item in items:
        if item["addon"] in quantities:
            raise InvalidInput("Name each add-on once.", code="duplicate_addon", field="addons")
        quantities[item["addon"]] = item["quantity"]
    return quantities


def addons_field(**kwargs):
    return AddOnQuantitySerializer(many=True, max_length=100, **kwargs)


class PledgeAddOnSerializer(serializers.ModelSerializer):
    title = serializers.CharField(source="addon.title")

    class Meta:
        model = PledgeAddOn
        fields = ["addon", "title", "quantity", "unit_price"]


class PledgeInstallmentSerializer(serializers.ModelSerializer):
    class Meta:
        model = PledgeInstallment
        fields = ["number", "amount", "due_at", "status", "attempts", "next_attempt_at", "paid_at", "failure_code"]


class PledgeSerializer(FieldsBuiltOnce, serializers.ModelSerializer):
    class CampaignSummarySerializer(serializers.Serializer):
        id = serializers.IntegerField()
        slug = serializers.CharField()
        title = serializers.CharField()

    class RewardSummarySerializer(serializers.Serializer):
        id = serializers.IntegerField()
        title = serializers.CharField()

    campaign = CampaignSummarySerializer()
    reward = RewardSummarySerializer(allow_null=True)
    addons = serializers.SerializerMethodField()
    installments = serializers.SerializerMethodField()

    class Meta:
        model = Pledge
        fields = [
            "id",
            "campaign",
            "reward",
            "amount",
            "shipping_country",
            "shipping_amount",
            "from_balance",
            "addons_amount",
            "addons",
            "installment_plan",
            "installments",
            "currency",
            "status",
            "failure_code",
            "created_at",
            "held_at",
            "closed_at",
        ]

    @extend_schema_field(PledgeAddOnSerializer(many=True))
    def get_addons(self, pledge: Pledge) -> list:
        lines = getattr(pledge, "addon_list", None)
        if lines is None:
            lines = pledge_addons_attach(pledges=[pledge])[0].addon_list  # no query without add-ons
        return PledgeAddOnSerializer(lines, many=True).data

    @extend_schema_field(PledgeInstallmentSerializer(many=True))
    def get_installments(self, pledge: Pledge) -> list:
        # No query for a pledge paid at once.
        return PledgeInstallmentSerializer(installments_of_pledge(pledge=pledge), many=True).data


class PledgeChangeSerializer(serializers.ModelSerializer):
    from_reward = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True)
    to_reward = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True)

    class Meta:
        model = PledgeChange
        fields = [
            "id",
            "from_amount",
            "to_amount",
            "from_reward",
            "to_reward",
            "from_shipping_country",
            "to_shipping_country",
            "from_shipping_amount",
            "to_shipping_amount",
            "charge_reference",
            "created_at",
        ]


class PledgeWithHistorySerializer(PledgeSerializer):
    changes = PledgeChangeSerializer(source="history", many=True, read_only=True)

    class Meta(PledgeSerializer.Meta):
        fields = [*PledgeSerializer.Meta.fields, "changes"]


def _pledge_data(pledge: Pledge) -> dict:
    pledge = Pledge.objects.select_related("campaign", "reward").get(pk=pledge.pk)
    return PledgeSerializer(pledge).data


def _campaign_to_pledge_get(
    *, user, campaign_id: int, reward_id: int | None = None
) -> tuple[Campaign, RewardTier | None]:
    """Return the campaign if ``user`` may see it (as ``campaign_get_visible``), and the reward ``reward_id`` of it.

    One query for both, without the category and initiator that ``campaign_get_visible`` joins
    for the campaign's own pages: a pledge needs neither, and every pledge pays for the joins
    (benchmarks/README.md, pledge API). Raises NotFound (no such campaign to see) or InvalidInput
    (the reward is not one of the campaign's).
    """
    campaign = campaign_visible_get(user=user, with_names=False, with_reward=reward_id, pk=campaign_id)
    if campaign is None:
        raise NotFound("No such campaign.")
    if reward_id is None:
        return campaign, None
    reward = campaign.chosen_reward
    if reward is None:
        raise InvalidInput("That reward is not part of this campaign.", code="invalid_reward", field="reward")
    reward.campaign = campaign  # the same row: no query when the pledge path reads it
    return campaign, reward


class PledgeCreateApi(APIView):
    class InputSerializer(StrictInputSerializer):
        amount = AmountField()

        def get_fields(self):
            fields = super().get_fields()
            # The largest single pledge is a setting, read when the request (or schema) is made.
            fields["amount"] = AmountField(max_value=settings.PLEDGE_MAX_MINOR)
            fields["from_balance"] = AmountField(
                required=False,
                default=0,
                min_value=0,
                max_value=settings.PLEDGE_MAX_MINOR,
                help_text=(
                    "Loans only: the part of the whole (in minor units) paid from your lending balance instead "
                    "of the card; the card pays the rest. Equal to the whole, no `payment_token` is needed. "
                    "0: all by card."
                ),
            )
            return fields

        currency = serializers.ChoiceField(choices=CURRENCY_CHOICES, help_text="Must be the campaign's currency.")
        reward = IdField(required=False, allow_null=True, default=None, help_text="A reward tier of this campaign.")
        price_quote = StrictCharField(
            required=False,
            allow_blank=True,
            default="",
            max_length=500,
            help_text="The reward's `price_quote` as read (kept 15 minutes); empty: its price now.",
        )
        payment_token = StrictCharField(
            required=False,
            allow_blank=True,
            default="",
            max_length=PAYMENT_TOKEN_MAX_LENGTH,
            help_text=(
                "Sandbox: tok_visa, tok_mastercard, tok_chargeDeclined, ... Not needed when `from_balance` pays all."
            ),
        )
        shipping_country = StrictCharField(
            required=False,
            allow_blank=True,
            default="",
            max_length=2,
            help_text="ISO 3166-1 alpha-2 code of the country to ship to; required when the reward ships.",
        )
        addons = addons_field(required=False, default=list)
        pay_over_time = StrictBooleanField(
            required=False,
            default=False,
            help_text=(
                "Pay in 3 monthly installments (the whole at least PAY_OVER_TIME_MIN_AMOUNT, 15000 by default; "
                "by card, no add-ons): the first is charged now, the others one and two months later."
            ),
        )

    @extend_schema(
        operation_id="campaigns_pledges_create",
        parameters=[IDEMPOTENCY_KEY_HEADER],
        request=InputSerializer,
        responses={201: PledgeSerializer, **errors(402, 409, 503)},
        description=(
            "Pledge to a live campaign: the card is charged and the amount held in escrow until the deadline. "
            "For a reward that ships, `shipping_country` picks its shipping rule and the pledge's `amount` is "
            "the amount sent plus `shipping_amount` (400 `shipping_country_required`, `invalid_country`, "
            "`does_not_ship_there`). "
            '`addons` adds items of the campaign (`[{"addon": id, "quantity": n}]`, at most 10 of each) on '
            "top of `amount`, as shipping is: `amount` in the answer is the whole and `addons_amount` their part "
            "(400 `invalid_addon`, `invalid_addon_quantity`, `addon_quantity_above_limit`, `duplicate_addon`; "
            "409 `addon_sold_out`). "
            "A loan can be paid partly or wholly from your lending balance (`from_balance`): 400 "
            "`balance_too_small` (more than is available), `balance_not_accepted` (not a loan), "
            "`from_balance_above_amount`, `payment_token_required` (the rest needs a card). "
            "`pay_over_time`: 400 `below_pay_over_time_minimum`, `pay_over_time_not_offered`; the answer's "
            "`installments` give each one's due date and state. "
            "409 codes: `sold_out`, `reward_not_yet_available`, `reward_no_longer_available`, `campaign_not_live`, "
            "`price_changed`, `price_quote_expired` (a price step moved on: ask again), `idempotency_key_reused`, "
            "`already_backing` (you have an open pledge on this campaign: change it with "
            "`POST /pledges/{id}/change/`). 403 `own_campaign`."
        ),
    )
    # Not ``@idempotent``: the pledge's own key (unique per backer) answers a retry with the same
    # pledge or refusal, so a second record of the same request would only cost two statements.
    def post(self, request, pk: int):
        idempotency_key = idempotency_key_of(request)
        serializer = self.InputSerializer(data=request.data)
        if not serializer.is_valid():
            # A campaign the caller cannot see answers 404 whatever the body; the read of a valid
            # request below also takes its reward, so this one is only paid by invalid requests.
            _campaign_to_pledge_get(user=request.user, campaign_id=pk)
            raise serializers.ValidationError(serializer.errors)
        data = serializer.validated_data
        campaign, reward = _campaign_to_pledge_get(user=request.user, campaign_id=pk, reward_id=data["reward"])
        pledge = pledge_create(
            backer=request.user,
            campaign=campaign,
            amount=data["amount"],
            currency=data["currency"],
            payment_token=data["payment_token"],
            idempotency_key=idempotency_key,
            reward=reward,
            shipping_country=data["shipping_country"],
            price_quote=data["price_quote"],
            client_ip=request.META.get("REMOTE_ADDR"),  # for the fraud checks in its follow-up message
            from_balance=data["from_balance"],
            addons=addons_input(data["addons"]),
            pay_over_time=data["pay_over_time"],
        )
        # The campaign and reward are already loaded: serialise without fetching them again.
        pledge.campaign, pledge.reward = campaign, reward
        return Response(PledgeSerializer(pledge).data, status=status.HTTP_201_CREATED)


class PledgeListApi(APIView):
    pagination_class = NewestFirstCursorPagination

    @extend_schema(
        operation_id="pledges_list",
        responses={200: PledgeWithHistorySerializer(many=True), **errors(404)},
        description="The caller's own pledges, newest first, by cursor (`next` / `previous`). A bad cursor is a 404.",
    )
    def get(self, request):
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(pledges_of_backer(backer=request.user), request, view=self)
        page = pledge_addons_attach(pledges=page)
        return paginator.get_paginated_response(PledgeWithHistorySerializer(page, many=True).data)


def _own_pledge(request, pk: int) -> Pledge:
    pledge = pledge_of_backer_get(backer=request.user, pledge_id=pk)
    if pledge is None:
        raise NotFound("No such pledge.")
    return pledge


class PledgeDetailApi(APIView):
    @extend_schema(operation_id="pledges_retrieve", responses={200: PledgeWithHistorySerializer})
    def get(self, request, pk: int):
        return Response(PledgeWithHistorySerializer(_own_pledge(request, pk)).data)


class PledgeChangeApi(APIView):
    class InputSerializer(StrictInputSerializer):
        amount = AmountField(required=False)

        def get_fields(self):
            fields = super().get_fields()
            # The same ceiling as a new pledge, read when the request (or schema) is made.
            fields["amount"] = AmountField(
                required=False, max_value=settings.PLEDGE_MAX_MINOR, help_text="The new amount; omit to keep it."
            )
            return fields

        reward = IdField(
            required=False,
            allow_null=True,
            help_text="The new reward tier of this campaign; null for no reward; omit to keep the reward.",
        )
        payment_token = StrictCharField(
            required=False,
            max_length=PAYMENT_TOKEN_MAX_LENGTH,
            help_text="The card charged the difference when the amount goes up. Sandbox: tok_visa, ...",
        )
        shipping_country = StrictCharField(
            required=False,
            allow_blank=True,
            max_length=2,
            help_text="Where a reward that ships goes (ISO 3166-1 alpha-2, e.g. DE); omit to keep the pledge's.",
        )
        addons = addons_field(required=False)

    @extend_schema(
        operation_id="pledges_change",
        parameters=[IDEMPOTENCY_KEY_HEADER],
        request=InputSerializer,
        responses={200: PledgeWithHistorySerializer, **errors(402, 409, 503)},
        description=(
            "Change the amount and/or reward of your held pledge before the deadline, in one step on the same "
            "pledge (its `id` stays). A higher amount charges the difference to `payment_token`; a lower one "
            "refunds the difference to the card(s) charged. `changes` lists every change made. A declined card "
            "(402) leaves the pledge unchanged. `amount` is the pledge without its add-ons, shipping included; "
            "omitted, what was pledged to the campaign stays and the new shipping is added. A new reward or "
            "`shipping_country` is quoted that reward's shipping there (none for a reward that does not ship) "
            "and the difference in shipping is charged or refunded with the rest; keeping both keeps the "
            "shipping agreed before. `addons` sets the quantities of the add-ons it names (0 removes one, "
            "the others stay); they come on top of `amount`. 400 codes include `same_amount`, "
            "`below_reward_minimum`, `below_shipping`, "
            "`invalid_reward`, `payment_token_required`, `shipping_country_required`, `invalid_country`, "
            "`does_not_ship_there`. 409 codes: `not_held`, `campaign_closed`, `sold_out`, "
            "`reward_not_yet_available`, `reward_no_longer_available`, `change_in_progress`, `idempotency_key_reused`."
        ),
    )
    @idempotent
    def post(self, request, pk: int):
        pledge = _own_pledge(request, pk)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        if not {"amount", "reward", "shipping_country"} & set(data) and not data.get("addons"):
            raise InvalidInput(
                "Give a new amount, a new reward, a new shipping country, new add-ons, or several.",
                code="nothing_to_change",
                field="amount",
            )
        reward = UNCHANGED
        if "reward" in data:
            reward = None
            if data["reward"] is not None:
                reward = pledge.campaign.rewards.filter(pk=data["reward"]).first()
                if reward is None:
                    raise InvalidInput(
                        "That reward is not part of this campaign.", code="invalid_reward", field="reward"
                    )
        pledge = pledge_change(
            pledge=pledge,
            actor=request.user,
            amount=data.get("amount"),
            reward=reward,
            shipping_country=data.get("shipping_country") or None,
            payment_token=data.get("payment_token", ""),
            idempotency_key=request.headers[HEADER].strip(),
            addons=addons_input(data.get("addons")),
            client_ip=request.META.get("REMOTE_ADDR"),  # for the fraud checks in its follow-up message
        )
        return Response(PledgeWithHistorySerializer(pledge_of_backer_get(backer=request.user, pledge_id=pk)).data)


class PledgeCancelApi(APIView):
    @extend_schema(
        operation_id="pledges_cancel",
        parameters=[IDEMPOTENCY_KEY_HEADER],
        request=None,
        responses={200: PledgeSerializer, **errors(409)},
        description=(
            "Cancel your held pledge before the deadline; it is refunded in full. "
            "409 codes: `not_held` (e.g. already cancelled), `campaign_closed`."
        ),
    )
    @idempotent
    def post(self, request, pk: int):
        pledge = pledge_cancel(pledge=_own_pledge(request, pk), actor=request.user)
        return Response(_pledge_data(pledge))


class PledgeRefundApi(APIView):
    class InputSerializer(StrictInputSerializer):
        reason = StrictCharField(max_length=field_max_length(PledgeStatusChange, "reason"))

    @extend_schema(
        operation_id="pledges_refund",
        parameters=[IDEMPOTENCY_KEY_HEADER],
        request=InputSerializer,
        responses={200: PledgeSerializer, **errors(409)},
        description="Refund a held pledge of a live or suspended campaign (finance staff only, reason required).",
    )
    @idempotent
    def post(self, request, pk: int):
        if not request.user.has_perm("pledges.refund_pledge"):
            raise NotAllowed("Only finance staff can refund pledges.", code="not_staff")
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        pledge = Pledge.objects.filter(pk=pk).first()
        if pledge is None:
            raise NotFound("No such pledge.")
        pledge = pledge_refund(pledge=pledge, actor=request.user, reason=serializer.validated_data["reason"])
        return Response(_pledge_data(pledge))


urlpatterns = [
    path("campaigns/<api_id:pk>/pledges/", PledgeCreateApi.as_view(), name="campaign_pledges"),
    path("pledges/", PledgeListApi.as_view(), name="pledges"),
    path("pledges/<api_id:pk>/", PledgeDetailApi.as_view(), name="pledge"),
    path("pledges/<api_id:pk>/change/", PledgeChangeApi.as_view(), name="pledge_change"),
    path("pledges/<api_id:pk>/cancel/", PledgeCancelApi.as_view(), name="pledge_cancel"),
    path("pledges/<api_id:pk>/refund/", PledgeRefundApi.as_view(), name="pledge_refund"),
]
