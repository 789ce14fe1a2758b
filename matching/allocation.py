"""Matching allocation: how a pool is shared across campaigns, exactly, in integer minor units.

Pure functions, no database: they take contributions (campaign, backer, amount, sequence) and
return what each campaign is matched. Three modes:

- ``fixed_ratio``: each contribution is matched ``ratio_bps / 10000`` to one, first come first
  served (by sequence), within a cap per contribution, per backer per campaign and per
  campaign, until the pool runs out.
- ``pro_rata``: the pool is shared in proportion to what each campaign raised.
- ``quadratic``: each campaign's weight is (sum over its backers of the square root of the
  backer's total) squared, minus the total, with the backer's contributions added up *before*
  the square root, so splitting a gift into many small ones gains nothing.

Every split of a pool is by the largest remainder over integer weights, so the parts sum to
exactly what was split. With a per-campaign cap, campaigns over it are held at the cap and the
excess goes to the others in proportion, until none is over; money is left in the pool only
when every campaign that could take some is at its cap. Contributions of a campaign's initiator
(and team) never count. The result does not depend on the order the contributions are given in.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from crowdfund_site.money import allocate

# Contributions below this (minor units) do not count in quadratic funding (the 1.00).
DEFAULT_QUADRATIC_MINIMUM = 100
# Quadratic funding's default per-campaign cap, in basis points of the pool.
DEFAULT_QUADRATIC_CAP_BPS = 1000
RATIO_ONE_TO_ONE_BPS = 10_000


@dataclass(frozen=True)
class Contribution:
    campaign_id: int
    backer_id: int
    amount: int
    # When it came (a pledge id or a timestamp as an integer): first come, first served.
    sequence: int = 0


@dataclass(frozen=True)
class Contributions:
    """Contributions as parallel int64 arrays, the shape the allocation works on."""

    campaign: np.ndarray
    backer: np.ndarray
    amount: np.ndarray
    sequence: np.ndarray

    @classmethod
    def of(cls, rows: Iterable[Contribution]) -> "Contributions":
        rows = list(rows)
        columns = np.array([(r.campaign_id, r.backer_id, r.amount, r.sequence) for r in rows], dtype=np.int64).reshape(
            -1, 4
        )
        if (columns[:, 2] <= 0).any():
            raise ValueError("contribution amounts are positive")
        return cls(columns[:, 0], columns[:, 1], columns[:, 2], columns[:, 3])

    def __len__(self) -> int:
        return len(self.amount)


@dataclass(frozen=True)
class AllocationResult:
    pool: int
    # {campaign id: matched minor units}; campaigns that got nothing are left out.
    allocations: dict[int, int]

    @property
    def allocated(self) -> int:
        return sum(self.allocations.values())

    @property
    def left(self) -> int:
        """Return what stays in the pool."""
        return self.pool - self.allocated


def _as_contributions(contributions) -> Contributions:
    return contributions if isinstance(contributions, Contributions) else Contributions.of(contributions)


def _counted(c: Contributions, excluded: Mapping[int, Iterable[int]] | None) -> np.ndarray:
    """Return the mask of contributions that count: not by the campaign's initiator or team."""
    mask = np.ones(len(c), dtype=bool)
    if excluded:
        pairs = [(campaign, backer) for campaign, backers in excluded.items() for backer in backers]
        if pairs:
            keys = (c.campaign << 32) | c.backer
            banned = np.array([(campaign << 32) | backer for campaign, backer in pairs], dtype=np.int64)
            mask &= ~np.isin(keys, banned)
    return mask


def split_capped(*, pool: int, weights: Mapping[int, int], cap: int | None) -> dict[int, int]:
    """Split ``pool`` in proportion to integer ``weights``, none above ``cap``; return the positive parts.

    Campaigns whose share would exceed the cap get the cap, and the rest of the pool is shared
    by the others in proportion to their weights, until none is over. The capped ones are always
    the heaviest, so the fixed point is found by walking the weights from the heaviest down, with
    exact integer comparisons. The parts sum to ``pool``, or to less only when every campaign
    with a positive weight is at the cap.
    """
    if pool < 0 or (cap is not None and cap < 0):
        raise ValueError("pool and cap are not negative")
    positive = sorted(((w, cid) for cid, w in weights.items() if w > 0), key=lambda wc: (-wc[0], wc[1]))
    if not positive or pool == 0:
        return {}
    capped = 0
    if cap is not None:
        suffix = [0] * (len(positive) + 1)
        for i in range(len(positive) - 1, -1, -1):
            suffix[i] = suffix[i + 1] + positive[i][0]
        capped = len(positive)
        for k, (w, _cid) in enumerate(positive):
            # Campaign k (and so every lighter one) fits under the cap once the k heavier ones
            # are held at it. Capping one only ever happens when its share is above the cap, so
            # what is left for the others stays positive.
            if (pool - k * cap) * w <= cap * suffix[k]:
                capped = k
                break
    result = {cid: cap for _w, cid in positive[:capped]}
    rest = pool - capped * (cap or 0)
    uncapped = sorted(positive[capped:], key=lambda wc: wc[1])
    if uncapped and rest:
        result.update(zip((cid for _w, cid in uncapped), allocate(rest, [w for w, _ in uncapped]), strict=True))
    return _positive(result)


def _positive(parts: dict[int, int]) -> dict[int, int]:
    return {cid: amount for cid, amount in sorted(parts.items()) if amount > 0}


def fixed_ratio(
    *,
    pool: int,
    contributions,
    ratio_bps: int = RATIO_ONE_TO_ONE_BPS,
    per_contribution_cap: int | None = None,
    per_backer_cap: int | None = None,
    per_campaign_cap: int | None = None,
    excluded: Mapping[int, Iterable[int]] | None = None,
) -> AllocationResult:
    """Match each contribution ``ratio_bps / 10000`` to one, in sequence order, within the caps.

    A contribution's match is the floor of its amount times the ratio, cut to the per-contribution
    cap, to what is left of its backer's cap on that campaign, of the campaign's cap and of the
    pool. Contributions with the same sequence are taken in (campaign, backer, amount) order.
    """
    c = _as_contributions(contributions)
    counted = _counted(c, excluded)
    order = np.lexsort((c.amount, c.backer, c.campaign, c.sequence))
    left = pool
    by_campaign: dict[int, int] = {}
    by_backer: dict[tuple[int, int], int] = {}
    for i in order.tolist():
        if left <= 0:
            break
        if not counted[i]:
            continue
        campaign, backer, amount = int(c.campaign[i]), int(c.backer[i]), int(c.amount[i])
        match = amount * ratio_bps // RATIO_ONE_TO_ONE_BPS
        if per_contribution_cap is not None:
            match = min(match, per_contribution_cap)
        if per_backer_cap is not None:
            match = min(match, per_backer_cap - by_backer.get((campaign, backer), 0))
        if per_campaign_cap is not None:
            match = min(match, per_campaign_cap - by_campaign.get(campaign, 0))
        match = min(match, left)
        if match <= 0:
            continue
        by_backer[(campaign, backer)] = by_backer.get((campaign, backer), 0) + match
        by_campaign[campaign] = by_campaign.get(campaign, 0) + match
        left -= match
    return AllocationResult(pool=pool, allocations=_positive(by_campaign))


def pro_rata(
    *,
    pool: int,
    contributions,
    per_campaign_cap: int | None = None,
    excluded: Mapping[int, Iterable[int]] | None = None,
) -> AllocationResult:
    """Share ``pool`` in proportion to what each campaign raised, within the per-campaign cap."""
    weights = raised_by_campaign(contributions, excluded=excluded)
    return AllocationResult(pool=pool, allocations=split_capped(pool=pool, weights=weights, cap=per_campaign_cap))


def raised_by_campaign(contributions, *, excluded: Mapping[int, Iterable[int]] | None = None) -> dict[int, int]:
    """Return what each campaign raised from the contributions that count: pro rata's weights."""
    c = _as_contributions(contributions)
    counted = _counted(c, excluded)
    campaigns, inverse = np.unique(c.campaign[counted], return_inverse=True)
    raised = np.zeros(len(campaigns), dtype=np.int64)
    np.add.at(raised, inverse, c.amount[counted])
    return dict(zip(campaigns.tolist(), raised.tolist(), strict=True))


def backers_by_campaign(contributions, *, excluded: Mapping[int, Iterable[int]] | None = None) -> dict[int, int]:
    """Return how many distinct backers gave each campaign, among the contributions that count."""
    c = _as_contributions(contributions)
    counted = _counted(c, excluded)
    pairs = np.unique(np.stack([c.campaign[counted], c.backer[counted]], axis=1), axis=0)
    campaigns, counts = np.unique(pairs[:, 0], return_counts=True)
    return dict(zip(campaigns.tolist(), counts.tolist(), strict=True))


def quadratic_weights(
    contributions,
    *,
    minimum: int = DEFAULT_QUADRATIC_MINIMUM,
    excluded: Mapping[int, Iterable[int]] | None = None,
    pairwise_damping: int | None = None,
) -> dict[int, int]:
    """Return each campaign's quadratic weight, (sum of sqrt of each backer's total)^2 - total.

    Contributions under ``minimum`` and those of the excluded (initiator, team) do not count.
    A backer's contributions to a campaign are added up before the square root. The square
    roots are summed in (campaign, backer) order, whatever order the contributions came in, and
    each weight is rounded to a whole minor unit, so the weights are the same on every run.

    With ``pairwise_damping`` (M, in minor units: Gitcoin's M = 25 is 2,500 cents), the weight
    is Gitcoin's pairwise-bounded form instead: the sum over pairs of the campaign's backers of
    sqrt(a_i a_j) * M / (M + k_ij), where k_ij is that sum taken over every campaign the pair
    both backed, so backers who always give together count for less.
    """
    c = _as_contributions(contributions)
    counted = _counted(c, excluded) & (c.amount >= minimum)
    campaign, backer = c.campaign[counted], c.backer[counted]
    if len(campaign) == 0:
        return {}
    pairs, inverse = _unique_pairs(campaign, backer)
    totals = np.zeros(pairs.shape[1], dtype=np.int64)
    np.add.at(totals, inverse, c.amount[counted])
    # ``pairs`` is sorted by campaign then backer: each campaign's backers are one run.
    campaigns, starts = np.unique(pairs[0], return_index=True)
    roots = np.sqrt(totals.astype(np.float64))
    if pairwise_damping is not None:
        weights = np.rint(_pairwise_weights(pairs[1], roots, starts, pairwise_damping))
    else:
        root_sums = np.add.reduceat(roots, starts)
        plain_sums = np.add.reduceat(totals, starts)
        weights = np.rint(np.maximum(root_sums * root_sums - plain_sums, 0.0))
    return {cid: int(w) for cid, w in zip(campaigns.tolist(), weights.tolist(), strict=True) if w > 0}


def _unique_pairs(campaign: np.ndarray, backer: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the distinct (campaign, backer) pairs sorted by campaign then backer, and each row's pair.

    As ``np.unique(axis=1)`` does, through one integer key per row when it fits in 63 bits (a
    one-dimensional sort, many times faster than sorting rows of two columns).
    """
    low = int(backer.min())
    span = int(backer.max()) - low + 1
    if int(campaign.min()) >= 0 and (int(campaign.max()) + 1) * span < 2**62:
        keys, inverse = np.unique(campaign * span + (backer - low), return_inverse=True)
        return np.stack([keys // span, keys % span + low]), inverse.reshape(-1)
    pairs, inverse = np.unique(np.stack([campaign, backer]), axis=1, return_inverse=True)
    return pairs, inverse.reshape(-1)


def _pairwise_weights(backers: np.ndarray, roots: np.ndarray, starts: np.ndarray, damping: int) -> np.ndarray:
    """Return each campaign's pairwise-bounded weight; rows are (campaign, backer) runs from ``starts``.

    Work and memory grow with the sum over campaigns of their backers squared.
    """
    ends = np.append(starts[1:], len(backers))
    pair_keys, pair_values, pair_campaign = [], [], []
    n_backers = int(backers.max()) + 1
    for index, (start, end) in enumerate(zip(starts.tolist(), ends.tolist(), strict=True)):
        if end - start < 2:
            continue
        first, second = np.triu_indices(end - start, 1)
        b, r = backers[start:end], roots[start:end]
        pair_keys.append(b[first] * n_backers + b[second])
        pair_values.append(r[first] * r[second])
        pair_campaign.append(np.full(len(first), index))
    weights = np.zeros(len(starts), dtype=np.float64)
    if not pair_keys:
        return weights
    keys, values, campaign = np.concatenate(pair_keys), np.concatenate(pair_values), np.concatenate(pair_campaign)
    _unique, inverse = np.unique(keys, return_inverse=True)
    coordination = np.bincount(inverse, weights=values)
    damped = values * damping / (damping + coordination[inverse])
    # Each unordered pair stands for both (i, j) and (j, i).
    return 2 * np.bincount(campaign, weights=damped, minlength=len(starts))


def quadratic(
    *,
    pool: int,
    contributions,
    per_campaign_cap: int | None = None,
    minimum: int = DEFAULT_QUADRATIC_MINIMUM,
    excluded: Mapping[int, Iterable[int]] | None = None,
    pairwise_damping: int | None = None,
) -> AllocationResult:
    """Share ``pool`` in proportion to the campaigns' quadratic weights, within the per-campaign cap.

    ``per_campaign_cap`` is in minor units (``default_quadratic_cap(pool)`` is the issue's 10 %);
    None means no cap. ``pairwise_damping`` as in ``quadratic_weights``.
    """
    weights = quadratic_weights(contributions, minimum=minimum, excluded=excluded, pairwise_damping=pairwise_damping)
    return AllocationResult(pool=pool, allocations=split_capped(pool=pool, weights=weights, cap=per_campaign_cap))


def default_quadratic_cap(pool: int) -> int:
    """Return the default per-campaign cap of a quadratic pool: 10 % of it, rounded down."""
    return pool * DEFAULT_QUADRATIC_CAP_BPS // 10_000


# --- The live estimate ----------------------------------------------------------------------------
#
# Giving to one campaign changes only that campaign's weight (quadratic, pro rata) or only the
# match of the new gift (fixed ratio, first come first served). So the estimate needs the other
# campaigns only as aggregates, one number per campaign, computed once per round now and then
# (``Standing``), and recomputes the one campaign given to from its own contributions.

# The sequence of the gift being estimated: after every contribution, as a new pledge would be.
GIFT_SEQUENCE = 2**62
# The copies that stand for "as much again, by as many others" come after the round's own
# contributions and before the gift.
COPY_SEQUENCE = 2**61


@dataclass(frozen=True)
class Standing:
    """A round as it stands, one number per campaign, for the live estimate.

    ``now`` is each campaign's weight (quadratic, pro rata) or match so far (fixed ratio);
    ``doubled`` the same with every contribution repeated by a new backer (ids shifted by
    ``offset``); ``budget`` what the round shares; ``left`` and ``left_doubled`` what is left
    of it by fixed ratio.
    """

    now: dict[int, int]
    doubled: dict[int, int]
    offset: int
    # What the round shares.
    budget: int
    left: int = 0
    left_doubled: int = 0
    # For the pool page's live table: what each campaign raised and from how many backers
    # (None in a standing cached before they were kept).
    raised: dict[int, int] | None = None
    backers: dict[int, int] | None = None


def doubled(c: Contributions, offset: int) -> Contributions:
    """Return ``c`` with every contribution repeated by a new backer (id + ``offset``), after them all."""
    return Contributions(
        np.concatenate([c.campaign, c.campaign]),
        np.concatenate([c.backer, c.backer + offset]),
        np.concatenate([c.amount, c.amount]),
        np.concatenate([c.sequence, c.sequence + COPY_SEQUENCE]),
    )


def with_gift(c: Contributions, *, campaign_id: int, backer_id: int, amount: int) -> Contributions:
    """Return ``c`` and one more contribution, the gift, after all of them."""
    return Contributions(
        np.append(c.campaign, campaign_id),
        np.append(c.backer, backer_id),
        np.append(c.amount, amount),
        np.append(c.sequence, GIFT_SEQUENCE),
    )


def copies_offset(c: Contributions) -> int:
    """Return the shift that gives each contribution's copy a backer id no real backer has."""
    return int(c.backer.max()) + 1 if len(c) else 1
