"""The finite-budget kernels equal the SymPy expressions they were lambdified from, and every
derivation of :mod:`cliff.symbolic.budget` holds."""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from cliff.internal import KERNELS
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


def _where_used(name: str, values: dict[sp.Symbol, float], data: st.DataObject) -> None:
    """Move a draw into the domain where the code calls the kernel (documented pairings).

    taubar = 1 - tau.  The onsets are evaluated only past the teacher, so the threshold is
    drawn at a log-gap s in [0.01, 20] beyond it (tau_G = q e^s; for the floored branch
    taubar = qbar e^-s / c_low); there every term of lambda - 1 has one sign and the kernel
    is well conditioned.  The runaway integral runs from the edge theta_B up to theta_tau.
    """
    gap = data.draw(st.floats(0.01, 20.0), label="log gap")
    if name in ("onset_unclipped", "onset_shrinking"):
        values[B.tau] = min(values[S.q] * math.exp(gap), 1 - 1e-9)
    if name == "onset_growing":
        values[B.taubar] = min(values[S.qbar] * math.exp(-gap) / values[S.c_low], 1 - 1e-9)
    if B.tau in values and B.taubar in values:
        values[B.taubar] = 1.0 - values[B.tau]
    if name == "onset_unclipped":
        values[S.qbar] = 1.0 - values[S.q]
    if name == "runaway_onset":
        values[B.theta_tau] = values[B.theta_b] + gap


@pytest.mark.parametrize("name", sorted(KERNELS["cliff._theory.budget"]))
@settings(max_examples=50)
@given(data=st.data())
def test_kernel_equals_sympy(name: str, data: st.DataObject) -> None:
    """Each kernel at 10 points x 50 examples = 500 points, rel err <= 1e-12 (abs 1e-300
    where the exact value is 0)."""
    args, expr, fn = KERNELS["cliff._theory.budget"][name]
    for _ in range(10):
        values = {a: data.draw(DOMAINS[a], label=str(a)) for a in args}
        _where_used(name, values, data)
        got = float(fn(*[np.float64(values[a]) for a in args]))
        want = _exact(expr, values)
        assert got == pytest.approx(want, rel=1e-12, abs=1e-300), (values, got, want)


def test_derivation_identities_hold() -> None:
    """Every stable closed form equals the result SymPy derived from the definitions."""
    residuals = B.check_identities()
    assert len(residuals) >= 10
    assert {k: v for k, v in residuals.items() if v != 0} == {}
