"""Fast multi-row INSERT for the hot bulk paths: settlement, the ledger, the sandbox gateway.

``QuerySet.bulk_create`` builds a model instance for every row and prepares every value through
its field, and Django's PostgreSQL cursor then quotes every value into the SQL text: together
several times what the database needs to store the row. Settlement writes about five rows per
pledge, so its batches insert plain tuples instead: on PostgreSQL one
``INSERT ... SELECT * FROM UNNEST(<one binary array per column>)``, elsewhere multi-row
``INSERT ... VALUES`` in chunks. Constraints, triggers and indexes apply as always; as with
``bulk_create``, no ``save()`` and no signals run.
"""

from collections.abc import Sequence

from django.db import connections, models, router
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
    *, model: type[models.Model], fields: Sequence[str], rows: Sequence[Sequence], returning_ids: bool = False
) -> list[int]:
    """Insert ``rows`` (tuples of values for ``fields``) into ``model``'s table.

    Values are what the column stores (a foreign key's id, an aware datetime). Every column
    left out must be nullable (it gets NULL): model defaults are not applied. Runs in the
    caller's transaction. Returns the new primary keys in row order if ``returning_ids``.
    """
    if not rows:
        return []
    connection = connections[router.db_for_write(model)]
    model_fields = [model._meta.get_field(name) for name in fields]
    rows = _prepared(connection, model_fields, rows)
    quote = connection.ops.quote_name
    # Only quoted names from the model's metadata go into the SQL text; every value is a parameter.
    columns = ", ".join(quote(f.column) for f in model_fields)
    head = f"INSERT INTO {quote(model._meta.db_table)} ({columns}) "
    tail = f" RETURNING {quote(model._meta.pk.column)}" if returning_ids else ""
    if connection.vendor == "postgresql":
        return _insert_unnest(connection, head, tail, model_fields, rows, returning_ids)
    chunk = max(connection.ops.bulk_batch_size(model_fields, rows), 1)
    placeholders = f"({', '.join(['%s'] * len(fields))})"
    ids: list[int] = []
    with connection.cursor() as cursor:
        for start in range(0, len(rows), chunk):
            part = rows[start : start + chunk]
            cursor.execute(f"{head}VALUES {', '.join([placeholders] * len(part))}{tail}", [v for r in part for v in r])
            if returning_ids:
                ids += [r[0] for r in cursor.fetchall()]
    return ids


def _prepared(connection, model_fields, rows: Sequence[Sequence]) -> Sequence[Sequence]:
    """Return ``rows`` with values the driver cannot take as they are prepared by their field."""
    changes: dict[int, dict] = {}
    for i, field in enumerate(model_fields):
        if field.get_internal_type() in _PASS_THROUGH:
            continue
        # Batches share a few values (one timestamp for all rows): prepare each distinct one once.
        try:
            distinct = {row[i] for row in rows}
        except TypeError:  # unhashable, e.g. JSON
            distinct = None
        if distinct is None:
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
    """Insert on PostgreSQL: one binary array per column, bound server-side.

    Django's cursor binds parameters client-side, quoting every value into the SQL text; a
    plain psycopg cursor on the same connection (so inside the same transaction) sends the
    arrays in binary. Its statements bypass Django's query logging and execute wrappers.
    """
    import psycopg  # the PostgreSQL driver; imported here so SQLite setups need not have it

    arrays = ", ".join(f"%b::{f.db_type(connection).split('(')[0]}[]" for f in model_fields)
    sql = f"{head}SELECT * FROM UNNEST({arrays}){tail}"  # noqa: S608 - names only, values are parameters
    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(sql, [list(column) for column in zip(*rows, strict=True)])
        return [r[0] for r in cursor.fetchall()] if returning_ids else []


class AnyOf(In):
    """``AnyOf(F("field"), values)``: ``field IN values`` for long lists, used as a filter.

    ``field__in`` prepares every value and binds ``IN (%s, %s, ...)``, milliseconds of Python
    per thousand values; on PostgreSQL this binds the whole list as one array,
    ``field = ANY(%s)``. Values must already be of the field's type. Elsewhere it is ``IN``.
    """

    def get_prep_lookup(self):
        return list(self.rhs)

    def as_postgresql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        return f"{lhs} = ANY(%s)", (*lhs_params, self.rhs)
