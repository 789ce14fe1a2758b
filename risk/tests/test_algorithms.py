"""The numpy models on synthetic data with a known answer."""

import numpy as np
import pytest

from risk.algorithms import combine_log_odds, fit_logistic, fit_saturating_curve, forecast_saturating, sigmoid


@pytest.mark.parametrize(("amplitude", "rate"), [(50_000.0, 0.15), (1_200_000.0, 0.04), (8_000.0, 0.9)])
def test_the_curve_fit_recovers_amplitude_and_rate_from_noiseless_data(amplitude, rate):
    t = np.linspace(0.25, 12, 48)
    fit = fit_saturating_curve(t, amplitude * (1 - np.exp(-rate * t)))

    assert fit.amplitude == pytest.approx(amplitude, rel=0.05)
    assert fit.rate == pytest.approx(rate, rel=0.05)


def test_noisy_data_gives_a_wider_band_that_still_covers_the_truth():
    t = np.linspace(0.25, 12, 48)
    truth = 50_000 * (1 - np.exp(-0.15 * t))
    noisy = truth + np.random.default_rng(7).normal(0, 1_500, t.size)
    deadline = np.array([30.0])

    clean = np.quantile(forecast_saturating(t, truth, deadline, rng=np.random.default_rng(1)).samples, [0.05, 0.95])
    rough = np.quantile(forecast_saturating(t, noisy, deadline, rng=np.random.default_rng(1)).samples, [0.05, 0.95])

    assert rough[1] - rough[0] > 10 * (clean[1] - clean[0] + 1)
    assert rough[0] <= 50_000 * (1 - np.exp(-0.15 * 30)) <= rough[1]


def test_the_forecast_never_falls_below_what_is_already_pledged():
    t = np.linspace(0.5, 5, 20)
    flat = np.full(t.size, 10_000.0) + np.random.default_rng(3).normal(0, 2_000, t.size)

    result = forecast_saturating(t, flat, np.array([10.0, 30.0]), rng=np.random.default_rng(0), floor=12_000)

    assert result.samples.min() >= 12_000


def test_logistic_regression_recovers_the_signs_of_the_generating_weights():
    rng = np.random.default_rng(42)
    true_weights = np.array([1.2, -0.8, 0.6, -1.5, 0.9])
    X = rng.normal(size=(3_000, 5)) * [1, 10, 0.1, 3, 100] + [0, 50, 0, -2, 1_000]
    z = (X - X.mean(axis=0)) / X.std(axis=0)
    y = (rng.random(3_000) < sigmoid(z @ true_weights - 0.3)).astype(float)

    fit = fit_logistic(X, y, l2=1.0)

    assert fit.converged
    assert np.array_equal(np.sign(fit.model.weights), np.sign(true_weights))
    assert fit.model.weights == pytest.approx(true_weights, abs=0.2)
    predicted = fit.model.predict(X)
    assert ((predicted > 0.5) == (y == 1)).mean() > 0.75


def test_logistic_regression_stays_finite_on_perfectly_separable_data():
    X = np.array([[0.0], [1.0], [2.0], [3.0], [10.0], [11.0], [12.0], [13.0]])
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1], dtype=float)

    fit = fit_logistic(X, y, l2=1.0)

    assert fit.converged
    assert np.all(np.isfinite(fit.model.weights))
    assert fit.model.predict(np.array([[0.0], [13.0]])).tolist() == pytest.approx([0, 1], abs=0.2)


def test_bayes_rule_adds_evidence_and_ratios_of_one_change_nothing():
    prior = 0.01

    assert combine_log_odds(prior, np.zeros(4))[0] == pytest.approx(prior)
    assert combine_log_odds(prior, [np.log(99.0)])[0] == pytest.approx(0.5)
    assert combine_log_odds(prior, [np.log(10.0), np.log(10.0)])[0] > combine_log_odds(prior, [np.log(10.0)])[0]
