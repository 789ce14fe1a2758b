"""The numerical models behind ``risk/``, in plain numpy: no Django, no database, no I/O.

- ``fit_logistic`` / ``LogisticModel``: L2-regularised logistic regression fitted by Newton's
  method on standardised features, with per-feature contributions to explain each score.
- ``step_log_likelihood_ratio`` / ``combine_log_odds``: naive Bayes, i.e. Bayes' rule on log-odds,
  adding one log-likelihood ratio per independent signal to the prior log-odds.
- ``fit_saturating_curve`` / ``forecast_saturating``: cumulative funding F(t) = A(1 - e^(-kt)) by
  least squares (closed-form A for each k, golden-section search over k), and a bootstrap of
  residuals for the uncertainty of F at later times.
- ``goal_chance``: the chance a forecast total reaches a goal, from its median and band read as a
  split lognormal (one spread below the median, another above), so pricing advice can compare
  a forecast with and without a suggestion on the same footing.
- ``score_recommendations``: a weighted sum of per-campaign components in [0, 1], one backer
  against many campaigns at once.

Every function works on whole arrays, so scoring 10,000 campaigns is one matrix product.
"""

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

# --- Logistic regression -----------------------------------------------------------------------


def sigmoid(z: np.ndarray | float) -> np.ndarray:
    """Return 1 / (1 + e^-z), computed without overflow for large |z|."""
    return np.exp(-np.logaddexp(0.0, -np.asarray(z, dtype=float)))


def logit(p: float) -> float:
    """Return the log-odds of probability ``p`` (clipped away from 0 and 1)."""
    p = min(max(float(p), 1e-12), 1 - 1e-12)
    return float(np.log(p / (1 - p)))


@dataclass(frozen=True)
class LogisticModel:
    """P(y=1 | x) = sigmoid(intercept + weights · (x - means) / scales)."""

    weights: np.ndarray
    intercept: float
    means: np.ndarray
    scales: np.ndarray

    def standardise(self, X: np.ndarray) -> np.ndarray:
        return (np.asarray(X, dtype=float) - self.means) / self.scales

    def contributions(self, X: np.ndarray) -> np.ndarray:
        """Return each feature's additive share of the log-odds, shape (n, d)."""
        return self.standardise(X) * self.weights

    def log_odds(self, X: np.ndarray) -> np.ndarray:
        return self.standardise(X) @ self.weights + self.intercept

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Return P(y=1) for every row of ``X`` (shape (n, d)) as an array of shape (n,)."""
        return sigmoid(self.log_odds(X))


@dataclass(frozen=True)
class LogisticFit:
    model: LogisticModel
    iterations: int
    converged: bool
    log_loss: float  # mean cross-entropy on the training data


def fit_logistic(
    X: np.ndarray, y: np.ndarray, *, l2: float = 1.0, max_iter: int = 50, tol: float = 1e-9
) -> LogisticFit:
    """Fit an L2-regularised logistic regression of ``y`` (0/1) on ``X`` by Newton's method.

    Features are standardised with the training means and standard deviations (a constant
    column gets scale 1), so the penalty ``l2 * |w|^2 / 2`` treats them alike and the
    weights are comparable. The intercept is not penalised. The objective is strictly convex
    for ``l2 > 0``, so Newton converges even on separable data.
    """
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    if X.ndim != 2 or y.shape != (X.shape[0],):
        raise ValueError("fit_logistic() needs X of shape (n, d) and y of shape (n,)")
    n, d = X.shape
    means = X.mean(axis=0)
    scales = X.std(axis=0)
    scales[scales < 1e-12] = 1.0
    design = np.hstack([np.ones((n, 1)), (X - means) / scales])
    penalty = np.full(d + 1, float(l2))
    penalty[0] = 0.0
    beta = np.zeros(d + 1)
    beta[0] = logit(y.mean()) if n else 0.0
    converged = False
    iterations = 0
    for iterations in range(1, max_iter + 1):  # noqa: B007 - reported after the loop
        p = sigmoid(design @ beta)
        gradient = design.T @ (p - y) + penalty * beta
        hessian = (design.T * (p * (1 - p))) @ design + np.diag(penalty) + 1e-9 * np.eye(d + 1)
        step = np.linalg.solve(hessian, gradient)
        beta -= step
        if np.max(np.abs(step)) < tol:
            converged = True
            break
    p = np.clip(sigmoid(design @ beta), 1e-12, 1 - 1e-12)
    log_loss = float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))) if n else 0.0
    model = LogisticModel(weights=beta[1:].copy(), intercept=float(beta[0]), means=means, scales=scales)
    return LogisticFit(model=model, iterations=iterations, converged=converged, log_loss=log_loss)


# --- Naive Bayes ---------------------------------------------------------------------------------


def step_log_likelihood_ratio(values: np.ndarray | float, thresholds: list[float], ratios: list[float]) -> np.ndarray:
    """Return log(ratio) for each value from a step table.

    ``ratios[0]`` applies below ``thresholds[0]``, ``ratios[i]`` from ``thresholds[i - 1]`` up to
    (not including) ``thresholds[i]``, and ``ratios[-1]`` from the last threshold up.
    """
    if len(ratios) != len(thresholds) + 1:
        raise ValueError("a step table needs one more ratio than thresholds")
    index = np.searchsorted(np.asarray(thresholds, dtype=float), np.asarray(values, dtype=float), side="right")
    return np.log(np.asarray(ratios, dtype=float))[index]


def combine_log_odds(prior_probability: float, log_likelihood_ratios: np.ndarray) -> np.ndarray:
    """Return the posterior probability from a prior and independent signals (Bayes' rule).

    ``log_likelihood_ratios`` has one column per signal (or is one row): each is
    log P(signal | fraud) / P(signal | legitimate). Naive Bayes adds them to the prior log-odds.
    """
    llr = np.atleast_2d(np.asarray(log_likelihood_ratios, dtype=float))
    return sigmoid(logit(prior_probability) + llr.sum(axis=1))


def poisson_z(observed: np.ndarray | float, expected: np.ndarray | float) -> np.ndarray:
    """Return how many standard deviations ``observed`` counts lie above a Poisson ``expected``."""
    expected = np.asarray(expected, dtype=float)
    return (np.asarray(observed, dtype=float) - expected) / np.sqrt(np.maximum(expected, 1.0))


# --- Saturating growth curve ---------------------------------------------------------------------

# Rates are searched over k * span in [K_MIN, K_MAX], span being the observed time range: below
# K_MIN the curve is a straight line over the data (any smaller k fits as well), above K_MAX it
# has already levelled off at the first observation.
K_MIN, K_MAX = 0.02, 60.0
K_GRID_SIZE = 64
# Each round of refinement makes k ten times more precise; three give about 0.01 %.
REFINE_ROUNDS = 3


@dataclass(frozen=True)
class CurveFit:
    amplitude: float  # A: the level the curve tends to
    rate: float  # k: per unit of t
    fitted: np.ndarray  # A(1 - e^(-k t)) at the observed times
    residuals: np.ndarray  # observed - fitted

    def at(self, t: np.ndarray | float) -> np.ndarray:
        return self.amplitude * -np.expm1(-self.rate * np.asarray(t, dtype=float))


_UNIT_GRID = np.geomspace(K_MIN, K_MAX, K_GRID_SIZE)
_GRID_STEP = float(np.log(_UNIT_GRID[1] / _UNIT_GRID[0]))
_NEAR = np.geomspace(0.75, 1.0 / 0.75, 25)
_ZOOM = np.linspace(-1.0, 1.0, 21)


def _k_grid(span: float, *, around: float | None = None) -> np.ndarray:
    grid = _UNIT_GRID / span
    if around is not None:
        # Finer steps near the point estimate, where most bootstrap refits land (order is irrelevant).
        grid = np.concatenate([grid, around * _NEAR])
    return grid


def _profile(k: np.ndarray, t: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each k, return the best amplitude (closed form) and the sum of squared errors."""
    g = -np.expm1(-np.outer(k, t))  # (K, n)
    gg = np.einsum("kn,kn->k", g, g)
    gy = g @ y
    amplitude = gy / gg
    sse = y @ y - gy * amplitude
    return amplitude, sse


def fit_saturating_curve(t: np.ndarray, y: np.ndarray) -> CurveFit:
    """Least-squares fit of y = A(1 - e^(-k t)) with A >= 0, k > 0.

    For a fixed k the model is linear in A, so A has a closed form; the sum of squared errors
    as a function of k alone is searched on a log grid, then on ever finer grids around the best
    point (all vectorised: a handful of small matrix operations).
    ``t`` must be positive; the curve passes through (0, 0) by construction.
    """
    t = np.asarray(t, dtype=float)
    y = np.asarray(y, dtype=float)
    if t.ndim != 1 or t.shape != y.shape or t.size == 0 or np.any(t <= 0):
        raise ValueError("fit_saturating_curve() needs matching 1-d arrays with t > 0")
    span = float(t.max())
    grid = _k_grid(span)
    if float(np.max(np.abs(y))) == 0.0:
        k = float(grid[len(grid) // 2])
        return CurveFit(amplitude=0.0, rate=k, fitted=np.zeros_like(y), residuals=y.copy())
    _, sse = _profile(grid, t, y)
    log_k = float(np.log(grid[int(np.argmin(sse))]))
    # Zoom in: a finer grid of 21 around the best point, three times, each ten times finer.
    step = _GRID_STEP
    for _ in range(REFINE_ROUNDS):
        local = np.exp(log_k + step * _ZOOM)
        _, sse = _profile(local, t, y)
        log_k = float(np.log(local[int(np.argmin(sse))]))
        step /= 10
    k = float(np.exp(log_k))
    amplitude, _ = _profile(np.array([k]), t, y)
    curve = CurveFit(amplitude=max(float(amplitude[0]), 0.0), rate=k, fitted=np.zeros(0), residuals=np.zeros(0))
    fitted = curve.at(t)
    return CurveFit(amplitude=curve.amplitude, rate=k, fitted=fitted, residuals=y - fitted)


@dataclass(frozen=True)
class CurveForecast:
    fit: CurveFit
    samples: np.ndarray  # (n_boot, len(times)): plausible values of F at ``times``


def forecast_saturating(
    t: np.ndarray,
    y: np.ndarray,
    times: np.ndarray,
    *,
    rng: np.random.Generator,
    n_boot: int = 200,
    floor: float | None = None,
) -> CurveForecast:
    """Fit the curve to (t, y) and return bootstrap samples of F at ``times``.

    Bootstrap of residuals: new data sets are the fitted curve plus residuals drawn with
    replacement (rescaled by sqrt(n / (n - 2)) for the two fitted parameters); each is refitted
    on a fine grid of k (all at once, one matrix product), and one more drawn residual is added
    to each prediction for the noise of the future value itself. Predictions are kept at or
    above ``floor`` (what has already been pledged).
    """
    t = np.asarray(t, dtype=float)
    y = np.asarray(y, dtype=float)
    times = np.atleast_1d(np.asarray(times, dtype=float))
    fit = fit_saturating_curve(t, y)
    n = t.size
    residuals = fit.residuals * np.sqrt(n / max(n - 2, 1))
    draws = rng.integers(0, n, size=(n_boot, n + 1))
    resampled = fit.fitted[None, :] + residuals[draws[:, :n]]  # (B, n)
    grid = _k_grid(float(t.max()), around=fit.rate)
    g = -np.expm1(-np.outer(grid, t))  # (K, n)
    norm = np.sqrt(np.einsum("kn,kn->k", g, g))
    # For each k the least-squares amplitude is (g.y) / |g|^2 and it removes (g.y / |g|)^2 from
    # the squared error; with A >= 0 only positive projections count, so the best k is the one
    # with the largest projection of y on g / |g|.
    projection = resampled @ (g / norm[:, None]).T  # (B, K)
    best = np.argmax(projection, axis=1)
    amplitude = np.maximum(projection[np.arange(n_boot), best] / norm[best], 0.0)
    k = grid[best]
    samples = amplitude[:, None] * -np.expm1(-np.outer(k, times)) + residuals[draws[:, n]][:, None]
    if floor is not None:
        samples = np.maximum(samples, floor)
    return CurveForecast(fit=fit, samples=samples)


# --- Chance of reaching a goal ------------------------------------------------------------------


def goal_chance(
    *, goal: float, median: float, low: float, high: float, floor: float, band: tuple[float, float]
) -> float:
    """Return P(total >= ``goal``) for a total with ``median`` and ``band`` quantiles ``low`` and ``high``.

    The total is read as a split lognormal: log(total) is normal around log(median), with the
    spread that puts ``low`` at the band's lower quantile below the median and the spread that
    puts ``high`` at its upper quantile above (a forecast's band is rarely symmetric: what is
    pledged is a floor, the upside is open). The total never falls below ``floor`` (what is
    already pledged), so a goal at or below it is certain. A band of zero width on a side makes
    that side certain: the total is then the median there.
    """
    if goal <= floor:
        return 1.0
    if median <= 0:
        return 0.0
    distance = math.log(goal / median)
    if distance == 0:
        return 0.5
    if distance > 0:
        edge, quantile = high, band[1]
    else:
        edge, quantile = max(low, floor, 1e-9), band[0]
    spread = abs(math.log(edge / median)) / abs(NormalDist().inv_cdf(quantile))
    if spread == 0:
        return 0.0 if distance > 0 else 1.0
    return 1.0 - NormalDist().cdf(distance / spread)


# --- Recommendations -----------------------------------------------------------------------------


def score_recommendations(components: np.ndarray, weights: np.ndarray, *, exclude: np.ndarray | None = None):
    """Return (scores, contributions) for campaigns described by ``components`` (n, c) in [0, 1].

    ``contributions`` (n, c) is each component times its weight, so the largest one says why a
    campaign ranks where it does. Excluded campaigns score -inf.
    """
    contributions = np.asarray(components, dtype=float) * np.asarray(weights, dtype=float)
    scores = contributions.sum(axis=1)
    if exclude is not None:
        scores = np.where(exclude, -np.inf, scores)
    return scores, contributions


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Return the indexes of the ``k`` highest finite scores, best first (ties: lower index first)."""
    finite = np.flatnonzero(np.isfinite(scores))
    if finite.size == 0 or k <= 0:
        return np.zeros(0, dtype=int)
    k = min(k, finite.size)
    candidates = finite[np.argpartition(-scores[finite], k - 1)[:k]] if k < finite.size else finite
    order = np.lexsort((candidates, -scores[candidates]))
    return candidates[order]
