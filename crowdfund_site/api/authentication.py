"""API token authentication: DRF's, with its one query compiled once per database instead of per request.

Every API request is authenticated by its token, and DRF's ``TokenAuthentication`` runs
``Token.objects.select_related("user").get(key=key)``: the ORM compiles that same statement on
every request, about three times the cost of running it (benchmarks/README.md, Stop 11). Here the
ORM compiles it once per database connection alias; each request sends that text with its key and
builds the token and its user as the ORM would (the same columns, Django's converters for each,
``Model.from_db``). Nothing is cached but the statement's text: every request reads the token and
the user from the database, so a deleted (revoked) token, a deactivated user or a changed staff
flag counts from the next request on, as with DRF's own class.
"""

import threading

from django.db import connections, router
from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions
from rest_framework.authtoken.models import Token

_PLACEHOLDER = "key-placeholder"


class _CompiledTokenQuery:
    """``Token.objects.select_related("user").filter(key=...)`` compiled once for one database alias."""

    def __init__(self, alias: str):
        compiler = Token.objects.select_related("user").filter(key=_PLACEHOLDER).query.get_compiler(using=alias)
        self.sql, params = compiler.as_sql()
        if list(params) != [_PLACEHOLDER]:  # one parameter, the key: anything else is not this query
            raise RuntimeError(f"unexpected parameters of the token query: {params!r}")
        self.columns = [expression for expression, _sql, _alias in compiler.select]
        token_info = compiler.klass_info
        (user_info,) = token_info["related_klass_infos"]
        self.token_slice = self._slice(token_info["select_fields"])
        self.user_slice = self._slice(user_info["select_fields"])
        self.token_names = [self.columns[i].target.attname for i in range(*self.token_slice.indices(len(self.columns)))]
        self.user_names = [self.columns[i].target.attname for i in range(*self.user_slice.indices(len(self.columns)))]
        self.user_model = user_info["model"]

    @staticmethod
    def _slice(positions: list[int]) -> slice:
        if positions != list(range(positions[0], positions[-1] + 1)):
            raise RuntimeError("the token query's columns are not in one run per model")
        return slice(positions[0], positions[-1] + 1)

    def converters(self, connection) -> list[tuple[int, list, object]]:
        """Return Django's value converters per column, as the compiler applies them (backend's, then field's)."""
        found = []
        for position, expression in enumerate(self.columns):
            backend = connection.ops.get_db_converters(expression)
            field = expression.get_db_converters(connection)
            if backend or field:
                found.append((position, backend + field, expression))
        return found


_compiled: dict[str, _CompiledTokenQuery] = {}
_converters = threading.local()  # per thread: a converter may be bound to that thread's connection


def token_with_user_get(key: str) -> Token | None:
    """Return the token ``key`` with its user (one query, always from the database), or None."""
    alias = router.db_for_read(Token)
    query = _compiled.get(alias)
    if query is None:
        query = _compiled[alias] = _CompiledTokenQuery(alias)
    connection = connections[alias]
    with connection.cursor() as cursor:
        cursor.execute(query.sql, [key])
        row = cursor.fetchone()
    if row is None:
        return None
    by_alias = getattr(_converters, "by_alias", None)
    if by_alias is None:
        by_alias = _converters.by_alias = {}
    converters = by_alias.get(alias)
    if converters is None:
        converters = by_alias[alias] = query.converters(connection)
    if converters:
        row = list(row)
        for position, functions, expression in converters:
            value = row[position]
            for convert in functions:
                value = convert(value, expression, connection)
            row[position] = value
    token = Token.from_db(alias, query.token_names, row[query.token_slice])
    token.user = query.user_model.from_db(alias, query.user_names, row[query.user_slice])
    return token


class TokenAuthentication(authentication.TokenAuthentication):
    """``Authorization: Token <key>``, answered as DRF's class answers it (same errors, same checks)."""

    def authenticate_credentials(self, key):
        token = token_with_user_get(key)
        if token is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        return token.user, token
