"""One error format for the whole API: ``{"code": ..., "detail": ..., "fields": {...}}``.

``code`` is stable for programs, ``detail`` is for people, ``fields`` maps input field names to
their messages (empty when the error is not about one field). Domain errors keep their own code
and status; everything DRF or Django raises is mapped to the matching 4xx.
"""

from django.core.exceptions import ObjectDoesNotExist
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.serializers import as_serializer_error
from rest_framework.views import set_rollback

from crowdfund_site.exceptions import ApplicationError


def error_body(*, code: str, detail: str, fields: dict | None = None) -> dict:
    return {"code": code, "detail": detail, "fields": fields or {}}


def _validation_body(exc: exceptions.ValidationError) -> dict:
    errors = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
    codes = exc.get_codes() if isinstance(exc.detail, dict) else {"non_field_errors": exc.get_codes()}
    general = errors.pop("non_field_errors", None)
    general_codes = codes.get("non_field_errors") if isinstance(codes, dict) else None
    if general:
        detail = str(general[0])
        code = str(general_codes[0]) if general_codes else "invalid"
    elif errors:
        name, messages = next(iter(errors.items()))
        detail = f"{name}: {_first_message(messages)}"
        code = "invalid"
    else:
        detail, code = "Invalid input.", "invalid"
    return error_body(code=code, detail=detail, fields=errors)


def _first_message(messages) -> str:
    while isinstance(messages, list | dict) and messages:
        messages = messages[0] if isinstance(messages, list) else next(iter(messages.values()))
    return str(messages)


def _code_of(exc: exceptions.APIException) -> str:
    codes = exc.get_codes()
    return codes if isinstance(codes, str) else exc.default_code


def api_exception_handler(exc, context) -> Response | None:
    """Turn any refusal into the API's error format; return None (a 500) only for real bugs."""
    if isinstance(exc, ApplicationError):
        fields = {exc.field: [exc.message]} if exc.field else {}
        set_rollback()
        return Response(error_body(code=exc.code, detail=exc.message, fields=fields), status=exc.http_status)
    if isinstance(exc, Http404 | ObjectDoesNotExist):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(as_serializer_error(exc))
    if not isinstance(exc, exceptions.APIException):
        return None

    headers = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(int(exc.wait))
    if isinstance(exc, exceptions.ValidationError):
        body = _validation_body(exc)
    else:
        body = error_body(code=_code_of(exc), detail=str(exc.detail))
    set_rollback()
    return Response(body, status=exc.status_code, headers=headers)


@csrf_exempt
def api_not_found(request, *args, **kwargs) -> JsonResponse:
    """Answer an unknown API address in the API's format, not with the HTML 404 page."""
    return JsonResponse(error_body(code="not_found", detail="Not found."), status=404)
