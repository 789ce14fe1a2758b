"""Serializer fields and pagination shared by the API's endpoints."""

from collections.abc import Mapping
from functools import cached_property

from django.core.validators import RegexValidator
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import CursorPagination, PageNumberPagination
from rest_framework.utils.serializer_helpers import BindingDict

from crowdfund_site.money import ABSOLUTE_MAX_MINOR

# Database ids fit in a signed 64-bit column; larger numbers cannot name anything.
MAX_ID = 2**63 - 1


class FieldsBuiltOnce:
    """For an output serializer: build and bind its fields once per class, not for every object.

    DRF builds a serializer's fields anew for each instance (a ``ModelSerializer`` from the
    model's fields each time): two thirds of the cost of answering with one pledge
    (benchmarks/README.md, Stop 11). Turning an object into data only reads the fields
    (``get_attribute``, ``to_representation``), so one bound set serves every instance of the class,
    in every thread. A serializer given ``data`` (input) or a ``context`` builds its own, since
    validation and context-dependent fields keep state on the serializer they are bound to; so
    the shared set is only used without either. Mix in before the serializer class.
    """

    @cached_property
    def fields(self):
        if getattr(self, "initial_data", None) is not None or self._context:
            return super().fields
        cls = type(self)
        bound = cls.__dict__.get("_fields_built_once")
        if bound is None:
            bound = BindingDict(self)
            for name, field in self.get_fields().items():
                bound[name] = field
            cls._fields_built_once = bound  # a race builds it twice, equal either way
        return bound


class StrictIntegerField(serializers.IntegerField):
    """An integer that must be sent as a JSON integer: no strings, floats or booleans.

    Money in the API is whole minor units, so "12.50", 12.5 or "1250" are refused rather than
    guessed at.
    """

    default_error_messages = {"invalid": "Send a whole number (a JSON integer)."}

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class AmountField(StrictIntegerField):
    """An amount in the currency's minor unit (cents): a positive JSON integer."""

    def __init__(self, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", ABSOLUTE_MAX_MINOR)
        kwargs.setdefault("help_text", "In minor units of the currency (cents), e.g. 2500 for $25.00.")
        super().__init__(**kwargs)


class IdField(StrictIntegerField):
    def __init__(self, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(**kwargs)


# No NUL characters (PostgreSQL text cannot hold them); the second also needs a visible character.
# Whitespace is spelled out, not ``\s``: Python and JSON Schema (ECMA) disagree on what ``\s`` is.
ANY_TEXT = r"^[^\x00]*$"
_SPACE = r"\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
NON_BLANK_TEXT = rf"^[^\x00]*[^{_SPACE}][^\x00]*$"


class StrictCharField(serializers.CharField):
    """Text that must be sent as a JSON string; the schema states what the server accepts.

    DRF would turn 12 or true into "12" / "True"; a program sending a number where text belongs
    has a bug worth reporting. The pattern tells clients that NUL characters are refused and,
    unless blank is allowed, that whitespace alone is not a value.
    """

    default_error_messages = {"invalid": "Send text (a JSON string).", "blank": "This field may not be blank."}

    def __init__(self, **kwargs):
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(**kwargs)
        message = "Text may not contain NUL characters" + ("." if self.allow_blank else " or be only whitespace.")
        self.validators.append(RegexValidator(ANY_TEXT if self.allow_blank else NON_BLANK_TEXT, message=message))

    def run_validation(self, data=serializers.empty):
        if data is not serializers.empty and data is not None and not isinstance(data, str):
            self.fail("invalid")
        return super().run_validation(data)


class StrictBooleanField(serializers.BooleanField):
    """true or false as JSON booleans, not "yes", 1 or "on"."""

    default_error_messages = {"invalid": "Send true or false (a JSON boolean)."}

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


class StrictInputSerializer(serializers.Serializer):
    """A request body: a JSON object with only the fields the operation documents."""

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise ValidationError({name: ["Unknown field."] for name in unknown})
        return super().to_internal_value(data)


def query_params_check(request, names: list[str]) -> None:
    """Refuse a query parameter given more than once (the schema allows one value)."""
    repeated = sorted(n for n in names if len(request.query_params.getlist(n)) > 1)
    if repeated:
        raise ValidationError({name: ["Give this parameter once."] for name in repeated})


def _page_size_check(request, pagination) -> None:
    raw = request.query_params.get(pagination.page_size_query_param)
    if raw is not None and not (raw.isdigit() and 1 <= int(raw) <= pagination.max_page_size):
        raise ValidationError(
            {pagination.page_size_query_param: [f"Give a whole number from 1 to {pagination.max_page_size}."]}
        )


class PagePagination(PageNumberPagination):
    """Numbered pages; a page number past the end is a 404, a malformed one a 400."""

    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100

    def paginate_queryset(self, queryset, request, view=None):
        query_params_check(request, [self.page_query_param, self.page_size_query_param])
        _page_size_check(request, self)
        raw = request.query_params.get(self.page_query_param)
        if raw is not None and not (raw.isdigit() and len(raw) <= 9 and int(raw) >= 1):
            raise ValidationError({self.page_query_param: ["Give a page number from 1."]})
        return super().paginate_queryset(queryset, request, view)

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_query_param:
                parameter["schema"].update({"minimum": 1, "maximum": 999_999_999})
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"].update({"minimum": 1, "maximum": self.max_page_size})
        return parameters


class NewestFirstCursorPagination(CursorPagination):
    """Newest first by cursor; a cursor that is not one of ours is a 404."""

    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100
    ordering = "-id"

    def paginate_queryset(self, queryset, request, view=None):
        query_params_check(request, [self.cursor_query_param, self.page_size_query_param])
        _page_size_check(request, self)
        return super().paginate_queryset(queryset, request, view)

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"].update({"minimum": 1, "maximum": self.max_page_size})
        return parameters


class IdConverter:
    """Path converter for database ids: 1 to 18 digits, so no number overflows the column."""

    regex = "[0-9]{1,18}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value) -> str:
        return str(value)
