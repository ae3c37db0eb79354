"""The finite-budget closed forms: lambdified == SymPy, derivations hold, predictions hold.

The budget-extension and clip cross-predictions are checked against the exact onset
(bisection on the T-step Euler map), never against their own formulas.
"""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
import sympy as sp
from hypothesis import event, given, settings
from hypothesis import strategies as st

from cliff import _budget
from cliff.symbolic import bernoulli as S
from cliff.symbolic import budget as B

_prob = st.floats(1e-6, 1 - 1e-6)
DOMAINS = {
    S.q: _prob, S.qbar: _prob, B.tau: _prob, B.taubar: _prob, S.rate: st.floats(1e-6, 60.0),
    S.c: st.floats(1.0 + 1e-6, 1e6), S.c_low: st.floats(1e-6, 0.999), B.eta: st.floats(1e-4, 4),
    B.slope: st.floats(0.0, 1.0), B.mu: st.floats(1e-6, 1.0 - 1e-9),
    B.steps: st.integers(1, 10_000).map(float), B.theta_tau: st.floats(-30.0, 30.0),
    B.theta_b: st.floats(-30.0, 30.0),
}


def _exact(expr: sp.Expr, values: dict[sp.Symbol, float]) -> float:
    with mpmath.workdps(60):
        return float(expr.evalf(60, subs={k: sp.Float(v, 60) for k, v in values.items()}))


@pytest.mark.parametrize("name", sorted(_budget.KERNELS))
@settings(max_examples=50)
@given(data=st.data())
def test_kernel_equals_sympy(name: str, data: st.DataObject) -> None:
    """Each kernel at 10 points x 50 examples = 500 points, rel err <= 1e-12 (abs 1e-300
    where the exact value is 0)."""
    args, expr, fn = _budget.KERNELS[name]
    for _ in range(10):
        values = {a: data.draw(DOMAINS[a], label=str(a)) for a in args}
        if B.taubar in values and B.tau in values:
            values[B.taubar] = 1.0 - values[B.tau]  # the documented pairing
        got = float(fn(*[np.float64(values[a]) for a in args]))
        want = _exact(expr, values)
        assert got == pytest.approx(want, rel=1e-12, abs=1e-300), (values, got, want)


def test_derivation_identities_hold() -> None:
    """Every stable closed form equals the result SymPy derived from the definitions."""
    residuals = B.check_identities()
    assert len(residuals) >= 10
    assert {k: v for k, v in residuals.items() if v != 0} == {}


@st.composite
def _points(draw: st.DrawFn) -> tuple[float, float, float, float | None, float]:
    p = draw(st.floats(0.05, 0.95))
    b = draw(st.floats(0.05, 0.95).filter(
        lambda v: abs(math.log(p / (1 - p)) - math.log(v / (1 - v))) >= 0.3))
    c = draw(st.floats(1.2, 10.0))
    c_low = draw(st.one_of(st.just(0.0), st.none(), st.floats(0.0, 0.95)))
    tau = draw(st.floats(0.2, 0.8))
    return p, b, c, c_low, tau


@settings(max_examples=30)
@given(pt=_points(), steps=st.integers(20, 200))
def test_budget_extension_predicts_doubled_budget(pt: tuple, steps: int) -> None:
    """lambda_2T predicted from lambda_T is within 5% of the true shift lambda_T - lambda_2T
    (exact bisection at 2T), plus 1e-8 for the two bisection brackets (rtol 1e-10), when
    the shift is resolved (> 1e-6).  The prediction is leading order in lambda_T - lambda_inf;
    the 5% covers its next order at the budgets drawn."""
    p, b, c, c_low, tau = pt
    lr = 0.9 * float(_budget.max_monotone_lr(p, b, c, 4.0, c_low=c_low))
    ext = _budget.budget_extension(p, b, c, steps, lr, c_low=c_low, threshold=tau)
    exact = _budget.finite_budget_onset(p, b, c, 2 * steps, lr, c_low=c_low, threshold=tau)
    shift = ext.lambda_T - exact
    if ext.regime not in ("unclipped", "capped", "floored", "runaway") or not (
            math.isfinite(ext.lambda_T) and shift > 1e-6 and ext.lambda_T < 4.0):
        event(f"skipped: {ext.regime}")
        return
    event(f"checked: {ext.regime}")
    assert ext.lambda_2T == pytest.approx(exact, abs=0.05 * shift + 1e-8)


@settings(max_examples=30)
@given(pt=_points(), steps=st.integers(20, 200), shrink=st.floats(0.3, 0.95))
def test_clip_cross_prediction(pt: tuple, steps: int, shrink: float) -> None:
    """Shrinking c to c' = 1 + shrink (c - 1) (and c_low with it when it is 1/c): the
    predicted onset lambda_T(c') is within 10% of how far the exact onset actually moved,
    plus 1e-8, when both onsets lie on the capped branch, or exactly where it did not move
    because tau stays inside the clip-safe region at both clips and the trajectory is never
    clipped."""
    p, b, c, c_low, tau = pt
    c_new = 1 + shrink * (c - 1)
    lr = 0.9 * min(float(_budget.max_monotone_lr(p, b, cc, 4.0, c_low=c_low))
                   for cc in (c, c_new))
    x = _budget.clip_cross_prediction(p, b, c, c_new, steps, lr, c_low=c_low, threshold=tau)
    new_floor = None if c_low is None else c_low
    exact = _budget.finite_budget_onset(p, b, c_new, steps, lr, c_low=new_floor,
                                        threshold=tau)
    regimes = {_budget.budget_extension(p, b, cc, steps, lr, c_low=new_floor,
                                        threshold=tau, lambda_T=1.0).regime
               for cc in (c, c_new)}
    if regimes != {"capped"} or not (math.isfinite(exact) and x.lambda_T < 4.0):
        event(f"skipped: {sorted(regimes)}")
        return
    event("checked: capped")
    moved = abs(exact - x.lambda_T)
    assert x.lambda_T_new == pytest.approx(exact, abs=0.1 * moved + 1e-8)
    assert x.lambda_inf_new - x.lambda_inf == pytest.approx(
        math.log(c_new / c) * x.dlambda_dlogc, rel=1e-9)


def test_monotone_condition_is_enforced() -> None:
    """A step size past the monotone bound is refused with a message naming lr."""
    with pytest.raises(ValueError, match="lr must be <="):
        _budget.finite_budget_onset(0.9, 0.5, 5.0, 10, 50.0)


def test_onset_conventions() -> None:
    """Warm start already past tau: onset 1.  Neutral point not past: no onset (inf)."""
    assert _budget.finite_budget_onset(0.9, 0.6, 5.0, 10, 0.5) == 1.0  # sharpening, b > 1/2
    assert _budget.asymptotic_onset(0.6, 0.6, 5.0, threshold=0.7) == math.inf
