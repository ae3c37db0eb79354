"""The three pre-registered tests end to end (validate.llm_check.preregistered_tests): (a) the
cliff interval, (b) the budget extension, (c) the second clip, from synthetic sweeps to
verdicts, and the shift predictions taken from cliff."""

from __future__ import annotations

import doctest
import math
from collections.abc import Callable

import numpy as np
import pytest

import cliff
from tests.llm_check.synthetic_sweeps import GRID, S, curve, draw, falling_sweep
from validate.llm_check import preregistered_tests
from validate.llm_check.onset import Sweep, onset
from validate.llm_check.preregistered_tests import (
    OnsetTestConfig,
    ShiftTestResult,
    budget_extension_test,
    budget_shift_predictor,
    cliff_interval_test,
    clip_cross_test,
    clip_shift_prediction,
)
from validate.llm_check.verdict_rules import Verdict, null_windows


def test_docstring_examples() -> None:
    result = doctest.testmod(preregistered_tests, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0


# --- the tests, end to end ----------------------------------------------------------------------
WINDOWS = {"two_class": (1.35, 1.36), "by_token": (1.20, 1.23)}


def test_cliff_interval_hits_the_right_window_and_misses_the_wrong_one() -> None:
    rng = np.random.default_rng(21)
    sw = falling_sweep(1.22, rng)
    nulls = null_windows(sw.lambdas, 1.5)
    r = cliff_interval_test(sw, WINDOWS, primary="by_token", nulls=nulls, rng=rng,
                            gate_passed=True, config=OnsetTestConfig(n_boot=500))
    assert r.interval[0] <= r.onset <= r.interval[1]
    assert r.verdicts == {"by_token": Verdict.HIT, "two_class": Verdict.MISS}
    assert r.verdict is Verdict.HIT and r.reasons == ()
    assert r.null_verdicts["constant"] is Verdict.MISS
    assert r.null_verdicts["first_grid_point"] is Verdict.MISS
    assert r.widen["by_token"] == pytest.approx(0.025)
    assert r.seed_dispersion < 3  # identical seeds: only rollout noise
    assert r.to_dict()["verdicts"]["by_token"] == "HIT"


@pytest.mark.parametrize("case, reason", [
    ("gate", "gate failed"),
    ("zero", "parse rate 0 at lambda = 1"),
    ("seeds", "2 seeds < min_seeds = 3"),
    ("rollouts", "256 rollouts < min_rollouts = 512"),
])
def test_cliff_interval_void(case: str, reason: str) -> None:
    rng = np.random.default_rng(5)
    sw = {"gate": falling_sweep(1.22, rng), "zero": falling_sweep(1.22, rng, r0=0.0),
          "seeds": falling_sweep(1.22, rng, seeds=2),
          "rollouts": falling_sweep(1.22, rng, n=256)}[case]
    r = cliff_interval_test(sw, WINDOWS, primary="two_class", nulls={}, rng=rng,
                            gate_passed=case != "gate", config=OnsetTestConfig(n_boot=200))
    assert r.verdict is Verdict.VOID and set(r.verdicts.values()) == {Verdict.VOID}
    assert any(reason in x for x in r.reasons), r.reasons


def test_cliff_interval_beyond_the_grid_is_a_miss() -> None:
    rng = np.random.default_rng(8)
    sw = falling_sweep(2.0, rng)  # no cliff on the grid
    r = cliff_interval_test(sw, WINDOWS, primary="by_token", nulls={}, rng=rng,
                            gate_passed=True, config=OnsetTestConfig(n_boot=200))
    assert r.onset == math.inf and r.interval == (math.inf, math.inf)
    assert r.verdict is Verdict.MISS


def test_cliff_interval_refuses_an_unknown_primary() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="primary must name one of the windows"):
        cliff_interval_test(falling_sweep(1.2, rng), WINDOWS, primary="median", nulls={}, rng=rng,
                            gate_passed=True)


def test_budget_extension_verdicts() -> None:
    # the same runs at T and 2T: cliff centres 1.30 at T, 1.22 at 2T (grid-onset shift
    # 0.0794); the seeds share a per-seed offset at both budgets (same trajectories).  A draw
    # whose interval covers the true shift (about 9 in 10 do; test_shift_interval_coverage)
    rng = np.random.default_rng(32)
    offsets = 0.01 * rng.standard_normal(S)
    at_T = Sweep(tuple(GRID), draw(np.stack([curve(1.30 + o) for o in offsets]), rng))
    at_2T = Sweep(tuple(GRID), draw(np.stack([curve(1.22 + o) for o in offsets]), rng))
    cfg = OnsetTestConfig(n_boot=500)

    def run(pred: float | Callable[[np.ndarray], np.ndarray]) -> ShiftTestResult:
        return budget_extension_test(at_T, at_2T, pred, rng=np.random.default_rng(0),
                                     gate_passed=True, config=cfg)

    right, none, far = run(0.0794), run(0.0), run(0.3)
    assert right.shift == pytest.approx(0.0794, abs=0.02)
    assert right.verdict is Verdict.HIT and right.zero_excluded
    assert right.null_verdict is Verdict.MISS
    assert none.verdict is Verdict.MISS and far.verdict is Verdict.MISS
    # a function of the measured lambda_T, here lambda_T - 1.2206 (the 2T grid onset)
    cond = run(lambda lt: lt - 1.2206)
    assert cond.verdict is Verdict.HIT
    # the same sweep at both budgets: the shift is exactly 0 in every replicate
    same = budget_extension_test(at_T, at_T, 0.08, rng=0, gate_passed=True, config=cfg)
    assert same.shift_interval == (0.0, 0.0) and same.zero_excluded is False
    assert same.verdict is Verdict.MISS and same.null_verdict is Verdict.HIT
    gate = budget_extension_test(at_T, at_2T, 0.08, rng=0, gate_passed=False, config=cfg)
    assert gate.verdict is Verdict.VOID and gate.zero_excluded is None


def test_budget_extension_needs_the_same_runs() -> None:
    rng = np.random.default_rng(2)
    a = falling_sweep(1.3, rng)
    b = falling_sweep(1.3, rng, lam=np.r_[1.0, np.linspace(1.1, 1.5, 8)])
    r = budget_extension_test(a, b, 0.05, rng=0, gate_passed=True)
    assert r.verdict is Verdict.VOID and "same runs" in r.reasons[0]
    few = falling_sweep(1.3, rng, seeds=2)
    r = budget_extension_test(few, few, 0.05, rng=0, gate_passed=True,
                              config=OnsetTestConfig(n_boot=100))
    assert r.verdict is Verdict.VOID and "at_T: 2 seeds < min_seeds = 3" in r.reasons


def test_clip_cross_on_its_own_grid() -> None:
    rng = np.random.default_rng(41)
    grid_new = np.r_[1.0, np.linspace(1.02, 1.30, 8)]
    at_c, at_new = falling_sweep(1.25, rng), falling_sweep(1.15, rng, lam=grid_new)
    cfg = OnsetTestConfig(n_boot=500)
    hit = clip_cross_test(at_c, at_new, -0.10, rng=1, gate_passed=True, config=cfg)
    assert hit.verdict is Verdict.HIT and hit.shift == pytest.approx(-0.10, abs=0.02)
    miss = clip_cross_test(at_c, at_new, -0.30, rng=1, gate_passed=True, config=cfg)
    assert miss.verdict is Verdict.MISS and miss.zero_excluded
    unpaired = clip_cross_test(at_c, falling_sweep(1.15, rng, lam=grid_new, seeds=4), -0.1, rng=1,
                               gate_passed=True, config=cfg)
    assert unpaired.verdict is Verdict.VOID


def test_constant_clip_prediction_counts_a_first_onset_past_the_grid() -> None:
    # The onset at c sits at the grid's end, so about half the replicates find none there
    # (shift -inf: censored, not undefined). A constant prediction is defined in every
    # replicate, so the test still decides: MISS for a shift of -0.03 when the measured one is
    # about -0.25; a prediction that depends on the onset at c has no value there (VOID).
    rng = np.random.default_rng(43)
    at_c, at_new = falling_sweep(1.40, rng), falling_sweep(1.15, rng)
    cfg = OnsetTestConfig(n_boot=500)
    res = clip_cross_test(at_c, at_new, -0.03, rng=1, gate_passed=True, config=cfg)
    assert res.shift_interval[0] == -math.inf and res.shift_interval[1] < -0.1
    assert res.verdict is Verdict.MISS and res.zero_excluded
    by_onset = clip_cross_test(at_c, at_new, lambda o: np.full(np.shape(o), -0.03), rng=1,
                               gate_passed=True, config=cfg)
    assert by_onset.verdict is Verdict.VOID


def test_shift_interval_coverage() -> None:
    # paired T / 2T sweeps with seed offsets shared across budgets (same trajectories) and
    # no other seed effect; the estimand is the difference of the true grid onsets.  The
    # shared offsets cancel in the shift, so only rollout noise is left, counted twice over
    # by the two-level scheme: expected coverage 0.966 as for the onset itself.
    reps = 100
    rng = np.random.default_rng(99)
    truth = onset(GRID, curve(1.30)) - onset(GRID, curve(1.22))
    cfg = OnsetTestConfig(n_boot=300)
    hits = 0
    for _ in range(reps):
        at_T = Sweep(tuple(GRID), draw(np.tile(curve(1.30), (S, 1)), rng))
        at_2T = Sweep(tuple(GRID), draw(np.tile(curve(1.22), (S, 1)), rng))
        r = budget_extension_test(at_T, at_2T, truth, rng=rng, gate_passed=True, config=cfg)
        hits += r.shift_interval[0] <= truth <= r.shift_interval[1]
    cov = hits / reps
    assert cov >= 0.90 - 3 * math.sqrt(0.09 / reps), cov


# --- predictions from cliff ---------------------------------------------------------------------
def test_budget_shift_predictor_is_cliffs_budget_extension() -> None:
    f = budget_shift_predictor(0.7, 0.9, 5.0, 30, 0.5)
    lt = np.array([1.7, 1.8, 2.0])
    e = cliff.budget_extension(0.7, 0.9, 5.0, 30, 0.5, lambda_T=lt)
    np.testing.assert_allclose(f(lt), e.shift)


def test_clip_shift_prediction_is_log_ratio_over_d_on_the_capped_branch() -> None:
    # sharpening towards an entropy-collapse threshold 0.99: the capped branch at c and c'
    p, b, c, c_new, tau = 0.9, 0.5, 5.0, 3.0, 0.99
    x = cliff.clip_cross_prediction(p, b, c, c_new, 300, 0.5, threshold=tau)
    assert cliff.budget_extension(p, b, c, 300, 0.5, threshold=tau).regime == "capped"
    pred = clip_shift_prediction(p, b, c, c_new, 300, 0.5, threshold=tau)
    assert pred == pytest.approx(x.lambda_T_new - x.lambda_T)
    assert x.dlambda_dlogc > 0  # 1 / D
    assert pred == pytest.approx(math.log(c_new / c) * x.dlambda_dlogc)
