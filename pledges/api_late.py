"""REST API for late pledges: the initiator's offer (set, edit, close) and a backer's late pledge.

``GET /campaigns/{id}/late-pledges/`` shows the offer to anyone who may see the campaign;
``PUT`` sets it (initiator, live campaign, before the deadline), ``POST .../close/`` closes it
for good. ``POST .../late-pledges/pledges/`` pledges late (``Idempotency-Key`` as every pledge;
the key is the pledge's own, so a retry answers with the same pledge).
"""

from django.conf import settings
from django.urls import path
from django.utils.translation import gettext
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from crowdfund_site.api.fields import AmountField, IdField, StrictCharField, StrictInputSerializer
from crowdfund_site.api.idempotency import idempotency_key_of
from crowdfund_site.api.schema import IDEMPOTENCY_KEY_HEADER, errors
from crowdfund_site.exceptions import InvalidInput
from crowdfund_site.money import CURRENCY_CHOICES
from projects.models import RewardTier
from projects.selectors import campaign_get_visible

from .api import PAYMENT_TOKEN_MAX_LENGTH, PledgeSerializer
from .late_pledges import LATE_OFFER_MAX_REWARDS, late_offer_close, late_offer_set, late_pledge_create
from .late_selectors import late_offer_for


class LateRewardSerializer(serializers.Serializer):
    reward = serializers.IntegerField(source="reward_id")
    title = serializers.CharField(source="reward.title")
    campaign_price = serializers.IntegerField(source="reward.minimum_amount")
    price = serializers.IntegerField()
    remaining = serializers.IntegerField(source="reward.remaining", allow_null=True)


class LateOfferSerializer(serializers.Serializer):
    status = serializers.CharField()
    taking_pledges = serializers.BooleanField()
    opened_at = serializers.DateTimeField(allow_null=True)  # null: late pledges were never opened
    closed_at = serializers.DateTimeField(allow_null=True)
    rewards = LateRewardSerializer(many=True)


def _offer_data(campaign) -> dict:
    offer = late_offer_for(campaign=campaign)
    if offer is None:
        return {"status": "none", "taking_pledges": False, "opened_at": None, "closed_at": None, "rewards": []}
    return LateOfferSerializer(
        {
            "status": offer.status,
            "taking_pledges": offer.takes_late_pledges(campaign),
            "opened_at": offer.opened_at,
            "closed_at": offer.closed_at,
            "rewards": list(offer.rewards.all()),
        }
    ).data


class LateOfferApi(APIView):
    class InputSerializer(StrictInputSerializer):
        class PriceSerializer(StrictInputSerializer):
            reward = IdField(help_text="A reward tier of this campaign.")
            price = AmountField(help_text="The late price in minor units: at least the reward's campaign price.")

        rewards = PriceSerializer(many=True, max_length=LATE_OFFER_MAX_REWARDS)

    def get_permissions(self):
        return [AllowAny()] if self.request.method == "GET" else [IsAuthenticated()]

    @extend_schema(
        operation_id="campaigns_late_pledges_retrieve",
        responses={200: LateOfferSerializer, **errors(404)},
        description="The campaign's late pledges: `status` none, open or closed; `taking_pledges` once it succeeded.",
    )
    def get(self, request, pk: int):
        return Response(_offer_data(campaign_get_visible(user=request.user, campaign_id=pk)))

    @extend_schema(
        operation_id="campaigns_late_pledges_set",
        request=InputSerializer,
        responses={200: LateOfferSerializer, **errors(400, 403, 404, 409)},
        description=(
            "Open late pledges, or replace the rewards and prices of the open offer (initiator; live campaign, "
            "before the deadline). 400 `late_price_below_campaign_price`, `rewards_required`, `invalid_reward`, "
            "`duplicate_reward`; 409 `campaign_not_live`, `late_pledges_closed` (closing is final)."
        ),
    )
    def put(self, request, pk: int):
        campaign = campaign_get_visible(user=request.user, campaign_id=pk)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        prices = {}
        for item in serializer.validated_data["rewards"]:
            if item["reward"] in prices:
                raise InvalidInput(gettext("Name each reward once."), code="duplicate_reward", field="rewards")
            prices[item["reward"]] = item["price"]
        late_offer_set(campaign=campaign, actor=request.user, prices=prices)
        return Response(_offer_data(campaign))


class LateOfferCloseApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="campaigns_late_pledges_close",
        request=None,
        responses={200: LateOfferSerializer, **errors(403, 404, 409)},
        description="Close late pledges for good (initiator, at any time): 409 `late_pledges_closed` if already.",
    )
    def post(self, request, pk: int):
        campaign = campaign_get_visible(user=request.user, campaign_id=pk)
        late_offer_close(campaign=campaign, actor=request.user)
        return Response(_offer_data(campaign))


class LatePledgeCreateApi(APIView):
    permission_classes = [IsAuthenticated]

    class InputSerializer(StrictInputSerializer):
        amount = AmountField()

        def get_fields(self):
            fields = super().get_fields()
            fields["amount"] = AmountField(max_value=settings.PLEDGE_MAX_MINOR)
            return fields

        currency = serializers.ChoiceField(choices=CURRENCY_CHOICES, help_text="Must be the campaign's currency.")
        reward = IdField(help_text="A reward of the campaign's late offer.")
        payment_token = StrictCharField(max_length=PAYMENT_TOKEN_MAX_LENGTH, help_text="Sandbox: tok_visa, ...")
        shipping_country = StrictCharField(
            required=False, allow_blank=True, default="", max_length=2, help_text="Required when the reward ships."
        )

    @extend_schema(
        operation_id="campaigns_late_pledges_create",
        parameters=[IDEMPOTENCY_KEY_HEADER],
        request=InputSerializer,
        responses={201: PledgeSerializer, **errors(400, 402, 403, 404, 409, 503)},
        description=(
            "Pledge late to a succeeded campaign whose late pledges are open: charged at once, held in escrow and "
            "released to the initiator in the week's batch. 400 `below_reward_minimum` (under the late price), "
            "`reward_not_offered_late`; 409 `late_pledges_not_open`, `sold_out`, `already_backing`, "
            "`idempotency_key_reused`; 403 `own_campaign`."
        ),
    )
    def post(self, request, pk: int):
        key = idempotency_key_of(request)
        campaign = campaign_get_visible(user=request.user, campaign_id=pk)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        reward = RewardTier.objects.filter(pk=data["reward"], campaign_id=campaign.pk).first()
        if reward is None:
            raise InvalidInput("That reward is not part of this campaign.", code="invalid_reward", field="reward")
        pledge = late_pledge_create(
            backer=request.user,
            campaign=campaign,
            reward=reward,
            amount=data["amount"],
            currency=data["currency"],
            payment_token=data["payment_token"],
            idempotency_key=key,
            shipping_country=data["shipping_country"],
        )
        pledge.campaign, pledge.reward = campaign, reward
        return Response(PledgeSerializer(pledge).data, status=status.HTTP_201_CREATED)


urlpatterns = [
    path("campaigns/<api_id:pk>/late-pledges/", LateOfferApi.as_view(), name="campaign_late_pledges"),
    path("campaigns/<api_id:pk>/late-pledges/close/", LateOfferCloseApi.as_view(), name="campaign_late_pledges_close"),
    path(
        "campaigns/<api_id:pk>/late-pledges/pledges/", LatePledgeCreateApi.as_view(), name="campaign_late_pledge_create"
    ),
]
