"""The power check of tests (b) and (c) (validate.llm_check.absolute_power): its worlds are
what it says, and the tests it simulates can fail (and, where nulls predict the same, cannot
award a HIT)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from validate.llm_check.absolute_power import (
    PowerDesign,
    absolute_test_power,
    parse_curves,
)
from validate.llm_check.onset import onset
from validate.llm_check.preregistered_tests import OnsetTestConfig, budget_nulls, clip_nulls

GRID = [1.0, *np.round(np.linspace(1.1, 1.45, 11), 4)]
CFG = OnsetTestConfig()


def test_the_ramp_crosses_half_its_rate_at_the_onset() -> None:
    onsets = np.array([1.2, 1.333, 1.41, math.inf])
    rates = parse_curves(GRID, onsets, 0.9, 0.25)
    found = onset(np.asarray(GRID), rates, 0.5)
    np.testing.assert_allclose(found, onsets, atol=1e-12)
    assert np.all(rates[-1] == 0.9)


def test_a_right_prediction_is_rarely_missed_and_a_wrong_asymptote_is_caught() -> None:
    nulls = budget_nulls({"1": 1.0, "grid_end": GRID[-1]})
    pw = absolute_test_power("budget", (GRID, GRID), (1.30, 1.25), (1.19, 1.19), nulls, 3, 512, CFG,
                             PowerDesign(n_sim=40), 0)
    assert pw.worlds["lambda_inf_plus_delta"] == pytest.approx((1.40, 1.35))
    assert pw.shares["as_predicted"]["MISS"] <= 0.15
    assert pw.power["min"] >= 0.8
    # delta = 0: the "wrong" worlds are the right one, and the test rejects them as rarely
    same = absolute_test_power("budget", (GRID, GRID), (1.30, 1.25), (1.19, 1.19), nulls, 3,
                               512, CFG, PowerDesign(delta=0.0, n_sim=40), 1)
    assert same.power["min"] <= 0.15


def test_a_wrong_asymptote_within_half_a_grid_step_is_not_caught() -> None:
    # the verdict allows half a grid step (0.0175 here): an asymptote 0.005 off is not a MISS
    nulls = budget_nulls({"1": 1.0})
    pw = absolute_test_power("budget", (GRID, GRID), (1.30, 1.25), (1.19, 1.19), nulls, 3, 512, CFG,
                             PowerDesign(delta=0.005, seed_sd=0.0, n_sim=20), 2)
    assert pw.power["min"] < 0.5


def test_no_onset_predicted_can_be_refuted_but_never_counted_as_a_hit() -> None:
    grid_new = [1.0, *np.round(np.linspace(1.02, 1.3, 8), 4)]
    pw = absolute_test_power("clip", (GRID, grid_new), (math.inf, math.inf), (1.19, 1.08),
                             clip_nulls(5.0, 2.0), 3, 512, CFG, PowerDesign(n_sim=20), 3)
    assert pw.worlds["lambda_inf_minus_delta"] == pytest.approx((1.1, 1.02))  # on the grids
    assert pw.own_hit_share["as_predicted"] == 1.0  # right: no onset anywhere
    assert pw.shares["as_predicted"]["HIT"] == 0.0  # and so says "no shift"
    assert pw.power["min"] >= 0.8


@pytest.mark.parametrize("kwargs, match", [
    ({"delta": -0.1}, "delta must be finite and >= 0"),
    ({"r1": 0.0}, "r1 must be in"),
    ({"n_boot": 50}, "n_boot must be >= 100"),
])
def test_power_design_refuses_bad_input(kwargs: dict[str, float], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        PowerDesign(**kwargs)  # type: ignore[arg-type]


def test_power_refuses_an_infinite_asymptote_and_an_unknown_test() -> None:
    with pytest.raises(ValueError, match="lambda_inf must be finite"):
        absolute_test_power("budget", (GRID, GRID), (1.3, 1.2), (1.2, math.inf), {}, 3, 512, CFG,
                            PowerDesign(n_sim=1), 0)
    with pytest.raises(ValueError, match="kind must be"):
        absolute_test_power("shift", (GRID, GRID), (1.3, 1.2), (1.2, 1.2), {}, 3, 512,  # type: ignore[arg-type]
                            CFG, PowerDesign(n_sim=1), 0)
