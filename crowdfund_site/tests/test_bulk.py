"""``insert_rows``: the hot paths' bulk INSERT is an ordinary statement to Django, on both databases."""

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import User
from crowdfund_site.bulk import insert_rows

pytestmark = pytest.mark.django_db

FIELDS = ("username", "email", "password", "date_joined")


def _rows(*names: str) -> list[tuple]:
    now = timezone.now()
    return [(name, f"{name}@example.com", "!", now) for name in names]


def test_a_bulk_insert_is_one_counted_query(django_assert_num_queries):
    # On PostgreSQL this is the binary UNNEST statement, which once bypassed Django's cursor, so
    # query-count tests did not see ledger or settlement writes there.
    with django_assert_num_queries(1) as captured:
        ids = insert_rows(model=User, fields=FIELDS, rows=_rows("ada", "grace", "linus"), returning_ids=True)

    assert len(ids) == 3
    assert "INSERT INTO" in captured.captured_queries[0]["sql"]
    assert list(User.objects.filter(pk__in=ids).order_by("pk").values_list("username", flat=True)) == [
        "ada",
        "grace",
        "linus",
    ]


def test_capture_queries_sees_the_bulk_insert_outside_debug_too():
    assert not connection.queries_logged  # DEBUG is off in tests: only a capture turns logging on
    with CaptureQueriesContext(connection) as captured:
        insert_rows(model=User, fields=FIELDS, rows=_rows("ken"))
    assert len(captured) == 1
    assert User.objects.filter(username="ken").exists()


def test_a_duplicate_is_djangos_integrity_error_or_skipped():
    insert_rows(model=User, fields=FIELDS, rows=_rows("dennis"))
    with pytest.raises(IntegrityError), transaction.atomic():
        insert_rows(model=User, fields=FIELDS, rows=_rows("dennis"))
    assert insert_rows(model=User, fields=FIELDS, rows=_rows("dennis"), skip_conflicts=True, returning_ids=True) == []
    assert User.objects.filter(username="dennis").count() == 1
