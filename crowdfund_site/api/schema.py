"""OpenAPI schema helpers: the error body, and error responses documented on every operation.

``ApiAutoSchema`` adds the refusals any operation can give (400 for input, 401/403 for auth, 404
for path objects, 415 for bodies, 429 when throttled); views declare their own domain refusals
(402, 409, 503) with ``extend_schema(responses=...)``.
"""

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import serializers
from rest_framework.permissions import AllowAny

from .idempotency import KEY_PATTERN


class ErrorSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Stable machine-readable reason, e.g. `sold_out`.")
    detail = serializers.CharField(help_text="What went wrong, for people.")
    fields = serializers.DictField(
        child=serializers.JSONField(), help_text="Messages per input field; empty when not about a field."
    )


ERROR_DESCRIPTIONS = {
    400: "Invalid input.",
    401: "Not authenticated, or the token is invalid.",
    402: "The payment was declined.",
    403: "Not allowed.",
    404: "Not found, or not visible to the caller.",
    409: "The current state refuses the request (e.g. sold out, campaign not live, already cancelled).",
    415: "Unsupported media type; send JSON.",
    429: "Too many requests; retry after the number of seconds in Retry-After.",
    503: "The payment processor failed temporarily; retry with the same Idempotency-Key.",
}


def error_response(status: int, description: str | None = None) -> OpenApiResponse:
    return OpenApiResponse(ErrorSerializer, description=description or ERROR_DESCRIPTIONS[status])


def errors(*statuses: int) -> dict:
    """Return extend_schema ``responses`` entries for these error statuses."""
    return {status: error_response(status) for status in statuses}


IDEMPOTENCY_KEY_HEADER = OpenApiParameter(
    name="Idempotency-Key",
    location=OpenApiParameter.HEADER,
    required=True,
    type={"type": "string", "minLength": 1, "maxLength": 255, "pattern": KEY_PATTERN},
    description=(
        "1 to 255 printable ASCII characters chosen by the client (a UUID is ideal), unique per operation. "
        "A retry with the same key and body "
        "returns the first response without doing anything again; the same key with another body is refused "
        "with 409 `idempotency_key_reused`. Keys are kept at least 24 hours."
    ),
)


class ApiAutoSchema(AutoSchema):
    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        automatic = [401, 429]
        if not any(isinstance(p, AllowAny) for p in self.view.get_permissions()):
            automatic.append(403)
        if self._get_request_body() is not None or self._get_parameters():
            automatic.append(400)
        if self._get_request_body() is not None:
            automatic.append(415)
        if "{" in self.path:
            automatic.append(404)
        for status in sorted(automatic):
            if str(status) not in responses:
                responses[str(status)] = self._get_response_for_code(error_response(status), str(status))
        return responses

    def get_serializer_name(self, serializer, direction):
        # Views nest their own InputSerializer / OutputSerializer; name the components after the
        # view that defines them ("CampaignDetailApi.OutputSerializer" -> "CampaignDetailOutput").
        parts = type(serializer).__qualname__.split(".")
        if len(parts) >= 2:
            return parts[-2].removesuffix("Api").removesuffix("Serializer") + parts[-1].removesuffix("Serializer")
        return super().get_serializer_name(serializer, direction)


def request_bodies_closed(result, generator, request, public):
    """Postprocessing hook: request bodies accept only their documented fields (see InputSerializer)."""
    for name, component in result.get("components", {}).get("schemas", {}).items():
        if name.endswith("Request") and component.get("type") == "object":
            component["additionalProperties"] = False
    return result
