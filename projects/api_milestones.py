"""REST API for milestones: the plan, proof, backers' votes, an extension, abandoning the project.

Mounted with the campaigns' API (``projects.api``). A milestone is found through its campaign,
so the campaign's visibility rule applies: a campaign the caller may not see is a 404.
"""

from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from crowdfund_site.api.fields import StrictBooleanField, StrictCharField, StrictInputSerializer, StrictIntegerField
from crowdfund_site.api.schema import errors
from crowdfund_site.exceptions import NotFound
from settlement.models import RemainderCause
from settlement.remainder import remainder_refund_start

from .milestones.models import Milestone, MilestoneStatus
from .milestones.selectors import milestones_of
from .milestones.services import (
    MAX_MILESTONES,
    MilestoneInput,
    milestone_extend,
    milestone_submit_proof,
    milestone_vote,
    milestones_plan_set,
)
from .selectors import campaign_get_visible


class MilestoneInputSerializer(StrictInputSerializer):
    title = StrictCharField(max_length=120)
    proof_required = StrictCharField(max_length=2_000, help_text="What will be shown as proof.")
    target_date = serializers.DateField()
    share_bps = StrictIntegerField(min_value=1, max_value=10_000, help_text="Share of what is raised (bps).")


def plan_from(data: list[dict]) -> list[MilestoneInput]:
    """Return the service's plan from validated milestone inputs."""
    return [MilestoneInput(m["title"], m["proof_required"], m["target_date"], m["share_bps"]) for m in data]


class MilestoneSerializer(serializers.ModelSerializer):
    due_date = serializers.DateField(read_only=True)
    status = serializers.ChoiceField(choices=MilestoneStatus.choices, read_only=True)

    class Meta:
        model = Milestone
        fields = [
            "id",
            "position",
            "title",
            "proof_required",
            "target_date",
            "due_date",
            "share_bps",
            "status",
            "amount",
            "proof_text",
            "vote_closes_at",
            "approve_amount",
            "reject_amount",
            "vote_basis",
            "decision_reason",
            "resubmissions",
            "released_at",
        ]
        read_only_fields = fields


def _milestone(request, pk: int, milestone_pk: int) -> Milestone:
    campaign = campaign_get_visible(user=request.user, campaign_id=pk)
    milestone = Milestone.objects.filter(campaign=campaign, pk=milestone_pk).first()
    if milestone is None:
        raise NotFound("No such milestone.")
    return milestone


class MilestoneListApi(APIView):
    class InputSerializer(StrictInputSerializer):
        # A ListField (not many=True) so that the schema states the limit (maxItems) it enforces.
        milestones = serializers.ListField(child=MilestoneInputSerializer(), max_length=MAX_MILESTONES)

    def get_permissions(self):
        return [AllowAny()] if self.request.method == "GET" else [IsAuthenticated()]

    @extend_schema(
        operation_id="campaigns_milestones_list", responses={200: MilestoneSerializer(many=True), **errors(404)}
    )
    def get(self, request, pk: int):
        campaign = campaign_get_visible(user=request.user, campaign_id=pk)
        return Response(MilestoneSerializer(milestones_of(campaign=campaign), many=True).data)

    @extend_schema(
        operation_id="campaigns_milestones_set",
        request=InputSerializer,
        responses={200: MilestoneSerializer(many=True), **errors(400, 403, 404, 409)},
        description=(
            "Replace the milestone plan (initiator, before review): 1 to 8 milestones whose shares sum to "
            "10,000 bps, the first at most the first-tranche cap; an empty list removes the plan."
        ),
    )
    def put(self, request, pk: int):
        campaign = campaign_get_visible(user=request.user, campaign_id=pk)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        milestones_plan_set(
            campaign=campaign, actor=request.user, plan=plan_from(serializer.validated_data["milestones"])
        )
        return Response(MilestoneSerializer(milestones_of(campaign=campaign), many=True).data)


class MilestoneProofApi(APIView):
    class InputSerializer(StrictInputSerializer):
        proof_text = StrictCharField(max_length=10_000)

    @extend_schema(
        operation_id="milestones_proof_submit",
        request=InputSerializer,
        responses={200: MilestoneSerializer, **errors(400, 403, 404, 409)},
        description="Submit proof (initiator); opens the backers' seven-day vote.",
    )
    def post(self, request, pk: int, milestone_pk: int):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        milestone = _milestone(request, pk, milestone_pk)
        milestone = milestone_submit_proof(milestone=milestone, actor=request.user, **serializer.validated_data)
        return Response(MilestoneSerializer(milestone).data)


class MilestoneVoteApi(APIView):
    class InputSerializer(StrictInputSerializer):
        approve = StrictBooleanField()

    class OutputSerializer(serializers.Serializer):
        approve = serializers.BooleanField()
        weight = serializers.IntegerField(help_text="What the backer pledged, in minor units.")

    @extend_schema(
        operation_id="milestones_vote",
        request=InputSerializer,
        responses={201: OutputSerializer, **errors(400, 403, 404, 409)},
        description="Vote on the proof (backers only, once per round), weighted by what you pledged.",
    )
    def post(self, request, pk: int, milestone_pk: int):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        milestone = _milestone(request, pk, milestone_pk)
        vote = milestone_vote(milestone=milestone, backer=request.user, **serializer.validated_data)
        return Response(self.OutputSerializer(vote).data, status=status.HTTP_201_CREATED)


class MilestoneExtensionApi(APIView):
    class InputSerializer(StrictInputSerializer):
        new_date = serializers.DateField()

    @extend_schema(
        operation_id="milestones_extend",
        request=InputSerializer,
        responses={200: MilestoneSerializer, **errors(400, 403, 404, 409)},
        description="Move the milestone's due date once, by at most 90 days after its target (initiator).",
    )
    def post(self, request, pk: int, milestone_pk: int):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        milestone = _milestone(request, pk, milestone_pk)
        milestone = milestone_extend(milestone=milestone, actor=request.user, **serializer.validated_data)
        return Response(MilestoneSerializer(milestone).data)


class CampaignAbandonApi(APIView):
    class InputSerializer(StrictInputSerializer):
        reason = StrictCharField(max_length=2_000, required=False, allow_blank=True, default="")

    class OutputSerializer(serializers.Serializer):
        amount = serializers.IntegerField(help_text="What is refunded to the backers, in minor units.")
        finished = serializers.BooleanField()

    @extend_schema(
        operation_id="campaigns_abandon",
        request=InputSerializer,
        responses={202: OutputSerializer, **errors(400, 403, 404, 409)},
        description="Abandon the project (initiator): what is not yet released is refunded to the backers pro rata.",
    )
    def post(self, request, pk: int):
        campaign = campaign_get_visible(user=request.user, campaign_id=pk)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        job = remainder_refund_start(
            campaign=campaign, actor=request.user, cause=RemainderCause.ABANDONED, **serializer.validated_data
        )
        data = {"amount": job.amount, "finished": job.finished_at is not None}
        return Response(self.OutputSerializer(data).data, status=status.HTTP_202_ACCEPTED)


urlpatterns = [
    path("campaigns/<api_id:pk>/milestones/", MilestoneListApi.as_view(), name="campaign_milestones"),
    path(
        "campaigns/<api_id:pk>/milestones/<api_id:milestone_pk>/proof/",
        MilestoneProofApi.as_view(),
        name="milestone_proof",
    ),
    path(
        "campaigns/<api_id:pk>/milestones/<api_id:milestone_pk>/votes/",
        MilestoneVoteApi.as_view(),
        name="milestone_votes",
    ),
    path(
        "campaigns/<api_id:pk>/milestones/<api_id:milestone_pk>/extension/",
        MilestoneExtensionApi.as_view(),
        name="milestone_extension",
    ),
    path("campaigns/<api_id:pk>/abandon/", CampaignAbandonApi.as_view(), name="campaign_abandon"),
]
