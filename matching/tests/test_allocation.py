"""The allocation math: known values from the issue and properties for random rounds."""

import random

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from matching.allocation import (
    Contribution,
    Contributions,
    default_quadratic_cap,
    fixed_ratio,
    pro_rata,
    quadratic,
    quadratic_weights,
    raised_by_campaign,
    split_capped,
)

POOL = 1_000_000  # 10,000.00


def _issue_round():
    return [Contribution(1, backer, 1000) for backer in range(100)] + [
        Contribution(2, 1000 + backer, 10_000) for backer in range(10)
    ]


def test_quadratic_known_values_without_cap():
    assert quadratic_weights(_issue_round()) == {1: 9_900_000, 2: 900_000}  # 99,000.00 and 9,000.00
    result = quadratic(pool=POOL, contributions=_issue_round())
    assert result.allocations == {1: 916_667, 2: 83_333}
    assert result.left == 0


def test_quadratic_known_values_with_the_default_cap():
    result = quadratic(pool=POOL, contributions=_issue_round(), per_campaign_cap=default_quadratic_cap(POOL))
    assert result.allocations == {1: 100_000, 2: 100_000}
    assert result.left == 800_000


def test_quadratic_adds_a_backers_gifts_up_before_the_square_root():
    one_gift = [Contribution(1, 1, 10_000), Contribution(1, 2, 10_000), Contribution(2, 3, 10_000)]
    one_gift += [Contribution(2, 4, 10_000)]
    split = [Contribution(1, 1, 100) for _ in range(100)] + one_gift[1:]
    assert (
        quadratic(pool=POOL, contributions=split).allocations
        == quadratic(pool=POOL, contributions=one_gift).allocations
    )


def test_quadratic_ignores_small_gifts_and_the_initiator():
    rows = [Contribution(1, 1, 5000), Contribution(1, 2, 5000), Contribution(2, 3, 5000), Contribution(2, 4, 5000)]
    # The initiator of campaign 1 (user 9) gives a lot, and many give 0.99 each: none of it counts.
    rows += [Contribution(1, 9, 900_000)] + [Contribution(1, 100 + b, 99) for b in range(50)]
    result = quadratic(pool=1000, contributions=rows, excluded={1: [9]})
    assert result.allocations == {1: 500, 2: 500}


def test_cap_excess_is_redistributed_until_no_campaign_is_over():
    # Shares 600, 300, 100 of 1,000 with a cap of 350: 350, then 650 shared 3:1 -> 487.5 > 350,
    # so 350, 350 and the last gets 300.
    assert split_capped(pool=1000, weights={1: 6, 2: 3, 3: 1}, cap=350) == {1: 350, 2: 350, 3: 300}
    assert split_capped(pool=1000, weights={1: 6, 2: 3, 3: 1}, cap=200) == {1: 200, 2: 200, 3: 200}


def test_largest_remainder_leaves_no_dust():
    result = split_capped(pool=100, weights={1: 1, 2: 1, 3: 1}, cap=None)
    assert sorted(result.values()) == [33, 33, 34]


def test_fixed_ratio_goteo_caps():
    # 1:1 up to 50.00 per contribution, 80.00 per backer per campaign and 150.00 per campaign.
    rows = [
        Contribution(1, 1, 10_000, sequence=1),  # 100.00 -> 50.00
        Contribution(1, 1, 10_000, sequence=2),  # backer cap left 30.00
        Contribution(1, 2, 2_000, sequence=3),  # 20.00
        Contribution(1, 3, 10_000, sequence=4),  # campaign cap left 50.00
        Contribution(1, 4, 10_000, sequence=5),  # campaign cap reached
        Contribution(2, 5, 3_000, sequence=6),  # 30.00, and then the pool is empty
        Contribution(2, 6, 3_000, sequence=7),
    ]
    result = fixed_ratio(
        pool=18_000, contributions=rows, per_contribution_cap=5_000, per_backer_cap=8_000, per_campaign_cap=15_000
    )
    assert result.allocations == {1: 15_000, 2: 3_000}
    assert result.left == 0


def test_fixed_ratio_does_not_match_the_initiator_and_takes_the_ratio():
    rows = [Contribution(1, 7, 1000, sequence=1), Contribution(1, 8, 1001, sequence=2)]
    assert fixed_ratio(pool=10_000, contributions=rows, ratio_bps=20_000, excluded={1: {7}}).allocations == {1: 2002}


def test_pro_rata_globalgiving_day():
    """A GlobalGiving bonus day: a 1,000.00 pool shared pro rata to what each campaign raised that day, capped.

    GlobalGiving's bonus days match the day's donations from a fixed pool in proportion to what
    each project raised, with no project above a cap. Here the cap is 400.00 and the day raised:

        A 1,200.00 (four donors of 300.00)   B 500.00   C 250.00   D 33.33      total 1,983.33

    Uncapped, A's share would be 1,000.00 x 1,200.00 / 1,983.33 = 605.04, over the cap: A gets
    400.00 and the other 600.00 is shared by B, C and D over 783.33:

        B 600.00 x 500.00 / 783.33 = 382.9803...  -> 382.98
        C 600.00 x 250.00 / 783.33 = 191.4901...  -> 191.49
        D 600.00 x  33.33 / 783.33 =  25.5294...  ->  25.52 + 0.01

    The floors sum to 599.99; the last cent goes to the largest remainder (D's 0.947 of a cent),
    so D gets 25.53, nobody is over the cap, and the parts sum to the pool: 1,000.00, no dust.
    Without the cap the same day is shared 605.04 / 252.10 / 126.05 / 16.81 (the cent again by
    remainder). Order of donations changes nothing.
    """
    rows = [Contribution(1, donor, 30_000) for donor in range(1, 5)]
    rows += [Contribution(2, 5, 50_000), Contribution(3, 6, 25_000), Contribution(4, 7, 3_333)]

    capped = pro_rata(pool=100_000, contributions=rows, per_campaign_cap=40_000)

    assert capped.allocations == {1: 40_000, 2: 38_298, 3: 19_149, 4: 2_553}
    assert capped.left == 0
    assert pro_rata(pool=100_000, contributions=rows).allocations == {1: 60_504, 2: 25_210, 3: 12_605, 4: 1_681}
    assert pro_rata(pool=100_000, contributions=rows[::-1], per_campaign_cap=40_000).allocations == capped.allocations


def test_pro_rata_does_not_count_the_initiators_own_money():
    # Campaign 1's initiator (user 9) puts in 10,000.00 of their own: it weighs nothing.
    rows = [Contribution(1, 1, 20_000), Contribution(1, 9, 1_000_000), Contribution(2, 2, 20_000)]
    assert pro_rata(pool=10_000, contributions=rows, excluded={1: [9]}).allocations == {1: 5_000, 2: 5_000}


# --- Properties -------------------------------------------------------------------------------

MODES = ["fixed_ratio", "pro_rata", "quadratic"]


@st.composite
def rounds(draw):
    n_campaigns = draw(st.integers(1, 12))
    n_backers = draw(st.integers(1, 15))
    rows = draw(
        st.lists(
            st.builds(
                Contribution,
                campaign_id=st.integers(1, n_campaigns),
                backer_id=st.integers(1, n_backers),
                amount=st.integers(1, 50_000),
                sequence=st.integers(0, 50),
            ),
            min_size=1,
            max_size=60,
        )
    )
    pool = draw(st.integers(0, 500_000))
    cap = draw(st.none() | st.integers(0, 200_000))
    contribution_cap = draw(st.none() | st.integers(1, 20_000))
    return rows, pool, cap, contribution_cap


def _run(mode, rows, pool, cap, contribution_cap):
    if mode == "fixed_ratio":
        # The backer cap never above the contribution cap: otherwise splitting a gift would raise
        # its match up to the backer cap, which is what a per-contribution cap means.
        return fixed_ratio(
            pool=pool,
            contributions=rows,
            per_contribution_cap=contribution_cap,
            per_backer_cap=contribution_cap,
            per_campaign_cap=cap,
        )
    if mode == "pro_rata":
        return pro_rata(pool=pool, contributions=rows, per_campaign_cap=cap)
    return quadratic(pool=pool, contributions=rows, per_campaign_cap=cap)


@settings(max_examples=150, deadline=None)
@given(round_=rounds(), mode=st.sampled_from(MODES))
def test_every_mode_sums_exactly_and_respects_the_caps(round_, mode):
    rows, pool, cap, contribution_cap = round_
    result = _run(mode, rows, pool, cap, contribution_cap)
    assert all(isinstance(v, int) and v > 0 for v in result.allocations.values())
    assert 0 <= result.allocated <= pool
    if cap is not None:
        assert all(v <= cap for v in result.allocations.values())
    if mode == "fixed_ratio":
        if contribution_cap is not None:
            backers = {(r.campaign_id, r.backer_id) for r in rows}
            assert result.allocated <= contribution_cap * len(backers)
        if result.left:
            # The pool was not what stopped it: a bigger pool matches the same.
            assert _run(mode, rows, pool * 2 + 1, cap, contribution_cap).allocations == result.allocations
    elif result.left:
        # Money stays in the pool only when every campaign that could take some (a positive
        # weight: in quadratic funding, a single backer's campaign has none) is at its cap.
        weights = quadratic_weights(rows) if mode == "quadratic" else {r.campaign_id: 1 for r in rows}
        assert not weights or cap is not None
        assert all(result.allocations.get(cid, 0) == cap for cid in weights)


@settings(max_examples=150, deadline=None)
@given(round_=rounds(), mode=st.sampled_from(MODES), data=st.data())
def test_splitting_a_contribution_never_raises_its_campaigns_match(round_, mode, data):
    rows, pool, cap, contribution_cap = round_
    i = data.draw(st.integers(0, len(rows) - 1))
    gift = rows[i]
    pieces = data.draw(st.integers(2, 5))
    if gift.amount < pieces:
        return
    parts = [gift.amount // pieces] * pieces
    parts[0] += gift.amount - sum(parts)
    split = rows[:i] + [Contribution(gift.campaign_id, gift.backer_id, p, gift.sequence) for p in parts] + rows[i + 1 :]
    before = _run(mode, rows, pool, cap, contribution_cap).allocations.get(gift.campaign_id, 0)
    after = _run(mode, split, pool, cap, contribution_cap).allocations.get(gift.campaign_id, 0)
    assert after <= before


@settings(max_examples=100, deadline=None)
@given(round_=rounds(), mode=st.sampled_from(MODES), seed=st.integers(0, 2**32))
def test_the_order_of_contributions_does_not_matter(round_, mode, seed):
    rows, pool, cap, contribution_cap = round_
    shuffled = rows[:]
    random.Random(seed).shuffle(shuffled)
    assert _run(mode, shuffled, pool, cap, contribution_cap) == _run(mode, rows, pool, cap, contribution_cap)


def test_pairwise_damping_discounts_backers_who_always_give_together():
    # x and y give 100.00 each to campaigns 1 and 2; u and v give the same to campaign 3 only.
    rows = [Contribution(c, b, 10_000) for c in (1, 2) for b in (1, 2)]
    rows += [Contribution(3, b, 10_000) for b in (3, 4)]
    assert quadratic_weights(rows) == {1: 20_000, 2: 20_000, 3: 20_000}
    # M = 25.00: k_xy = 200.00, so 200.00 * 25 / 225 = 22.22; k_uv = 100.00, so 200.00 * 25 / 125 = 40.00.
    assert quadratic_weights(rows, pairwise_damping=2_500) == {1: 2_222, 2: 2_222, 3: 4_000}
    result = quadratic(pool=10_000, contributions=rows, pairwise_damping=2_500)
    # 10,000 shared 2,222 : 2,222 : 4,000; the one cent left over goes to the earlier tie.
    assert result.allocations == {1: 2_632, 2: 2_631, 3: 4_737}


@settings(max_examples=60, deadline=None)
@given(round_=rounds(), data=st.data())
def test_pairwise_damping_keeps_sums_exact_and_never_raises_a_weight(round_, data):
    rows, pool, cap, _ = round_
    damping = data.draw(st.integers(1, 10_000))
    plain = quadratic_weights(rows)
    damped = quadratic_weights(rows, pairwise_damping=damping)
    assert all(damped.get(cid, 0) <= weight + 1 for cid, weight in plain.items())
    result = quadratic(pool=pool, contributions=rows, per_campaign_cap=cap, pairwise_damping=damping)
    assert result.allocated <= pool
    assert cap is None or all(v <= cap for v in result.allocations.values())


# --- Properties at the issue's sizes: up to 500 campaigns and 20,000 contributions ------------------


def _large_round(*, seed: int, n_campaigns: int, n_contributions: int, n_backers: int) -> Contributions:
    """Return a random round as numpy arrays: lognormal amounts, backers giving to several campaigns."""
    rng = np.random.default_rng(seed)
    return Contributions(
        campaign=rng.integers(1, n_campaigns + 1, size=n_contributions, dtype=np.int64),
        backer=rng.integers(1, n_backers + 1, size=n_contributions, dtype=np.int64),
        amount=np.maximum(1, rng.lognormal(np.log(2_500), 1.2, size=n_contributions)).astype(np.int64),
        sequence=rng.permutation(n_contributions).astype(np.int64),
    )


def _shuffled(c: Contributions, seed: int) -> Contributions:
    order = np.random.default_rng(seed).permutation(len(c))
    return Contributions(c.campaign[order], c.backer[order], c.amount[order], c.sequence[order])


def _fixed_ratio_bounds(c: Contributions, *, ratio_bps: int, contribution_cap, backer_cap, campaign_cap) -> dict:
    """Return the most each campaign may be matched under every fixed-ratio cap (pool aside)."""
    match = c.amount * ratio_bps // 10_000
    if contribution_cap is not None:
        match = np.minimum(match, contribution_cap)
    pairs, inverse = np.unique(np.stack([c.campaign, c.backer], axis=1), axis=0, return_inverse=True)
    per_backer = np.zeros(len(pairs), dtype=np.int64)
    np.add.at(per_backer, inverse.ravel(), match)
    if backer_cap is not None:
        per_backer = np.minimum(per_backer, backer_cap)
    bounds: dict[int, int] = {}
    for campaign, most in zip(pairs[:, 0].tolist(), per_backer.tolist(), strict=True):
        bounds[campaign] = bounds.get(campaign, 0) + most
    return {k: min(v, campaign_cap) if campaign_cap is not None else v for k, v in bounds.items()}


LARGE_ROUNDS = st.fixed_dictionaries(
    {
        "seed": st.integers(0, 2**32 - 1),
        "n_campaigns": st.integers(1, 500),
        "n_contributions": st.integers(1, 20_000),
        "n_backers": st.integers(1, 20_000),
        "pool": st.integers(0, 10**9),
        "cap": st.none() | st.integers(1, 10**8),
        "contribution_cap": st.none() | st.integers(1, 50_000),
        "ratio_bps": st.sampled_from([5_000, 10_000, 20_000, 30_000]),
    }
)
BIGGEST = {
    "seed": 14,
    "n_campaigns": 500,
    "n_contributions": 20_000,
    "n_backers": 12_000,
    "pool": 100_000_000,
    "cap": 1_000_000,
    "contribution_cap": 5_000,
    "ratio_bps": 10_000,
}


@pytest.mark.slow
@pytest.mark.parametrize("mode", MODES)
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(round_=LARGE_ROUNDS)
@example(round_=BIGGEST)
@example(round_={**BIGGEST, "cap": None, "contribution_cap": None})
def test_large_rounds_sum_exactly_respect_every_cap_and_ignore_the_order(mode, round_):
    c = _large_round(
        seed=round_["seed"],
        n_campaigns=round_["n_campaigns"],
        n_contributions=round_["n_contributions"],
        n_backers=round_["n_backers"],
    )
    pool, cap, contribution_cap = round_["pool"], round_["cap"], round_["contribution_cap"]
    if mode == "fixed_ratio":

        def run(contributions):
            return fixed_ratio(
                pool=pool,
                contributions=contributions,
                ratio_bps=round_["ratio_bps"],
                per_contribution_cap=contribution_cap,
                per_backer_cap=contribution_cap * 3 if contribution_cap else None,
                per_campaign_cap=cap,
            )

    elif mode == "pro_rata":

        def run(contributions):
            return pro_rata(pool=pool, contributions=contributions, per_campaign_cap=cap)

    else:

        def run(contributions):
            return quadratic(pool=pool, contributions=contributions, per_campaign_cap=cap)

    result = run(c)
    # Exact: whole minor units, the parts plus what is left make the pool, never more than it.
    assert all(isinstance(v, int) and v > 0 for v in result.allocations.values())
    assert result.allocated + result.left == pool
    assert 0 <= result.left <= pool
    assert set(result.allocations) <= set(c.campaign.tolist())
    if cap is not None:
        assert max(result.allocations.values(), default=0) <= cap
    if mode == "fixed_ratio":
        bounds = _fixed_ratio_bounds(
            c,
            ratio_bps=round_["ratio_bps"],
            contribution_cap=contribution_cap,
            backer_cap=contribution_cap * 3 if contribution_cap else None,
            campaign_cap=cap,
        )
        assert all(amount <= bounds[cid] for cid, amount in result.allocations.items())
        if result.left:  # the pool did not run out: every campaign got all its caps allow
            assert result.allocations == {k: v for k, v in bounds.items() if v > 0}
    elif result.left:
        # Left in the pool only when every campaign that could take some is at its cap.
        weights = raised_by_campaign(c) if mode == "pro_rata" else quadratic_weights(c)
        positive = [cid for cid, w in weights.items() if w > 0]
        assert cap is not None or not positive
        assert all(result.allocations.get(cid, 0) == cap for cid in positive)
    assert run(_shuffled(c, round_["seed"] + 1)) == result
