"""The demo data includes a running quadratic round and a fixed-ratio pool with logos and applications, and
leaves the ledger sound."""

import pytest
from django.core.management import call_command
from django.urls import reverse

from matching.models import ApplicationStatus, Pool, PoolApplication, PoolMode, RoundStatus
from settlement.verification import ledger_verify


@pytest.mark.django_db
def test_seed_demo_puts_up_two_funded_pools_with_open_rounds_logos_and_applications(client):
    call_command("seed_demo")
    pools = {pool.mode: pool for pool in Pool.objects.all()}
    assert set(pools) == {PoolMode.QUADRATIC, PoolMode.FIXED_RATIO}
    for pool in pools.values():
        assert pool.funded_at is not None
        assert pool.rounds.get().status == RoundStatus.OPEN
        assert pool.logo["key"]
    fixed = pools[PoolMode.FIXED_RATIO]
    applications = {a.status: a for a in PoolApplication.objects.filter(pool=fixed)}
    assert set(applications) == {ApplicationStatus.ACCEPTED, ApplicationStatus.PENDING}
    assert fixed.campaigns.filter(pk=applications[ApplicationStatus.ACCEPTED].campaign_id).exists()
    # The pool page shows its logo and the campaign its application brought in.
    page = client.get(reverse("matching:pool_detail", args=[fixed.slug])).content.decode()
    assert 'class="pool-logo pool-logo-large"' in page
    assert applications[ApplicationStatus.ACCEPTED].campaign.title in page
    assert ledger_verify() == []
    call_command("seed_matching_demo")  # again: nothing more
    assert Pool.objects.count() == 2
