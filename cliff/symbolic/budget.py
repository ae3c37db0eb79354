r"""The finite-budget onset (derivations/model.md, "Finite budget"): the single source of its
closed forms.

Training runs ``T`` Euler steps of size ``eta`` of the clipped drift
``d theta/dt = m (1-m) g(m)`` from ``theta_0 = logit b``.  The *onset* ``lambda_T`` is the
smallest ``lambda >= 1`` whose ``m_T`` is past the threshold ``tau`` in the direction the
dynamics run.  In growing-class coordinates (see :mod:`cliff.symbolic.bernoulli`) the
threshold is a growing-class mass ``tau_G`` (``tau`` when sharpening, ``1 - tau`` when
softening), ``taubar = 1 - tau_G`` is passed separately, and "past" means ``m_G >= tau_G``.

Closed forms (each derived below with ``sympy.solve``/``diff``/``integrate`` from the
definitions and checked equal to its stable rewrite by :func:`check_identities`):

* the asymptotic onset ``lambda_inf = lim_{T->inf} lambda_T``: the smallest ``lambda`` whose
  asymptotic state is past ``tau_G``, branch by branch (unclipped fixed point, fixed point
  with the shrinking class capped, fixed point with the growing class floored);
* the relaxation multiplier ``mu = 1 - eta tau_G taubar k`` of the Euler map at the fixed
  point sitting at ``tau_G`` (``k = -dg/dtheta_G`` there), and the budget extension
  ``(lambda_2T - lambda_inf) / (lambda_T - lambda_inf) = mu^T / (1 + mu^T)`` of the
  linearised map;
* the runaway crossing time ``I / ((lambda - lambda_collapse) D)`` when ``tau_G`` lies past
  the last finite fixed point (the floored case), giving
  ``lambda_T ~ lambda_collapse + I / (D eta T)``;
* the critical clips at which the clip-safe region's edge passes ``tau_G`` and the onset's
  sensitivity to ``log c``.
"""

from __future__ import annotations

import sympy as sp

from cliff.symbolic.bernoulli import (
    GROWING_CLASS,
    Identity,
    beta,
    c,
    c_low,
    lam,
    q,
    qbar,
    rate,
    theta,
    x,
)

__all__ = [
    "tau", "taubar", "eta", "steps", "mu", "slope", "theta_b", "theta_tau",
    "ONSET_UNCLIPPED", "ONSET_SHRINKING", "ONSET_GROWING",
    "SLOPE_UNCLIPPED", "SLOPE_SHRINKING", "SLOPE_GROWING", "MULTIPLIER",
    "EXTENSION_RATIO", "CROSSING_INTEGRAL", "RUNAWAY_ONSET", "RUNAWAY_EXTENSION_RATIO",
    "C_CRIT_SHRINKING", "C_LOW_CRIT_GROWING", "ONSET_SHRINKING_DLOGC",
    "derive_onsets", "derive_slopes", "derive_extension", "derive_runaway",
    "derive_critical_clips", "identities", "check_identities",
]

# --- symbols --------------------------------------------------------------------------
tau, taubar = sp.symbols("tau_G taubar_G", positive=True)  # threshold on the growing mass
eta = sp.Symbol("eta", positive=True)  # Euler step size (learning rate)
steps = sp.Symbol("T", positive=True)  # number of Euler steps
mu = sp.Symbol("mu", positive=True)  # Euler multiplier at the fixed point
slope = sp.Symbol("k", positive=True)  # -dg/dtheta_G at the fixed point
theta_b, theta_tau = sp.symbols("theta_B theta_tau", real=True)
excess = sp.Symbol("epsilon", positive=True)  # lambda - lambda_collapse
shift = sp.Symbol("s", positive=True)  # d theta_inf / d lambda at the onset


def _logit(z: sp.Expr) -> sp.Expr:
    return sp.log(z) - sp.log(1 - z)


_THRESHOLD = {taubar: 1 - tau}
_D = _logit(q) - _logit(beta)  # what ``rate`` stands for
_sig = 1 / (1 + sp.exp(-theta))  # growing-class mass as a function of its log-odds

# Drift of the growing-class log-odds theta_G, by branch (bernoulli.DRIFT, oriented):
# g_G = clip(log q - log m_G) - clip(log qbar - log(1 - m_G)) + x.
_G_UNCLIPPED = (sp.log(q) - sp.log(_sig)) - (sp.log(1 - q) - sp.log(1 - _sig)) + x
_G_SHRINKING = (sp.log(q) - sp.log(_sig)) - sp.log(c) + x  # shrinking class's ratio capped
_G_GROWING = sp.log(c_low) - (sp.log(1 - q) - sp.log(1 - _sig)) + x  # growing ratio floored
_G_BOTH = sp.log(c_low) - sp.log(c) + x  # both clipped: constant drift

# --- closed forms (stable rewrites; see identities) -------------------------------------
ONSET_UNCLIPPED = 1 + (sp.log(tau) - sp.log(taubar) - sp.log(q) + sp.log(qbar)) / rate
"""lambda at which the unclipped fixed point reaches tau_G: 1 + (logit tau_G - logit q)/D."""

ONSET_SHRINKING = 1 + (sp.log(c) + sp.log(tau) - sp.log(q)) / rate
"""lambda at which the capped fixed point (q/c) e^x reaches tau_G: 1 + log(c tau_G / q)/D."""

ONSET_GROWING = 1 + (sp.log(qbar) - sp.log(c_low) - sp.log(taubar)) / rate
"""lambda at which the floored fixed point reaches tau_G: 1 + log(qbar/(c_low taubar))/D."""

SLOPE_UNCLIPPED = sp.Integer(1)
SLOPE_SHRINKING = taubar
SLOPE_GROWING = tau
"""k = -dg_G/dtheta_G at m_G = tau_G on each branch."""

MULTIPLIER = 1 - eta * tau * taubar * slope
"""mu = dF/dtheta of the Euler map F = theta + eta m(1-m) g at its fixed point m_G = tau_G."""

EXTENSION_RATIO = mu**steps / (1 + mu**steps)
"""(lambda_2T - lambda_inf) / (lambda_T - lambda_inf) for the map linearised at tau_G."""

CROSSING_INTEGRAL = (2 * theta_tau + sp.exp(theta_tau) - sp.exp(-theta_tau)) - (
    2 * theta_b + sp.exp(theta_b) - sp.exp(-theta_b))
"""I = int_{theta_B}^{theta_tau} d theta / (m (1-m)): crossing time of the both-clipped
segment times its (constant) drift."""

RUNAWAY_ONSET = CROSSING_INTEGRAL / (rate * eta * steps)
"""lambda_T - lambda_collapse to leading order in 1/T when tau_G is past every fixed point."""

RUNAWAY_EXTENSION_RATIO = sp.Rational(1, 2)
"""(lambda_2T - lambda_collapse) / (lambda_T - lambda_collapse) to leading order."""

C_CRIT_SHRINKING = qbar / taubar
"""Cap c at which the edge 1 - (1-q)/c of the clip-safe region sits at tau_G."""

C_LOW_CRIT_GROWING = q / tau
"""Floor c_low at which the edge q/c_low of the clip-safe region sits at tau_G."""

ONSET_SHRINKING_DLOGC = 1 / rate
"""d lambda_inf / d log c on the capped branch (0 on the unclipped branch)."""


# --- derivations from the definitions ---------------------------------------------------
def derive_onsets() -> dict[str, sp.Expr]:
    """lambda solving "asymptotic growing mass = tau_G" on each branch.

    Unclipped: logit tau_G = logit beta + lambda D.  Capped: the zero of ``_G_SHRINKING`` at
    m_G = tau_G.  Floored: the zero of ``_G_GROWING`` at m_G = tau_G.
    """
    th = _logit(tau)
    unclipped = sp.solve(sp.Eq(_logit(beta) + lam * _D, th), lam)
    capped = sp.solve(_G_SHRINKING.subs(theta, th).subs(x, (lam - 1) * rate), lam)
    floored = sp.solve(_G_GROWING.subs(theta, th).subs(x, (lam - 1) * rate), lam)
    assert len(unclipped) == len(capped) == len(floored) == 1
    return {"unclipped": unclipped[0], "shrinking": capped[0], "growing": floored[0]}


def derive_slopes() -> dict[str, sp.Expr]:
    """k = -dg_G/dtheta_G at m_G = tau_G, from the branch drifts."""
    at_tau = {theta: _logit(tau)}
    return {name: sp.simplify(-sp.diff(g, theta).subs(at_tau))
            for name, g in (("unclipped", _G_UNCLIPPED), ("shrinking", _G_SHRINKING),
                            ("growing", _G_GROWING))}


def derive_extension() -> dict[str, sp.Expr]:
    """Budget extension from the Euler map linearised at the fixed point sitting at tau_G.

    Derivative of F(theta) = theta + eta sigma(theta)(1 - sigma(theta)) g(theta) at a zero of
    g with g' = -k gives mu.  Near the onset theta_inf(lambda) = theta_tau + s (lambda -
    lambda_inf); the linear map gives theta_T = theta_inf - mu^T (theta_inf - theta_0).  The
    onset solves theta_T = theta_tau; the ratio of its excess at 2T and at T is returned.
    """
    gfun = sp.Function("g")
    f_map = theta + eta * _sig * (1 - _sig) * gfun(theta)
    dmap = sp.diff(f_map, theta).subs(sp.Derivative(gfun(theta), theta), -slope).subs(
        gfun(theta), 0).subs(theta, _logit(tau))
    d_lam, theta0, n = sp.Symbol("Delta", positive=True), sp.Symbol("theta_0"), sp.Symbol("n")
    theta_inf = theta_tau + shift * d_lam
    crossing = sp.Eq(theta_inf - mu**n * (theta_inf - theta0), theta_tau)
    excess_n = sp.solve(crossing, d_lam)[0]
    ratio = sp.simplify(excess_n.subs(n, 2 * steps) / excess_n.subs(n, steps))
    return {"multiplier": sp.simplify(dmap), "ratio": ratio}


def derive_runaway() -> dict[str, sp.Expr]:
    """Crossing time of the both-clipped segment [theta_B, theta_tau] at lambda_collapse + eps.

    There g = eps D is constant, so t = int d theta / (m(1-m) eps D); the onset solves
    t = eta T.
    """
    g_eps = _G_BOTH.subs(x, sp.log(c) - sp.log(c_low) + excess * rate)
    integral = sp.integrate(sp.simplify(1 / (_sig * (1 - _sig))), (theta, theta_b, theta_tau))
    t_cross = integral / g_eps
    eps_t = sp.solve(sp.Eq(t_cross, eta * steps), excess)[0]
    ratio = sp.simplify(eps_t.subs(steps, 2 * steps) / eps_t)
    return {"integral": integral, "onset_excess": eps_t, "ratio": ratio}


def derive_critical_clips() -> dict[str, sp.Expr]:
    """c at which 1 - (1-q)/c = tau_G; c_low at which q/c_low = tau_G; d lambda/d log c."""
    c_crit = sp.solve(sp.Eq(1 - (1 - q) / c, tau), c)
    cl_crit = sp.solve(sp.Eq(q / c_low, tau), c_low)
    dlogc = sp.simplify(sp.diff(derive_onsets()["shrinking"], c) * c)
    return {"c": c_crit[0], "c_low": cl_crit[0], "dlogc": dlogc}


def identities() -> list[Identity]:
    """Every stable closed form above paired with the result derived from the definitions."""
    on = derive_onsets()
    sl = derive_slopes()
    ext = derive_extension()
    run = derive_runaway()
    crit = derive_critical_clips()
    d = {rate: _D}
    th = {taubar: 1 - tau}
    return [
        Identity("onset unclipped", on["unclipped"], ONSET_UNCLIPPED.subs(th).subs(d)),
        Identity("onset capped", on["shrinking"], ONSET_SHRINKING),
        Identity("onset floored", on["growing"], ONSET_GROWING.subs(th)),
        Identity("slope unclipped", sl["unclipped"], SLOPE_UNCLIPPED),
        Identity("slope capped", sl["shrinking"], SLOPE_SHRINKING.subs(th)),
        Identity("slope floored", sl["growing"], SLOPE_GROWING),
        Identity("multiplier", ext["multiplier"], MULTIPLIER.subs(th)),
        Identity("extension ratio", ext["ratio"], EXTENSION_RATIO),
        Identity("crossing integral", run["integral"], CROSSING_INTEGRAL),
        Identity("runaway onset", run["onset_excess"], RUNAWAY_ONSET),
        Identity("runaway ratio", run["ratio"], RUNAWAY_EXTENSION_RATIO),
        Identity("critical cap", crit["c"], C_CRIT_SHRINKING.subs(th)),
        Identity("critical floor", crit["c_low"], C_LOW_CRIT_GROWING),
        Identity("onset sensitivity", crit["dlogc"], ONSET_SHRINKING_DLOGC),
    ]


def check_identities() -> dict[str, sp.Expr]:
    """Residual of every identity (all zero when the derivation holds)."""
    out = {}
    for ident in identities():
        res = sp.simplify(sp.expand_log(
            (ident.derived - ident.stable).subs(GROWING_CLASS).subs(_THRESHOLD), force=True)
            .rewrite(sp.exp))
        out[ident.name] = res if res == 0 else ident.residual()
    return out
