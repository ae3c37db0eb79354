r"""Finite-budget onset of the clipped G-OPD dynamics, lambdified from :mod:`cliff.symbolic.budget`.

Training is modelled as ``T`` Euler steps of size ``eta`` of the clipped mean-field drift
``d theta/dt = m (1-m) g(m)`` from ``theta_0 = logit b``.  The *onset* ``lambda_T`` is the
smallest ``lambda >= 1`` whose ``m_T`` is past the threshold ``tau`` (default 1/2) in the
direction the dynamics run:

* softening (``p < b``; the dynamics push ``m`` down): ``m_T <= tau`` (the contract is lost:
  the valid class is no longer the majority);
* sharpening (``p > b``; ``m`` moves up): ``m_T >= tau``.  With ``b < tau`` this is the
  budget at which the contract is *reached*; for entropy collapse pass a ``tau`` near 1
  (e.g. the clip-safe edge ``1 - (1-p)/c``).

Everything is computed in growing-class coordinates (:mod:`cliff.symbolic.bernoulli`):
``theta_G`` is the log-odds of the class that grows with ``lambda``, and "past" is
``m_G >= tau_G``.  The exact onset comes from a vectorised bisection on the T-step Euler map;
the closed forms (asymptotic onset, budget extension, clip cross-prediction) are SymPy
expressions lambdified at import.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy as sp
from numpy.typing import ArrayLike, NDArray
from scipy.special import expit, log_expit

from cliff._theory import bernoulli as _bernoulli
from cliff._util import checks
from cliff.symbolic import bernoulli as S
from cliff.symbolic import budget as B

__all__ = ["finite_budget_onset", "asymptotic_onset", "budget_extension",
           "clip_cross_prediction", "max_monotone_lr", "mean_field_path", "BudgetExtension",
           "ClipCross", "MeanFieldPath"]

FloatArray = NDArray[np.float64]
_SLOPE_BOUND = 1.0 / (6.0 * np.sqrt(3.0))  # max_m m(1-m)|1-2m|: |d(m(1-m))/dtheta| <= this


def _lambdify(args: tuple[sp.Symbol, ...], expr: sp.Expr) -> Any:
    return sp.lambdify(args, expr, modules="numpy", cse=True)


KERNELS: dict[str, tuple[tuple[sp.Symbol, ...], sp.Expr, Any]] = {
    name: (args, expr, _lambdify(args, expr)) for name, args, expr in [
        ("onset_unclipped", (B.tau, B.taubar, S.q, S.qbar, S.rate), B.ONSET_UNCLIPPED),
        ("onset_shrinking", (S.c, B.tau, S.q, S.rate), B.ONSET_SHRINKING),
        ("onset_growing", (S.qbar, S.c_low, B.taubar, S.rate), B.ONSET_GROWING),
        ("multiplier", (B.eta, B.tau, B.taubar, B.slope), B.MULTIPLIER),
        ("extension_ratio", (B.mu, B.steps), B.EXTENSION_RATIO),
        ("runaway_onset", (B.theta_tau, B.theta_b, S.rate, B.eta, B.steps), B.RUNAWAY_ONSET),
        ("c_crit", (S.qbar, B.taubar), B.C_CRIT_SHRINKING),
        ("c_low_crit", (S.q, B.tau), B.C_LOW_CRIT_GROWING),
        ("onset_dlogc", (S.rate,), B.ONSET_SHRINKING_DLOGC),
    ]
}
"""name -> (argument order, SymPy expression, lambdified function); tested for equality."""

_K = {name: fn for name, (_, _, fn) in KERNELS.items()}

# Regimes of the asymptotic onset (codes used internally, names returned to users).
REGIMES = np.array(["start", "teacher", "unclipped", "capped", "floored", "runaway", "never"])
_START, _TEACHER, _UNCLIPPED, _CAPPED, _FLOORED, _RUNAWAY, _NEVER = range(7)


@dataclass(frozen=True)
class _Point:
    """One broadcast batch of points in growing-class coordinates."""

    q: FloatArray
    qbar: FloatArray
    beta: FloatArray
    betabar: FloatArray
    rate: FloatArray
    c: FloatArray
    c_low: FloatArray
    tau: FloatArray  # threshold on the growing-class mass
    taubar: FloatArray
    lambda_collapse: FloatArray
    shrinking: NDArray[np.bool_]  # the shrinking class's cap binds first


def _point(p: ArrayLike, b: ArrayLike, c: ArrayLike, c_low: ArrayLike | None,
           threshold: ArrayLike) -> _Point:
    p_ = checks.check_open_unit("p", p)
    b_ = checks.check_open_unit("b", b)
    c_ = checks.check_cap("c", c)
    cl_ = 1.0 / c_ if c_low is None else checks.check_floor("c_low", c_low)
    t_ = checks.check_open_unit("threshold", threshold)
    p_, b_, c_, cl_, t_ = checks.broadcast(p=p_, b=b_, c=c_, c_low=cl_, threshold=t_)
    sharp = p_ > b_  # growing class: M when sharpening, T otherwise (neutral: as softening)
    q, qbar = np.where(sharp, p_, 1.0 - p_), np.where(sharp, 1.0 - p_, p_)
    beta, betabar = np.where(sharp, b_, 1.0 - b_), np.where(sharp, 1.0 - b_, b_)
    res = _bernoulli.solve(p_, b_, c_, c_low=cl_)
    binding = np.asarray(res.binding)
    rate = _bernoulli.log_odds_rate(p_, b_)  # not RATE of the rounded 1 - p: subnormals
    tau = np.where(sharp, t_, 1.0 - t_)
    taubar = np.where(sharp, 1.0 - t_, t_)
    shrinking = (binding == "tail") == sharp
    return _Point(q, qbar, beta, betabar, rate, c_, cl_, tau, taubar,
                  np.asarray(res.lambda_collapse, dtype=np.float64), shrinking)


def _out(arr: FloatArray) -> Any:
    return float(arr) if np.ndim(arr) == 0 else arr


# --- the T-step Euler map ---------------------------------------------------------------
def _drift(theta: FloatArray, pt: _Point, x: FloatArray) -> FloatArray:
    """g_G = clip(log q/m_G) - clip(log qbar/(1-m_G)) + x, clips at [log c_low, log c]."""
    with np.errstate(divide="ignore"):
        lo, hi = np.log(pt.c_low), np.log(pt.c)
    grow = np.minimum(np.maximum(np.log(pt.q) - log_expit(theta), lo), hi)
    shrink = np.minimum(np.maximum(np.log(pt.qbar) - log_expit(-theta), lo), hi)
    return grow - shrink + x


def _step(theta: FloatArray, pt: _Point, x: FloatArray, lr: Any) -> FloatArray:
    """One Euler step theta_G + eta m_G (1 - m_G) g_G(theta_G)."""
    return theta + lr * expit(theta) * expit(-theta) * _drift(theta, pt, x)


def _euler(pt: _Point, lam: FloatArray, steps: int, lr: float) -> FloatArray:
    """theta_G after ``steps`` Euler steps of d theta_G/dt = m_G (1 - m_G) g_G."""
    theta = np.log(pt.beta) - np.log(pt.betabar)
    x = (lam - 1.0) * pt.rate
    for _ in range(steps):
        theta = _step(theta, pt, x, lr)
    return np.asarray(theta, dtype=np.float64)


def _drift_bound(pt: _Point) -> FloatArray:
    """L = log c - log max(c_low, min(q, qbar)): |clip(M) - clip(T)| <= L."""
    return np.log(pt.c) - np.log(np.maximum(pt.c_low, np.minimum(pt.q, pt.qbar)))


def max_monotone_lr(p: ArrayLike, b: ArrayLike, c: ArrayLike, lam: ArrayLike, *,
                    c_low: ArrayLike | None = None) -> Any:
    r"""Largest step size for which the Euler map is nondecreasing in theta and lambda.

    .. math:: \eta_{\max}(\lambda) = \Big(\tfrac14 + \tfrac{L + (\lambda-1) D}{6\sqrt3}\Big)^{-1},
              \qquad L = \log c - \log\max\big(c_{\mathrm{low}}, \min(p, 1-p)\big).

    Notes
    -----
    The map is ``F(theta) = theta + eta s(theta) g(theta)`` with ``s = m(1-m)``.  Each clipped
    log ratio is nonincreasing in its class's mass, so ``-1 <= g' <= 0`` and ``|s g'| <= 1/4``;
    ``|s'| = s |1 - 2m| <= 1/(6 sqrt 3)`` and ``|g| <= L + (lambda - 1) D``.  Hence
    ``F' >= 1 - eta (1/4 + |g|/(6 sqrt 3)) >= 0`` for ``eta <= eta_max(lambda)``, and since
    ``dF/dlambda = eta s D >= 0`` in growing coordinates, ``theta_T`` is nondecreasing in
    ``lambda`` (induction on steps) and each trajectory is monotone in time (it never
    overshoots a fixed point).  This is what makes the onset bisection exact.

    Examples
    --------
    >>> round(float(max_monotone_lr(0.9, 0.5, 5.0, 1.0)), 4)  # (1/4 + log 25/(6 sqrt 3))^-1
    1.7866
    """
    pt = _point(p, b, c, c_low, 0.5)
    lam_ = checks.check_nonnegative("lam", lam)
    bound = _drift_bound(pt) + np.maximum(lam_ - 1.0, 0.0) * pt.rate
    return _out(1.0 / (0.25 + _SLOPE_BOUND * bound))


def _monotone_lambda(pt: _Point, lr: float) -> FloatArray:
    """Largest lambda with lr <= eta_max(lambda) (inf when D = 0)."""
    room = (1.0 / lr - 0.25) / _SLOPE_BOUND - _drift_bound(pt)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(pt.rate > 0, 1.0 + room / pt.rate, np.inf)


def finite_budget_onset(p: ArrayLike, b: ArrayLike, c: ArrayLike, steps: int, lr: float, *,
                        c_low: ArrayLike | None = None, threshold: ArrayLike = 0.5,
                        lam_max: float | None = None, rtol: float = 1e-10) -> Any:
    r"""Onset ``lambda_T``: the smallest ``lambda >= 1`` whose ``m_T`` is past ``threshold``.

    .. math:: \lambda_T = \min\{\lambda \ge 1 : m^{(\lambda)}_G(T) \ge \tau_G\},\quad
              \theta_{n+1} = \theta_n + \eta\, m_n (1 - m_n)\, g(m_n),\
              \theta_0 = \mathrm{logit}\, b,

    with ``tau_G = tau`` when sharpening (``m_T >= tau``) and ``1 - tau`` when softening
    (``m_T <= tau``).

    Parameters
    ----------
    p, b : array_like
        Teacher and reference modal probabilities in (0, 1).
    c : array_like
        IS clip cap, > 1.
    steps : int
        Number of Euler steps ``T`` (>= 1).
    lr : float
        Step size ``eta`` > 0; must satisfy ``lr <= max_monotone_lr(p, b, c, 1)``.
    c_low : array_like, optional
        Lower ratio clip in [0, 1); default ``1/c``.
    threshold : array_like
        Contract threshold ``tau`` on the modal mass, in (0, 1); default 1/2.
    lam_max : float, optional
        Largest lambda searched; default (and cap) the largest lambda at which the Euler
        map is still monotone for ``lr`` (:func:`max_monotone_lr`).
    rtol : float
        Relative width of the final bracket.

    Returns
    -------
    float or ndarray
        ``lambda_T`` (the upper end of a bracket ``[lo, hi]`` with ``hi - lo <= rtol hi``,
        ``hi`` known to cross).  ``1.0`` when ``lambda = 1`` already crosses; ``inf`` when no
        ``lambda <= lam_max`` crosses within ``T`` steps.

    Notes
    -----
    For ``lr <= eta_max(lambda)`` the T-step map is nondecreasing in ``lambda`` (see
    :func:`max_monotone_lr`), so "crossed" is a monotone predicate and the bisection is
    guaranteed: the bracket starts at ``[1, hi]`` with ``hi`` doubled (in ``lambda - 1``)
    until it crosses, and every step keeps ``lo`` non-crossing and ``hi`` crossing.

    Examples
    --------
    >>> lt = finite_budget_onset(0.7, 0.9, 5.0, 20, 0.5)
    >>> bool(lt > asymptotic_onset(0.7, 0.9, 5.0))  # a finite budget needs a larger push
    True
    """
    pt = _point(p, b, c, c_low, threshold)
    steps = checks.check_int_at_least("steps", steps, 1)
    lr_ = float(checks.as_float_array("lr", lr))
    if not lr_ > 0.0:
        raise ValueError(f"lr must be > 0, got {lr!r}")
    cap = _monotone_lambda(pt, lr_)
    if np.any(cap < 1.0):
        worst = float(np.min(1.0 / (0.25 + _SLOPE_BOUND * _drift_bound(pt))))
        raise ValueError(f"lr must be <= {worst!r} (the Euler map is monotone in lambda "
                         f"only below it), got {lr_!r}")
    if lam_max is not None:
        cap = np.minimum(cap, float(checks.check_nonnegative("lam_max", lam_max)))
    target = np.log(pt.tau) - np.log(pt.taubar)

    def crossed(lam: FloatArray) -> NDArray[np.bool_]:
        return np.asarray(_euler(pt, lam, steps, lr_) >= target)

    shape = np.shape(pt.q)
    one = np.ones(shape)
    done = crossed(one)
    lo, hi = one.copy(), one.copy()
    lam_inf = _asymptotic(pt)[0]
    guess = np.where(np.isfinite(lam_inf), 2.0 * np.maximum(lam_inf, 1.0), 2.0)
    hi = np.where(done, 1.0, np.minimum(guess, np.maximum(cap, 1.0)))
    ok = done | crossed(hi)
    for _ in range(64):  # expand the bracket: lambda - 1 doubles, up to the monotone cap
        grow = ~ok & (hi < cap)
        if not grow.any():
            break
        lo = np.where(grow, hi, lo)
        hi = np.where(grow, np.minimum(1.0 + 2.0 * (hi - 1.0), cap), hi)
        ok = ok | (grow & crossed(hi))
    active = ok & ~done
    for _ in range(200):
        active = active & (hi - lo > rtol * hi)
        if not active.any():
            break
        mid = np.where(active, 0.5 * (lo + hi), hi)
        hit = crossed(mid)
        hi = np.where(active & hit, mid, hi)
        lo = np.where(active & ~hit, mid, lo)
    return _out(np.where(ok, hi, np.inf))


# --- the mean-field path ------------------------------------------------------------------
@dataclass(frozen=True)
class MeanFieldPath:
    """Modal-class masses along the Euler map (returned by :func:`mean_field_path`).

    Attributes
    ----------
    log_modal : ndarray, shape (..., len(steps))
        ``log m_n`` at each requested step count ``n``.
    log_tail : ndarray, shape (..., len(steps))
        ``log(1 - m_n)``, computed from the logit, so a mass near 1 keeps its digits.
    steps : tuple of int
        The step counts, in increasing order (the last axis).
    """

    log_modal: FloatArray
    log_tail: FloatArray
    steps: tuple[int, ...]


def mean_field_path(p: ArrayLike, b: ArrayLike, c: ArrayLike, lam: ArrayLike, steps: Any,
                    lr: ArrayLike, *, c_low: ArrayLike | None = None) -> MeanFieldPath:
    r"""Modal mass after each requested number of Euler steps of the mean-field dynamics.

    .. math:: \theta_0 = \operatorname{logit} b,\qquad
              \theta_{n+1} = \theta_n + \eta\, m_n (1 - m_n)\, g(m_n),\qquad
              g = A(M) - A(T),

    with ``m_n = sigma(theta_n)`` the student's mass on the modal class ``M`` and ``A`` the
    clipped G-OPD advantage (the model statement, section "Finite budget").

    Parameters
    ----------
    p, b : array_like
        Teacher and reference modal probabilities in (0, 1).
    c : array_like
        IS clip cap, > 1.
    lam : array_like
        Extrapolation coefficient ``lambda >= 0``.
    steps : sequence of int
        Step counts ``n >= 0`` at which to report, strictly increasing (``0`` is ``b``).
    lr : array_like
        Step size ``eta > 0``.
    c_low : array_like, optional
        Lower ratio clip in [0, 1); default ``1/c``.

    Returns
    -------
    MeanFieldPath
        ``log_modal`` and ``log_tail`` of shape ``broadcast(p, b, c, c_low, lam, lr).shape +
        (len(steps),)``.

    Notes
    -----
    The iteration runs on the log-odds of the class that grows with ``lambda`` (the modal
    class when sharpening, the tail otherwise), which is ``theta`` or ``-theta``; the drift
    changes sign with it, so the map is the same.  Both logs are ``log_expit`` of that
    logit.  Any ``lr > 0`` is accepted: above :func:`max_monotone_lr` at ``lam`` the map is
    still the model's Euler map, but it may overshoot its fixed point and oscillate.

    Examples
    --------
    >>> path = mean_field_path(0.9, 0.5, 5.0, 1.0, [0, 1000], 0.5)
    >>> np.round(np.exp(path.log_modal), 6)  # from b to the teacher at lambda = 1
    array([0.5, 0.9])
    """
    n_at = checks.check_step_counts("steps", steps)
    p_, b_, c_ = (checks.check_open_unit("p", p), checks.check_open_unit("b", b),
                  checks.check_cap("c", c))
    cl_ = 1.0 / c_ if c_low is None else checks.check_floor("c_low", c_low)
    lam_, lr_ = checks.check_nonnegative("lam", lam), checks.check_positive("lr", lr)
    p_, b_, c_, cl_, lam_, lr_ = checks.broadcast(p=p_, b=b_, c=c_, c_low=cl_, lam=lam_, lr=lr_)
    pt = _point(p_, b_, c_, cl_, 0.5)
    theta = np.log(pt.beta) - np.log(pt.betabar)
    x = (lam_ - 1.0) * pt.rate
    out = np.empty(np.shape(theta) + (len(n_at),))
    done = 0
    for k, n in enumerate(n_at):
        for _ in range(n - done):
            theta = _step(theta, pt, x, lr_)
        out[..., k], done = theta, n
    modal = np.where((p_ > b_)[..., None], out, -out)  # the growing class is M iff p > b
    return MeanFieldPath(log_modal=log_expit(modal), log_tail=log_expit(-modal), steps=n_at)


# --- asymptotic onset (closed form) -------------------------------------------------------
def _asymptotic(pt: _Point) -> tuple[FloatArray, NDArray[np.int_]]:
    """(lambda_inf, regime code) per point; see :func:`asymptotic_onset`."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        edge_cap = -np.expm1(np.log(pt.qbar) - np.log(pt.c))  # 1 - qbar/c
        edge_floor = pt.q / pt.c_low  # inf when c_low = 0
        edge = np.where(pt.shrinking, edge_cap, np.minimum(edge_floor, 1.0))
        l_unc = _K["onset_unclipped"](pt.tau, pt.taubar, pt.q, pt.qbar, pt.rate)
        l_cap = _K["onset_shrinking"](pt.c, pt.tau, pt.q, pt.rate)
        l_flo = _K["onset_growing"](pt.qbar, pt.c_low, pt.taubar, pt.rate)
    l_clip = np.where(pt.shrinking, l_cap, l_flo)
    clip_code = np.where(pt.shrinking, _CAPPED, _FLOORED)
    past_col = ~(l_clip < pt.lambda_collapse)
    code = np.select(
        [pt.beta >= pt.tau, pt.rate == 0, pt.q >= pt.tau, pt.tau <= edge, past_col],
        [_START, _NEVER, _TEACHER, _UNCLIPPED, _RUNAWAY], clip_code)
    lam = np.select(
        [code == _START, code == _NEVER, code == _TEACHER, code == _UNCLIPPED,
         code == _RUNAWAY], [1.0, np.inf, 1.0, l_unc, pt.lambda_collapse], l_clip)
    return np.asarray(lam, dtype=np.float64), np.asarray(code)


def asymptotic_onset(p: ArrayLike, b: ArrayLike, c: ArrayLike, *,
                     c_low: ArrayLike | None = None, threshold: ArrayLike = 0.5) -> Any:
    r"""``lim_{T -> inf} lambda_T``: the smallest ``lambda >= 1`` whose asymptotic state is
    past ``threshold``.

    .. math::

        \lambda_\infty = \begin{cases}
          1 & \beta \ge \tau_G \text{ or } q \ge \tau_G,\\
          1 + (\operatorname{logit}\tau_G - \operatorname{logit} q)/D
            & \tau_G \le \text{edge of } R,\\
          1 + \log(c\,\tau_G/q)/D & \text{shrinking class capped},\\
          1 + \log\big(\bar q/(c_{\mathrm{low}}\bar\tau_G)\big)/D & \text{growing class floored},
        \end{cases}

    each clipped branch replaced by ``lambda_collapse`` when it lies past it (the threshold
    is then beyond the last finite fixed point and only the runaway crosses it).

    Parameters
    ----------
    p, b, c, c_low, threshold
        As in :func:`finite_budget_onset`.

    Returns
    -------
    float or ndarray
        ``lambda_inf``; ``inf`` in the neutral case ``p == b`` when ``b`` is not past.

    Notes
    -----
    The asymptotic growing mass (``cliff.clipped_fixed_point``) is continuous and
    nondecreasing in ``lambda`` up to ``lambda_collapse`` and equals 1 past it, so the onset
    is the branch solution of "fixed point = tau_G" on the branch that holds at tau_G.
    The edge of the clip-safe region on the growing side is ``1 - (1-q)/c`` (cap binds)
    or ``q / c_low`` (floor binds).

    Examples
    --------
    >>> round(float(asymptotic_onset(0.7, 0.9, 5.0)), 6)  # logit .9 / (logit .9 - logit .7)
    1.627662
    """
    lam, _ = _asymptotic(_point(p, b, c, c_low, threshold))
    return _out(lam)


# --- budget extension --------------------------------------------------------------------
@dataclass(frozen=True)
class BudgetExtension:
    """Budget-extension prediction (returned by :func:`budget_extension`).

    Attributes
    ----------
    lambda_T : onset at ``steps`` (exact bisection).
    lambda_inf : asymptotic onset.
    lambda_2T : predicted onset at ``2 * steps``.
    shift : ``lambda_T - lambda_2T`` (how far the onset moves when the budget doubles).
    multiplier : Euler multiplier ``mu`` at the fixed point at tau (relaxation regimes).
    regime : ``'unclipped'``, ``'capped'``, ``'floored'`` (relaxation onto a fixed point at
        tau), ``'runaway'`` (tau past every fixed point), ``'start'`` / ``'teacher'``
        (``lambda_inf = 1``; no prediction beyond ``lambda_2T = 1``) or ``'never'``.
    lambda_T_leading : leading-order runaway onset ``lambda_collapse + I/(D eta T)``
        (``runaway`` regime; equal to ``lambda_T`` elsewhere).
    in_range : whether the prediction is in its range of validity,
        ``(lambda_T - lambda_inf) D <= 1/2``: the unclipped fixed point at ``lambda_T`` lies
        within half a log-odds unit of where it sits at ``lambda_inf``, so the map is close
        to its linearisation (relaxation) or to the bottleneck (runaway).
    """

    lambda_T: Any
    lambda_inf: Any
    lambda_2T: Any
    shift: Any
    multiplier: Any
    regime: Any
    lambda_T_leading: Any
    in_range: Any


def budget_extension(p: ArrayLike, b: ArrayLike, c: ArrayLike, steps: int, lr: float, *,
                     c_low: ArrayLike | None = None, threshold: ArrayLike = 0.5,
                     lambda_T: ArrayLike | None = None) -> BudgetExtension:
    r"""How far the onset moves when the step budget doubles (``T -> 2T``).

    .. math::

        \lambda_{2T} - \lambda_\infty = \frac{\mu^T}{1 + \mu^T}\,(\lambda_T - \lambda_\infty),
        \quad \mu = 1 - \eta\,\tau_G\bar\tau_G\,k \quad\text{(relaxation)};\qquad
        \lambda_{2T} - \lambda_c = \tfrac12(\lambda_T - \lambda_c)\quad\text{(runaway)}.

    Parameters
    ----------
    p, b, c, steps, lr, c_low, threshold
        As in :func:`finite_budget_onset`.
    lambda_T : array_like, optional
        The onset at ``steps`` if already known (e.g. measured); computed exactly otherwise.

    Returns
    -------
    BudgetExtension

    Notes
    -----
    *Relaxation* (the onset is set by a fixed point sitting at ``tau``): linearising the
    Euler map at that fixed point gives the multiplier ``mu`` with ``k = -dg/dtheta_G`` =
    1 (unclipped), ``1 - tau_G`` (capped), ``tau_G`` (floored).  With ``theta_inf(lambda) =
    theta_tau + s (lambda - lambda_inf)`` the crossing condition
    ``theta_inf - mu^T (theta_inf - theta_0) = theta_tau`` gives the ratio above.
    *Runaway* (floored case, ``tau`` past the last fixed point): just past
    ``lambda_collapse`` the drift is ``(lambda - lambda_collapse) D`` on the both-clipped
    segment, which takes ``I / ((lambda - lambda_collapse) D)`` to cross,
    ``I = [2 theta + e^theta - e^-theta]`` between its edge and ``theta_tau``; so
    ``lambda_T - lambda_collapse ~ I / (D eta T)`` and doubling ``T`` halves it.
    Both are leading-order statements in the distance to ``lambda_inf``; ``in_range`` flags
    the points close enough for them to hold (there the error is a few percent of the shift;
    far from it, at small budgets, the prediction can be off by more than the shift).

    Examples
    --------
    >>> e = budget_extension(0.7, 0.9, 5.0, 30, 0.5)
    >>> e.regime, bool(e.lambda_inf < e.lambda_2T < e.lambda_T)
    ('unclipped', True)
    """
    pt = _point(p, b, c, c_low, threshold)
    lt = np.asarray(finite_budget_onset(p, b, c, steps, lr, c_low=c_low, threshold=threshold)
                    if lambda_T is None else checks.check_nonnegative("lambda_T", lambda_T),
                    dtype=np.float64)
    lam_inf, code = _asymptotic(pt)
    k = np.select([code == _CAPPED, code == _FLOORED], [pt.taubar, pt.tau], 1.0)
    mu = _K["multiplier"](lr, pt.tau, pt.taubar, k)
    ratio = _K["extension_ratio"](mu, float(steps))
    with np.errstate(invalid="ignore"):
        relax = lam_inf + ratio * (lt - lam_inf)
        runaway = lam_inf + 0.5 * (lt - lam_inf)
    edge = np.where(pt.shrinking, -np.expm1(np.log(pt.qbar) - np.log(pt.c)),
                    np.minimum(pt.q / np.where(pt.c_low > 0, pt.c_low, 1.0), 1.0))
    theta_b = np.log(edge) - np.log1p(-np.minimum(edge, 1.0 - 1e-16))
    theta_tau = np.log(pt.tau) - np.log(pt.taubar)
    with np.errstate(divide="ignore", invalid="ignore"):
        lead = lam_inf + _K["runaway_onset"](theta_tau, theta_b, pt.rate, lr, float(steps))
    l2t = np.select([code <= _TEACHER, code == _NEVER, code == _RUNAWAY], [1.0, np.inf, runaway],
                    relax)
    l2t = np.where(np.isfinite(lt), l2t, lt)
    with np.errstate(invalid="ignore"):  # inf - inf where no onset: replaced by 0
        moved = np.where(np.isfinite(lt), lt - l2t, 0.0)
        # neutral points (D = 0, lambda_inf = inf): (lt - inf) * 0 is NaN, not in range
        in_range = np.isfinite(lt) & ((lt - np.where(np.isfinite(lt), lam_inf, 0.0))
                                      * pt.rate <= 0.5)
    return BudgetExtension(
        lambda_T=_out(lt), lambda_inf=_out(lam_inf), lambda_2T=_out(l2t),
        shift=_out(moved), multiplier=_out(mu),
        regime=REGIMES[code].item() if np.ndim(code) == 0 else REGIMES[code],
        lambda_T_leading=_out(np.where(code == _RUNAWAY, lead, lt)),
        in_range=_flag(in_range))


def _flag(arr: NDArray[np.bool_]) -> Any:
    return bool(arr) if np.ndim(arr) == 0 else arr


# --- small-clip cross-prediction ---------------------------------------------------------
@dataclass(frozen=True)
class ClipCross:
    """Onset at a new clip predicted from the onset at the old one (:func:`clip_cross_prediction`).

    Attributes
    ----------
    lambda_T : onset at ``c`` (given or exact).
    lambda_T_new : predicted onset at ``c_new``: ``lambda_T + lambda_inf_new - lambda_inf``.
    lambda_inf, lambda_inf_new : asymptotic onsets at ``c`` and ``c_new``.
    c_crit : cap below which the capped edge ``1 - (1-q)/c`` of the clip-safe region lies
        short of tau (so the onset starts to depend on ``c``); ``inf`` when tau is not
        on the growing side of the teacher (``q >= tau_G``).
    dlambda_dlogc : ``d lambda_inf / d log c`` at ``c`` (``1/D`` on the capped branch,
        ``1/D`` on the floored branch with ``c_low = 1/c``, else 0).
    """

    lambda_T: Any
    lambda_T_new: Any
    lambda_inf: Any
    lambda_inf_new: Any
    c_crit: Any
    dlambda_dlogc: Any


def clip_cross_prediction(p: ArrayLike, b: ArrayLike, c: ArrayLike, c_new: ArrayLike,
                          steps: int, lr: float, *, c_low: ArrayLike | None = None,
                          c_low_new: ArrayLike | None = None, threshold: ArrayLike = 0.5,
                          lambda_T: ArrayLike | None = None) -> ClipCross:
    r"""Predict the onset at a smaller clip ``c_new`` from the onset at ``c``.

    .. math:: \lambda_T(c') \approx \lambda_T(c) + \lambda_\infty(c') - \lambda_\infty(c),
              \qquad \lambda_\infty(c') - \lambda_\infty(c) = \log(c'/c)/D
              \text{ on the capped branch.}

    Parameters
    ----------
    p, b, c, steps, lr, c_low, threshold
        As in :func:`finite_budget_onset`.
    c_new : array_like
        The new cap (> 1).
    c_low_new : array_like, optional
        The new floor; default ``1/c_new`` when ``c_low`` is None, else ``c_low``.
    lambda_T : array_like, optional
        The onset at ``c`` if already known (measured); computed exactly otherwise.

    Returns
    -------
    ClipCross

    Notes
    -----
    The finite-budget excess ``lambda_T - lambda_inf`` is carried over unchanged: on the
    capped branch the Euler multiplier at tau (``k = 1 - tau_G``) does not involve ``c``,
    and on the unclipped branch (``c >= c_crit = (1-q)/(1-tau_G)``) neither does the fixed
    point.  The clip enters the onset only through ``lambda_inf``; shrinking ``c`` below
    ``c_crit`` moves it down by ``log(c_crit/c')/D``.

    Examples
    --------
    >>> x = clip_cross_prediction(0.7, 0.9, 5.0, 1.2, 300, 0.5)  # c' below c_crit = 1.4
    >>> bool(x.lambda_inf_new < x.lambda_inf)
    True
    """
    checks.check_cap("c_new", c_new)  # by its own name, before the onset at c is computed
    if c_low_new is not None:
        checks.check_floor("c_low_new", c_low_new)
    new_floor = c_low_new if c_low_new is not None else (None if c_low is None else c_low)
    lt = np.asarray(finite_budget_onset(p, b, c, steps, lr, c_low=c_low, threshold=threshold)
                    if lambda_T is None else checks.check_nonnegative("lambda_T", lambda_T),
                    dtype=np.float64)
    pt = _point(p, b, c, c_low, threshold)
    lam_old, code = _asymptotic(pt)
    lam_new, _ = _asymptotic(_point(p, b, c_new, new_floor, threshold))
    with np.errstate(divide="ignore", invalid="ignore"):
        c_crit = np.where(pt.q < pt.tau, _K["c_crit"](pt.qbar, pt.taubar), np.inf)
        slope = _K["onset_dlogc"](pt.rate)
    follows_c = (code == _CAPPED) | ((code == _FLOORED) & (c_low is None))
    with np.errstate(invalid="ignore"):
        new = np.where(np.isfinite(lt), lt + (lam_new - lam_old), lt)
    return ClipCross(lambda_T=_out(lt), lambda_T_new=_out(new), lambda_inf=_out(lam_old),
                     lambda_inf_new=_out(lam_new), c_crit=_out(c_crit),
                     dlambda_dlogc=_out(np.where(follows_c, slope, 0.0)))
