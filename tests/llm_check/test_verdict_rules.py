"""The verdict rules of the pre-registered tests (validate.llm_check.verdict_rules): windows
against intervals, predictions against rivals, null predictors and the direction check."""

from __future__ import annotations

import doctest
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from validate.llm_check import verdict_rules
from validate.llm_check.verdict_rules import (
    DirectionPrediction,
    Verdict,
    counted,
    direction_check,
    local_step,
    null_windows,
    window_verdict,
)


def test_docstring_examples() -> None:
    result = doctest.testmod(verdict_rules, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0


# --- verdict rules ------------------------------------------------------------------------------
@pytest.mark.parametrize("interval, window, widen, verdict", [
    ((1.13, 1.14), (1.126, 1.150), 0.0, Verdict.HIT),
    ((1.12, 1.14), (1.126, 1.150), 0.0, Verdict.INCONCLUSIVE),
    ((1.12, 1.14), (1.126, 1.150), 0.006, Verdict.HIT),  # widened by half a step
    ((1.16, 1.25), (1.126, 1.150), 0.025, Verdict.INCONCLUSIVE),  # overlaps up to 1.175
    ((1.18, 1.25), (1.126, 1.150), 0.025, Verdict.MISS),  # beyond 1.150 + 0.025
    ((1.20, math.inf), (1.126, 1.150), 0.025, Verdict.MISS),
    ((1.0, 1.1), (1.19, 1.19), 0.02, Verdict.MISS),
    ((1.17, 1.21), (1.19, 1.19), 0.02, Verdict.HIT),  # a point prediction, widened
    ((1.16, 1.21), (1.19, 1.19), 0.02, Verdict.INCONCLUSIVE),
])
def test_window_verdict_table(interval: tuple[float, float], window: tuple[float, float],
                              widen: float, verdict: Verdict) -> None:
    assert window_verdict(interval, window, widen) is verdict


_pair = st.tuples(st.floats(1.0, 2.0), st.floats(0.0, 0.5)).map(lambda t: (t[0], t[0] + t[1]))


@given(_pair, _pair, st.floats(0.0, 0.1), st.floats(0.0, 0.1))
def test_window_verdict_is_monotone_in_the_widening(interval: tuple[float, float],
                                                    window: tuple[float, float], d1: float,
                                                    d2: float) -> None:
    small, large = sorted((d1, d2))
    v_small, v_large = window_verdict(interval, window, small), window_verdict(interval,
                                                                               window, large)
    if v_small is Verdict.HIT:
        assert v_large is Verdict.HIT
    if v_large is Verdict.MISS:
        assert v_small is Verdict.MISS
    disjoint = interval[1] < window[0] - small or interval[0] > window[1] + small
    assert (v_small is Verdict.MISS) == disjoint


def test_local_step_and_nulls() -> None:
    lam = [1.0, 1.1, 1.2, 1.5]
    assert local_step(lam, (1.15, 1.25)) == pytest.approx(0.3)
    assert local_step(lam, (1.9, 2.0)) == pytest.approx(0.3)  # beyond the grid: last step
    assert local_step(lam, (0.5, 0.9)) == pytest.approx(0.1)
    assert null_windows(lam) == {"first_grid_point": (1.1, 1.1), "grid_midpoint": (1.25, 1.25)}
    with pytest.raises(ValueError, match="constant must be a finite lambda >= 1"):
        null_windows(lam, 0.5)
    with pytest.raises(ValueError, match="widen must be finite and >= 0"):
        window_verdict((1.1, 1.2), (1.1, 1.2), -0.1)
    with pytest.raises(ValueError, match="interval must be an interval"):
        window_verdict((1.3, 1.2), (1.1, 1.2), 0.0)


def test_direction_check() -> None:
    lam = [1.0, 1.1, 1.2, 1.3]
    up = DirectionPrediction("close", "up", True, past=1.15)
    mass = [[0.5, 0.6, 0.95, 0.99], [0.52, 0.6, 0.9, 0.97]]
    parse = [[0.9, 0.9, 0.2, 0.05], [0.8, 0.85, 0.3, 0.1]]
    r = direction_check(up, lam, mass, parse)
    assert r.happened and r.past_lambdas == (1.2, 1.3)
    assert r.mass_change == pytest.approx(np.mean([0.47, 0.415]))
    down = DirectionPrediction("close", "down", True, past=1.15)
    r = direction_check(down, lam, mass, parse)
    assert r.mass_as_predicted is False and r.parse_as_predicted is True and not r.happened
    flat = direction_check(DirectionPrediction("close", "up", False, past=1.15), lam, mass,
                           parse)
    assert flat.parse_as_predicted is False
    none_past = direction_check(DirectionPrediction("close", "up", True, past=1.3), lam, mass,
                                parse)
    assert none_past.happened is None
    # a mass that starts near 1 moves "up" by halving its tail, not by a fixed amount
    near_one = [[0.998, 0.998, 0.9995, 0.9992], [0.997, 0.997, 0.9985, 0.998]]
    r = direction_check(up, lam, near_one, parse)
    assert r.mass_change < up.min_change and r.mass_as_predicted is True
    assert r.shrink == pytest.approx(np.mean([0.25, 0.4, 0.5, 2 / 3]) - 1.0)
    r = direction_check(up, lam, [[0.998, 0.998, 0.9985, 0.9985]] * 2, parse)
    assert r.shrink == pytest.approx(-0.25) and r.mass_as_predicted is False
    with pytest.raises(ValueError, match="valid_mass must be 'up' or 'down'"):
        DirectionPrediction("close", "sideways", True, past=1.2)  # type: ignore[arg-type]


def test_counted_demotes_only_a_shared_hit() -> None:
    nulls = {"no_shift": Verdict.MISS, "log_c": Verdict.INCONCLUSIVE}
    assert counted(Verdict.HIT, nulls) is Verdict.HIT
    assert counted(Verdict.HIT, {**nulls, "log_c": Verdict.HIT}) is Verdict.INCONCLUSIVE
    for v in (Verdict.MISS, Verdict.INCONCLUSIVE, Verdict.VOID):
        assert counted(v, {"no_shift": Verdict.HIT}) is v
