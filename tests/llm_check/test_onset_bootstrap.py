"""The onset of the parse-rate cliff and its two-level bootstrap (validate.llm_check.onset).

Onsets are checked on curves whose crossing is known (tests.llm_check.synthetic_sweeps).
Coverage of the bootstrap interval is measured over repeated sweeps and compared with what
the two-level scheme is expected to give, at a tolerance of three binomial standard errors
of the repetitions.
"""

from __future__ import annotations

import doctest
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.stats import norm
from scipy.stats import t as student_t

from tests.llm_check.synthetic_sweeps import GRID, S, curve, draw
from validate.llm_check import onset as onset_module
from validate.llm_check.onset import Sweep, onset, percentile_interval, resample_rates
from validate.llm_check.preregistered_tests import OnsetTestConfig


def test_docstring_examples() -> None:
    result = doctest.testmod(onset_module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0


# --- the onset ----------------------------------------------------------------------------------
def test_onset_is_exact_on_a_piecewise_linear_curve() -> None:
    # rates linear between grid points: the interpolated crossing is the true crossing
    lam = np.array([1.0, 1.1, 1.2, 1.3, 1.4])
    rates = np.array([0.8, 0.82, 0.7, 0.3, 0.1])  # threshold 0.4 crossed in (1.2, 1.3)
    expected = 1.2 + (0.7 - 0.4) / (0.7 - 0.3) * 0.1
    assert onset(lam, rates) == pytest.approx(expected, abs=1e-12)
    # threshold 0.72: crossed in (1.1, 1.2)
    assert onset(lam, rates, fraction=0.9) == pytest.approx(1.1 + (0.82 - 0.72) / 0.12 * 0.1)


def test_onset_first_crossing_not_last() -> None:
    # the rate dips below, recovers, then falls for good: the first crossing counts
    lam = np.array([1.0, 1.1, 1.2, 1.3, 1.4])
    assert onset(lam, [0.8, 0.2, 0.8, 0.8, 0.0]) < 1.1


def test_onset_undefined_and_beyond_grid() -> None:
    assert math.isnan(onset(GRID, np.r_[0.0, np.zeros(8)]))
    assert onset(GRID, np.full(9, 0.7)) == math.inf
    assert onset(GRID, np.r_[0.5, np.full(8, 0.25)]) == math.inf  # equal to half: not below


@given(st.lists(st.floats(0.0, 1.0), min_size=9, max_size=9), st.floats(0.05, 0.95))
def test_onset_lies_in_the_bracketing_grid_interval(rates: list[float], f: float) -> None:
    r = np.asarray(rates)
    x = onset(GRID, r, f)
    if r[0] == 0:
        assert math.isnan(x)
        return
    below = np.nonzero(r[1:] < f * r[0])[0]
    if below.size == 0:
        assert x == math.inf
        return
    i = below[0] + 1
    assert GRID[i - 1] <= x <= GRID[i]  # the upper end only by rounding (r_0 ~ 1e-80)


@given(st.floats(1.06, 1.38), st.floats(0.005, 0.2))
def test_onset_of_a_monotone_curve_is_within_one_step_of_its_crossing(center: float,
                                                                      width: float) -> None:
    # for a falling curve, the interpolated onset and the true crossing share a grid interval
    r = curve(center, width=width)
    threshold = 0.5 * r[0]
    fine = np.linspace(1.0, 1.4, 400_001)
    below = curve(center, fine, width) < threshold
    if not below.any():  # a wide curve that does not halve on the grid
        assert onset(GRID, r) == math.inf
        return
    assert abs(onset(GRID, r) - fine[np.argmax(below)]) < 0.05


@given(st.integers(0, 2**32 - 1))
def test_onset_vectorised_equals_rowwise(seed: int) -> None:
    rates = np.random.default_rng(seed).random((6, 9))
    rates[0, 0] = 0.0
    vec = onset(GRID, rates)
    rows = [onset(GRID, row) for row in rates]
    np.testing.assert_array_equal(vec, rows)


@pytest.mark.parametrize("lam, rates, fraction, match", [
    ([1.1, 1.2], [0.5, 0.1], 0.5, r"lambdas\[0\] must be 1.0"),
    ([1.0, 1.0], [0.5, 0.1], 0.5, "strictly increasing"),
    ([1.0, 1.2], [0.5, 1.1], 0.5, r"rates must be in \[0, 1\]"),
    ([1.0, 1.2], [0.5, 0.1, 0.1], 0.5, "last axis of length"),
    ([1.0, 1.2], [0.5, 0.1], 1.0, r"fraction must be in the open interval \(0, 1\), got 1.0"),
])
def test_onset_refuses_bad_input_by_name(lam: list[float], rates: list[float], fraction: float,
                                         match: str) -> None:
    with pytest.raises(ValueError, match=match):
        onset(lam, rates, fraction)


def test_sweep_refuses_bad_shapes() -> None:
    with pytest.raises(ValueError, match=r"indicators.shape\[1\] must equal len\(lambdas\)"):
        Sweep((1.0, 1.2), np.zeros((3, 3, 4), dtype=bool))
    with pytest.raises(ValueError, match=r"shape \(seeds, lambdas, rollouts\)"):
        Sweep((1.0, 1.2), np.zeros((3, 2), dtype=bool))
    with pytest.raises(ValueError, match="booleans"):
        Sweep((1.0, 1.2), np.full((3, 2, 4), 0.5))


# --- the bootstrap ------------------------------------------------------------------------------
def test_percentile_interval_order_statistics() -> None:
    assert percentile_interval(np.arange(1.0, 101.0), 0.9) == (5.0, 95.0, 0)
    v = np.r_[np.arange(1.0, 95.0), np.full(6, np.inf), np.full(3, np.nan)]
    lo, hi, undefined = percentile_interval(v, 0.9)
    assert (lo, undefined) == (5.0, 3) and hi == math.inf
    assert percentile_interval([np.nan], 0.9)[2] == 1
    with pytest.raises(ValueError, match="level must be in the open interval"):
        percentile_interval([1.0], 1.0)


def test_resampling_is_reproducible_and_seeded_only_by_its_argument() -> None:
    sw = Sweep(tuple(GRID), draw(np.tile(curve(1.2), (S, 1)), np.random.default_rng(0)))
    a = resample_rates([sw], 50, np.random.default_rng(7))[0]
    b = resample_rates([sw], 50, 7)[0]
    c = resample_rates([sw], 50, 8)[0]
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("rollouts", ["paired", "independent"])
def test_bootstrap_variance_matches_the_two_level_formula(rollouts: str) -> None:
    # one lambda (and the lambda = 1 column): the replicate pooled rate has mean r_bar and
    # variance (1/S) [ (1/S) sum_s (r_s - r_bar)^2 + (1/S) sum_s r_s (1 - r_s) / N ]
    rng = np.random.default_rng(3)
    rates = np.array([[0.9, 0.2], [0.9, 0.5], [0.9, 0.6]])
    sw = Sweep((1.0, 1.2), draw(rates, rng, n=64))
    r = sw.rates[:, 1]
    expected = (np.mean((r - r.mean()) ** 2) + np.mean(r * (1 - r)) / 64) / S
    b = 20_000
    rep = resample_rates([sw], b, rng, rollouts)[0][:, 1]
    assert rep.mean() == pytest.approx(r.mean(), abs=4 * math.sqrt(expected / b))
    # the variance of a variance estimate: relative SE ~ sqrt(2 / B) (and kurtosis), 5% here
    assert rep.var() == pytest.approx(expected, rel=0.05)


def test_paired_resampling_uses_one_draw_for_every_sweep() -> None:
    rng = np.random.default_rng(4)
    x = draw(np.tile(curve(1.2), (S, 1)), rng)
    first, second = Sweep(tuple(GRID), x), Sweep(tuple(GRID), x.copy())
    a, b = resample_rates([first, second], 200, 1, "paired")
    np.testing.assert_array_equal(a, b)  # identical data, identical replicates
    a, b = resample_rates([first, second], 200, 1, "independent")
    assert not np.array_equal(a, b)  # seeds shared, rollouts drawn apart


def test_resampling_refuses_mismatched_sweeps() -> None:
    a = Sweep((1.0, 1.2), np.zeros((3, 2, 4), dtype=bool))
    b = Sweep((1.0, 1.2), np.zeros((2, 2, 4), dtype=bool))
    c = Sweep((1.0, 1.2), np.zeros((3, 2, 5), dtype=bool))
    with pytest.raises(ValueError, match="same number of seeds"):
        resample_rates([a, b], 10, 0)
    with pytest.raises(ValueError, match="same number of rollouts"):
        resample_rates([a, c], 10, 0, "paired")
    resample_rates([a, c], 10, 0, "independent")


def _coverage(reps: int, n_boot: int, seed_sd: float, n_seeds: int = S) -> tuple[float, float]:
    """Share of repeated sweeps whose 90% interval holds the true onset; and the true onset.

    Seed ``s`` has its own cliff centre ``1.22 + seed_sd z_s``; the estimand is the onset of
    the expected pooled curve (quadrature over the seed distribution).
    """
    z, w = np.polynomial.hermite_e.hermegauss(41)
    pooled = (w[:, None] * np.stack([curve(1.22 + seed_sd * zz) for zz in z])).sum(0) / w.sum()
    truth = onset(GRID, pooled)
    rng = np.random.default_rng(12345)
    hits = 0
    cfg = OnsetTestConfig(n_boot=n_boot)
    for _ in range(reps):
        centres = 1.22 + seed_sd * rng.standard_normal(n_seeds)
        sw = Sweep(tuple(GRID), draw(np.stack([curve(c) for c in centres]), rng))
        (rates,) = resample_rates([sw], cfg.n_boot, rng, cfg.rollouts)
        lo, hi, _ = percentile_interval(onset(GRID, rates), cfg.level)
        hits += lo <= truth <= hi
    return hits / reps, truth


def test_interval_coverage_when_seeds_do_not_differ() -> None:
    # Only rollout noise: the two-level bootstrap counts it twice over, so the replicate
    # variance is (2 - 1/S) times the sampling variance and the nominal 90% interval covers
    # up to 2 Phi(1.645 sqrt(2 - 1/S)) - 1 = 0.966 at S = 3 (first order in the noise; the
    # finite number of replicates and the onset's nonlinearity take a little off: 0.942 over
    # 1000 sweeps at these settings).  Checked: between nominal and that, to 3 binomial SE.
    reps = 200
    cov, truth = _coverage(reps, 300, 0.0)
    upper = 2 * norm.cdf(norm.ppf(0.95) * math.sqrt(2 - 1 / S)) - 1
    assert truth == pytest.approx(1.2206, abs=1e-3)
    assert 0.90 - 3 * math.sqrt(0.9 * 0.1 / reps) <= cov, cov
    assert cov <= upper + 3 * math.sqrt(upper * (1 - upper) / reps), cov


def _seed_dominated_coverage(n_seeds: int) -> float:
    """Coverage of the nominal 90% interval when seed spread dominates rollout noise: the
    replicate variance of a mean over S seeds is (S - 1)/S times the sampling variance, and
    the sampling spread of S seeds is Student-t with S - 1 degrees of freedom, so the
    interval covers P(|T_{S-1}| < z_0.95 sqrt((S - 1)/S)): 0.689 (S = 3), 0.832 (S = 8)."""
    return float(2 * student_t.cdf(norm.ppf(0.95) * math.sqrt((n_seeds - 1) / n_seeds),
                                   n_seeds - 1) - 1)


def test_interval_undercovers_when_seeds_differ_and_are_few() -> None:
    # Seed spread (sd 0.03 in the cliff's position) dominating rollout noise, S = 3: the
    # documented limitation of the two-level bootstrap, measured against its expected size.
    reps = 200
    cov, _ = _coverage(reps, 300, 0.03)
    expected = _seed_dominated_coverage(S)
    assert abs(cov - expected) <= 3 * math.sqrt(expected * (1 - expected) / reps), cov
    assert cov < 0.85


@pytest.mark.heavy
def test_interval_coverage_improves_with_seeds() -> None:
    # measured with these settings: 0.715 (S = 3) and 0.820 (S = 8), 400 sweeps each
    reps = 400
    covs = {n: _coverage(reps, 1000, 0.03, n)[0] for n in (3, 8)}
    for n, cov in covs.items():
        expected = _seed_dominated_coverage(n)
        assert abs(cov - expected) <= 3 * math.sqrt(expected * (1 - expected) / reps), (n, cov)
    assert covs[8] > covs[3]
