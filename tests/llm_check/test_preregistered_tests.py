"""The three pre-registered tests end to end (validate.llm_check.preregistered_tests): (a) the
cliff interval, (b) the budget extension, (c) the second clip, from synthetic sweeps to
verdicts, with the nulls of (b) and (c) counted, and the shift predictor taken from cliff."""

from __future__ import annotations

import doctest
import math

import numpy as np
import pytest

import cliff
from tests.llm_check.synthetic_sweeps import GRID, S, curve, draw, falling_sweep
from validate.llm_check import preregistered_tests
from validate.llm_check.onset import Sweep, onset
from validate.llm_check.preregistered_tests import (
    AbsoluteTestResult,
    OnsetTestConfig,
    budget_extension_test,
    budget_nulls,
    budget_shift_predictor,
    cliff_interval_test,
    clip_cross_test,
    clip_nulls,
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


def _sweeps_T_2T(rng: np.random.Generator) -> tuple[Sweep, Sweep]:
    # the same runs at T and 2T: cliff centres 1.30 at T, 1.22 at 2T; the seeds share a
    # per-seed offset at both budgets (same trajectories)
    offsets = 0.01 * rng.standard_normal(S)
    at_T = Sweep(tuple(GRID), draw(np.stack([curve(1.30 + o) for o in offsets]), rng))
    at_2T = Sweep(tuple(GRID), draw(np.stack([curve(1.22 + o) for o in offsets]), rng))
    return at_T, at_2T


def test_budget_extension_scores_the_absolute_onset_and_counts_the_nulls() -> None:
    rng = np.random.default_rng(32)
    at_T, at_2T = _sweeps_T_2T(rng)
    truth = float(onset(GRID, curve(1.22)))  # the 2T grid onset, about 1.221
    cfg = OnsetTestConfig(n_boot=500)
    nulls = budget_nulls({"1": 1.0})  # no shift (1.30), half the way to 1 (1.15)

    def run(pred: float, nulls: dict[str, tuple[float, float]] = nulls) -> AbsoluteTestResult:
        return budget_extension_test(at_T, at_2T, pred, nulls, rng=np.random.default_rng(0),
                                     gate_passed=True, config=cfg)

    right = run(truth)
    assert right.second_interval[0] <= truth <= right.second_interval[1]
    assert right.own_verdict is Verdict.HIT and right.verdict is Verdict.HIT
    assert right.null_verdicts == {"no_shift": Verdict.MISS, "halfway_to_1": Verdict.MISS}
    assert right.shift == pytest.approx(0.08, abs=0.02)  # descriptive
    assert run(1.35).verdict is Verdict.MISS and run(math.inf).verdict is Verdict.MISS
    # a null without theory that lands on the same onset (half the way to 1.14 from 1.30):
    # the real predictor's HIT no longer counts
    shared = run(truth, {**nulls, "halfway_to_1.14": (1.14, 0.5)})
    assert shared.own_verdict is Verdict.HIT and shared.null_verdicts["halfway_to_1.14"] is \
        Verdict.HIT
    assert shared.verdict is Verdict.INCONCLUSIVE
    gate = budget_extension_test(at_T, at_2T, truth, nulls, rng=0, gate_passed=False,
                                 config=cfg)
    assert gate.verdict is Verdict.VOID and set(gate.null_verdicts.values()) == {Verdict.VOID}
    nan = budget_extension_test(at_T, at_2T, math.nan, nulls, rng=0, gate_passed=True,
                                config=cfg)
    assert nan.verdict is Verdict.VOID and "undefined" in nan.reasons[0]


def test_no_onset_predicted_and_none_found_cannot_count_against_no_shift() -> None:
    # No cliff on the grid at either budget.  "No onset" (inf, or any value past the grid's
    # end) is right, and so is the null "no shift": the HIT does not count.
    rng = np.random.default_rng(3)
    flat = falling_sweep(2.0, rng)
    cfg = OnsetTestConfig(n_boot=200)
    for pred in (math.inf, 1.6):
        r = budget_extension_test(flat, flat, pred, budget_nulls({"1": 1.0}), rng=1,
                                  gate_passed=True, config=cfg)
        assert r.residual_interval == (0.0, 0.0) and r.own_verdict is Verdict.HIT
        assert r.null_verdicts["no_shift"] is Verdict.HIT and r.verdict is Verdict.INCONCLUSIVE
    # an onset found where none was predicted is a MISS, whichever way it lies
    r = budget_extension_test(falling_sweep(1.3, rng), falling_sweep(1.2, rng), math.inf,
                              {}, rng=1, gate_passed=True, config=cfg)
    assert r.residual_interval == (-math.inf, -math.inf) and r.verdict is Verdict.MISS


def test_budget_extension_needs_the_same_runs() -> None:
    rng = np.random.default_rng(2)
    a = falling_sweep(1.3, rng)
    b = falling_sweep(1.3, rng, lam=np.r_[1.0, np.linspace(1.1, 1.5, 8)])
    r = budget_extension_test(a, b, 1.25, {}, rng=0, gate_passed=True)
    assert r.verdict is Verdict.VOID and "same runs" in r.reasons[0]
    few = falling_sweep(1.3, rng, seeds=2)
    r = budget_extension_test(few, few, 1.25, {}, rng=0, gate_passed=True,
                              config=OnsetTestConfig(n_boot=100))
    assert r.verdict is Verdict.VOID and "at_T: 2 seeds < min_seeds = 3" in r.reasons


def test_clip_cross_on_its_own_grid() -> None:
    rng = np.random.default_rng(41)
    grid_new = np.r_[1.0, np.linspace(1.02, 1.30, 8)]
    at_c, at_new = falling_sweep(1.25, rng), falling_sweep(1.15, rng, lam=grid_new)
    truth = float(onset(grid_new, curve(1.15, grid_new)))
    cfg = OnsetTestConfig(n_boot=500)
    nulls = clip_nulls(5.0, 2.0)  # from the onset 1.25 at c: no shift 1.25, log c 1.108
    hit = clip_cross_test(at_c, at_new, truth, nulls, rng=1, gate_passed=True, config=cfg)
    assert hit.verdict is Verdict.HIT
    assert set(hit.null_verdicts.values()) == {Verdict.MISS}
    assert hit.shift == pytest.approx(-0.10, abs=0.02)
    miss = clip_cross_test(at_c, at_new, 1.25, nulls, rng=1, gate_passed=True, config=cfg)
    assert miss.verdict is Verdict.MISS
    unpaired = clip_cross_test(at_c, falling_sweep(1.15, rng, lam=grid_new, seeds=4), truth,
                               nulls, rng=1, gate_passed=True, config=cfg)
    assert unpaired.verdict is Verdict.VOID


def test_absolute_prediction_is_scored_when_the_first_onset_is_past_the_grid() -> None:
    # The onset at c sits at the grid's end, so about half the replicates find none there.
    # The absolute prediction does not read it, so its verdict is decided; the nulls that
    # do read it predict no onset in those replicates.
    rng = np.random.default_rng(43)
    at_c, at_new = falling_sweep(1.40, rng), falling_sweep(1.15, rng)
    truth = float(onset(GRID, curve(1.15)))
    cfg = OnsetTestConfig(n_boot=500)
    res = clip_cross_test(at_c, at_new, truth, clip_nulls(5.0, 2.0), rng=1, gate_passed=True,
                          config=cfg)
    assert res.verdict is Verdict.HIT
    assert res.null_residual_intervals["no_shift"][0] == -math.inf
    assert res.shift_interval[0] == -math.inf


def test_second_onset_interval_coverage() -> None:
    # paired T / 2T sweeps, identical seeds: only rollout noise, counted twice over by the
    # two-level scheme (expected coverage 0.966, as for the onset of test (a))
    reps = 100
    rng = np.random.default_rng(99)
    truth = float(onset(GRID, curve(1.22)))
    cfg = OnsetTestConfig(n_boot=300)
    hits = 0
    for _ in range(reps):
        at_T = Sweep(tuple(GRID), draw(np.tile(curve(1.30), (S, 1)), rng))
        at_2T = Sweep(tuple(GRID), draw(np.tile(curve(1.22), (S, 1)), rng))
        r = budget_extension_test(at_T, at_2T, truth, {}, rng=rng, gate_passed=True,
                                  config=cfg)
        hits += r.second_interval[0] <= truth <= r.second_interval[1]
    cov = hits / reps
    assert cov >= 0.90 - 3 * math.sqrt(0.09 / reps), cov


def test_nulls_are_what_they_say() -> None:
    nulls = budget_nulls({"1": 1.0, "law_lambda_inf": 1.19, "never": math.inf})
    assert nulls == {"no_shift": (1.0, 1.0), "halfway_to_1": (1.0, 0.5),
                     "halfway_to_law_lambda_inf": (1.19, 0.5)}
    a, k = clip_nulls(5.0, 2.0)["log_c"]
    lam_c = 1.30
    assert a + k * (lam_c - a) - 1.0 == pytest.approx((lam_c - 1.0) * math.log(2) / math.log(5))


# --- predictions from cliff ---------------------------------------------------------------------
def test_budget_shift_predictor_is_cliffs_budget_extension() -> None:
    f = budget_shift_predictor(0.7, 0.9, 5.0, 30, 0.5)
    lt = np.array([1.7, 1.8, 2.0])
    e = cliff.budget_extension(0.7, 0.9, 5.0, 30, 0.5, lambda_T=lt)
    np.testing.assert_allclose(f(lt), e.shift)
