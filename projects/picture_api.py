"""API for campaign pictures: upload the cover, add to and remove from the gallery, a reward's picture.

Uploads are ``multipart/form-data`` with the file in ``image`` and its description in ``alt``.
The file is checked for what it really is (JPEG, PNG or WebP), at most 10 MB and 40 megapixels,
and refused with 400 ``invalid_image`` codes (``image_format``, ``image_too_large``,
``image_too_many_pixels``, ``image_damaged``, ``image_empty``); nothing is stored then.
"""

from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from crowdfund_site.api.fields import StrictCharField, StrictInputSerializer
from crowdfund_site.api.schema import errors
from crowdfund_site.exceptions import NotFound

from .media import campaign_cover_set, campaign_gallery_add, campaign_gallery_remove, reward_image_set
from .models import IMAGE_ALT_MAX_LENGTH
from .selectors import campaign_get_visible
from .serializers import CampaignDetailSerializer, PictureSerializer, RewardSerializer, campaign_detail_data

UPLOAD_DESCRIPTION = "JPEG, PNG or WebP (checked from the content, not the name), at most 10 MB and 40 megapixels."


class PictureInputSerializer(StrictInputSerializer):
    # Empty files reach the check, which says so in its own words (code `image_empty`).
    image = serializers.FileField(allow_empty_file=True, help_text=UPLOAD_DESCRIPTION)
    alt = StrictCharField(max_length=IMAGE_ALT_MAX_LENGTH, help_text="What the picture shows, for screen readers.")


class _PictureUploadApi(APIView):
    parser_classes = [MultiPartParser]

    def _validated(self, request) -> dict:
        serializer = PictureInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return {"upload": serializer.validated_data["image"], "alt": serializer.validated_data["alt"]}


class CampaignCoverApi(_PictureUploadApi):
    @extend_schema(
        operation_id="campaigns_cover_set",
        request={"multipart/form-data": PictureInputSerializer},
        responses={200: CampaignDetailSerializer, **errors(409)},
        description=(
            "Set or replace the campaign's cover (cropped to 16:9), required to submit for review. "
            "Initiator only, while the campaign is a draft or changes are requested. " + UPLOAD_DESCRIPTION
        ),
    )
    def put(self, request, pk: int):
        campaign = campaign_get_visible(user=request.user, campaign_id=pk)
        campaign = campaign_cover_set(campaign=campaign, actor=request.user, **self._validated(request))
        return Response(campaign_detail_data(campaign))


class CampaignGalleryApi(_PictureUploadApi):
    @extend_schema(
        operation_id="campaigns_gallery_add",
        request={"multipart/form-data": PictureInputSerializer},
        responses={201: PictureSerializer, **errors(409)},
        description="Add a picture at the end of the gallery (at most 10; 409 `gallery_full`). " + UPLOAD_DESCRIPTION,
    )
    def post(self, request, pk: int):
        campaign = campaign_get_visible(user=request.user, campaign_id=pk)
        descriptor = campaign_gallery_add(campaign=campaign, actor=request.user, **self._validated(request))
        return Response(PictureSerializer(descriptor).data, status=status.HTTP_201_CREATED)


class CampaignGalleryPictureApi(APIView):
    @extend_schema(
        operation_id="campaigns_gallery_remove",
        request=None,
        responses={204: None, **errors(409)},
        description="Remove the gallery picture named `token` (initiator only, while editable).",
    )
    def delete(self, request, pk: int, token: str):
        campaign = campaign_get_visible(user=request.user, campaign_id=pk)
        campaign_gallery_remove(campaign=campaign, actor=request.user, token=token)
        return Response(status=status.HTTP_204_NO_CONTENT)


class RewardPictureApi(_PictureUploadApi):
    @extend_schema(
        operation_id="campaigns_rewards_picture_set",
        request={"multipart/form-data": PictureInputSerializer},
        responses={200: RewardSerializer, **errors(409)},
        description="Set or replace a reward tier's picture (initiator only, while editable). " + UPLOAD_DESCRIPTION,
    )
    def put(self, request, pk: int, reward_pk: int):
        campaign = campaign_get_visible(user=request.user, campaign_id=pk)
        reward = campaign.rewards.filter(pk=reward_pk).first()
        if reward is None:
            raise NotFound("No such reward.")
        reward = reward_image_set(reward=reward, actor=request.user, **self._validated(request))
        return Response(RewardSerializer(reward).data)


urlpatterns = [
    path("campaigns/<api_id:pk>/cover/", CampaignCoverApi.as_view(), name="campaign_cover"),
    path("campaigns/<api_id:pk>/gallery/", CampaignGalleryApi.as_view(), name="campaign_gallery"),
    path(
        "campaigns/<api_id:pk>/gallery/<slug:token>/",
        CampaignGalleryPictureApi.as_view(),
        name="campaign_gallery_picture",
    ),
    path(
        "campaigns/<api_id:pk>/rewards/<api_id:reward_pk>/picture/",
        RewardPictureApi.as_view(),
        name="campaign_reward_picture",
    ),
]
