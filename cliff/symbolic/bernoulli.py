r"""The Bernoulli model: the single source of every Bernoulli closed form in :mod:`cliff`.

Everything numeric in the package is lambdified from the expressions defined here, and
``python -m derivations`` prints the same expressions into the derivation PDF.  Nothing
below is typed twice: the *derivation* functions (``derive_*``) obtain each result from the
definitions with ``sympy.solve``/``diff``/``limit``, and the *closed forms* (upper-case
constants) are the numerically stable rewrites of those results that the numpy code
evaluates.  :func:`check_identities` proves, symbolically, that every stable form equals
the result SymPy derived from the definitions; the test suite runs it.

Coordinates
-----------
The Bernoulli model has a contract-valid modal class ``M`` and a tail ``T``.  Teacher
``(p, 1-p)``, G-OPD reference / warm start ``(b, 1-b)``, student ``(m, 1-m)``.  For
``lambda > 1`` the fixed point moves away from ``b``, past ``p``: the *growing* class is
``M`` when ``p > b`` (sharpening) and ``T`` when ``p < b`` (softening).  All closed forms
are written in growing-class coordinates

* ``q``     teacher probability of the growing class,   ``qbar = 1 - q``,
* ``beta``  reference probability of the growing class, ``betabar = 1 - beta``,
* ``delta = q - beta > 0``,

which are passed separately so that ``1 - p`` near ``p = 1`` and ``p - b`` near ``p = b``
never lose digits to cancellation: ``(q, qbar, beta, betabar, delta)`` is
``(p, 1-p, b, 1-b, p-b)`` when sharpening and ``(1-p, p, 1-b, b, b-p)`` when softening.

Float64 domain
--------------
Every input in (0, 1), every cap up to the float maximum, and every floor in [0, 1) is in the
domain, so products such as ``beta * qbar`` can underflow and ratios such as ``(c - 1)/q`` can
overflow.  The code therefore also carries

* the logs ``ell_q = log q``, ``ell_qbar = log qbar``, ``ell_beta = log beta``, each taken
  from the exact input (``log p`` or ``log1p(-p)``), never from a rounded ``1 - p``;
* ``ell_low = log c_low`` (``-log c`` for the default floor, never ``log(1/c)`` of a rounded
  or subnormal ``1/c``);
* the floor's margins ``cbar_low = 1 - c_low`` and ``gamma_low = c_low - q``, each formed
  without cancellation (for the default floor both are scaled by ``c``: ``c - 1`` and
  ``1 - c q``, whose ratio is the same);

and evaluates a headroom ``log1p(u/v)`` as ``SOFTPLUS_LARGE`` of ``log u - log v`` when
``u/v`` would overflow.  The substitution :data:`GROWING_CLASS` states all these relations;
the identity checks use it.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp
from sympy.codegen.cfunctions import expm1, log1p

__all__ = [
    "p", "b", "c", "c_low", "lam", "m", "theta", "q", "qbar", "beta", "betabar", "delta",
    "rate", "kappa", "x", "z", "ell_q", "ell_qbar", "ell_beta", "ell_low", "cbar_low", "gamma_low",
    "GROWING_CLASS", "OBJECTIVE", "ADVANTAGE_M", "ADVANTAGE_T", "DRIFT", "DRIFT_UNCLIPPED",
    "RATE", "HEADROOM_SHRINKING", "HEADROOM_GROWING", "THRESHOLD",
    "COLLAPSE_HEADROOM_TEACHER", "COLLAPSE_HEADROOM_FLOOR",
    "LOGIT_FIXED_POINT", "FIXED_POINT_MASS",
    "CLIPPED_SHRINKING_GROWING_MASS", "CLIPPED_SHRINKING_SHRINKING_MASS",
    "CLIPPED_GROWING_GROWING_MASS", "CLIPPED_GROWING_SHRINKING_MASS",
    "REGION", "LAMBDA_STAR_PAPER_EQ4",
    "SOFTPLUS_SMALL", "SOFTPLUS_LARGE", "LOG_RATE_RATIO", "LOG_SHRINKING_RATIO",
    "LOG_GROWING_RATIO", "HEADROOM_GROWING_MARGIN", "COLLAPSE_LOG_TEACHER", "COLLAPSE_LOG_FLOOR",
    "lambda_star_expr", "lambda_collapse_expr",
    "derive_fixed_point", "derive_threshold", "derive_clipped_fixed_point",
    "derive_collapse", "check_identities", "Identity",
]

# --- symbols --------------------------------------------------------------------------
p, b = sp.symbols("p b", positive=True)
c = sp.Symbol("c", positive=True)
c_low = sp.Symbol("c_low", nonnegative=True)
lam = sp.Symbol("lambda", nonnegative=True)
m = sp.Symbol("m", positive=True)
theta = sp.Symbol("theta", real=True)
q, qbar, beta, betabar, delta = sp.symbols("q qbar beta betabar delta", positive=True)
rate = sp.Symbol("D", positive=True)  # log-odds gap logit(q) - logit(beta)
kappa = sp.Symbol("kappa", positive=True)  # log-odds headroom of the clip-safe region
x = sp.Symbol("x", real=True)  # (lambda - 1) * D, the extrapolation push in log-odds
z = sp.Symbol("z", real=True)  # log of a ratio u/v whose log1p is a headroom or the rate
# logs carried from the exact inputs, and the floor's margins (see "Float64 domain")
ell_q, ell_qbar, ell_beta, ell_low = sp.symbols("ell_q ell_qbar ell_beta ell_low", real=True)
cbar_low = sp.Symbol("cbar_low", positive=True)  # 1 - c_low
gamma_low = sp.Symbol("gamma_low", positive=True)  # c_low - q > 0 where the floor can bind


def logit(z: sp.Expr) -> sp.Expr:
    return sp.log(z) - sp.log(1 - z)


GROWING_CLASS = {qbar: 1 - q, betabar: 1 - beta, delta: q - beta,
                 ell_q: sp.log(q), ell_qbar: sp.log(1 - q), ell_beta: sp.log(beta),
                 ell_low: sp.log(c_low), cbar_low: 1 - c_low, gamma_low: c_low - q}
"""Relations between the growing-class symbols (applied before every identity check)."""

# --- the model (derivations/model.md, two classes) ---------------------------------------
OBJECTIVE = lam * (m * sp.log(p / b) + (1 - m) * sp.log((1 - p) / (1 - b))) - (
    m * sp.log(m / b) + (1 - m) * sp.log((1 - m) / (1 - b))
)
"""G-OPD objective  lambda E_pi[log piT/pi0] - KL(pi || pi0)  for pi = (m, 1-m)."""


def _clip(z: sp.Expr, lo: sp.Expr, hi: sp.Expr) -> sp.Expr:
    return sp.Min(sp.Max(z, lo), hi)


ADVANTAGE_M = _clip(sp.log(p) - sp.log(m), sp.log(c_low), sp.log(c)) + (lam - 1) * (
    sp.log(p) - sp.log(b)
)
ADVANTAGE_T = _clip(sp.log(1 - p) - sp.log(1 - m), sp.log(c_low), sp.log(c)) + (lam - 1) * (
    sp.log(1 - p) - sp.log(1 - b)
)
DRIFT = ADVANTAGE_M - ADVANTAGE_T
"""Clipped G-OPD drift g(m) = A(M) - A(T); d theta/dt = m (1-m) g(m)."""

DRIFT_UNCLIPPED = (sp.log(p) - sp.log(m)) - (sp.log(1 - p) - sp.log(1 - m)) + (lam - 1) * (
    logit(p) - logit(b)
)

# --- closed forms, growing-class coordinates (stable rewrites; see check_identities) ---
RATE = log1p(delta / (beta * qbar))
"""D = logit(q) - logit(beta) > 0: log-odds moved per unit of lambda."""

HEADROOM_SHRINKING = log1p((c - 1) / q)
"""Log-odds headroom until the shrinking class's ratio (1-q)/(1-m_G) reaches the cap c."""

HEADROOM_GROWING = log1p((1 - c_low) / (c_low - q))
"""Log-odds headroom until the growing class's ratio q/m_G falls to c_low (needs q < c_low)."""

THRESHOLD = 1 + kappa / rate
"""lambda* = 1 + kappa / D with kappa the binding headroom."""

COLLAPSE_HEADROOM_TEACHER = log1p((c - q) / q)
"""log(c / q): clipped-drift headroom when q >= c_low (lambda_collapse = 1 + this / D)."""

COLLAPSE_HEADROOM_FLOOR = log1p((c - c_low) / c_low)
"""log(c / c_low): clipped-drift headroom when q < c_low."""

# --- the same closed forms over the whole float64 domain (see "Float64 domain") ----------
SOFTPLUS_SMALL = log1p(sp.exp(z))
"""log(1 + e^z), evaluated as written where e^z does not overflow."""

SOFTPLUS_LARGE = z + log1p(sp.exp(-z))
"""log(1 + e^z) for large z: no e^z formed; equal to SOFTPLUS_SMALL (identity)."""

LOG_RATE_RATIO = sp.log(delta) - ell_beta - ell_qbar
"""log(delta / (beta qbar)): the rate is D = log(1 + e^z) at this z (for D when beta qbar
underflows or delta / (beta qbar) overflows)."""

LOG_SHRINKING_RATIO = sp.log(c - 1) - ell_q
"""log((c - 1)/q): kappa_shrinking = log(1 + e^z) at this z (for (c - 1)/q past 2^1000)."""

LOG_GROWING_RATIO = sp.log(cbar_low) - sp.log(gamma_low)
"""log((1 - c_low)/(c_low - q)): kappa_growing = log(1 + e^z) at this z."""

HEADROOM_GROWING_MARGIN = log1p(cbar_low / gamma_low)
"""kappa_growing from the floor's margins 1 - c_low and c_low - q, each formed without
cancellation (for the default floor c_low = 1/c: c - 1 and 1 - c q, the same ratio)."""

COLLAPSE_LOG_TEACHER = sp.log(c) - ell_q
"""log(c / q) as a sum of two non-negative terms (no (c - q)/q, which overflows for tiny q)."""

COLLAPSE_LOG_FLOOR = sp.log(c) - ell_low
"""log(c / c_low), with ell_low = -log c for the default floor (no 1/c formed)."""

LOGIT_FIXED_POINT = sp.log(b) - sp.log(1 - b) + lam * ((sp.log(p) - sp.log(1 - p)) - (
    sp.log(b) - sp.log(1 - b)))
"""logit m_lambda = logit b + lambda (logit p - logit b)."""

FIXED_POINT_MASS = b ** (1 - lam) * p ** lam / (
    b ** (1 - lam) * p ** lam + (1 - b) ** (1 - lam) * (1 - p) ** lam)
"""m_lambda as the normalised geometric mix pi0^(1-lambda) piT^lambda: the readable display
of what ``sympy.solve`` returns for the arg-max and the drift's zero (identities prove it)."""

# Clipped fixed point for lambda* <= lambda < lambda_collapse, as growing/shrinking masses.
# exponents in logs carried from the exact inputs (c / q and qbar / c_low overflow for
# subnormal q or c_low); the growing class's mass exp(x - log c + log q) <= 1 in the window.
CLIPPED_SHRINKING_GROWING_MASS = sp.exp(x - sp.log(c) + ell_q)
# UnevaluatedExpr keeps SymPy from folding exp(x - log c + log q) into q e^x / c, which
# would turn -expm1(.) back into the cancelling 1 - q e^x / c.
CLIPPED_SHRINKING_SHRINKING_MASS = -expm1(sp.UnevaluatedExpr(x - sp.log(c) + ell_q))
CLIPPED_GROWING_SHRINKING_MASS = sp.exp(-x + ell_qbar - ell_low)
CLIPPED_GROWING_GROWING_MASS = -expm1(sp.UnevaluatedExpr(-x + ell_qbar - ell_low))

REGION = {
    "mode_floor": p / c,  # M's ratio p/m reaches c
    "mode_cap": p / c_low,  # M's ratio reaches c_low
    "tail_cap": 1 - (1 - p) / c,  # T's ratio (1-p)/(1-m) reaches c
    "tail_floor": 1 - (1 - p) / c_low,  # T's ratio reaches c_low
}
"""Boundaries (in modal mass m) of the clip-safe region R = [low, high]."""

LAMBDA_STAR_PAPER_EQ4 = (sp.log((1 - p) / (c - 1 + p)) - sp.log((1 - b) / b)) / (
    sp.log((1 - p) / p) - sp.log((1 - b) / b)
)
"""Li et al. (2026), Theorem 4.1, Eq. 4, as a public reimplementation quotes it (sharpening,
tail binds)."""


def lambda_star_expr(regime: str, binding: str) -> sp.Expr:
    """lambda*(p, b, c, c_low) in original coordinates for one regime/binding branch."""
    head = {"shrinking": HEADROOM_SHRINKING, "growing": HEADROOM_GROWING}[
        _side(regime, binding)]
    return _to_original(THRESHOLD.subs({kappa: head, rate: RATE}), regime)


def lambda_collapse_expr(regime: str, floor: bool) -> sp.Expr:
    """lambda_collapse in original coordinates; ``floor`` selects q < c_low."""
    head = COLLAPSE_HEADROOM_FLOOR if floor else COLLAPSE_HEADROOM_TEACHER
    return _to_original(1 + head / RATE, regime)


def _side(regime: str, binding: str) -> str:
    shrinking = {"sharpening": "tail", "softening": "mode"}[regime]
    return "shrinking" if binding == shrinking else "growing"


def _to_original(expr: sp.Expr, regime: str) -> sp.Expr:
    if regime == "sharpening":
        sub = {q: p, qbar: 1 - p, beta: b, betabar: 1 - b, delta: p - b}
    else:
        sub = {q: 1 - p, qbar: p, beta: 1 - b, betabar: b, delta: b - p}
    return expr.subs(sub, simultaneous=True)


# --- derivations from the definitions ---------------------------------------------------
def derive_fixed_point() -> dict[str, sp.Expr]:
    """The unclipped fixed point: maximiser of the objective and zero of the unclipped drift.

    Returns the stationary point of ``OBJECTIVE`` in m, the zero of ``DRIFT_UNCLIPPED``, the
    chain-rule identity ``dJ/dtheta - m(1-m) g`` (zero), and the second derivative.
    """
    argmax = sp.solve(sp.diff(OBJECTIVE, m), m)
    zero = sp.solve(DRIFT_UNCLIPPED, m)
    assert len(argmax) == 1 and len(zero) == 1
    sig = 1 / (1 + sp.exp(-theta))
    chain = sp.diff(OBJECTIVE.subs(m, sig), theta) - (sig * (1 - sig) * DRIFT_UNCLIPPED.subs(
        m, sig))
    return {
        "argmax": argmax[0],
        "drift_zero": zero[0],
        "chain_rule_residual": chain,
        "curvature": sp.simplify(sp.diff(OBJECTIVE, m, 2)),
    }


def derive_threshold() -> dict[str, sp.Expr]:
    """The threshold: lambda at which logit m_lambda reaches each boundary of R (growing coords)."""
    growing_logit = sp.log(beta) - sp.log(1 - beta) + lam * (logit(q) - logit(beta))
    exits = {
        # shrinking class: (1-q)/(1-m_G) = c  <=>  m_G = 1 - (1-q)/c
        "shrinking": logit(1 - (1 - q) / c),
        # growing class: q/m_G = c_low  <=>  m_G = q/c_low
        "growing": logit(q / c_low),
    }
    return {k: sp.solve(sp.Eq(growing_logit, v), lam)[0] for k, v in exits.items()}


def derive_clipped_fixed_point() -> dict[str, sp.Expr]:
    """The clipped fixed point: zero of the drift with one class clipped, growing-class mass m_G.

    Shrinking side clipped: log(q/m_G) - log c + x = 0.  Growing side clipped:
    log c_low - log((1-q)/(1-m_G)) + x = 0.  (x = (lambda-1) D.)
    """
    mg = sp.Symbol("m_G", positive=True)
    shrink = sp.solve(sp.log(q) - sp.log(mg) - sp.log(c) + x, mg)[0]
    grow = sp.solve(sp.log(c_low) - sp.log(1 - q) + sp.log(1 - mg) + x, mg)[0]
    return {"shrinking": shrink, "growing": grow}


def derive_collapse() -> dict[str, sp.Expr]:
    """The collapse point: sup over m of the clipped restoring force, and the lambda that
    cancels it.

    With both classes clipped (m_G -> 1) the restoring term tends to
    max(log q, log c_low) - log c; lambda_collapse solves x = log c - max(log q, log c_low).
    """
    mg = sp.Symbol("m_G", positive=True)
    restoring_teacher = sp.limit(sp.log(q / mg) - sp.log(c), mg, 1, "-")
    return {
        "teacher": sp.solve(sp.Eq((lam - 1) * rate + restoring_teacher, 0), lam)[0],
        "floor": sp.solve(sp.Eq((lam - 1) * rate + sp.log(c_low) - sp.log(c), 0), lam)[0],
    }


@dataclass(frozen=True)
class Identity:
    """A proved equality between a derived result and the stable form the code evaluates."""

    name: str
    derived: sp.Expr
    stable: sp.Expr
    domain: tuple[tuple[sp.Symbol, sp.Expr], ...] = ()  # extra restriction, e.g. q < c_low

    def residual(self) -> sp.Expr:
        """derived - stable, simplified on the positive parametrisation of the domain."""
        diff = (self.derived - self.stable.doit()).subs(GROWING_CLASS).subs(dict(self.domain))
        diff = diff.subs(_POSITIVE_DOMAIN)
        diff = sp.expand_func(diff).rewrite(sp.log)
        diff = sp.simplify(sp.expand_log(diff, force=True))
        return sp.simplify(diff.replace(
            lambda e: isinstance(e, sp.log), lambda e: sp.log(sp.factor(e.args[0]))))


# Odds parametrisation with every factor manifestly positive, so that ``force=True`` log
# expansion is legitimate: probabilities t = T/(1+T), caps c = 1 + C, floors in [0, q); U
# parametrises q in (beta, 1) where log(q - beta) appears.
_odds = sp.symbols("P B Q Beta C L U", positive=True)
_POSITIVE_DOMAIN = {
    p: _odds[0] / (1 + _odds[0]), b: _odds[1] / (1 + _odds[1]),
    q: _odds[2] / (1 + _odds[2]), beta: _odds[3] / (1 + _odds[3]),
    c: 1 + _odds[4], c_low: _odds[5] / (1 + _odds[5]),
}


def identities() -> list[Identity]:
    """Every stable closed form paired with the result derived from the definitions."""
    thr = derive_threshold()
    fp = derive_fixed_point()
    clipped = derive_clipped_fixed_point()
    col = derive_collapse()
    sig = 1 / (1 + sp.exp(-LOGIT_FIXED_POINT))
    floor_binds = ((c_low, q + (1 - q) * _odds[5] / (1 + _odds[5])),)  # q < c_low
    default_floor_binds = ((q, 1 / (c * (1 + _odds[5]))),)  # q < 1/c
    ahead = ((q, beta + (1 - beta) * _odds[6] / (1 + _odds[6])),)  # delta = q - beta > 0

    def big(z_: sp.Expr) -> sp.Expr:
        return SOFTPLUS_LARGE.subs(z, z_)

    def lam(head: sp.Expr) -> sp.Expr:
        return THRESHOLD.subs({kappa: head, rate: RATE})

    default = {cbar_low: c - 1, gamma_low: 1 - c * q, ell_low: -sp.log(c)}  # both margins x c
    return [
        Identity("rate", logit(q) - logit(beta), RATE),
        Identity("argmax of objective", fp["argmax"], sig),
        Identity("zero of unclipped drift", fp["drift_zero"], sig),
        Identity("argmax of objective, display form", fp["argmax"], FIXED_POINT_MASS),
        Identity("zero of unclipped drift, display form", fp["drift_zero"], FIXED_POINT_MASS),
        Identity("chain rule", fp["chain_rule_residual"], sp.Integer(0)),
        Identity("lambda* shrinking", thr["shrinking"],
                 THRESHOLD.subs({kappa: HEADROOM_SHRINKING, rate: RATE})),
        Identity("lambda* growing", thr["growing"],
                 THRESHOLD.subs({kappa: HEADROOM_GROWING, rate: RATE}), domain=floor_binds),
        Identity("clipped shrinking", clipped["shrinking"], CLIPPED_SHRINKING_GROWING_MASS),
        Identity("clipped shrinking complement", 1 - clipped["shrinking"],
                 CLIPPED_SHRINKING_SHRINKING_MASS),
        Identity("clipped growing", clipped["growing"], CLIPPED_GROWING_GROWING_MASS),
        Identity("clipped growing complement", 1 - clipped["growing"],
                 CLIPPED_GROWING_SHRINKING_MASS),
        Identity("lambda_collapse teacher", col["teacher"], 1 + COLLAPSE_HEADROOM_TEACHER / rate),
        Identity("lambda_collapse floor", col["floor"], 1 + COLLAPSE_HEADROOM_FLOOR / rate),
        Identity("paper Eq. 4", LAMBDA_STAR_PAPER_EQ4,
                 lambda_star_expr("sharpening", "tail")),
        # the float64-domain forms the code evaluates
        Identity("softplus large", SOFTPLUS_SMALL, SOFTPLUS_LARGE),
        Identity("rate, log form", logit(q) - logit(beta), big(LOG_RATE_RATIO), domain=ahead),
        Identity("rate, log form small", logit(q) - logit(beta),
                 SOFTPLUS_SMALL.subs(z, LOG_RATE_RATIO), domain=ahead),
        Identity("lambda* shrinking, log form", thr["shrinking"], lam(big(LOG_SHRINKING_RATIO))),
        Identity("lambda* growing, margins", thr["growing"], lam(HEADROOM_GROWING_MARGIN),
                 domain=floor_binds),
        Identity("lambda* growing, log form", thr["growing"], lam(big(LOG_GROWING_RATIO)),
                 domain=floor_binds),
        Identity("lambda* growing, default floor", thr["growing"].subs(c_low, 1 / c),
                 lam(HEADROOM_GROWING_MARGIN.subs(default)), domain=default_floor_binds),
        Identity("lambda* growing, default floor, log form", thr["growing"].subs(c_low, 1 / c),
                 lam(big(LOG_GROWING_RATIO.subs(default))), domain=default_floor_binds),
        Identity("lambda_collapse teacher, log form", col["teacher"],
                 1 + COLLAPSE_LOG_TEACHER / rate),
        Identity("lambda_collapse floor, log form", col["floor"], 1 + COLLAPSE_LOG_FLOOR / rate),
        Identity("lambda_collapse floor, default floor", col["floor"].subs(c_low, 1 / c),
                 1 + COLLAPSE_LOG_FLOOR.subs(default) / rate),
    ]


def check_identities() -> dict[str, sp.Expr]:
    """Residual of every identity (all zero when the derivation holds)."""
    return {i.name: i.residual() for i in identities()}
