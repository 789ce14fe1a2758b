"""crowdfund_site.db.CompiledLookup: a unique lookup compiled once, read from the database every time.

What a caller notices: the row is the one the ORM reads (every column, through this database's
converters), a missing row is None, and a row changed or deleted after the first call is seen as
it is now (only the statement's text is kept).
"""

import threading

import pytest

from crowdfund_site.db import CompiledLookup
from pledges.models import Pledge
from pledges.tests.factories import new_key, pledge_held
from projects.tests.factories import LiveCampaignFactory

pytestmark = pytest.mark.django_db

by_key = CompiledLookup(Pledge, backer_id=-1, idempotency_key="placeholder-key")


def test_the_row_is_what_the_orm_reads():
    pledge = pledge_held(campaign=LiveCampaignFactory())
    expected = Pledge.objects.get(pk=pledge.pk)

    got = by_key.get(pledge.backer_id, pledge.idempotency_key)

    assert got is not None
    assert not got._state.adding
    for field in Pledge._meta.concrete_fields:
        assert getattr(got, field.attname) == getattr(expected, field.attname), field.name
    assert got.held_at is not None
    assert got.held_at.tzinfo is not None
    got.refresh_from_db()  # a real row of this database: the ORM can go on with it


def test_only_the_backers_own_key_matches():
    pledge = pledge_held(campaign=LiveCampaignFactory())
    other = pledge_held(campaign=LiveCampaignFactory())

    assert by_key.get(pledge.backer_id, "no-such-key") is None
    assert by_key.get(other.backer_id, pledge.idempotency_key) is None
    assert by_key.get(pledge.backer_id, pledge.idempotency_key).pk == pledge.pk


def test_a_change_or_a_deletion_is_seen_on_the_next_call():
    pledge = pledge_held(campaign=LiveCampaignFactory())
    assert by_key.get(pledge.backer_id, pledge.idempotency_key).status == "held"

    Pledge.objects.filter(pk=pledge.pk).update(status="cancelled")
    assert by_key.get(pledge.backer_id, pledge.idempotency_key).status == "cancelled"

    Pledge.objects.filter(pk=pledge.pk).delete()
    assert by_key.get(pledge.backer_id, pledge.idempotency_key) is None


@pytest.mark.django_db(transaction=True)
def test_threads_each_read_their_own_row():
    pledges = [pledge_held(campaign=LiveCampaignFactory()) for _ in range(4)]
    found, errors = {}, []

    def read(pledge):
        from django.db import connection

        try:
            for _ in range(20):
                found.setdefault(pledge.pk, set()).add(by_key.get(pledge.backer_id, pledge.idempotency_key).pk)
        except Exception as error:  # reported below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=read, args=(pledge,)) for pledge in pledges]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert found == {pledge.pk: {pledge.pk} for pledge in pledges}


def test_a_lookup_that_is_not_one_parameter_per_field_is_refused():
    with pytest.raises(RuntimeError, match="unexpected parameters"):
        CompiledLookup(Pledge, backer_id=-1, idempotency_key__in=["a", "b"]).get(1, "a")


def test_new_key_is_not_found():
    assert by_key.get(-5, new_key()) is None
