"""Hypothesis strategies for the model's parameters, covering the extremes on purpose."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st


def probability() -> st.SearchStrategy[float]:
    """p in (0, 1): uniform, near-deterministic (1 - 10^-k) and near-zero (10^-k), k <= 12."""
    uniform = st.floats(0.001, 0.999)
    near_one = st.floats(1.0, 12.0).map(lambda k: 1.0 - 10.0 ** -k)
    near_zero = st.floats(1.0, 12.0).map(lambda k: 10.0 ** -k)
    return st.one_of(uniform, near_one, near_zero).filter(lambda v: 0.0 < v < 1.0)


def cap() -> st.SearchStrategy[float]:
    """c in (1, 1e6]: 1 + 10^k for k in [-6, 6]."""
    return st.floats(-6.0, 6.0).map(lambda k: 1.0 + 10.0 ** k)


@st.composite
def point(draw: st.DrawFn) -> tuple[float, float, float, float]:
    """(p, b, c, c_low) with p, b apart (|logit gap| > 1e-3) and c_low in {0, 1/c, other}."""
    p = draw(probability())
    b = draw(probability().filter(lambda v: abs(v - p) > 1e-3 * min(v, p, 1 - v, 1 - p)))
    c = draw(cap())
    c_low = draw(st.one_of(st.just(0.0), st.just(1.0 / c), st.floats(0.0, 0.999)))
    return p, b, c, c_low


# --- the whole float64 domain --------------------------------------------------------------
TINY = 5e-324  # smallest subnormal
ONE_MINUS = float(np.nextafter(1.0, 0.0))  # largest float below 1
C_MAX = float(np.finfo(np.float64).max)


def _steps(x: float, k: int, toward: float) -> float:
    """``x`` moved ``k`` floats toward ``toward``."""
    for _ in range(k):
        x = float(np.nextafter(x, toward))
    return x


def mass() -> st.SearchStrategy[float]:
    """A probability anywhere in (0, 1): subnormal up to one ulp below 1, log-uniform near
    both ends, uniform in the middle, and the extreme floats themselves."""
    low = st.floats(-323.3, -1e-9).map(lambda k: 10.0 ** k)
    high = st.floats(-15.9, -1e-9).map(lambda k: 1.0 - 10.0 ** k)
    ulps = st.integers(1, 64).map(lambda k: _steps(1.0, k, 0.0))
    native = st.floats(0.0, 1.0, exclude_min=True, exclude_max=True)  # hypothesis's own edges
    edges = st.sampled_from([TINY, 1e-320, 2.2250738585072014e-308, 0.5, ONE_MINUS])
    return st.one_of(low, high, ulps, native, st.floats(0.0, 1.0), edges).filter(
        lambda v: 0.0 < v < 1.0)


def cap_any() -> st.SearchStrategy[float]:
    """c in (1, float max]: 1 + 10^k for k in [-9, 0], log-uniform to 1e300, a few ulps
    above 1, and the float maximum."""
    near_one = st.floats(-9.0, 0.0).map(lambda k: 1.0 + 10.0 ** k)
    ulps = st.integers(1, 1000).map(lambda k: 1.0 + k * 2.0 ** -52)
    wide = st.floats(1e-9, 300.0).map(lambda k: 10.0 ** k)
    edges = st.sampled_from([5.0, 1.7e308, C_MAX])
    return st.one_of(near_one, ulps, wide, edges).filter(lambda v: 1.0 < v < np.inf)


def _near(draw: st.DrawFn, x: float) -> float:
    """``x`` moved by a few ulps or a relative 10^-k, either way."""
    if draw(st.booleans()):
        return _steps(x, draw(st.integers(1, 8)), draw(st.sampled_from([0.0, 2.0])))
    return x * (1.0 + draw(st.sampled_from([-1.0, 1.0])) * 10.0 ** -draw(st.floats(1.0, 15.0)))


@st.composite
def domain_point(draw: st.DrawFn) -> tuple[float, float, float, float | None]:
    """``(p, b, c, c_low)`` anywhere in the float64 domain; ``c_low=None`` is the default.

    b is independent of p, a few ulps from it, relatively near it, or near it in the
    complement; p may equal b (neutral).  c_low is the default, 0, the float ``1/c``,
    anywhere in [0, 1), near 1, subnormal, or near one of its two switches: where the
    growing class's floor starts to bind first (``c_low = c q / (c - 1 + q)``) and where the
    collapse headroom changes form (``c_low = q``); with the default floor p may sit near
    ``q = 1/(c + 1)`` or ``q = 1/c``, the same two switches.
    """
    c = draw(cap_any())
    kind = draw(st.sampled_from(["free", "free", "floor switch", "default switch"]))
    if kind == "default switch":
        q = _near(draw, draw(st.sampled_from([1.0 / (c + 1.0), 1.0 / c])))
        if not 0.0 < q < 1.0:
            q = 0.5
        softening = draw(st.booleans()) and q > 2.0 ** -53
        p = 1.0 - q if softening else q
    else:
        p = draw(mass())
    how = draw(st.sampled_from(["free", "ulps", "relative", "complement", "equal"]))
    if how == "ulps":
        b = _steps(p, draw(st.integers(1, 8)), draw(st.sampled_from([0.0, 1.0])))
    elif how == "relative":
        b = _near(draw, p)
    elif how == "complement":
        b = 1.0 - _near(draw, 1.0 - p)
    elif how == "equal":
        b = p
    else:
        b = draw(mass())
    if not 0.0 < b < 1.0:
        b = draw(mass())
    if kind == "default switch":
        return p, b, c, None
    q = p if p > b else 1.0 - p
    choices = ["default", "zero", "inverse", "free", "near one", "subnormal"]
    if kind == "floor switch":
        choices = ["cap vs floor", "q"]
    which = draw(st.sampled_from(choices))
    c_low: float | None
    if which == "default":
        c_low = None
    elif which == "zero":
        c_low = 0.0
    elif which == "inverse":
        c_low = 1.0 / c
    elif which == "near one":
        c_low = 1.0 - 10.0 ** -draw(st.floats(1.0, 16.0))
    elif which == "subnormal":
        c_low = draw(st.floats(TINY, 1e-300))
    elif which == "cap vs floor":
        c_low = _near(draw, c * q / (c - 1.0 + q))
    elif which == "q":
        c_low = _near(draw, q)
    else:
        c_low = draw(st.floats(0.0, 1.0, exclude_max=True))
    if c_low is not None and not 0.0 <= c_low < 1.0:
        c_low = 0.0
    return p, b, c, c_low
