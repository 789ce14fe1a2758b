"""The live estimate from a round's standing gives the range the whole allocation gives.

``reference_estimate`` is how the estimate used to be computed: the round's whole allocation run
with and without the gift, on the round as it is and on the round with every contribution
repeated by a new backer. The estimate now reads one number per campaign from the round's
standing and the campaign given to from its own contributions; for every mode but pairwise
damping it must give exactly the same range.
"""

from collections import defaultdict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from matching import allocation as math
from matching.models import Pool, PoolMode
from matching.selectors import (
    gift_estimate,
    match_estimates,
    open_rounds_refresh_standing,
    round_standing,
    standing_of,
)
from matching.selectors.rounds import _allocate
from matching.tests.factories import funded_pool, open_round
from pledges.tests.factories import pledge_held
from projects.tests.factories import LiveCampaignFactory


def reference_estimate(pool, rows, initiators, campaign_id, giver, amount):
    def added(rows):
        before = _allocate(pool, rows, initiators).allocations.get(campaign_id, 0) if rows else 0
        after = _allocate(pool, [*rows, new], initiators).allocations.get(campaign_id, 0)
        return max(after - before, 0)

    new = (campaign_id, giver, amount, math.GIFT_SEQUENCE)
    # Above every backer's, the giver's and the initiators' ids. (The old estimate took the round's
    # highest backer id + 1, so a copy could stand for the giver or an initiator.)
    offset = max([r[1] for r in rows] + [giver, *initiators.values()]) + 1
    high = added(rows)
    low = added(rows + [(c, b + offset, a, seq + math.COPY_SEQUENCE) for c, b, a, seq in rows])
    return min(low, high), max(low, high)


def estimate(pool, rows, initiators, campaign_id, giver, amount):
    contributions = math.Contributions.of(math.Contribution(*row) for row in rows)
    mine = [row for row in rows if row[0] == campaign_id]
    if pool.mode != PoolMode.FIXED_RATIO:
        # As ``_campaign_contributions`` has the database do: one row per backer, the total of
        # their contributions that count (over the minimum, for quadratic funding).
        totals = defaultdict(int)
        for _c, backer, given, _seq in mine:
            if pool.mode == PoolMode.PRO_RATA or given >= pool.minimum_contribution:
                totals[backer] += given
        mine = [(campaign_id, backer, total, 0) for backer, total in totals.items()]
    mine = math.Contributions.of(math.Contribution(*row) for row in mine)
    return gift_estimate(
        pool=pool,
        standing=standing_of(pool=pool, contributions=contributions, initiators=initiators),
        mine=mine,
        campaign_id=campaign_id,
        initiator_id=initiators[campaign_id],
        giver=giver,
        amount=amount,
    )


ROUNDS = st.fixed_dictionaries(
    {
        "mode": st.sampled_from([PoolMode.QUADRATIC, PoolMode.PRO_RATA, PoolMode.FIXED_RATIO]),
        "pool": st.integers(1, 200_000),
        "cap": st.one_of(st.none(), st.integers(1, 100_000)),
        "backer_cap": st.one_of(st.none(), st.integers(1, 20_000)),
        "contribution_cap": st.one_of(st.none(), st.integers(1, 5_000)),
        "ratio_bps": st.sampled_from([5_000, 10_000, 30_000]),
        "rows": st.lists(st.tuples(st.integers(1, 6), st.integers(1, 12), st.integers(1, 20_000)), max_size=60),
        "campaign": st.integers(1, 6),
        "giver": st.integers(-1, 14),
        "amount": st.integers(1, 30_000),
    }
)


@settings(max_examples=300, deadline=None)
@given(ROUNDS)
def test_the_estimate_from_the_standing_is_the_whole_allocations_range(example):
    pool = Pool(
        amount=example["pool"],
        mode=example["mode"],
        per_campaign_cap=example["cap"],
        per_backer_cap=example["backer_cap"],
        per_contribution_cap=example["contribution_cap"],
        ratio_bps=example["ratio_bps"],
        minimum_contribution=100,
    )
    rows = [(c, b, a, seq) for seq, (c, b, a) in enumerate(example["rows"])]
    initiators = dict.fromkeys(range(1, 7), 12)  # backer 12 is every campaign's initiator
    args = (pool, rows, initiators, example["campaign"], example["giver"], example["amount"])
    assert estimate(*args) == reference_estimate(*args)


def test_pairwise_damping_is_exact_for_a_giver_new_to_the_round():
    pool = Pool(amount=100_000, mode=PoolMode.QUADRATIC, pairwise_damping=2_500, minimum_contribution=100)
    # Backers 1-4 always give together to campaigns 1 and 2; campaign 3 has its own backers.
    rows = [(c, b, 2_000, i) for i, (c, b) in enumerate([(c, b) for c in (1, 2) for b in (1, 2, 3, 4)])]
    rows += [(3, b, 2_000, 100 + b) for b in (5, 6, 7)]
    initiators = {1: 99, 2: 99, 3: 99}
    low, high = estimate(pool, rows, initiators, 3, 8, 2_000)
    exact_low, exact_high = reference_estimate(pool, rows, initiators, 3, 8, 2_000)
    assert 0 < low < high
    assert (low, high) == (exact_low, exact_high)
    # Backer 1 gave to campaign 1 with the same backers: giving more to campaign 2 damps
    # campaign 1's pairs too, which lifts campaign 2's share; the estimate leaves that out and
    # stays on the low side, never promising more.
    low, high = estimate(pool, rows, initiators, 2, 1, 2_000)
    exact_low, exact_high = reference_estimate(pool, rows, initiators, 2, 1, 2_000)
    assert 0 < low <= exact_low
    assert 0 < high <= exact_high


# --- Through the database ---------------------------------------------------------------------


@pytest.fixture
def running_round(db):
    a, b = LiveCampaignFactory(), LiveCampaignFactory()
    pool = funded_pool(amount=100_000, campaigns=[a, b], per_campaign_cap=100_000)
    matching_round = open_round(pool)
    for _ in range(4):
        pledge_held(campaign=a, amount=2_500)
    for _ in range(2):
        pledge_held(campaign=b, amount=5_000)
    return matching_round, a, b


def test_the_campaign_given_to_is_read_now_and_the_others_from_the_standing(running_round):
    matching_round, a, b = running_round
    (first,) = match_estimates(campaign=b, amount=1_000)
    assert first.high == 38_705 - 25_000  # as test_pages works out
    # A third backer gives to B: B's own contributions are read again, so the next estimate
    # already counts them, while A's side comes from the cached standing.
    pledge_held(campaign=b, amount=5_000)
    (second,) = match_estimates(campaign=b, amount=1_000)
    assert second.high < first.high  # B's weight is higher: a further 10.00 adds less
    standing = round_standing(matching_round=matching_round)
    assert round_standing(matching_round=matching_round, fresh=True).now[a.pk] == standing.now[a.pk]
    # A gift to A after the standing was taken shows in B's estimate when beat refreshes it.
    for _ in range(4):
        pledge_held(campaign=a, amount=2_500)
    (cached,) = match_estimates(campaign=b, amount=1_000)
    assert cached == second
    assert open_rounds_refresh_standing() == 1
    (refreshed,) = match_estimates(campaign=b, amount=1_000)
    assert refreshed.high < second.high


def test_an_estimate_reads_the_round_in_a_few_queries_whatever_its_size(running_round, django_assert_max_num_queries):
    _matching_round, a, b = running_round
    match_estimates(campaign=b, amount=1_000)  # the standing is cached
    for _ in range(30):
        pledge_held(campaign=a, amount=2_500)
    with django_assert_max_num_queries(3):
        match_estimates(campaign=b, amount=1_000)
