r"""The K-ary listwise model: the single source of the closed forms of :mod:`cliff._theory.kary`.

K classes, teacher ``t``, reference ``r``, student ``pi``, log-ratios ``l_k = log t_k/r_k``,
``y = lambda - 1``.  The derivations (``derive_*``) work on a concrete small K with
``sympy.solve``; the closed forms (upper-case constants) are what the numpy code evaluates:
the brackets of the vectorised root finder and the error bound of the Bernoulli reduction.
:func:`check_identities` proves that

* the G-OPD objective's maximiser is ``pi_lambda ∝ r^(1-lambda) t^lambda`` (K = 3);
* the importance ratio of class ``k`` at that point is ``sum_j t_j e^{y (l_j - l_k)}``;
* for K = 2 the cap, floor and collapse equations give the Bernoulli closed forms of
  :mod:`cliff.symbolic.bernoulli` (K = 2 *is* the Bernoulli model);
* with ratios constant inside ``E`` and inside the rest ("calibrated", K = 4, ``E`` = two
  classes) the K-ary fixed-point mass of ``E`` equals the Bernoulli fixed point of
  ``p = t(E)``, ``b = r(E)``, and the K-ary max ratio equals the Bernoulli one.
"""

from __future__ import annotations

import sympy as sp
from sympy.codegen.cfunctions import log1p

from cliff.symbolic import bernoulli as B

__all__ = [
    "L", "H0", "H1", "T_top", "T_rest", "L_rest", "gap", "c", "c_low", "cbar_low", "gamma_low",
    "spread", "y_agg", "sigma", "q", "rate", "y", "TANGENT_ROOT", "FLOOR_LEVEL_NEAR",
    "FLOOR_LEVEL_FAR", "FLOOR_UPPER_BRACKET", "SPREAD_COLLAPSE", "SPREAD_COLLAPSE_DEFAULT",
    "REDUCTION_BOUND",
    "derive_fixed_point", "derive_ratio", "derive_brackets", "derive_bernoulli_limit",
    "derive_calibrated", "check_identities",
]

# --- symbols --------------------------------------------------------------------------
L = sp.Symbol("L", real=True)  # target level of the log-partition (log c or log c_low)
H0 = sp.Symbol("H_0", real=True)  # H(0)
H1 = sp.Symbol("H_1", real=True)  # H'(0), nonzero
T_top = sp.Symbol("T_top", positive=True)  # teacher mass of the max-ratio classes
T_rest = sp.Symbol("T_rest", positive=True)  # teacher mass of the others, 1 - T_top
L_rest = sp.Symbol("L_rest", negative=True)  # level of the floor equation over the others
gap = sp.Symbol("g", positive=True)  # gap between the largest and next log-ratio
c = B.c
c_low = B.c_low
cbar_low = B.cbar_low  # 1 - c_low
gamma_low = B.gamma_low  # c_low - T_top > 0 where the floor is reachable
spread = sp.Symbol("s", positive=True)  # max l - min l
y_agg = sp.Symbol("y_agg", nonnegative=True)  # lambda*_aggregated - 1
sigma = sp.Symbol("sigma", nonnegative=True)  # calibration gap
q = B.q
rate = B.rate
y = sp.Symbol("y", nonnegative=True)

# --- closed forms -----------------------------------------------------------------------
TANGENT_ROOT = (L - H0) / H1
"""Root of the tangent of ``H`` at 0; past the root of the convex ``H = L`` (Newton start)."""

FLOOR_LEVEL_NEAR = log1p(-cbar_low / T_rest)
"""The floor exit over the classes below the top, ``log sum_{rest} (t_k / T_rest)
e^{-y e_k} = L_rest``: its level ``log((c_low - T_top)/T_rest)``, evaluated so that it keeps
its relative precision as ``c_low -> 1`` (``1 - c_low`` formed without cancellation)."""

FLOOR_LEVEL_FAR = sp.log(gamma_low) - sp.log(T_rest)
"""The same level from the margin ``c_low - T_top`` (formed without cancellation), for
``c_low`` near ``T_top`` where the floor equation's level goes to ``-inf``."""

FLOOR_UPPER_BRACKET = -L_rest / gap
"""Root of ``-y g = L_rest``: an upper bracket of the floor exit (``-y g`` bounds
``log sum_{rest} (t_k / T_rest) e^{-y e_k}`` from above, ``g`` the smallest ``e_k`` there)."""

SPREAD_COLLAPSE = (sp.log(c) - sp.log(c_low)) / spread
"""``y`` past which no advantage level fits every class: ``y (max l - min l) > log(c/c_low)``."""

SPREAD_COLLAPSE_DEFAULT = 2 * sp.log(c) / spread
"""``SPREAD_COLLAPSE`` at the default floor ``c_low = 1/c`` (no ``1/c`` formed)."""

REDUCTION_BOUND = y_agg * sigma / (q * rate)
"""Upper bound on ``lambda*_aggregated - lambda*_kary`` (cap side binding in both)."""


# --- derivations ------------------------------------------------------------------------
def _classes(k: int) -> tuple[list[sp.Symbol], list[sp.Symbol], list[sp.Symbol]]:
    t = list(sp.symbols(f"t1:{k + 1}", positive=True))
    r = list(sp.symbols(f"r1:{k + 1}", positive=True))
    pi = list(sp.symbols(f"pi1:{k + 1}", positive=True))
    return t, r, pi


def derive_fixed_point(k: int = 3) -> dict[str, sp.Expr]:
    """Maximiser of ``lambda E_pi[log t/r] - KL(pi || r)`` on the simplex (Lagrangian).

    Returns the residual ``pi_k - r_k^(1-lambda) t_k^lambda / Z`` of the solution (zero) for
    each class, and the Hessian diagonal (negative: a maximum).
    """
    t, r, pi = _classes(k)
    lam, nu = B.lam, sp.Symbol("nu", real=True)
    obj = sum(lam * pk * sp.log(tk / rk) - pk * sp.log(pk / rk)
              for tk, rk, pk in zip(t, r, pi, strict=True))
    lagr = obj + nu * (sum(pi) - 1)
    sols = sp.solve([sp.diff(lagr, pk) for pk in pi] + [sum(pi) - 1], pi + [nu], dict=True)
    assert len(sols) == 1
    z = sum(rk ** (1 - lam) * tk ** lam for tk, rk in zip(t, r, strict=True))
    out = {f"pi{j + 1}": sp.simplify(sp.powsimp(sols[0][pi[j]] - r[j] ** (1 - lam) * t[j] ** lam
                                                / z, force=True)) for j in range(k)}
    out["hessian"] = sp.simplify(sp.diff(obj, pi[0], 2))
    return out


def derive_ratio(k: int = 3) -> sp.Expr:
    """``t_1 / pi_lambda,1 - sum_j t_j e^{y (l_j - l_1)}`` with ``r_j = t_j e^{-l_j}`` (zero)."""
    t = list(sp.symbols(f"t1:{k + 1}", positive=True))
    ell = list(sp.symbols(f"l1:{k + 1}", real=True))
    lam = 1 + y
    r = [tk * sp.exp(-lk) for tk, lk in zip(t, ell, strict=True)]
    num = [rk * sp.exp(lam * lk) for rk, lk in zip(r, ell, strict=True)]
    pi1 = num[0] / sum(num)
    closed = sum(tj * sp.exp(y * (lj - ell[0])) for tj, lj in zip(t, ell, strict=True))
    return sp.simplify(sp.powsimp(sp.expand(t[0] / pi1 - closed), force=True))


def derive_brackets() -> dict[str, sp.Expr]:
    """The closed forms, solved from their defining equations.

    ``floor level``: the floor exit ``T_top + T_rest W = c_low`` (``W`` the teacher-weighted
    mean of ``e^{-y e_k}`` over the classes below the top) solved for ``log W``.
    """
    tangent = sp.solve(sp.Eq(H0 + H1 * y, L), y)[0]
    floor = sp.solve(sp.Eq(sp.exp(L), T_top + (1 - T_top) * sp.exp(-y * gap)), y)[0]
    w = sp.Symbol("W", positive=True)
    level = sp.log(sp.solve(sp.Eq(T_top + (1 - T_top) * w, c_low), w)[0])
    spread_y = sp.solve(sp.Eq(y * spread, sp.log(c / c_low)), y)[0]
    return {"tangent": tangent, "floor": floor, "floor level": level, "spread": spread_y}


def derive_bernoulli_limit() -> dict[str, sp.Expr]:
    """K = 2 in growing-class coordinates (teacher ``(q, 1-q)``, log-ratio gap ``D``).

    cap:      (1-q) + q e^{y D} = c       -> lambda* shrinking side;
    floor:    q + (1-q) e^{-y D} = c_low  -> lambda* growing side;
    collapse: q e^{y D} = c                -> lambda_collapse (teacher);
    spread:   y D = log(c / c_low)         -> lambda_collapse (floor).
    """
    cap = sp.solve(sp.Eq((1 - q) + q * sp.exp(y * rate), c), y)[0]
    floor = sp.solve(sp.Eq(q + (1 - q) * sp.exp(-y * rate), c_low), y)[0]
    col = sp.solve(sp.Eq(q * sp.exp(y * rate), c), y)[0]
    spread_y = sp.solve(sp.Eq(y * rate, sp.log(c / c_low)), y)[0]
    return {"cap": cap, "floor": floor, "collapse": col, "spread": spread_y}


def derive_calibrated() -> dict[str, sp.Expr]:
    """K = 4, E = {1, 2}, ratios ``t_k/r_k = rho_E`` on E and ``rho_R`` on the rest.

    Returns residuals (zero): K-ary ``pi_lambda(E)`` minus the Bernoulli fixed point of
    ``(t(E), r(E))``, and the K-ary ratio of class 3 minus the Bernoulli rest ratio.
    """
    r = list(sp.symbols("r1:5", positive=True))
    rho_e, rho_r, lam = sp.symbols("rho_E rho_R", positive=True) + (B.lam,)
    t = [r[0] * rho_e, r[1] * rho_e, r[2] * rho_r, r[3] * rho_r]
    num = [rk ** (1 - lam) * tk ** lam for tk, rk in zip(t, r, strict=True)]
    pi_e = (num[0] + num[1]) / sum(num)
    p_, b_ = t[0] + t[1], r[0] + r[1]
    pb, bb = t[2] + t[3], r[2] + r[3]
    m_b = p_ ** lam * b_ ** (1 - lam) / (p_ ** lam * b_ ** (1 - lam) + pb ** lam * bb ** (1 - lam))
    ratio3 = t[2] / (num[2] / sum(num))
    ratio_rest = pb / (1 - m_b)
    def simp(e: sp.Expr) -> sp.Expr:
        e = sp.powsimp(sp.expand_power_base(e, force=True), force=True)
        return sp.simplify(sp.powsimp(sp.expand_power_base(sp.together(e), force=True),
                                      force=True))

    return {"mass_E": simp(pi_e - m_b), "rest_ratio": simp(ratio3 - ratio_rest)}


def _simplify_log(expr: sp.Expr, t: sp.Symbol) -> sp.Expr:
    """``expr`` simplified with ``t`` in (0, 1) written as ``1/(1 + t)`` (positive odds)."""
    return sp.simplify(sp.expand_log(sp.simplify(expr.subs(t, 1 / (1 + t))), force=True))


def check_identities() -> dict[str, sp.Expr]:
    """Residual of every identity (all zero when the derivations hold)."""
    out: dict[str, sp.Expr] = {}
    for key, val in derive_fixed_point().items():
        if key != "hessian":
            out[f"fixed point {key}"] = val
    out["ratio"] = derive_ratio()
    br = derive_brackets()
    out["tangent root"] = sp.simplify(br["tangent"] - TANGENT_ROOT)
    # floor: c_low = e^L = T_top + u (1 - T_top), u in (0, 1), written on positive odds
    u = sp.Symbol("u", positive=True)
    on_domain = {c_low: T_top + u / (1 + u) * (1 - T_top)}
    margins = {cbar_low: 1 - c_low, gamma_low: c_low - T_top, T_rest: 1 - T_top}
    for key, form in (("near", FLOOR_LEVEL_NEAR), ("far", FLOOR_LEVEL_FAR)):
        diff = sp.expand_func(br["floor level"] - form.subs(margins)).rewrite(sp.log)
        out[f"floor level {key}"] = _simplify_log(diff.subs(on_domain), T_top)
    bracket = FLOOR_UPPER_BRACKET.subs(L_rest, br["floor level"]).subs(c_low, sp.exp(L))
    diff = sp.expand_func(br["floor"] - bracket).rewrite(sp.log)
    out["floor bracket"] = _simplify_log(
        diff.subs(L, sp.log(T_top + u / (1 + u) * (1 - T_top))), T_top)
    out["spread collapse"] = sp.simplify(sp.expand_log(br["spread"] - SPREAD_COLLAPSE,
                                                       force=True))
    out["spread collapse, default floor"] = sp.simplify(sp.expand_log(
        br["spread"].subs(c_low, 1 / c) - SPREAD_COLLAPSE_DEFAULT, force=True))
    lim = derive_bernoulli_limit()
    bern = {
        "cap": B.HEADROOM_SHRINKING / rate,
        "floor": B.HEADROOM_GROWING / rate,
        "collapse": B.COLLAPSE_HEADROOM_TEACHER / rate,
        "spread": B.COLLAPSE_HEADROOM_FLOOR / rate,
    }
    for key, val in lim.items():
        diff = sp.expand_func(val - bern[key]).rewrite(sp.log)
        diff = diff.subs(B._POSITIVE_DOMAIN)
        out[f"K=2 {key}"] = sp.simplify(sp.expand_log(sp.simplify(diff), force=True))
    out.update({f"calibrated {k}": v for k, v in derive_calibrated().items()})
    return out
