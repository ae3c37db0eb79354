"""The clock: the step size recovered from lambda = 1 data simulated by the mean field (whose
Euler map is checked against a 50-digit iteration in tests/theory), the fit against a brute
force grid, the bound flag on data the mean field cannot reach, and the prediction's
losing class and onsets."""

from __future__ import annotations

import math

import numpy as np
import pytest

import cliff
from validate.llm_check.ladder.clock import (
    CLOCK_RULE,
    calibrate_lr,
    ladder_prediction,
    losing_class,
)

BUDGETS = (60, 120, 240)
SHARP = (0.9, 0.5, 5.0, None)  # p, b, c, c_low: the tail loses
SOFT = (0.3, 0.8, 2.0, 0.2)  # the valid mass loses


def _log_losing_at_1(point: tuple, eta: float | np.ndarray) -> np.ndarray:
    p, b, c, c_low = point
    path = cliff.mean_field_path(p, b, c, 1.0, BUDGETS, eta, c_low=c_low)
    return path.log_tail if p > b else path.log_modal


@pytest.mark.parametrize(("point", "eta", "losing"), [(SHARP, 0.02, "tail"),
                                                       (SOFT, 0.05, "valid")])
def test_a_known_step_size_is_recovered(point: tuple, eta: float, losing: str) -> None:
    fit = calibrate_lr(*point, BUDGETS, _log_losing_at_1(point, eta), losing=losing)
    assert fit.eta == pytest.approx(eta, rel=1e-5)
    assert fit.rms < 1e-6 and not fit.at_bound and fit.rule == CLOCK_RULE
    assert len(fit.residuals) == len(BUDGETS)


def test_the_fit_is_the_best_of_a_fine_brute_force_grid() -> None:
    noisy = _log_losing_at_1(SHARP, 0.03) + np.array([0.15, -0.2, 0.1])
    fit = calibrate_lr(*SHARP, BUDGETS, noisy, losing="tail", n_grid=5)
    etas = np.exp(np.linspace(math.log(fit.bracket[0]), math.log(fit.bracket[1]), 3000))
    losses = np.sum((_log_losing_at_1(SHARP, etas[:, None])[:, 0] - noisy) ** 2, axis=-1)
    assert losses.shape == etas.shape
    assert np.sum(np.square(fit.residuals)) <= losses.min() + 1e-9
    assert fit.rms > 0.05  # the noise cannot be fitted away


@pytest.mark.parametrize("log_mass", [np.log([1e-3, 1e-3, 1e-3]),  # below the teacher's tail
                                      np.log([0.9, 0.9, 0.9])])  # above the start
def test_data_the_mean_field_cannot_reach_is_flagged(log_mass: np.ndarray) -> None:
    fit = calibrate_lr(*SHARP, BUDGETS, log_mass, losing="tail")
    assert fit.at_bound
    end = fit.bracket[1] if log_mass[0] < math.log(0.1) else fit.bracket[0]
    assert fit.eta == pytest.approx(end, rel=2e-3)


def test_default_bracket_ends_at_the_monotone_step_size() -> None:
    fit = calibrate_lr(*SHARP, BUDGETS, _log_losing_at_1(SHARP, 0.02), losing="tail")
    assert fit.bracket == (1e-4, pytest.approx(float(cliff.max_monotone_lr(0.9, 0.5, 5.0, 1.0))))


@pytest.mark.parametrize(("kwargs", "words"), [
    ({"losing": "valid"}, "losing must be 'tail'"),
    ({"losing": "mode"}, "losing must be 'tail'"),
    ({"log_mass_at_1": [-1.0, -2.0]}, "log_mass_at_1 must be 3 finite log masses"),
    ({"log_mass_at_1": [-1.0, np.nan, -2.0]}, "log_mass_at_1 must be 3 finite"),
    ({"log_mass_at_1": [-1.0, 0.5, -2.0]}, "log_mass_at_1 must be 3 finite"),
    ({"eta_lo": 5.0}, "eta_lo and eta_hi must satisfy"),
    ({"n_grid": 2}, "n_grid must be an integer >= 3"),
    ({"budgets": (60,)}, "budgets must be a 1-D sequence of at least 2"),
    ({"p": 0.5}, "p and b must differ"),
    ({"p": [0.9, 0.8]}, "p must be a real scalar"),
    ({"c_low": [0.1, 0.2]}, "c_low must be a real scalar"),
    ({"c_low": 1.0}, "c_low must be in"),
])
def test_calibration_refusals(kwargs: dict, words: str) -> None:
    args = {"p": 0.9, "b": 0.5, "c": 5.0, "c_low": None, "budgets": BUDGETS,
            "log_mass_at_1": [-1.0, -1.5, -2.0], "losing": "tail"} | kwargs
    with pytest.raises(ValueError, match=words):
        calibrate_lr(**args)


def test_losing_class_follows_the_regime() -> None:
    assert losing_class(0.9, 0.5) == "tail" and losing_class(0.3, 0.8) == "valid"


RUNGS = (1.0, 1.5, 2.0, 3.0, 4.0, 5.0)
LADDER = (0.99, 0.9, 5.0, None)  # sharpening, lambda_collapse = 1.675


@pytest.mark.parametrize("point", [LADDER, (0.6, 0.9, 2.0, None)])
def test_prediction_follows_the_losing_class(point: tuple) -> None:
    p, b = point[:2]
    pred = ladder_prediction(*point, RUNGS, (240, 480, 960), 0.5, 0.5)
    start = math.log(1 - b) if p > b else math.log(b)
    assert pred.losing == ("tail" if p > b else "valid")
    assert pred.log_mass.shape == (6, 3) and np.all(pred.log_mass < start)
    assert np.all(np.diff(pred.log_mass, axis=1) <= 1e-12)  # it never grows back
    # the trend falls with lambda past the cliff: the runaway keeps the mass falling
    assert pred.trends[-1] < pred.trends[0] - 0.5
    assert pred.lambda_star <= pred.lambda_collapse < math.inf


def test_rung_and_fine_onsets_bracket_the_same_crossing() -> None:
    pred = ladder_prediction(*LADDER, RUNGS, (240, 480, 960), 1.0, 0.5, n_fine=401)
    assert 1.5 < pred.onset < 2.0 and 1.5 < pred.fine_onset < 2.0
    assert pred.fine_lambdas[0] == 1.0 and pred.fine_lambdas[-1] == RUNGS[-1]
    d = pred.fine_trends - pred.fine_trends[0]
    first = int(np.argmax(d < -0.5))
    assert pred.fine_lambdas[first - 1] <= pred.fine_onset <= pred.fine_lambdas[first]
    # the rung statistic on the fine grid is the fine onset
    as_rungs = ladder_prediction(*LADDER, pred.fine_lambdas, (240, 480, 960), 1.0, 0.5)
    assert as_rungs.onset == pytest.approx(pred.fine_onset, rel=1e-12)


@pytest.mark.parametrize(("kwargs", "words"), [
    ({"lambdas": (1.2, 1.5)}, r"lambdas\[0\] must be 1.0"),
    ({"delta": 0.0}, "delta must be finite and > 0"),
    ({"n_fine": 1}, "n_fine must be an integer >= 2"),
    ({"eta": 0.0}, "eta must be finite and > 0"),
    ({"eta": math.nan}, "eta must be finite and > 0"),
    ({"c": [5.0, 2.0]}, "c must be a real scalar"),
    ({"c": 1.0}, "c must be in"),
    ({"b": 0.99}, "p and b must differ"),
])
def test_prediction_refusals(kwargs: dict, words: str) -> None:
    args = {"p": 0.99, "b": 0.9, "c": 5.0, "c_low": None, "lambdas": RUNGS,
            "budgets": BUDGETS, "eta": 0.5, "delta": 0.5} | kwargs
    with pytest.raises(ValueError, match=words):
        ladder_prediction(**args)
