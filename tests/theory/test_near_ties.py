"""K-ary lambda* near a tie (t ~ r), on the softening and the sharpening side, at K = 2..6,
against a 60-digit evaluation of the definitions fed the very floats the solver got.

Near a tie lambda* - 1 ~ log c / spread(log t/r) is ill-conditioned in its *inputs*:
rounding ``1 - b`` to a float moves a log-ratio of 1e-11 by up to 1e-16 / 0.7, so a
distribution written ``[b, 1 - b]`` in float64 is another point than ``cliff.solve(p, b)``'s
``(b, 1 - b)`` with the complement exact.  The solver must be exact for the floats it is
given; the reference therefore normalises those floats in 60-digit arithmetic.
"""

from __future__ import annotations

import mpmath
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import cliff


def _root(f, decreasing: bool) -> mpmath.mpf:
    """The root in ``y > 0`` of a monotone ``f`` with ``f(0)`` on the far side, bisected."""
    sign = -1 if decreasing else 1
    lo, hi = mpmath.mpf(0), mpmath.mpf(1)
    while sign * f(hi) < 0:
        hi *= 2
        if hi > mpmath.mpf(10) ** 40:
            return mpmath.inf
    for _ in range(300):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if sign * f(mid) < 0 else (lo, mid)
    return (lo + hi) / 2


def lambda_star_reference(t: np.ndarray, r: np.ndarray, c: float) -> mpmath.mpf:
    """lambda* from the definitions: the unclipped fixed point ``pi(y) ~ t e^{y l}``,
    ``l = log t/r``, ``y = lambda - 1``, has ratios ``t_k / pi_k = Z(y) e^{-y l_k}``; it
    leaves the clip-safe region where the largest ratio reaches ``c`` or the smallest
    ``1/c``."""
    with mpmath.workdps(60):
        tt = [mpmath.mpf(float(x)) for x in t]
        rr = [mpmath.mpf(float(x)) for x in r]
        st_, sr = sum(tt), sum(rr)
        tt, rr = [x / st_ for x in tt], [x / sr for x in rr]
        ell = [mpmath.log(a) - mpmath.log(b) for a, b in zip(tt, rr, strict=True)]
        lo, hi = min(ell), max(ell)
        cm, clm = mpmath.mpf(float(c)), 1 / mpmath.mpf(float(c))

        def level(y, shift):  # log sum_k t_k e^{y shift_k}
            return mpmath.log(sum(a * mpmath.exp(y * d) for a, d in zip(tt, shift,
                                                                         strict=True)))

        def cap(y):
            return level(y, [e - lo for e in ell]) - mpmath.log(cm)

        def floor(y):
            return level(-y, [hi - e for e in ell]) - mpmath.log(clm)

        top = sum(a for a, e in zip(tt, ell, strict=True) if e == hi)
        y = min(_root(cap, False), _root(floor, True) if top < clm else mpmath.inf)
        return 1 + y


@st.composite
def near_tie(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, float]:
    k = draw(st.integers(2, 6))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    t = rng.dirichlet(np.ones(k))
    eps = 10.0 ** draw(st.floats(-13, -3))
    r = t * (1 + eps * rng.standard_normal(k))
    r /= r.sum()
    if draw(st.booleans()):  # either side of the tie: t or r the sharper one
        t, r = r, t
    return t, r, draw(st.sampled_from([1.5, 2.0, 5.0, 100.0]))


@settings(max_examples=150)
@given(near_tie())
def test_kary_near_a_tie_is_exact_for_its_inputs(point: tuple[np.ndarray, np.ndarray, float]
                                                  ) -> None:
    t, r, c = point
    got = cliff.solve_kary(t, r, c).lambda_star
    want = lambda_star_reference(t, r, c)
    assert want != mpmath.inf
    assert abs(mpmath.mpf(got) - want) <= 64 * 2.2e-16 * (want - 1) + 4 * 2.2e-16 * want


def test_the_softening_tie_of_the_report_is_exact_for_the_floats_given() -> None:
    """``[0.3 (1 + 1e-11), 1 - 0.3 (1 + 1e-11)]`` as floats: lambda* = 133297843910.895
    (60 digits: 133297843910.89530...), and cliff.solve's 133297103956.541 is the answer
    for the exact complement, another point."""
    b = 0.3 * (1 + 1e-11)
    got = cliff.solve_kary([0.3, 0.7], [b, 1 - b], 5.0).lambda_star
    want = lambda_star_reference(np.array([0.3, 0.7]), np.array([b, 1 - b]), 5.0)
    assert abs(mpmath.mpf(got) - want) <= 1e-12 * (want - 1)
    exact_complement = cliff.solve(0.3, b, 5.0).lambda_star
    assert abs(exact_complement - got) > 1e-6 * (got - 1)  # two points, both exact


def test_two_classes_agree_with_solve_where_the_complement_is_exact() -> None:
    """p, b >= 1/2: ``1 - p`` and ``1 - b`` are exact floats (Sterbenz), so the two
    solvers see one point and agree to 1e-12 in lambda* - 1, at every distance from the
    tie, on both sides."""
    for b in 0.75 * (1 + np.array([1e-12, 1e-9, 1e-6, -1e-12, -1e-9, -1e-6])):
        for p in (0.75, 0.5 + 2**-20):
            k = cliff.solve_kary([p, 1 - p], [b, 1 - b], 5.0).lambda_star
            s = cliff.solve(p, b, 5.0).lambda_star
            assert abs(k - s) <= 1e-12 * (s - 1), (p, b, k, s)
