"""The K-ary kernels equal the SymPy expressions they were lambdified from, and every K-ary
derivation of :mod:`cliff.symbolic.kary` holds."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
import sympy as sp
from hypothesis import given
from hypothesis import strategies as st

from cliff.internal import KERNELS
from cliff.symbolic import kary as S


def test_identities() -> None:
    """Every K-ary derivation (fixed point, ratio, brackets, K = 2 limits, calibration)."""
    for name, residual in S.check_identities().items():
        assert sp.simplify(residual) == 0, name


_DOMAINS = {
    S.L: st.floats(-30.0, 30.0), S.H0: st.floats(-30.0, 0.0), S.H1: st.floats(1e-6, 50.0),
    S.T_top: st.floats(1e-9, 0.99), S.gap: st.floats(1e-6, 50.0),
    S.c: st.floats(-6.0, 6.0).map(lambda k: 1.0 + 10.0 ** k), S.c_low: st.floats(1e-9, 0.999),
    S.spread: st.floats(1e-6, 50.0), S.y_agg: st.floats(0.0, 100.0),
    S.sigma: st.floats(0.0, 50.0), S.q: st.floats(1e-9, 1.0), S.rate: st.floats(1e-9, 60.0),
    S.T_rest: st.floats(1e-300, 1.0), S.cbar_low: st.floats(1e-16, 1.0),
    S.gamma_low: st.floats(1e-320, 1.0), S.L_rest: st.floats(-745.0, -1e-16),
}


@pytest.mark.parametrize("name", sorted(KERNELS["cliff._theory.kary"]))
@given(data=st.data())
def test_kernel_equals_sympy(name: str, data: st.DataObject) -> None:
    """Each lambdified kernel equals its SymPy expression (60-digit evalf), 10 points x 60
    examples = 600 points per kernel, rel err <= 1e-12."""
    args, expr, fn = KERNELS["cliff._theory.kary"][name]
    for _ in range(10):
        vals = {a: data.draw(_DOMAINS[a], label=str(a)) for a in args}
        if name == "tangent_root":  # the level lies above H(0) (the code passes H0 = 0)
            vals[S.L] = vals[S.H0] + data.draw(st.floats(0.1, 30.0))
        if name == "floor_level_near":  # used where 1 - c_low <= T_rest / 2
            vals[S.cbar_low] = vals[S.T_rest] * data.draw(st.floats(1e-16, 0.5))
        if name == "floor_level_far":  # used where c_low - T_top < T_rest / 2
            vals[S.gamma_low] = vals[S.T_rest] * data.draw(st.floats(1e-15, 0.5))
        got = float(fn(*[np.float64(vals[a]) for a in args]))
        with mpmath.workdps(60):
            want = float(expr.evalf(60, subs={a: sp.Float(v, 60) for a, v in vals.items()}))
        assert got == pytest.approx(want, rel=1e-12, abs=1e-300), (vals, got, want)
