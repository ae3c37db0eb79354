"""The Bernoulli kernels equal the SymPy expressions they were lambdified from, ``cliff.solve``
equals the SymPy thresholds of its regime and binding, and every derivation of
:mod:`cliff.symbolic.bernoulli` holds (the paper's Eq. 4 among them)."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import mpmath
import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import cliff
from cliff.internal import KERNELS
from cliff.symbolic import bernoulli as S
from tests.strategies import cap, probability

DOMAINS = {  # a strategy per symbol, inside the symbol's documented domain
    S.q: probability(), S.qbar: probability(), S.beta: probability(),
    S.delta: probability(), S.p: probability(), S.b: probability(), S.c: cap(),
    S.c_low: st.floats(1e-6, 0.999), S.kappa: st.floats(1e-9, 50.0),
    S.rate: st.floats(1e-9, 60.0), S.lam: st.floats(0.0, 20.0),
    S.ell_q: st.floats(-745.0, -1e-16), S.ell_qbar: st.floats(-745.0, -1e-16),
    S.ell_beta: st.floats(-745.0, -1e-16), S.ell_low: st.floats(-745.0, -1e-16),
    S.cbar_low: st.floats(1e-16, 1e300), S.gamma_low: st.floats(1e-320, 1.0),
    S.z: st.floats(-745.0, 1500.0), S.x: st.floats(0.0, 50.0),
}


@functools.cache
def _mp(expr: sp.Expr) -> tuple[list[sp.Symbol], Callable[..., Any]]:
    args = sorted(expr.free_symbols, key=str)
    return args, sp.lambdify(args, expr, modules="mpmath")


def _exact(expr: sp.Expr, values: dict[sp.Symbol, float]) -> float:
    """The SymPy expression evaluated in 60-digit arithmetic (mpmath) at float inputs."""
    args, fn = _mp(expr)
    with mpmath.workdps(60):
        return float(fn(*[mpmath.mpf(values[a]) for a in args]))


def _sum_scale(name: str, values: dict) -> float:
    """Where a kernel is a sum whose terms can cancel, its float64 accuracy is relative to
    the terms, not to the sum: ``logit b + lambda (logit p - logit b)`` is 0 at p = 1/2,
    lambda = 1, and its rounding error there is 1e-12 of ``|logit b| + lambda (|logit p| +
    |logit b|)``, however small the sum (the fixed point's mass keeps every digit)."""
    if name != "logit_fixed_point":
        return 0.0
    lp = abs(math.log(values[S.p]) - math.log1p(-values[S.p]))
    lb = abs(math.log(values[S.b]) - math.log1p(-values[S.b]))
    return 1e-12 * (lb + values[S.lam] * (lp + lb))


@pytest.mark.parametrize("name", sorted(KERNELS["cliff._theory.bernoulli"]))
@settings(max_examples=50)
@given(data=st.data())
def test_kernel_equals_sympy(name: str, data: st.DataObject) -> None:
    """Each kernel, at 10 points per example x 50 examples = 500 points, rel err <= 1e-12."""
    args, expr, fn = KERNELS["cliff._theory.bernoulli"][name]
    for _ in range(10):
        values = {a: data.draw(DOMAINS[a], label=str(a)) for a in args}
        if name == "headroom_growing":  # formed directly while the ratio is below 2^1000
            values[S.gamma_low] = max(values[S.gamma_low], values[S.cbar_low] * 2.0 ** -1000)
        # clipped masses: x inside the window, its exponent at least 1 (or x = 0) from the
        # edge, where x and the logs (inputs of up to ~800) would cancel in the exponent
        if name.startswith("clipped_shrinking"):  # x <= log c - log q
            values[S.x] = max(np.log(values[S.c]) - values[S.ell_q] - values[S.x] - 1.0, 0.0)
        if name.startswith("clipped_growing"):  # x >= log qbar - log c_low
            values[S.x] = max(values[S.ell_qbar] - values[S.ell_low], 0.0) + values[S.x] + 1.0
        if name == "softplus_small":  # evaluated where e^z does not overflow (z <= 0)
            values[S.z] = -abs(values[S.z])
        if name == "softplus_large":  # evaluated where e^z would (z > 0)
            values[S.z] = abs(values[S.z])
        got = float(fn(*[np.float64(values[a]) for a in args]))
        want = _exact(expr, values)
        assert got == pytest.approx(want, rel=1e-12, abs=_sum_scale(name, values)), (
            values, got, want)


@given(data=st.data())
@settings(max_examples=50)
def test_solve_equals_sympy_pipeline(data: st.DataObject) -> None:
    """cliff.solve (orientation, branch choice, kernels) equals the original-coordinate
    SymPy lambda*(p, b, c, c_low) of its regime and binding, at 500 points."""
    for _ in range(10):
        p, b, c = (data.draw(probability()), data.draw(probability()), data.draw(cap()))
        c_low = data.draw(st.one_of(st.just(0.0), st.just(1.0 / c), st.floats(0.0, 0.999)))
        if p == b:
            continue
        r = cliff.solve(p, b, c, c_low=c_low)
        values = {S.p: p, S.b: b, S.c: c, S.c_low: c_low}
        want_star = _exact(S.lambda_star_expr(r.regime, r.binding), values)
        q = p if r.regime == "sharpening" else 1 - p
        want_col = _exact(S.lambda_collapse_expr(r.regime, floor=q < c_low), values)
        assert r.lambda_star - 1 == pytest.approx(want_star - 1, rel=1e-12), values
        assert r.lambda_collapse - 1 == pytest.approx(want_col - 1, rel=1e-12), values


def test_derivation_identities_hold() -> None:
    """Every stable form equals the result SymPy derived from the definitions."""
    residuals = S.check_identities()
    assert residuals, "no identities checked"
    assert {k: v for k, v in residuals.items() if v != 0} == {}


def test_reproduces_paper_eq4() -> None:
    """The derived sharpening/tail lambda* is the paper's Theorem 4.1, Eq. 4 (symbolically)."""
    (eq4,) = [i for i in S.identities() if i.name == "paper Eq. 4"]
    assert eq4.derived == S.LAMBDA_STAR_PAPER_EQ4
    assert eq4.residual() == 0


def test_base_neutral_marker() -> None:
    """Published marker: base-neutral (b = 1/2) lambda* = 1.22 at c = 5 and p ~ 0.9993."""
    r = cliff.solve(0.9993, 0.5, 5.0)
    assert (r.regime, r.binding) == ("sharpening", "tail")
    assert round(r.lambda_star, 2) == 1.22
