"""A pledge's ledger writes are ordinary statements to Django's query tracking, on both databases."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from escrow.models import LedgerEntry, LedgerTransaction
from pledges.tests.factories import pledge_held

pytestmark = pytest.mark.django_db


def test_a_pledges_ledger_writes_are_counted_like_its_other_queries(live_campaign):
    # The ledger posts with crowdfund_site.bulk.insert_rows, whose PostgreSQL statement once
    # bypassed Django's cursor: query counts on PostgreSQL then missed the hold's postings.
    with CaptureQueriesContext(connection) as captured:
        pledge_held(campaign=live_campaign)

    # On PostgreSQL both INSERTs are one statement (WITH ... INSERT ... INSERT ...).
    statements = [q["sql"] for q in captured.captured_queries]
    for model in (LedgerTransaction, LedgerEntry):
        table = connection.ops.quote_name(model._meta.db_table)
        assert any(f"INSERT INTO {table}" in sql for sql in statements), (model, statements)
