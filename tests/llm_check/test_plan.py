"""The pre-registered plan (validate.llm_check.plan): the finite-budget law's threshold, the
plan's round trip through the sealed prediction, and the planned runs."""

from __future__ import annotations

import doctest
import math

import numpy as np
import pytest

import cliff
from cliff.internal import jsonable
from validate.llm_check import plan as plan_module
from validate.llm_check.config import Config
from validate.llm_check.grid import design_grid
from validate.llm_check.measurement import Measurement
from validate.llm_check.plan import Plan, SchedulePlan, law_threshold, make_plan, planned_runs
from validate.llm_check.sealing import seal
from validate.monte_carlo import mean_field


def test_docstring_examples() -> None:
    result = doctest.testmod(plan_module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0


@pytest.mark.parametrize("p, b", [(0.99979, 0.512), (0.9994, 0.503), (0.999, 0.35)])
def test_sharpening_threshold_puts_the_law_onset_in_the_cliff_window(p: float, b: float) -> None:
    # At the sharpening gate's masses the finite-budget law with the check's threshold is not
    # degenerate, and its asymptotic onset lies in cliff.solve's [lambda*, lambda_collapse]
    # (two separate derivations: the branch solution of "fixed point = tau" and the edge of
    # the clip-safe region).
    tau = law_threshold(p, b, 5.0)
    s = cliff.solve(p, b, 5.0)
    e = cliff.budget_extension(p, b, 5.0, 60, 0.05, threshold=tau, lambda_T=s.lambda_star + 0.04)
    assert e.regime not in ("start", "teacher", "never")
    assert s.lambda_star - 1e-12 <= e.lambda_inf <= s.lambda_collapse + 1e-12


def test_sharpening_budget_shift_matches_the_simulated_mean_field() -> None:
    # Where the law claims validity (in_range), its predicted shift lambda_T - lambda_2T is
    # within 15% of the one the simulated mean-field flow (validate.monte_carlo, sgd clock)
    # shows on a 1e-4 lambda grid. Measured: law 0.0196, simulated 0.0214.
    p, b, steps, lr = 0.99979, 0.512, 100_000, 1.0
    tau = law_threshold(p, b, 5.0)
    lam = np.linspace(1.19, 1.26, 701)
    theta_T = mean_field(p, b, 5.0, lam, steps=steps, lr=lr, clock="sgd")
    theta_2T = mean_field(p, b, 5.0, lam, steps=steps, lr=lr, clock="sgd", theta0=theta_T)
    target = np.log(tau) - np.log1p(-tau)
    onset_T, onset_2T = (lam[np.argmax(th >= target)] for th in (theta_T, theta_2T))
    assert lam[0] < onset_2T < onset_T < lam[-1]
    e = cliff.budget_extension(p, b, 5.0, steps, lr, threshold=tau, lambda_T=onset_T)
    assert e.in_range
    assert e.shift == pytest.approx(onset_T - onset_2T, rel=0.15)


def test_softening_threshold_is_the_halving_of_the_warm_start_mass() -> None:
    # Softening: the Euler map run to the law's asymptotic onset settles at b/2.
    p, b = 0.7, 0.9
    tau = law_threshold(p, b, 5.0)
    assert tau == 0.45
    lam = cliff.asymptotic_onset(p, b, 5.0, threshold=tau)
    assert 1.0 < lam < cliff.solve(p, b, 5.0).lambda_collapse
    onset_long = cliff.finite_budget_onset(p, b, 5.0, 20000, 0.5, threshold=tau)
    assert onset_long == pytest.approx(lam, abs=1e-3)


def _measurement(p: float, b: float, windows: dict[str, list[float]],
                 two_class_c_new: list[float] | None) -> Measurement:
    return Measurement(position_types=[], by_token_types=[], position_types_c_new=[],
                       binding_type="close", by_token_binding_type="close", p=p, b=b,
                       windows=windows, two_class_c_new=two_class_c_new, teacher={},
                       warm_start={})


@pytest.mark.parametrize("p, b, windows, c_new", [
    (0.99979, 0.512, {"two_class": [1.19, 1.19], "by_token": [1.126, 1.15]}, [1.3, 1.3]),
    (0.3, 0.9, {"two_class": [1.2, 1.3], "by_token": [1.1, 1.15]}, [1.4, 1.5]),  # degenerate
    (0.9, 0.5, {"by_token": [1.1, 1.15]}, None),
])
def test_the_plan_reads_back_from_the_sealed_prediction(p: float, b: float,
                                                         windows: dict[str, list[float]],
                                                         c_new: list[float] | None) -> None:
    # The analysis reads the plan from the sealed file: what it reads is what was planned.
    cfg = Config(schedule=True, power_simulations=5)
    meas = _measurement(p, b, windows, c_new)
    grid = design_grid({k: (v[0], v[1]) for k, v in windows.items()}, cfg.n_grid,
                       beyond=cfg.n_beyond)
    plan = make_plan(cfg, meas, grid)
    sealed = seal({"measurement": meas.to_dict(), **plan.to_dict()},
                  written_at="2026-01-01T00:00:00+00:00")["payload"]
    back = Plan.from_dict(sealed)
    assert jsonable(back.to_dict()) == {k: sealed[k] for k in plan.to_dict()}
    assert back.lambdas == plan.lambdas and back.nulls == plan.nulls
    assert back.direction == plan.direction and back.test_config == plan.test_config
    assert back.budget_extension.defined == plan.budget_extension.defined
    if p < b:
        assert not plan.budget_extension.defined
        assert plan.notes[0].startswith("test (b) VOID by design: the finite-budget law is "
                                        "degenerate")


def test_tests_b_and_c_seal_the_laws_absolute_onsets_their_nulls_and_their_power() -> None:
    # At the follow-up's masses the law's clock reaches no onset within 60 or 120 updates, so
    # (b) and (c) predict none: absolute predictions that the measured onsets can refute.
    cfg = Config(power_simulations=5)
    p, b = 0.99979, 0.5118
    meas = _measurement(p, b, {"two_class": [1.1916, 1.1916], "by_token": [1.126, 1.15]},
                        [1.08, 1.08])
    grid = design_grid({"two_class": (1.1916, 1.1916), "by_token": (1.126, 1.15)}, cfg.n_grid)
    plan = make_plan(cfg, meas, grid)
    be, cc = plan.budget_extension, plan.clip_cross
    tau = law_threshold(p, b, cfg.c)
    e = cliff.budget_extension(p, b, cfg.c, cfg.opd_steps, cfg.mean_field_lr, threshold=tau)
    x = cliff.clip_cross_prediction(p, b, cfg.c, cfg.c_new, cfg.opd_steps, cfg.mean_field_lr,
                                    threshold=tau)
    assert be.defined and (be.lambda_T, be.lambda_2T) == (e.lambda_T, e.lambda_2T) == (
        math.inf, math.inf)
    assert be.lambda_inf == pytest.approx(e.lambda_inf)
    assert be.nulls["halfway_to_law_lambda_inf"] == (pytest.approx(e.lambda_inf), 0.5)
    assert be.nulls["halfway_to_two_class"] == (1.1916, 0.5) and be.nulls["no_shift"] == (1, 1)
    assert cc.source == cc.FROM_LAW and cc.lambda_T_new == x.lambda_T_new == math.inf
    assert cc.nulls["log_c"] == (1.0, pytest.approx(math.log(2) / math.log(5)))
    for power in (be.power, cc.power):
        assert power is not None and power["design"]["n_sim"] == 5
        assert set(power["power"]) == {"lambda_inf_minus_delta", "lambda_inf_plus_delta", "min"}


def test_a_prediction_sealed_before_the_tests_were_absolute_reads_as_undefined() -> None:
    cfg = Config(power_simulations=5)
    meas = _measurement(0.99979, 0.512, {"two_class": [1.19, 1.19]}, [1.08, 1.08])
    plan = make_plan(cfg, meas, design_grid({"two_class": (1.19, 1.19)}, cfg.n_grid))
    old = plan.to_dict()
    for key in ("lambda_T", "lambda_2T", "lambda_inf", "nulls", "power"):
        del old["budget_extension"][key]
    for key in ("lambda_T", "lambda_T_new", "lambda_inf", "lambda_inf_new", "nulls", "power"):
        del old["clip_cross"][key]
    back = Plan.from_dict({"measurement": meas.to_dict(), **old})
    assert not back.budget_extension.defined and back.budget_extension.nulls == {}
    assert math.isnan(back.clip_cross.lambda_T_new) and back.clip_cross.power is None


def test_planned_runs_cover_every_test_longest_first() -> None:
    cfg = Config(schedule=True, opd_steps=10, power_simulations=5)
    meas = _measurement(0.99979, 0.512, {"two_class": [1.19, 1.19], "by_token": [1.126, 1.15]},
                        [1.3, 1.3])
    grid = design_grid({"two_class": (1.19, 1.19), "by_token": (1.126, 1.15)}, cfg.n_grid)
    plan = make_plan(cfg, meas, grid)
    jobs = planned_runs(cfg, plan, [0, 1])
    by_kind = {kind: [j for j in jobs if j.kind == kind]
               for kind in ("main", "clip", "control", "schedule")}
    assert [j.kind for j in jobs] == [k for k, js in by_kind.items() for _ in js]
    assert len(by_kind["main"]) == 2 * len(plan.lambdas)
    assert all(j.steps == 20 and j.eval_at == (10,) and j.c == cfg.c for j in by_kind["main"])
    assert {j.lam for j in by_kind["clip"]} == set(plan.clip_cross.lambdas)
    assert all(j.c == cfg.c_new and j.steps == 10 for j in by_kind["clip"])
    assert [j.lam for j in by_kind["control"][::2]] == list(plan.control.lambdas)
    assert all(j.scheduled and j.lam == plan.lambdas[-1] for j in by_kind["schedule"])
    assert plan.to_dict()["schedule"]["pass_mark"] == SchedulePlan.PASS_MARK
