"""REST API for add-ons: the list on a campaign, and the initiator's create, update and delete.

Mounted with the campaigns' API (``projects.api``). An add-on is found through its campaign, so
the campaign's visibility rule applies (a campaign the caller may not see is a 404).
"""

from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from crowdfund_site.api.fields import AmountField, StrictCharField, StrictInputSerializer, StrictIntegerField
from crowdfund_site.api.schema import errors
from crowdfund_site.exceptions import NotFound

from .addons import addon_create, addon_delete, addon_update
from .models import ADDON_DESCRIPTION_MAX_LENGTH, ADDON_TITLE_MAX_LENGTH, REWARD_QUANTITY_LIMIT_MAX, AddOn
from .selectors import campaign_addons, campaign_get_visible


class AddOnSerializer(serializers.ModelSerializer):
    remaining = serializers.IntegerField(allow_null=True, read_only=True)

    class Meta:
        model = AddOn
        fields = ["id", "title", "description", "price", "quantity_limit", "remaining"]
        read_only_fields = fields


def _addon(request, pk: int, addon_pk: int) -> AddOn:
    campaign = campaign_get_visible(user=request.user, campaign_id=pk)
    addon = AddOn.objects.filter(campaign=campaign, pk=addon_pk).first()
    if addon is None:
        raise NotFound("No such add-on.")
    return addon


def _quantity_limit(**kwargs):
    return StrictIntegerField(
        allow_null=True,
        min_value=1,
        max_value=REWARD_QUANTITY_LIMIT_MAX,
        help_text="Units in all; null: unlimited.",
        **kwargs,
    )


class AddOnListCreateApi(APIView):
    class InputSerializer(StrictInputSerializer):
        title = StrictCharField(max_length=ADDON_TITLE_MAX_LENGTH)
        description = StrictCharField(required=False, allow_blank=True, max_length=ADDON_DESCRIPTION_MAX_LENGTH)
        price = AmountField(help_text="In minor units of the campaign's currency.")
        quantity_limit = _quantity_limit(required=False, default=None)

    def get_permissions(self):
        return [AllowAny()] if self.request.method == "GET" else [IsAuthenticated()]

    @extend_schema(
        operation_id="campaigns_addons_list",
        responses={200: AddOnSerializer(many=True), **errors(404)},
        description="The campaign's add-ons, cheapest first: what a pledge's `addons` may name.",
    )
    def get(self, request, pk: int):
        campaign = campaign_get_visible(user=request.user, campaign_id=pk)
        return Response(AddOnSerializer(campaign_addons(campaign=campaign), many=True).data)

    @extend_schema(
        operation_id="campaigns_addons_create",
        request=InputSerializer,
        responses={201: AddOnSerializer, **errors(400, 403, 404, 409)},
        description=(
            "Add an add-on (initiator; before review or while live): 400 `too_many_addons` (at most 20); "
            "409 `invalid_state`."
        ),
    )
    def post(self, request, pk: int):
        campaign = campaign_get_visible(user=request.user, campaign_id=pk)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        addon = addon_create(campaign=campaign, actor=request.user, **serializer.validated_data)
        return Response(AddOnSerializer(addon).data, status=status.HTTP_201_CREATED)


class AddOnDetailApi(APIView):
    class InputSerializer(StrictInputSerializer):
        title = StrictCharField(required=False, max_length=ADDON_TITLE_MAX_LENGTH)
        description = StrictCharField(required=False, allow_blank=True, max_length=ADDON_DESCRIPTION_MAX_LENGTH)
        price = AmountField(required=False)
        quantity_limit = _quantity_limit(required=False)

    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="campaigns_addons_update",
        request=InputSerializer,
        responses={200: AddOnSerializer, **errors(400, 403, 404, 409)},
        description=(
            "Change an add-on (initiator): 409 `addon_price_locked` (a new price once the campaign launched), "
            "`addon_limit_below_taken`."
        ),
    )
    def patch(self, request, pk: int, addon_pk: int):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        addon = addon_update(addon=_addon(request, pk, addon_pk), actor=request.user, **serializer.validated_data)
        return Response(AddOnSerializer(addon).data)

    @extend_schema(
        operation_id="campaigns_addons_destroy",
        responses={204: None, **errors(403, 404, 409)},
        description="Remove an add-on no pledge carried (initiator): 409 `addon_taken` otherwise.",
    )
    def delete(self, request, pk: int, addon_pk: int):
        addon_delete(addon=_addon(request, pk, addon_pk), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


urlpatterns = [
    path("campaigns/<api_id:pk>/addons/", AddOnListCreateApi.as_view(), name="campaign_addons"),
    path("campaigns/<api_id:pk>/addons/<api_id:addon_pk>/", AddOnDetailApi.as_view(), name="campaign_addon"),
]
