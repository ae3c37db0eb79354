"""The ladder's design: rungs three steps past the largest window, the refusals, the
round trip through the sealed dict, and the runs of each stage."""

from __future__ import annotations

import math

import pytest

from validate.llm_check.ladder.design import LadderDesign, design_ladder, ladder_rungs

BUDGETS = (60, 120, 240)
SEEDS = (0, 1, 2)


def _design(**kw: object) -> LadderDesign:
    args: dict = {"windows": {"two_class": (1.1, 1.3), "by_token": (1.0, 1.2)}, "n_rungs": 6,
                  "budgets": BUDGETS, "seeds": SEEDS, "c": 5.0, "c_low": 0.2,
                  "control_c": 1e6, "control_rungs": 3, "lr": 0.1, "delta": 0.5}
    args.update(kw)
    return design_ladder(**args)


@pytest.mark.parametrize(("window", "n", "want"), [
    (1.6, 6, [1.0, 1.2, 1.4, 1.6, 1.8, 2.0, 2.2]),  # h = 0.6 / 3
    (2.0, 4, [1.0, 2.0, 3.0, 4.0, 5.0]),  # h = 1 / 1
    (1.5, 8, [1.0, 1.1, 1.2, 1.3, 1.4, 1.5, 1.6, 1.7, 1.8]),  # h = 0.5 / 5
])
def test_rungs_end_three_steps_past_the_window(window: float, n: int, want: list) -> None:
    got = ladder_rungs(window, n)
    assert got == pytest.approx(want, abs=1e-12)
    assert got[-4] == pytest.approx(window) and len(got) == n + 1


def test_a_narrow_window_takes_the_least_step() -> None:
    got = ladder_rungs(1.001, 5, min_step=0.01)
    assert got == pytest.approx([1.0, 1.01, 1.02, 1.03, 1.04, 1.05])


@pytest.mark.parametrize("n", [3, 0, 4.5])
def test_rungs_refuse_fewer_than_four(n: float) -> None:
    with pytest.raises(ValueError, match=r"n must be an integer >= 4"):
        ladder_rungs(1.5, n)


@pytest.mark.parametrize("window", [1.0, 0.5, math.inf, math.nan])
def test_rungs_refuse_a_window_not_above_one_or_infinite(window: float) -> None:
    with pytest.raises(ValueError, match=r"largest_window must be finite and > 1"):
        ladder_rungs(window, 6)


def test_the_design_is_placed_around_the_largest_finite_window() -> None:
    d = _design(windows={"a": (1.1, 1.3), "b": (1.0, 1.6), "never": (math.inf, math.inf)})
    assert d.largest_window == 1.6 and d.lambdas[-4] == pytest.approx(1.6)
    assert d.step == pytest.approx(0.2) and d.control_lambdas == (1.0, *d.lambdas[-3:])


def test_no_finite_window_is_refused() -> None:
    with pytest.raises(ValueError, match=r"windows: no finite predicted window"):
        _design(windows={"two_class": (math.inf, math.inf)})


@pytest.mark.parametrize("budgets", [(60,), (120, 60), (0, 60), (60, 60, 120), ()])
def test_bad_budgets_are_refused(budgets: tuple) -> None:
    with pytest.raises(ValueError, match=r"budgets must be increasing integers >= 1"):
        _design(budgets=budgets)


@pytest.mark.parametrize("control_rungs", [-1, 7, 1.5])
def test_bad_control_rungs_are_refused(control_rungs: float) -> None:
    with pytest.raises(ValueError, match=r"control_rungs must be an integer in \[0, n_rungs\]"):
        _design(control_rungs=control_rungs)


def test_no_control_rungs_leaves_the_control_at_lambda_one() -> None:
    assert _design(control_rungs=0).control_lambdas == (1.0,)


def test_the_design_round_trips_through_its_dict() -> None:
    d = _design()
    sealed = d.to_dict()
    assert sealed["rule"] == LadderDesign.RULE
    assert LadderDesign.from_dict(sealed) == d


def test_calibration_is_the_lambda_one_run_of_every_seed() -> None:
    d = _design()
    jobs = d.jobs("calibration")
    assert sorted(j.seed for j in jobs) == list(SEEDS)
    for j in jobs:
        assert (j.kind, j.lam, j.c, j.c_low) == ("ladder", 1.0, 5.0, 0.2)
        assert (j.steps, j.eval_at) == (240, (60, 120))


def test_the_sweep_is_every_other_rung_and_seed_then_the_control() -> None:
    d = _design()
    jobs = d.jobs("sweep")
    ladder = [(j.lam, j.seed) for j in jobs if j.kind == "ladder"]
    assert sorted(ladder) == sorted((x, s) for x in d.lambdas[1:] for s in SEEDS)
    control = [j for j in jobs if j.kind == "ladder_control"]
    assert [j.lam for j in control] == list(d.control_lambdas)
    assert len(jobs) == len(ladder) + len(control)
    for j in control:
        assert (j.seed, j.c, j.c_low) == (SEEDS[0], 1e6, pytest.approx(1e-6))
    assert all((j.steps, j.eval_at) == (240, (60, 120)) for j in jobs)
    assert jobs[-len(control):] == control


def test_an_unknown_stage_is_refused() -> None:
    with pytest.raises(ValueError, match=r"stage must be 'calibration' or 'sweep'"):
        _design().jobs("control")
