"""The demo data includes a running quadratic round and a fixed-ratio pool, and leaves the ledger sound."""

import pytest
from django.core.management import call_command

from matching.models import Pool, PoolMode, RoundStatus
from settlement.verification import ledger_verify


@pytest.mark.django_db
def test_seed_demo_puts_up_two_funded_pools_with_open_rounds():
    call_command("seed_demo")
    pools = {pool.mode: pool for pool in Pool.objects.all()}
    assert set(pools) == {PoolMode.QUADRATIC, PoolMode.FIXED_RATIO}
    for pool in pools.values():
        assert pool.funded_at is not None
        assert pool.rounds.get().status == RoundStatus.OPEN
    assert ledger_verify() == []
    call_command("seed_matching_demo")  # again: nothing more
    assert Pool.objects.count() == 2
