"""Small database helpers shared by the write paths."""

import threading

from django.db import IntegrityError, connections, models, router, transaction
from django.db.models import sql


def create_unless_taken(model: type[models.Model], **fields) -> models.Model | None:
    """Insert one row and return it, or return None if a unique constraint already holds it.

    Inside a transaction the INSERT runs in a savepoint, since on PostgreSQL a failed statement
    spoils the whole transaction. Outside one, a single INSERT is atomic by itself: wrapping it
    in BEGIN / COMMIT (what ``transaction.atomic()`` would do) costs two more round trips to the
    database on every pledge, for nothing.
    """
    try:
        if transaction.get_connection().in_atomic_block:
            with transaction.atomic():
                return model.objects.create(**fields)
        return model.objects.create(**fields)
    except IntegrityError:
        return None


# Only the ORM's compiled SQL and quoted identifiers are joined in; every value is a parameter.
_CLAIM_AND_INSERT_SQL = (
    "WITH claim AS ({claim} RETURNING 1) INSERT INTO {table} ({columns}) SELECT {values} FROM claim RETURNING {pk}"
)


class NothingClaimed(Exception):
    """``create_if_claimed``'s UPDATE matched no row, so nothing was written."""


def create_if_claimed(claims: models.QuerySet, claim: dict, model: type[models.Model], **fields) -> models.Model:
    """PostgreSQL, outside a transaction: UPDATE ``claims`` with ``claim`` and INSERT one row, in one statement.

    The row is inserted only if the UPDATE matched a row, and neither happens without the other,
    with no BEGIN / COMMIT: one data-modifying ``WITH`` is atomic by itself. That is four round
    trips to the database (BEGIN, UPDATE, INSERT, COMMIT) made one, on the launch rush's path
    (a limited reward's slot and the pending pledge that owns it). Both halves are the SQL the ORM
    compiles for ``claims.update(**claim)`` and ``model.objects.create(**fields)``; only the WITH
    that joins them is written here.

    Returns the new row. Raises NothingClaimed if the UPDATE matched nothing, IntegrityError (both
    rolled back) if a unique constraint refuses the row.
    """
    connection = connections[router.db_for_write(claims.model)]
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        raise NotImplementedError("create_if_claimed needs PostgreSQL in autocommit mode")
    update = claims.query.chain(sql.UpdateQuery)
    update.add_update_values(claim)
    update.annotations = {}
    claim_sql, claim_params = update.get_compiler(connection=connection).as_sql()

    row = model(**fields)
    meta = model._meta
    columns = [f for f in meta.local_concrete_fields if not f.generated and f is not meta.auto_field]
    insert = sql.InsertQuery(model)
    insert.insert_values(columns, [row])
    compiler = insert.get_compiler(connection=connection)
    values = [compiler.prepare_value(f, compiler.pre_save_val(f, row)) for f in columns]
    placeholders, params = compiler.assemble_as_sql(columns, [values])
    quote = connection.ops.quote_name
    statement = _CLAIM_AND_INSERT_SQL.format(
        claim=claim_sql,
        table=quote(meta.db_table),
        columns=", ".join(quote(f.column) for f in columns),
        values=", ".join(placeholders[0]),
        pk=quote(meta.pk.column),
    )
    with connection.cursor() as cursor:
        cursor.execute(statement, (*claim_params, *params[0]))
        inserted = cursor.fetchone()
    if inserted is None:
        raise NothingClaimed
    row.pk = inserted[0]
    row._state.adding = False
    row._state.db = connection.alias
    return row


class CompiledLookup:
    """``model.objects.filter(<field>=?, ...)`` for a unique set of fields, compiled once per database alias.

    For the hottest reads that the ORM would compile again on every call, several times the cost
    of running them (benchmarks/README.md, Stop 11): the statement's text is built by the ORM once,
    then each call sends it with its values and builds the row as the ORM would (the same columns,
    Django's converters for each, ``Model.from_db``). Only the text is kept: every call reads the
    database. The fields must be unique together (a unique constraint), so at most one row matches
    and the ORDER BY that ``.first()`` adds would change nothing; ``get`` returns that row or None.
    ``placeholders`` name the fields, each with a distinct value of its type that the compiled
    query's parameters are checked against (the values themselves are never sent).
    """

    def __init__(self, model: type[models.Model], **placeholders):
        self.model = model
        self.placeholders = placeholders
        self._compiled: dict[str, tuple[str, list, list[str]]] = {}
        self._converters = threading.local()  # per thread: a converter may be bound to its connection

    def _compile(self, alias: str) -> tuple[str, list, list[str]]:
        placeholders = list(self.placeholders.values())
        queryset = self.model._default_manager.filter(**self.placeholders)
        compiler = queryset.query.get_compiler(using=alias)
        text, params = compiler.as_sql()
        if list(params) != placeholders:  # one parameter per field, in order: anything else is not this query
            raise RuntimeError(f"unexpected parameters of the compiled lookup: {params!r}")
        columns = [expression for expression, _sql, _alias in compiler.select]
        names = [expression.target.attname for expression in columns]
        if compiler.klass_info["select_fields"] != list(range(len(columns))):
            raise RuntimeError("the compiled lookup selects more than its model's columns")
        compiled = self._compiled[alias] = (text, columns, names)
        return compiled

    @staticmethod
    def _converters_of(expression, connection) -> list:
        """Django's value converters for one column, as the compiler applies them (backend's, then field's)."""
        return connection.ops.get_db_converters(expression) + expression.get_db_converters(connection)

    def get(self, *values):
        """Return the one row whose fields equal ``values`` (in the fields' order), or None."""
        alias = router.db_for_read(self.model)
        compiled = self._compiled.get(alias) or self._compile(alias)
        text, columns, names = compiled
        connection = connections[alias]
        with connection.cursor() as cursor:
            cursor.execute(text, list(values))
            row = cursor.fetchone()
        if row is None:
            return None
        by_alias = getattr(self._converters, "by_alias", None)
        if by_alias is None:
            by_alias = self._converters.by_alias = {}
        converters = by_alias.get(alias)
        if converters is None:
            converters = by_alias[alias] = [
                (position, functions, expression)
                for position, expression in enumerate(columns)
                if (functions := self._converters_of(expression, connection))
            ]
        if converters:
            row = list(row)
            for position, functions, expression in converters:
                value = row[position]
                for convert in functions:
                    value = convert(value, expression, connection)
                row[position] = value
        return self.model.from_db(alias, names, row)
