"""REST API for people: API tokens and the caller's profile (their campaigns: ``projects.api``)."""

from django.contrib.auth import authenticate
from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import AuthenticationFailed, Throttled
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from crowdfund_site.api.fields import StrictCharField, StrictInputSerializer
from crowdfund_site.api.throttles import AuthThrottle
from crowdfund_site.api.tokens import api_token_get_or_create
from crowdfund_site.bounds import field_max_length

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


urlpatterns = [
    path("auth/token/", TokenCreateApi.as_view(), name="auth_token"),
    path("me/", MeApi.as_view(), name="me"),
]
