"""REST API for stretch goals: the list on a campaign, and the initiator's create, update and delete.

Mounted with the campaigns' API (``projects.api``). A goal is found through its campaign, so the
campaign's visibility rule applies (a campaign the caller may not see is a 404); the list shows
what the campaign page shows (``campaign_stretch_goals``).
"""

from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from crowdfund_site.api.fields import AmountField, StrictCharField, StrictInputSerializer
from crowdfund_site.api.schema import errors
from crowdfund_site.exceptions import NotFound

from .models import STRETCH_GOAL_DESCRIPTION_MAX_LENGTH, STRETCH_GOAL_TITLE_MAX_LENGTH, StretchGoal
from .selectors import campaign_get_visible, campaign_stretch_goals
from .stretch_goals import stretch_goal_create, stretch_goal_delete, stretch_goal_update


class StretchGoalSerializer(serializers.ModelSerializer):
    unlocked = serializers.SerializerMethodField()

    class Meta:
        model = StretchGoal
        fields = ["id", "amount", "title", "description", "unlocked", "unlocked_at"]
        read_only_fields = fields

    def get_unlocked(self, goal: StretchGoal) -> bool:
        return goal.unlocked_at is not None


def _goal(request, pk: int, goal_pk: int) -> StretchGoal:
    campaign = campaign_get_visible(user=request.user, campaign_id=pk)
    goal = StretchGoal.objects.filter(campaign=campaign, pk=goal_pk).first()
    if goal is None:
        raise NotFound("No such stretch goal.")
    return goal


class StretchGoalListCreateApi(APIView):
    class InputSerializer(StrictInputSerializer):
        amount = AmountField(help_text="In minor units; more than the campaign's goal, distinct per campaign.")
        title = StrictCharField(max_length=STRETCH_GOAL_TITLE_MAX_LENGTH)
        description = StrictCharField(required=False, allow_blank=True, max_length=STRETCH_GOAL_DESCRIPTION_MAX_LENGTH)

    def get_permissions(self):
        return [AllowAny()] if self.request.method == "GET" else [IsAuthenticated()]

    @extend_schema(
        operation_id="campaigns_stretch_goals_list",
        responses={200: StretchGoalSerializer(many=True), **errors(404)},
        description="The stretch goals, lowest first: none shown until the goal is reached, except to the initiator.",
    )
    def get(self, request, pk: int):
        campaign = campaign_get_visible(user=request.user, campaign_id=pk)
        goals = campaign_stretch_goals(campaign=campaign, viewer=request.user)
        return Response(StretchGoalSerializer(goals, many=True).data)

    @extend_schema(
        operation_id="campaigns_stretch_goals_create",
        request=InputSerializer,
        responses={201: StretchGoalSerializer, **errors(400, 403, 404, 409)},
        description=(
            "Add a stretch goal (initiator; before review or while live): 400 `stretch_goal_not_above_goal`, "
            "`stretch_goal_duplicate`, `too_many_stretch_goals` (at most 10); 409 `invalid_state`."
        ),
    )
    def post(self, request, pk: int):
        campaign = campaign_get_visible(user=request.user, campaign_id=pk)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        goal = stretch_goal_create(campaign=campaign, actor=request.user, **serializer.validated_data)
        return Response(StretchGoalSerializer(goal).data, status=status.HTTP_201_CREATED)


class StretchGoalDetailApi(APIView):
    class InputSerializer(StrictInputSerializer):
        amount = AmountField(required=False)
        title = StrictCharField(required=False, max_length=STRETCH_GOAL_TITLE_MAX_LENGTH)
        description = StrictCharField(required=False, allow_blank=True, max_length=STRETCH_GOAL_DESCRIPTION_MAX_LENGTH)

    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="campaigns_stretch_goals_update",
        request=InputSerializer,
        responses={200: StretchGoalSerializer, **errors(400, 403, 404, 409)},
        description=(
            "Change a stretch goal (initiator): as for create; 409 `stretch_goal_unlocked` for a new amount "
            "of an unlocked goal."
        ),
    )
    def patch(self, request, pk: int, goal_pk: int):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        goal = stretch_goal_update(goal=_goal(request, pk, goal_pk), actor=request.user, **serializer.validated_data)
        return Response(StretchGoalSerializer(goal).data)

    @extend_schema(
        operation_id="campaigns_stretch_goals_destroy",
        responses={204: None, **errors(403, 404, 409)},
        description="Remove a stretch goal (initiator): 409 `stretch_goal_unlocked` once it is unlocked.",
    )
    def delete(self, request, pk: int, goal_pk: int):
        stretch_goal_delete(goal=_goal(request, pk, goal_pk), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


urlpatterns = [
    path("campaigns/<api_id:pk>/stretch-goals/", StretchGoalListCreateApi.as_view(), name="campaign_stretch_goals"),
    path(
        "campaigns/<api_id:pk>/stretch-goals/<api_id:goal_pk>/",
        StretchGoalDetailApi.as_view(),
        name="campaign_stretch_goal",
    ),
]
