"""cliff.solve against brute-force searches on the definitions (tests/_reference.py)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cliff
from tests import _reference as ref
from tests.strategies import point

BATCH = 50


def _arrays(points: list[tuple[float, float, float, float]]) -> tuple[np.ndarray, ...]:
    return tuple(np.array(col) for col in zip(*points, strict=True))


@settings(max_examples=20)
@given(st.lists(point(), min_size=BATCH, max_size=BATCH))
def test_thresholds_match_brute_force(points: list[tuple[float, float, float, float]]) -> None:
    """20 batches x 50 = 1000 points.  lambda* - 1 and lambda_collapse - 1 (stricter than
    lambda itself) agree with bisection on the definitions to 1e-6 relative; the brute force
    resolves log(lambda - 1) to 80/2^90."""
    p, b, c, c_low = _arrays(points)
    r = cliff.solve(p, b, c, c_low=c_low)
    np.testing.assert_allclose(r.lambda_star - 1, ref.lambda_star_excess(p, b, c, c_low),
                               rtol=1e-6)
    np.testing.assert_allclose(r.lambda_collapse - 1,
                               ref.lambda_collapse_excess(p, b, c, c_low), rtol=1e-6)


@settings(max_examples=10)
@given(st.lists(point(), min_size=BATCH, max_size=BATCH))
def test_regime_and_binding_match_definitions(points: list) -> None:
    """Regime from the sign of p - b; binding = the class whose own ratio leaves
    [c_low, c] first (separate brute-force exits per class; near-ties within 1e-6 skipped)."""
    p, b, c, c_low = _arrays(points)
    r = cliff.solve(p, b, c, c_low=c_low)
    np.testing.assert_array_equal(r.regime, np.where(p > b, "sharpening", "softening"))
    exit_m = ref.lambda_star_excess(p, b, c, c_low, classes="M")
    exit_t = ref.lambda_star_excess(p, b, c, c_low, classes="T")
    clear = np.abs(exit_m - exit_t) > 1e-6 * np.minimum(exit_m, exit_t)
    assert clear.mean() > 0.5
    np.testing.assert_array_equal(r.binding[clear],
                                  np.where(exit_t < exit_m, "tail", "mode")[clear])


@pytest.mark.parametrize(
    ("p", "b", "c", "c_low"),
    [
        (1 - 1e-12, 0.5, 5.0, None), (1e-12, 0.5, 5.0, None), (0.5, 1 - 1e-12, 5.0, None),
        (0.5, 1e-12, 5.0, None), (1 - 1e-12, 1 - 1e-10, 5.0, 0.0),
        (0.999, 0.9, 1 + 1e-6, None), (0.999, 0.9, 1e6, None), (0.3, 0.9, 2.0, 0.0),
        (1 - 1e-12, 0.5, 1 + 1e-6, 0.0), (1e-12, 1 - 1e-12, 1e6, 0.0),
    ],
)
def test_extremes_are_finite_and_correct(p: float, b: float, c: float,
                                         c_low: float | None) -> None:
    """Extremes stay finite and agree with the brute force (1e-6 on lambda - 1)."""
    r = cliff.solve(p, b, c, c_low=c_low)
    cl = 1 / c if c_low is None else c_low
    args = [np.array([v]) for v in (p, b, c, cl)]
    assert np.isfinite(r.lambda_star) and np.isfinite(r.lambda_collapse)
    assert r.lambda_star - 1 == pytest.approx(ref.lambda_star_excess(*args)[0], rel=1e-6)
    assert r.lambda_collapse - 1 == pytest.approx(ref.lambda_collapse_excess(*args)[0],
                                                  rel=1e-6)


def test_constant_and_varying_inputs_mix_in_every_branch() -> None:
    """A scalar p against arrays of b, c, c_low hits the rare branches (growing class's
    floor binds; q < c_low) and agrees point by point with scalar calls."""
    b = np.array([0.5, 0.999, 0.9999, 0.2])
    c = np.array([5.0, 2.0, 1.5, 3.0])
    c_low = np.array([0.2, 0.9, 0.95, 0.0])
    for p in (0.99, 0.3):
        r = cliff.solve(p, b, c, c_low=c_low)
        for i in range(b.size):
            s = cliff.solve(p, b[i], c[i], c_low=c_low[i])
            assert (r.lambda_star[i], r.lambda_collapse[i], r.binding[i]) == (
                s.lambda_star, s.lambda_collapse, s.binding)
    assert set(cliff.solve(0.3, b, c, c_low=c_low).binding) >= {"mode", "tail"}
    # constant p, c, c_low with one regime throughout: the rare branch on every point
    b = np.array([0.5, 0.9, 0.99])
    r = cliff.solve(0.3, b, 2.0, c_low=0.9)
    want = [cliff.solve(0.3, v, 2.0, c_low=0.9).lambda_star for v in b]
    np.testing.assert_array_equal(r.lambda_star, want)


def test_neutral_regime_is_infinite() -> None:
    r = cliff.solve(0.9, 0.9, 5.0)
    assert (r.regime, r.binding, r.lambda_star, r.lambda_collapse) == (
        "neutral", "none", np.inf, np.inf)


def test_broadcasting_and_scalar_types() -> None:
    r = cliff.solve(np.array([[0.99], [0.9]]), np.array([0.5, 0.6, 0.7]), 5.0)
    assert r.lambda_star.shape == (2, 3) and r.regime.shape == (2, 3)
    s = cliff.solve(0.99, 0.5, 5.0)
    assert type(s.lambda_star) is float and type(s.regime) is str
    np.testing.assert_array_equal(r.lambda_star[0], [cliff.solve(0.99, v, 5.0).lambda_star
                                                     for v in (0.5, 0.6, 0.7)])


def test_region_contains_teacher_and_matches_ratio_definition() -> None:
    p = np.array([0.2, 0.9, 0.999])
    lo, hi = cliff.clip_safe_region(p, 5.0)
    assert np.all((lo < p) & (p < hi))
    for edge in (lo, hi):  # at an edge some ratio sits on the clip
        ratios = np.stack([p / edge, (1 - p) / (1 - edge)])
        on_clip = np.isclose(ratios, 5.0, rtol=1e-9) | np.isclose(ratios, 0.2, rtol=1e-9)
        assert on_clip.any(axis=0).all()


def test_fixed_points_agree_with_definition() -> None:
    p, b = np.array([0.99, 0.3]), np.array([0.5, 0.7])
    lam = np.array([1.7, 2.3])
    theta = ref.unclipped_fixed_point(p, b, lam)
    np.testing.assert_allclose(cliff.fixed_point(p, b, lam), 1 / (1 + np.exp(-theta)),
                               rtol=1e-12)
    np.testing.assert_allclose(cliff.fixed_point(p, b, lam, complement=True),
                               1 / (1 + np.exp(theta)), rtol=1e-12)


@settings(max_examples=10)
@given(st.lists(point(), min_size=BATCH, max_size=BATCH), st.floats(0.0, 0.9))
def test_clipped_fixed_point_is_a_zero_of_the_clipped_drift(points: list, frac: float) -> None:
    """Between lambda* and lambda_collapse the returned m zeroes the clipped drift: scaling
    the smaller of (m, 1 - m) by 1 -+ 1e-5 puts the drift (in 50-digit arithmetic) on either
    side of zero.  Near lambda_collapse the minority mass is ~ (lambda_collapse - lambda) D,
    so float lambda fixes it only to ~1e-16 / that; points with (lambda_collapse - lambda) D
    < 1e-9 (relative error possibly > 1e-7) are skipped."""
    p, b, c, c_low = _arrays(points)
    r = cliff.solve(p, b, c, c_low=c_low)
    lam = r.lambda_star + frac * (r.lambda_collapse - r.lambda_star)
    rate = np.abs(np.log(p / (1 - p)) - np.log(b / (1 - b)))
    ok = (r.lambda_collapse - lam) * rate > 1e-9
    assert ok.mean() > 0.3
    p, b, c, c_low, lam = p[ok], b[ok], c[ok], c_low[ok], lam[ok]
    m = cliff.clipped_fixed_point(p, b, c, lam, c_low=c_low)
    tail = cliff.clipped_fixed_point(p, b, c, lam, c_low=c_low, complement=True)
    np.testing.assert_allclose(m + tail, 1.0, rtol=1e-12)
    for args in zip(m, tail, p, b, c, c_low, lam, strict=True):
        mi, ti, *rest = (float(v) for v in args)
        g_below = ref.drift_at_masses(*_shift(mi, ti, -1e-5), *rest)
        g_above = ref.drift_at_masses(*_shift(mi, ti, +1e-5), *rest)
        assert g_below > 0 > g_above, (mi, ti, rest, g_below, g_above)


def _shift(mode: float, tail: float, eps: float) -> tuple[float, float]:
    """Move the modal mass by a relative ``eps`` of whichever mass is smaller."""
    if mode < tail:
        return mode * (1 + eps), 1.0
    return 1.0, tail * (1 - eps)
