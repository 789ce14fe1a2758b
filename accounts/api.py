"""REST API for people: API tokens, the caller's profile and avatar (their campaigns: ``projects.api``)."""

from django.contrib.auth import authenticate
from django.urls import path
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import AuthenticationFailed, Throttled
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from crowdfund_site.api.fields import StrictCharField, StrictInputSerializer
from crowdfund_site.api.schema import errors
from crowdfund_site.api.throttles import AuthThrottle
from crowdfund_site.api.tokens import api_token_get_or_create
from crowdfund_site.bounds import field_max_length
from projects.serializers import PictureSerializer

from .avatars import user_avatar_remove, user_avatar_set
from .models import BIO_MAX_LENGTH, User
from .services import user_update_profile
from .throttle import LoginBlocked


class TokenCreateApi(APIView):
    class InputSerializer(StrictInputSerializer):
        username = StrictCharField(max_length=field_max_length(User, "username"))
        password = StrictCharField(max_length=128, style={"input_type": "password"})

    class OutputSerializer(serializers.Serializer):
        token = serializers.CharField(help_text='Send it as "Authorization: Token <token>".')

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [AuthThrottle]

    def get_authenticate_header(self, request) -> str:
        return 'Token realm="api"'

    @extend_schema(
        operation_id="auth_token_create",
        request=InputSerializer,
        responses={200: OutputSerializer},
        auth=[],
        description=(
            "Exchange a username and password for an API token. 401 `invalid_credentials` if they do not match; "
            "429 `too_many_attempts` while the account (from this address) or the address has failed too often, "
            "through this endpoint or the web log-in alike."
        ),
    )
    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            user = authenticate(request, **serializer.validated_data)
        except LoginBlocked as blocked:
            raise Throttled(
                wait=blocked.retry_after, detail=str(blocked.messages[0]), code="too_many_attempts"
            ) from None
        if user is None or not user.is_active:
            raise AuthenticationFailed("Unknown username or wrong password.", code="invalid_credentials")
        return Response({"token": api_token_get_or_create(user=user).key})


class MeApi(APIView):
    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        username = serializers.CharField()
        email = serializers.EmailField()
        display_name = serializers.CharField()
        bio = serializers.CharField()
        preferred_language = serializers.CharField()
        is_staff = serializers.BooleanField()
        avatar = serializers.SerializerMethodField()

        @extend_schema_field(PictureSerializer(allow_null=True))
        def get_avatar(self, user: User) -> dict | None:
            return PictureSerializer(user.avatar).data if user.avatar else None

    class InputSerializer(StrictInputSerializer):
        display_name = StrictCharField(
            max_length=field_max_length(User, "display_name"), required=False, allow_blank=True
        )
        bio = StrictCharField(max_length=BIO_MAX_LENGTH, required=False, allow_blank=True)
        preferred_language = serializers.ChoiceField(choices=["en", "zh-hans"], required=False)

    @extend_schema(operation_id="me_retrieve", responses={200: OutputSerializer})
    def get(self, request):
        return Response(self.OutputSerializer(request.user).data)

    @extend_schema(operation_id="me_update", request=InputSerializer, responses={200: OutputSerializer})
    def patch(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = request.user
        fields = {
            "display_name": user.display_name,
            "bio": user.bio,
            "preferred_language": user.preferred_language,
            **serializer.validated_data,
        }
        user = user_update_profile(user=user, **fields)
        return Response(self.OutputSerializer(user).data)


class AvatarInputSerializer(StrictInputSerializer):
    # Empty files reach the check, which says so in its own words (code `image_empty`).
    image = serializers.FileField(
        allow_empty_file=True,
        help_text="JPEG, PNG or WebP (checked from the content, not the name), at most 10 MB and 40 megapixels.",
    )


class MeAvatarApi(APIView):
    parser_classes = [MultiPartParser]

    @extend_schema(
        operation_id="me_avatar_set",
        request={"multipart/form-data": AvatarInputSerializer},
        responses={200: MeApi.OutputSerializer, **errors()},
        description=(
            "Set or replace your avatar (cropped square, EXIF stripped, stored in sizes). 400 `invalid_image` "
            "codes (`image_format`, `image_too_large`, `image_too_many_pixels`, `image_damaged`, `image_empty`) "
            "for a file that is not a usable picture; nothing is stored then."
        ),
    )
    def put(self, request):
        serializer = AvatarInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = user_avatar_set(user=request.user, upload=serializer.validated_data["image"])
        return Response(MeApi.OutputSerializer(user).data)

    @extend_schema(
        operation_id="me_avatar_delete",
        request=None,
        responses={200: MeApi.OutputSerializer},
        description="Remove your avatar (nothing happens if you have none).",
    )
    def delete(self, request):
        return Response(MeApi.OutputSerializer(user_avatar_remove(user=request.user)).data)


urlpatterns = [
    path("auth/token/", TokenCreateApi.as_view(), name="auth_token"),
    path("me/", MeApi.as_view(), name="me"),
    path("me/avatar/", MeAvatarApi.as_view(), name="me_avatar"),
]
