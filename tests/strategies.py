"""Hypothesis strategies for the model's parameters, covering the extremes on purpose."""

from __future__ import annotations

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
