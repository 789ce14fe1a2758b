"""What a model's columns hold, the same on every database the project runs on.

SQLite stores any 64-bit integer in any integer column and text of any length, where PostgreSQL
refuses a PositiveIntegerField above 2**31 - 1 with a DataError (a 500 if it gets that far). The
limits people's input is checked against (forms, serializers, services) are constants beside
each model or the model field's own ``max_length``; tests hold them inside these ranges.
"""

from django.db.backends.base.operations import BaseDatabaseOperations


def column_integer_range(model, name: str) -> tuple[int, int]:
    """Return (lowest, highest) the integer column ``model.name`` holds on PostgreSQL, the strictest we run on."""
    field = model._meta.get_field(name)
    return BaseDatabaseOperations.integer_field_ranges[field.get_internal_type()]


def field_max_length(model, name: str) -> int:
    """Return the ``max_length`` of the character column ``model.name``."""
    return model._meta.get_field(name).max_length
