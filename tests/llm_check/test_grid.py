"""The designed lambda grid: brackets every predicted window and respects the step rule."""

from __future__ import annotations

import doctest
import json
import math

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from cliff.internal import jsonable
from validate.llm_check import grid
from validate.llm_check.grid import GridDesign, design_grid
from validate.llm_check.verdict_rules import local_step


def test_docstring_examples() -> None:
    result = doctest.testmod(grid)
    assert result.failed == 0 and result.attempted > 0


@st.composite
def two_windows(draw: st.DrawFn) -> dict[str, tuple[float, float]]:
    """A two-class window (often a near-point) and a by-token window, both in [1, 4]."""
    a = draw(st.floats(1.0, 3.5))
    aw = draw(st.one_of(st.just(0.0), st.floats(0.0, 0.05), st.floats(0.0, 0.5)))
    b = draw(st.floats(1.0, 3.5))
    bw = draw(st.one_of(st.just(0.0), st.floats(0.0, 0.05), st.floats(0.0, 0.5)))
    return {"two_class": (a, a + aw), "by_token": (b, b + bw)}


def _required(windows: dict[str, tuple[float, float]]) -> int:
    lo = min(w[0] for w in windows.values())
    hi = max(w[1] for w in windows.values())
    mids = [0.5 * sum(w) for w in windows.values()]
    d = abs(mids[0] - mids[1])
    return 8 if d < 0.02 else max(8, 3 + math.ceil(2 * (hi - lo) / d / (1 + 1e-9)))


@given(two_windows(), st.integers(0, 6))
def test_grid_brackets_both_windows_and_respects_the_step_rule(
        windows: dict[str, tuple[float, float]], extra: int) -> None:
    n = _required(windows) + extra
    assume(n <= 400)
    g = design_grid(windows, n)
    lam = np.asarray(g.lambdas)
    assert lam[0] == 1.0 and lam.size == n + 1
    assert np.all(np.diff(lam) > 0) and lam[1] >= 1.0 + 0.01 - 1e-12 and lam[-1] <= 6.0 + 1e-12
    for lo, hi in windows.values():
        assert lam[lam <= lo + 1e-12].size >= 1  # a grid point at or below the window
        assert lam[lam >= hi - 1e-12].size >= 1  # and one at or above it
    assert g.step == pytest.approx(local_step(lam, g.hull))
    if g.separable:
        assert g.step <= 0.5 * g.distance * (1 + 1e-9)
    else:  # only when the predictors are closer than twice the resolution floor
        assert 0.5 * g.distance < 0.01
        assert g.step <= max(0.01, (g.hull[1] - g.hull[0]) / (n - 3)) * (1 + 1e-9)


def test_too_few_points_names_the_smallest_count_that_works() -> None:
    windows = {"two_class": (1.1, 1.5), "by_token": (1.35, 1.45)}  # d = 0.1, hull 0.4
    with pytest.raises(ValueError, match=r"n_points must be >= 11") as err:
        design_grid(windows, 8)
    assert "half the distance between the predictors" in str(err.value)
    g = design_grid(windows, 11)
    assert g.separable and g.step <= 0.05 + 1e-12


def test_coinciding_predictors_get_a_floor_resolution_grid() -> None:
    g = design_grid({"two_class": (1.2, 1.2), "by_token": (1.2, 1.2)}, 8, min_step=0.01)
    assert not g.separable and g.distance == 0.0
    np.testing.assert_allclose(np.diff(g.lambdas[1:]), 0.01)
    assert g.lambdas[1] < 1.2 < g.lambdas[-1]
    assert np.mean(g.lambdas[1:]) == pytest.approx(1.2)  # centred on the prediction
    # same midpoint, wide windows: the hull sets the step, still not separable
    g = design_grid({"two_class": (1.1, 1.3), "by_token": (1.15, 1.25)}, 8)
    assert not g.separable and g.step == pytest.approx(0.2 / 5)


def test_real_model_windows() -> None:
    # the seed-1 softening windows of the earlier run: far apart, both bracketed
    g = design_grid({"two_class": (1.524, 1.554), "by_token": (1.122, 1.144)})
    assert g.separable and g.lambdas[1] <= 1.122 and g.lambdas[-1] >= 1.554
    assert g.step == pytest.approx((1.554 - 1.122) / 5)


def test_bounds() -> None:
    # a window starting at 1: lambda = 1 brackets it from below, the grid starts at lower
    g = design_grid({"a": (1.0, 1.02), "b": (1.05, 1.06)}, 8)
    assert g.lambdas[1] == pytest.approx(1.01) and g.separable
    # a window near the upper bound: the grid is moved down, not cut
    g = design_grid({"a": (5.9, 5.95), "b": (5.5, 5.6)}, 8, upper=6.0)
    assert g.lambdas[-1] <= 6.0 and g.lambdas[1] <= 5.5
    with pytest.raises(ValueError, match=r"windows\['a'\] must lie in \[1, upper = 6.0\]"):
        design_grid({"a": (5.9, 6.5), "b": (5.5, 5.6)}, 8)
    with pytest.raises(ValueError, match="n_points must be an integer >= 8, got 7"):
        design_grid({"a": (1.2, 1.3)}, 7)
    with pytest.raises(ValueError, match="must be finite"):
        design_grid({"a": (1.2, math.inf)}, 8)
    with pytest.raises(ValueError, match="need 1 < lower < upper"):
        design_grid({"a": (1.2, 1.3)}, 8, lower=1.0)


def test_one_window() -> None:
    g = design_grid({"two_class": (1.3, 1.4)}, 8)
    assert g.distance == math.inf and g.separable
    assert g.step == pytest.approx(0.1 / 5)
    assert g.to_dict()["lambdas"][0] == 1.0


@given(two_windows(), st.integers(1, 5))
def test_points_beyond_extend_the_grid_without_changing_it(
        windows: dict[str, tuple[float, float]], beyond: int) -> None:
    # The designed grid is a prefix of the extended one, the step at the windows is the same,
    # and the extension doubles the last point's distance from 1 in `beyond` geometric steps
    # (none past `upper`).
    n = _required(windows)
    assume(n <= 400)
    base = design_grid(windows, n, upper=6.0)
    ext = design_grid(windows, n, upper=6.0, beyond=beyond)
    k = len(base.lambdas)
    assert ext.lambdas[:k] == base.lambdas and ext.step == base.step
    far = np.array(ext.lambdas[k - 1:]) - 1.0
    assert np.all(np.diff(far) > 0) and len(far) - 1 <= beyond
    assert np.allclose(far[1:] / far[:-1], 2.0 ** (1.0 / beyond))
    last = base.lambdas[-1]
    assert (len(far) - 1 == beyond) == (1.0 + 2.0 * (last - 1.0) <= 6.0 * (1 + 1e-12))


def test_beyond_must_be_a_count() -> None:
    with pytest.raises(ValueError, match="beyond must be an integer >= 0"):
        design_grid({"a": (1.2, 1.3)}, 8, beyond=-1)


def test_the_design_reads_back_from_its_json() -> None:
    # one window: the distance is inf, written as the string "inf"
    for windows in ({"two_class": (1.19, 1.19), "by_token": (1.126, 1.150)},
                    {"two_class": (1.3, 1.4)}):
        g = design_grid(windows, beyond=3)
        text = json.dumps(jsonable(g.to_dict()))
        assert GridDesign.from_dict(json.loads(text)) == g
