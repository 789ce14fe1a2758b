"""One error format for the whole API: ``{"code": ..., "detail": ..., "fields": {...}}``.

``code`` is stable for programs, ``detail`` is for people, ``fields`` maps input field names to
their messages (empty when the error is not about one field). Domain errors keep their own code
and status; everything DRF or Django raises is mapped to the matching 4xx.

What Django refuses before DRF sees the request (a body over DATA_UPLOAD_MAX_MEMORY_SIZE, too
many query or form fields, a Host not in ALLOWED_HOSTS) and server errors reach the project's
``handler400``/``handler403``/``handler404``/``handler500`` (``crowdfund_site/urls.py``): under
``/api/`` those answer in this format too, elsewhere with the usual pages.
"""

from django.conf import settings
from django.core.exceptions import (
    DisallowedHost,
    ObjectDoesNotExist,
    RequestDataTooBig,
    TooManyFieldsSent,
    TooManyFilesSent,
)
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, JsonResponse
from django.views import defaults
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


API_PREFIX = "/api/"


def is_api_request(request) -> bool:
    return request.path_info.startswith(API_PREFIX)


def _refusal_before_the_api(exception) -> tuple[int, dict]:
    """Return (status, body) for what Django refused before any API view ran."""
    if isinstance(exception, RequestDataTooBig):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return 413, error_body(code="request_too_large", detail=f"The request body may be at most {limit:,} bytes.")
    if isinstance(exception, TooManyFieldsSent | TooManyFilesSent):
        limit = settings.DATA_UPLOAD_MAX_NUMBER_FIELDS
        return 400, error_body(code="too_many_fields", detail=f"A request may have at most {limit:,} parameters.")
    if isinstance(exception, DisallowedHost):
        return 400, error_body(code="invalid_host", detail="The Host header names no site served here.")
    return 400, error_body(code="bad_request", detail="The request is malformed.")


def bad_request(request, exception):
    """handler400: the API's error format under /api/ (413 for a body too large), the HTML page elsewhere."""
    if not is_api_request(request):
        return defaults.bad_request(request, exception)
    status, body = _refusal_before_the_api(exception)
    return JsonResponse(body, status=status)


def permission_denied(request, exception):
    """handler403: the API's error format under /api/, the HTML page elsewhere."""
    if not is_api_request(request):
        return defaults.permission_denied(request, exception)
    return JsonResponse(
        error_body(code="permission_denied", detail="You do not have permission to perform this action."), status=403
    )


def page_not_found(request, exception):
    """handler404: the API's error format under /api/, the HTML page elsewhere."""
    if not is_api_request(request):
        return defaults.page_not_found(request, exception)
    return api_not_found(request)


def server_error(request):
    """handler500: the API's error format under /api/ (a program reads JSON), the HTML page elsewhere."""
    if not is_api_request(request):
        return defaults.server_error(request)
    return JsonResponse(error_body(code="server_error", detail="A server error occurred; try again later."), status=500)
