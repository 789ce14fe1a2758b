"""Helpers for the hot bulk paths (settlement, the ledger, the sandbox gateway).

Settlement handles thousands of pledges per batch and writes about five rows for each. Two
ORM conveniences cost more there than the database work itself:

- ``QuerySet.bulk_create`` builds a model instance for every row and prepares every value
  through its field, and Django's PostgreSQL cursor then quotes every value into the SQL text.
  ``insert_rows`` inserts plain tuples instead: on PostgreSQL one
  ``INSERT ... SELECT * FROM UNNEST(<one binary array per column>)``, elsewhere multi-row
  ``INSERT ... VALUES`` in chunks.
- ``filter(field__in=values)`` prepares each value and binds ``IN (%s, %s, ...)``. ``AnyOf``
  binds the whole list as one array on PostgreSQL.

Constraints, triggers and indexes apply as always; as with ``bulk_create``, no ``save()`` and
no signals run.
"""

from collections.abc import Sequence

from django.db import connections, models, router
from django.db.models import NOT_PROVIDED
from django.db.models.lookups import In

# Values of these fields go to the driver as they are; others (datetimes, decimals, JSON) are
# prepared by their field, as the ORM would.
_PASS_THROUGH = {
    "BigIntegerField",
    "BooleanField",
    "CharField",
    "ForeignKey",
    "IntegerField",
    "PositiveBigIntegerField",
    "PositiveIntegerField",
    "PositiveSmallIntegerField",
    "SmallIntegerField",
    "TextField",
}


def insert_rows(
    *,
    model: type[models.Model],
    fields: Sequence[str],
    rows: Sequence[Sequence],
    returning_ids: bool = False,
    skip_conflicts: bool = False,
) -> list[int]:
    """Insert ``rows`` (tuples of values for ``fields``) into ``model``'s table.

    Values are what the column stores (a foreign key's id, an aware datetime). A column left
    out gets its field's constant default, its database default, or NULL; one whose default is
    computed (``timezone.now``, ``auto_now``) must be given, so that no row shares a value it
    should not. Runs in the caller's transaction. Returns the new primary keys in row order if
    ``returning_ids``. With ``skip_conflicts`` a row that a unique constraint already holds is
    left out (``ON CONFLICT DO NOTHING``) instead of failing the statement, and returns no id.
    Raises ValueError for a column that cannot be left out.
    """
    if not rows:
        return []
    connection = connections[router.db_for_write(model)]
    model_fields = [model._meta.get_field(name) for name in fields]
    constants = _constant_defaults(model, model_fields)
    if constants:
        model_fields += list(constants)
        extra = tuple(constants.values())
        rows = [(*row, *extra) for row in rows]
    rows = _prepared(connection, model_fields, rows)
    quote = connection.ops.quote_name
    # Only quoted names from the model's metadata go into the SQL text; every value is a parameter.
    columns = ", ".join(quote(f.column) for f in model_fields)
    head = f"INSERT INTO {quote(model._meta.db_table)} ({columns}) "
    tail = " ON CONFLICT DO NOTHING" if skip_conflicts else ""
    tail += f" RETURNING {quote(model._meta.pk.column)}" if returning_ids else ""
    if connection.vendor == "postgresql":
        return _insert_unnest(connection, head, tail, model_fields, rows, returning_ids)
    chunk = max(connection.ops.bulk_batch_size(model_fields, rows), 1)
    placeholders = f"({', '.join(['%s'] * len(model_fields))})"
    ids: list[int] = []
    with connection.cursor() as cursor:
        for start in range(0, len(rows), chunk):
            part = rows[start : start + chunk]
            cursor.execute(f"{head}VALUES {', '.join([placeholders] * len(part))}{tail}", [v for r in part for v in r])
            if returning_ids:
                ids += [r[0] for r in cursor.fetchall()]
    return ids


def _constant_defaults(model: type[models.Model], given: list) -> dict:
    """Return {field: value} for the columns left out that the INSERT must still fill."""
    constants = {}
    for field in model._meta.concrete_fields:
        if field.primary_key or field in given or field.db_default is not NOT_PROVIDED:
            continue
        # An empty dict or list (a JSON column's usual default) is the same for every row.
        empty_container = field.default in (dict, list)
        computed = (field.has_default() and callable(field.default) and not empty_container) or getattr(
            field, "auto_now", False
        )
        if computed or getattr(field, "auto_now_add", False):
            raise ValueError(f"insert_rows: give {model.__name__}.{field.name} a value; its default is computed")
        if field.has_default() or (not field.null and field.empty_strings_allowed):
            constants[field] = field.get_default()  # as the ORM would: the default, or "" for text
        elif not field.null:
            raise ValueError(f"insert_rows: {model.__name__}.{field.name} has no default; give it a value")
    return constants


def _prepared(connection, model_fields, rows: Sequence[Sequence]) -> Sequence[Sequence]:
    """Return ``rows`` with values the driver cannot take as they are prepared by their field."""
    changes: dict[int, dict | None] = {}
    for i, field in enumerate(model_fields):
        if field.get_internal_type() in _PASS_THROUGH:
            continue
        # Batches share a few values (one timestamp for all rows): prepare each distinct one once.
        try:
            distinct = {row[i] for row in rows}
        except TypeError:  # unhashable, e.g. JSON
            changes[i] = None
            continue
        prepared = {value: field.get_db_prep_save(value, connection) for value in distinct}
        if any(prepared[value] is not value for value in distinct):
            changes[i] = prepared
    if not changes:
        return rows  # e.g. datetimes on PostgreSQL: the driver takes them as they are
    rows = [list(row) for row in rows]
    for i, prepared in changes.items():
        field = model_fields[i]
        for row in rows:
            row[i] = field.get_db_prep_save(row[i], connection) if prepared is None else prepared[row[i]]
    return rows


def _insert_unnest(connection, head: str, tail: str, model_fields, rows, returning_ids: bool) -> list[int]:
    """Insert on PostgreSQL: one binary array per column, bound server-side (``server_bound_cursor``)."""
    arrays = ", ".join(f"%b::{f.db_type(connection).split('(')[0]}[]" for f in model_fields)
    sql = f"{head}SELECT * FROM UNNEST({arrays}){tail}"  # noqa: S608 - names only, values are parameters
    with server_bound_cursor(connection) as cursor:
        cursor.execute(sql, [list(column) for column in zip(*rows, strict=True)])
        return [r[0] for r in cursor.fetchall()] if returning_ids else []


def server_bound_cursor(connection):
    """Return a cursor on PostgreSQL that binds parameters server-side (``%b`` for binary arrays).

    Django's cursor binds client-side, quoting every value of a long array into the SQL text.
    This one is on the same connection (so inside the same transaction) and wrapped the way
    Django wraps its own, so its statements are counted by query logging and
    ``CaptureQueriesContext`` and its errors are Django's (``IntegrityError``).
    """
    import psycopg  # the PostgreSQL driver; imported here so SQLite setups need not have it

    connection.ensure_connection()
    connection.validate_thread_sharing()
    wrap = connection.make_debug_cursor if connection.queries_logged else connection.make_cursor
    return wrap(psycopg.Cursor(connection.connection))


class AnyOf(In):
    """``filter(AnyOf(F("field"), values))``: ``field__in=values`` for long lists.

    On PostgreSQL the list is bound as one array, ``field = ANY(%s)``, instead of one
    parameter per value; elsewhere it is ``IN``. Values must already be of the field's type.
    """

    def get_prep_lookup(self):
        return list(self.rhs)

    def as_postgresql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        return f"{lhs} = ANY(%s)", (*lhs_params, self.rhs)
