"""The ladder statistic: the trend against least squares done another way, the onset on
hand cases and on simulated ladders with a known kink, and the bootstrap's two levels
against the variances they must reproduce."""

from __future__ import annotations

import doctest
import math

import numpy as np
import pytest

from validate.llm_check.ladder import statistic as statistic_module
from validate.llm_check.ladder.statistic import (
    LadderData,
    ladder_onset,
    ladder_onset_interval,
    resample_pooled_log_mass,
    trend,
)

LAM = (1.0, 1.1, 1.2, 1.3, 1.4, 1.5)
BUDGETS = (60, 120, 240)


def test_docstring_examples() -> None:
    result = doctest.testmod(statistic_module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0


# --- trend -------------------------------------------------------------------------------------
def test_trend_of_log_equally_spaced_budgets_is_the_endpoint_slope() -> None:
    y = -np.random.default_rng(0).uniform(0.0, 5.0, size=(4, 7, 3))
    expected = (y[..., 2] - y[..., 0]) / (math.log(240) - math.log(60))
    np.testing.assert_allclose(trend(y, BUDGETS), expected, rtol=1e-12)


def test_trend_is_the_polyfit_slope() -> None:
    budgets = (30, 60, 200, 480)
    y = -np.random.default_rng(1).uniform(0.0, 5.0, size=(5, 4))
    slopes = [np.polyfit(np.log(budgets), row, 1)[0] for row in y]
    np.testing.assert_allclose(trend(y, budgets), slopes, rtol=1e-10)


def test_trend_is_nan_where_a_log_mass_is_undefined() -> None:
    out = trend([[-1.0, np.nan, -2.0], [-1.0, -1.0, -np.inf], [-1.0, -2.0, -3.0]], BUDGETS)
    assert math.isnan(out[0]) and math.isnan(out[1]) and math.isfinite(out[2])


@pytest.mark.parametrize(("args", "words"), [
    (([-1.0, -2.0], BUDGETS), "log_mass must have last axis of length len"),
    (([-1.0, 0.5, -2.0], BUDGETS), "log_mass must be <= 0"),
    (([-1.0, -2.0], (60,)), "budgets must be a 1-D sequence of at least 2"),
    (([-1.0, -2.0], (60, 60)), "budgets must be strictly increasing"),
    (([-1.0, -2.0], (0, 60)), r"budgets\[0\] must be an integer >= 1"),
    (([-1.0, -2.0], (60.0, 120)), r"budgets\[0\] must be an integer >= 1"),
    (([-1.0, -2.0], (True, 120)), r"budgets\[0\] must be an integer >= 1"),
])
def test_trend_refusals(args: tuple, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        trend(*args)


# --- ladder_onset ------------------------------------------------------------------------------
def test_no_crossing_is_inf_and_the_margin_is_strict() -> None:
    assert ladder_onset(LAM, [0.0, -0.1, -0.3, -0.5, -0.5, -0.2]) == math.inf
    assert ladder_onset(LAM, [-0.2, -0.3, -0.5, -0.7, -0.7, -0.7]) == math.inf  # D = -0.5


def test_crossing_at_the_first_rung_interpolates_from_lambda_one() -> None:
    # D_1 = -1: the line from (1, 0) to (1.1, -1) meets -0.5 at 1.05
    assert ladder_onset(LAM, [0.3, -0.7, -3.0, 0.0, 0.0, 0.0]) == pytest.approx(1.05)


def test_interpolation_midpoint_and_first_crossing() -> None:
    # D = 0, 0, -0.25, -0.75, ...: halfway between 1.2 and 1.3; the later recovery is ignored
    trends = np.array([-0.1, -0.1, -0.35, -0.85, 0.0, -2.0])
    assert ladder_onset(LAM, trends) == pytest.approx(1.25)
    assert ladder_onset(LAM, trends + 7.0) == pytest.approx(1.25)  # only differences count
    assert ladder_onset(LAM, trends, delta=0.2) == pytest.approx(1.1 + 0.2 / 0.25 * 0.1)


def test_onset_is_vectorised_over_leading_axes() -> None:
    rows = -np.random.default_rng(2).uniform(0.0, 1.5, size=(3, 4, len(LAM)))
    out = ladder_onset(LAM, rows, 0.4)
    assert out.shape == (3, 4)
    for idx in np.ndindex(3, 4):
        assert out[idx] == ladder_onset(LAM, rows[idx], 0.4)


def test_nan_before_the_crossing_is_undefined_after_it_is_not() -> None:
    assert math.isnan(ladder_onset(LAM, [0.0, np.nan, -1.0, -1.0, -1.0, -1.0]))
    assert ladder_onset(LAM, [0.0, -1.0, np.nan, -1.0, -1.0, -1.0]) == pytest.approx(1.05)
    assert math.isnan(ladder_onset(LAM, [0.0, 0.0, 0.0, 0.0, 0.0, np.nan]))  # no crossing


@pytest.mark.parametrize(("args", "words"), [
    (((1.1, 1.2), [0.0, 0.0]), r"lambdas\[0\] must be 1.0"),
    ((LAM, [0.0, 0.0]), "trends must have last axis of length"),
    ((LAM, [0.0, -np.inf, 0, 0, 0, 0]), "trends must be finite or NaN"),
    ((LAM, np.zeros(6), 0.0), "delta must be finite and > 0"),
    ((LAM, np.zeros(6), -0.5), "delta must be finite and > 0"),
])
def test_onset_refusals(args: tuple, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        ladder_onset(*args)


# --- data with a known kink --------------------------------------------------------------------
KINK, SLOPE = 1.2, 2.0  # trend 0 up to the kink, then -SLOPE (lambda - KINK): D = -0.5 at 1.45


def _kinked(n_seeds: int, n_rollouts: int, sigma: float, seed: int) -> LadderData:
    beta = -SLOPE * np.maximum(np.asarray(LAM) - KINK, 0.0)
    x = np.log(np.asarray(BUDGETS) / BUDGETS[0])
    log_mass = math.log(0.01) + beta[:, None] * x[None, :]  # (L, B)
    gen = np.random.default_rng(seed)
    noise = gen.normal(0.0, sigma, size=(n_seeds, len(LAM), len(BUDGETS), n_rollouts))
    return LadderData(LAM, BUDGETS, np.exp(log_mass[None, :, :, None] + noise))


def test_noiseless_kink_gives_the_exact_onset() -> None:
    res = ladder_onset_interval(_kinked(1, 1, 0.0, 0), 0.5, 50, 0)
    assert res.point == pytest.approx(KINK + 0.5 / SLOPE, abs=1e-12)
    assert res.low == pytest.approx(res.point) and res.high == pytest.approx(res.point)


def test_noisy_kink_is_recovered_within_the_interval() -> None:
    truth = KINK + 0.5 / SLOPE
    covered = 0
    for seed in range(20):
        res = ladder_onset_interval(_kinked(4, 40, 0.4, seed), 0.5, 200, seed)
        assert res.low < res.high  # the noise is seen
        covered += res.low <= truth <= res.high
    assert covered >= 15  # nominal 0.9; rollout noise only: conservative


# --- the bootstrap -----------------------------------------------------------------------------
def _uniform(n_seeds: int, n_rollouts: int, seed: int) -> LadderData:
    gen = np.random.default_rng(seed)
    return LadderData(LAM, BUDGETS, gen.uniform(0.01, 0.5, (n_seeds, 6, 3, n_rollouts)))


def test_bootstrap_is_reproducible_under_a_seed() -> None:
    data = _uniform(3, 20, 0)
    a, b = (resample_pooled_log_mass(data, 30, 7) for _ in range(2))
    assert a.shape == (30, 6, 3) and np.array_equal(a, b)
    assert not np.array_equal(a, resample_pooled_log_mass(data, 30, 8))
    r1, r2 = (ladder_onset_interval(data, 0.5, 30, 7) for _ in range(2))
    assert np.array_equal(r1.replicates, r2.replicates)


def test_one_seed_and_no_spread_is_degenerate() -> None:
    cells = np.linspace(0.3, 0.01, 6)[:, None] ** np.array([1.0, 2.0, 3.0])  # (L, B)
    mass = np.broadcast_to(cells[None, :, :, None], (1, 6, 3, 25))
    data = LadderData(LAM, BUDGETS, mass)
    reps = resample_pooled_log_mass(data, 40, 0)
    np.testing.assert_allclose(reps, np.broadcast_to(data.pooled_log_mass, reps.shape),
                               rtol=1e-13)
    res = ladder_onset_interval(data, 0.5, 40, 0)
    assert res.low == pytest.approx(res.point) and res.high == pytest.approx(res.point)


def test_rollout_level_variance_is_the_bootstrap_mean_variance() -> None:
    # one seed: each replicate's mass is the mean of N rollouts drawn with replacement,
    # whose variance is var(x) / N (ddof 0)
    data = _uniform(1, 30, 3)
    reps = np.exp(resample_pooled_log_mass(data, 4000, 1))
    x = data.mass[0]
    np.testing.assert_allclose(reps.mean(axis=0), x.mean(axis=-1), rtol=0.01)
    np.testing.assert_allclose(reps.var(axis=0), x.var(axis=-1) / 30, rtol=0.15)


def test_seed_level_variance_with_identical_rollouts() -> None:
    values = np.array([0.05, 0.1, 0.2, 0.4])  # per seed, the same at every rollout and cell
    data = LadderData(LAM, BUDGETS, np.broadcast_to(values[:, None, None, None], (4, 6, 3, 9)))
    reps = np.exp(resample_pooled_log_mass(data, 4000, 2))
    np.testing.assert_allclose(reps.var(axis=0), values.var() / 4, rtol=0.15)


def test_rollout_draw_is_shared_by_every_rung_and_budget() -> None:
    # rollout n has the same mass in every cell: a paired draw keeps the cells equal
    gen = np.random.default_rng(4)
    per_rollout = gen.uniform(0.01, 0.9, size=(2, 1, 1, 15))
    data = LadderData(LAM, BUDGETS, np.broadcast_to(per_rollout, (2, 6, 3, 15)))
    reps = resample_pooled_log_mass(data, 50, 5)
    np.testing.assert_allclose(reps, np.broadcast_to(reps[:, :1, :1], reps.shape), rtol=1e-13)
    assert reps[:, 0, 0].std() > 0


def test_missing_rollouts_are_skipped_and_empty_cells_are_nan() -> None:
    mass = np.full((2, 6, 3, 4), 0.1)
    mass[1, :, :, 3] = 0.3
    mass[0, :, :, 0] = np.nan  # seed 0 lacks rollout 0: its mean is over the other three
    mass[1, 2, 1, :] = np.nan  # seed 1 has nothing at rung 2, budget 1
    data = LadderData(LAM, BUDGETS, mass)
    assert data.empty_cells.sum() == 1 and data.empty_cells[1, 2, 1]
    pooled = data.pooled_log_mass
    assert math.isnan(pooled[2, 1])
    assert pooled[0, 0] == pytest.approx(math.log((0.1 + (0.1 * 3 + 0.3) / 4) / 2))
    assert math.isnan(ladder_onset_interval(data, 0.5, 20, 0).point)


@pytest.mark.parametrize(("kwargs", "words"), [
    ({"lambdas": (1.0, 0.9, 1.2, 1.3, 1.4, 1.5)}, "lambdas must be strictly increasing"),
    ({"budgets": (60, 120)}, r"mass must have shape \(seeds >= 1, 6 lambdas, 2 budgets"),
    ({"mass": np.full((2, 6, 3), 0.1)}, "mass must have shape"),
    ({"mass": np.full((0, 6, 3, 4), 0.1)}, "mass must have shape"),
    ({"mass": np.full((1, 6, 3, 4), 1.5)}, r"mass must be in \[0, 1\] or NaN"),
    ({"mass": np.full((1, 6, 3, 4), -0.1)}, r"mass must be in \[0, 1\] or NaN"),
    ({"mass": np.full((1, 6, 3, 4), np.inf)}, r"mass must be in \[0, 1\] or NaN"),
    ({"mass": np.full((1, 6, 3, 4), True)}, "mass must be real numbers"),
])
def test_ladder_data_refusals(kwargs: dict, words: str) -> None:
    args = {"lambdas": LAM, "budgets": BUDGETS, "mass": np.full((1, 6, 3, 4), 0.1)} | kwargs
    with pytest.raises(ValueError, match=words):
        LadderData(**args)


def test_bootstrap_refusals() -> None:
    data = _uniform(1, 3, 0)
    with pytest.raises(ValueError, match="n_boot must be an integer >= 1"):
        resample_pooled_log_mass(data, 0, 0)
    with pytest.raises(ValueError, match="level must be in the open interval"):
        ladder_onset_interval(data, 0.5, 10, 0, level=1.0)
