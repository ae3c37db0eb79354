r"""K-ary listwise extension: thresholds of the clipped G-OPD dynamics over K classes.

Teacher ``t`` and reference ``r`` over K classes, student ``pi = softmax(theta)``, clipped
advantage ``A_k = clip(log t_k - log pi_k, log c_low, log c) + (lambda-1) l_k`` with
``l_k = log t_k - log r_k``, drift ``d theta_k/dt = pi_k (A_k - sum_j pi_j A_j)``.
The unclipped fixed point is ``pi_lambda ∝ r^(1-lambda) t^lambda``.  With ``y = lambda - 1``
every threshold is the root of one convex function of ``y``,

.. math:: H_a(y) = \log \sum_k t_k\, e^{y a_k} = L,

solved for a whole batch at once by a bracketing Newton/chord iteration (:func:`_convex_root`)
whose two ends stay on either side of the root by convexity.  The closed forms of the
brackets and of the Bernoulli reduction's error bound are lambdified from
:mod:`cliff.symbolic.kary`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy as sp
from numpy.typing import ArrayLike, NDArray
from scipy.special import logsumexp

from cliff._util import checks
from cliff._util.exact import product_minus
from cliff.symbolic import kary as S

__all__ = ["KaryResult", "solve_kary", "solve_kary_log", "kary_fixed_point", "aggregate",
           "Reduction", "reduction", "SUM_TOL"]

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

SUM_TOL = 1e-6
"""Largest accepted ``|sum_k pi_k - 1|``; inside it a distribution is renormalised."""

_TIE = 1e-12
"""A split is *calibrated* (:func:`reduction`) when its log-ratio spreads are within
``_TIE * (1 + max |log-prob|)``."""

_TIE_ULPS = 16.0
"""Classes whose log-ratios ``l_j``, ``l_k`` differ by at most ``_TIE_ULPS`` ulps of
``|l_j| + |l_k|`` are tied (one class): each log-ratio is computed to a few ulps of itself
(:func:`_log_ratio`), so only classes with equal ratios can fall inside.  A row is neutral
when every class ties with the smallest."""

_NORMAL = float(np.finfo(np.float64).tiny)


def _lambdify(args: tuple[sp.Symbol, ...], expr: sp.Expr) -> Any:
    return sp.lambdify(args, expr, modules="numpy", cse=True)


_tangent_root = _lambdify((S.L, S.H0, S.H1), S.TANGENT_ROOT)
_floor_level_near = _lambdify((S.cbar_low, S.T_rest), S.FLOOR_LEVEL_NEAR)
_floor_level_far = _lambdify((S.gamma_low, S.T_rest), S.FLOOR_LEVEL_FAR)
_floor_upper = _lambdify((S.L_rest, S.gap), S.FLOOR_UPPER_BRACKET)
_spread_collapse = _lambdify((S.c, S.c_low, S.spread), S.SPREAD_COLLAPSE)
_spread_collapse_default = _lambdify((S.c, S.spread), S.SPREAD_COLLAPSE_DEFAULT)
_reduction_bound = _lambdify((S.y_agg, S.sigma, S.q, S.rate), S.REDUCTION_BOUND)

KERNELS: dict[str, tuple[tuple[sp.Symbol, ...], sp.Expr, Any]] = {
    "tangent_root": ((S.L, S.H0, S.H1), S.TANGENT_ROOT, _tangent_root),
    "floor_level_near": ((S.cbar_low, S.T_rest), S.FLOOR_LEVEL_NEAR, _floor_level_near),
    "floor_level_far": ((S.gamma_low, S.T_rest), S.FLOOR_LEVEL_FAR, _floor_level_far),
    "floor_upper": ((S.L_rest, S.gap), S.FLOOR_UPPER_BRACKET, _floor_upper),
    "spread_collapse": ((S.c, S.c_low, S.spread), S.SPREAD_COLLAPSE, _spread_collapse),
    "spread_collapse_default": ((S.c, S.spread), S.SPREAD_COLLAPSE_DEFAULT,
                                _spread_collapse_default),
    "reduction_bound": ((S.y_agg, S.sigma, S.q, S.rate), S.REDUCTION_BOUND, _reduction_bound),
}
"""name -> (argument order, SymPy expression, lambdified function); tested for equality."""

_SIDES = np.array(["none", "cap", "floor"])


# --- input checks -----------------------------------------------------------------------
def _as_dist(name: str, value: ArrayLike) -> tuple[FloatArray, FloatArray, FloatArray]:
    """A ``[..., K]`` distribution renormalised inside :data:`SUM_TOL`: ``(as given,
    probabilities, log-probabilities)`` (an exactly normalised input comes back unchanged)."""
    arr = checks.as_float_array(name, value)
    if arr.ndim < 1 or arr.shape[-1] < 2:
        raise ValueError(f"{name} must have shape [..., K] with K >= 2 classes, got shape "
                         f"{arr.shape}")
    if arr.size and not (np.isfinite(arr).all() and arr.min() > 0.0):
        bad = ~(np.isfinite(arr) & (arr > 0.0))
        i = tuple(int(j) for j in np.argwhere(bad)[0])
        raise ValueError(f"{name} must hold finite probabilities > 0 (a class with zero mass "
                         f"has no IS ratio: drop it); entry {i} is {arr[i]!r}")
    total = arr.sum(axis=-1)
    off = np.abs(total - 1.0) > SUM_TOL
    if off.any():
        i = tuple(int(j) for j in np.argwhere(off)[0])
        raise ValueError(f"{name} must sum to 1 over its last axis within {SUM_TOL:g}; the "
                         f"distribution at {i if i else 'index ()'} sums to {total[i]!r}")
    return arr, arr / total[..., None], np.log(arr) - np.log(total)[..., None]


def _as_log_dist(name: str, value: ArrayLike) -> FloatArray:
    """Log of a ``[..., K]`` distribution, renormalised inside :data:`SUM_TOL`."""
    return _as_dist(name, value)[2]


def _check_log_dist(name: str, value: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """``(log-probabilities as given, normalised log-probabilities)``."""
    log_p = checks.as_float_array(name, value)
    if log_p.ndim < 1 or log_p.shape[-1] < 2:
        raise ValueError(f"{name} must have shape [..., K] with K >= 2, got {log_p.shape}")
    if not np.isfinite(log_p).all():
        raise ValueError(f"{name} must hold finite log-probabilities (every class mass > 0)")
    norm = logsumexp(log_p, axis=-1)
    if np.abs(norm).max(initial=0.0) > SUM_TOL:
        raise ValueError(f"{name} must be normalised within {SUM_TOL:g}; a log normaliser is "
                         f"{float(norm.flat[np.argmax(np.abs(norm))])!r}")
    return log_p, log_p - norm[..., None]


def _log_ratio(t: FloatArray, r: FloatArray) -> FloatArray:
    """``log(t / r)`` elementwise, to a few ulps of itself: ``log1p((t - r)/r)`` where
    ``t/r`` is in (1/2, 2) (``t - r`` exact), ``log(t/r)`` where the quotient is a normal
    float, ``log t - log r`` where it would overflow or underflow."""
    with np.errstate(over="ignore", under="ignore", divide="ignore"):
        x = t / r
        out = np.log(x)
    near = np.nonzero((x > 0.5) & (x < 2.0))
    out[near] = np.log1p((t[near] - r[near]) / r[near])
    far = np.nonzero(~((x >= _NORMAL) & (x <= 1.0 / _NORMAL)))
    out[far] = np.log(t[far]) - np.log(r[far])
    return out


def _caps(c: ArrayLike, c_low: ArrayLike | None, shape: tuple[int, ...]) -> tuple[
        FloatArray, FloatArray]:
    """``(c, c_low)`` broadcast to the batch; the default ``c_low`` is the float ``1/c``
    (reported; the thresholds take ``1/c`` exactly)."""
    c_ = checks.check_cap("c", c)
    cl_ = 1.0 / c_ if c_low is None else checks.check_floor("c_low", c_low)
    c_, cl_ = checks.broadcast(c=c_, c_low=cl_)
    try:
        return np.broadcast_to(c_, shape), np.broadcast_to(cl_, shape)
    except ValueError:
        raise ValueError(f"c {np.shape(c_)} and c_low {np.shape(cl_)} must broadcast to the "
                         f"batch shape {shape} of the distributions") from None


# --- the convex root finder -------------------------------------------------------------
def _H(log_w: FloatArray, a: FloatArray, y: FloatArray) -> tuple[FloatArray, FloatArray]:
    """``H(y) = log sum_k w_k e^{y a_k}`` and ``H'(y)``, shape [N], for normalised ``w``.

    Where ``|H| < 1/2`` it is recomputed as ``log1p(sum_k w_k expm1(y a_k))`` (every ``a_k``
    of one sign: no cancellation, full relative precision near ``y = 0``, where the level
    ``log c`` can be 1e-5); a ``logsumexp`` elsewhere.
    """
    ya = y[:, None] * a
    z = log_w + ya
    top = z.max(axis=-1)
    e = np.exp(z - top[:, None])
    total = e.sum(axis=-1)
    h = top + np.log(total)
    slope = np.einsum("nk,nk->n", e, a) / total
    near = np.abs(h) < 0.5  # near y = 0 the log1p form keeps the relative precision
    if near.any():
        lw, yn = log_w[near], ya[near]
        # each term w_k expm1(y a_k) to its own relative precision: as written, or as
        # sign * exp(log w_k + log|expm1(y a_k)|) where w_k is subnormal or e^{y a_k} overflows
        tiny = (lw < -600.0) | (yn > 600.0)
        with np.errstate(over="ignore"):
            term = np.exp(lw) * np.expm1(np.minimum(yn, 600.0))
        if tiny.any():
            lt, yt = lw[tiny], yn[tiny]
            with np.errstate(divide="ignore"):  # y a_k = 0: a zero term
                log_abs = np.maximum(yt, 0.0) + np.log(-np.expm1(-np.abs(yt)))
            term[tiny] = np.sign(yt) * np.exp(lt + log_abs)
        h[near] = np.log1p(term.sum(axis=-1))
    return h, slope


def _convex_root(log_w: FloatArray, a: FloatArray, target: FloatArray, pos: FloatArray,
                 neg: FloatArray, *, max_iter: int = 100, rtol: float = 4e-16) -> FloatArray:
    r"""Root of the convex ``phi(y) = H(y) - target`` between ``pos`` (phi >= 0) and ``neg``
    (phi <= 0), for a batch [N] at once.

    Newton from ``pos`` stays on the ``phi >= 0`` side (a convex function lies above its
    tangents) and the chord root stays on the ``phi <= 0`` side (it lies below its chords),
    so the pair is a bracket at every step; it shrinks quadratically.  A row stops when its
    bracket is below ``rtol * |y|`` wide or neither end can move (rounding); only the
    unfinished rows are evaluated.
    """
    pos, neg = pos.astype(np.float64, copy=True), neg.astype(np.float64, copy=True)
    hp, dp = _H(log_w, a, pos)
    hn, _ = _H(log_w, a, neg)
    idx = np.arange(len(pos))
    for _ in range(max_iter):
        ps, ns, fp, fn, ds = pos[idx], neg[idx], hp[idx] - target[idx], hn[idx] - target[idx], \
            dp[idx]
        with np.errstate(divide="ignore", invalid="ignore"):
            newton = ps - fp / ds
            chord = ns - fn * (ps - ns) / (fp - fn)
        lo, hi = np.minimum(ps, ns), np.maximum(ps, ns)
        newton = np.where(np.isfinite(newton) & (newton >= lo) & (newton <= hi), newton, ps)
        chord = np.where(np.isfinite(chord) & (chord >= lo) & (chord <= hi), chord, ns)
        # Every candidate lies inside the bracket, so its sign alone says which end it
        # replaces (rounding may put the Newton or chord point on the other side).
        changed = np.zeros(len(idx), dtype=bool)
        lw, aa, tg = log_w[idx], a[idx], target[idx]
        for cand in (newton, chord):
            hc, dc = _H(lw, aa, cand)
            to_pos = (hc >= tg) & (cand != pos[idx])
            to_neg = (hc < tg) & (cand != neg[idx])
            ip, ineg = idx[to_pos], idx[to_neg]
            pos[ip], hp[ip], dp[ip] = cand[to_pos], hc[to_pos], dc[to_pos]
            neg[ineg], hn[ineg] = cand[to_neg], hc[to_neg]
            changed |= to_pos | to_neg
        width = np.abs(pos[idx] - neg[idx])
        live = changed & (width > rtol * np.maximum(np.abs(pos[idx]), np.abs(neg[idx])))
        idx = idx[live]
        if idx.size == 0:
            break
    # a converged bracket has both ends within rounding; a stalled one (the tangent landed on
    # the root) has one exact end: return the end closer to the level
    return np.where(np.abs(hp - target) <= np.abs(hn - target), pos, neg)


# --- the K-ary thresholds ---------------------------------------------------------------
@dataclass(frozen=True)
class KaryResult:
    r"""Thresholds of K-class positions (returned by :func:`solve_kary`).

    Attributes
    ----------
    lambda_star : float or ndarray, batch shape
        Smallest ``lambda >= 1`` at which some class's ratio ``t_k / pi_lambda,k`` at the
        unclipped fixed point reaches ``c`` or ``c_low``; ``inf`` when ``t == r``.
    lambda_collapse : float or ndarray
        Smallest ``lambda`` past which the clipped drift has no zero in the open simplex.
    binding : int or ndarray of int
        A class whose ratio is clipped first (``-1`` when neutral).
    side : str or ndarray of str
        ``'cap'`` (a shrinking class's ratio reaches ``c``), ``'floor'`` (a growing class's
        ratio falls to ``c_low``) or ``'none'``.
    binding_mask : ndarray of bool, shape ``[..., K]``
        Every class clipped first (ties), or with ``binding=E`` the aggregated class that
        clips (``E`` or its complement).
    """

    lambda_star: Any
    lambda_collapse: Any
    binding: Any
    side: Any
    binding_mask: BoolArray


def _upper_bracket(log_w: FloatArray, a: FloatArray, level: FloatArray) -> FloatArray:
    """A ``y >= 0`` with ``H(y) >= level`` for ``H = log sum_k w_k e^{y a_k}`` (normalised
    ``w``, every ``a_k >= 0``, ``level > 0``): the smaller of the tangent root at 0
    (``TANGENT_ROOT``; H lies above its tangents) and, for each class with ``a_k > 0``, the
    ``y`` at which that class alone reaches the level (``H >= log w_k + y a_k``).  The
    tangent alone runs to inf when the growing classes' mass is tiny."""
    _, h1 = _H(log_w, a, np.zeros(len(level)))
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        tangent = _tangent_root(level, np.zeros_like(level), h1)
        alone = np.where(a > 0, (level[:, None] - log_w) / np.where(a > 0, a, 1.0), np.inf)
    tangent = np.where(np.isfinite(tangent) & (tangent > 0), tangent, np.inf)
    return np.minimum(tangent, alone.min(axis=-1))


def _thresholds(log_t: FloatArray, t: FloatArray, ell: FloatArray, c: FloatArray,
                c_low: FloatArray, default: bool) -> tuple[
        FloatArray, FloatArray, NDArray[np.int64], NDArray[np.int64], BoolArray]:
    """Flat [N, K] core: lambda*, lambda_collapse, binding index, side code, binding mask.

    ``log_t``, ``t``: the normalised teacher; ``ell``: the log-ratios ``log t_k/r_k`` up to
    a constant per row (it cancels in every difference), each to a few ulps of itself.
    ``default``: ``c_low`` is ``1/c`` exactly (``log c_low = -log c``, margins from ``c``).
    """
    n, k = log_t.shape
    lo_ell, hi_ell = ell.min(axis=-1), ell.max(axis=-1)
    spread = hi_ell - lo_ell
    d = ell - lo_ell[:, None]  # >= 0, zero on the cap-binding classes
    e = hi_ell[:, None] - ell  # >= 0, zero on the floor-binding classes
    ulp = _TIE_ULPS * np.finfo(np.float64).eps
    is_min = d <= ulp * (np.abs(ell) + np.abs(lo_ell)[:, None])
    is_max = e <= ulp * (np.abs(ell) + np.abs(hi_ell)[:, None])
    neutral = is_min.all(axis=-1)
    d, e = np.where(is_min, 0.0, d), np.where(is_max, 0.0, e)
    live = ~neutral
    log_c, zero = np.log(c), np.zeros(n)
    inf = np.full(n, np.inf)

    # cap: log sum_k t_k e^{y d_k} = log c, increasing; y = 0 gives 0 < log c.
    y_cap = inf.copy()
    if live.any():
        lt, dd, L = log_t[live], d[live], log_c[live]
        y_cap[live] = _convex_root(lt, dd, L, _upper_bracket(lt, dd, L), zero[live])

    # floor: t(top) + sum_{rest} t_k e^{-y e_k} = c_low, reachable iff t(top) < c_low, solved
    # over the rest: log sum_{rest} (t_k / t(rest)) e^{-y e_k} = log((c_low - t(top))/t(rest)),
    # whose level keeps its digits both as c_low -> 1 and as c_low -> t(top).
    top, rest = (t * is_max).sum(axis=-1), (t * ~is_max).sum(axis=-1)
    if default:  # both margins times c: 1 - c t(top) = c t(rest) - (c - 1)
        gap = np.where(top < 0.5, -product_minus(c, np.minimum(top, 0.5), 1.0),
                       product_minus(c, rest, c - 1.0))
    else:  # c_low - t(top) = t(rest) - (1 - c_low), one of the two forms exact
        gap = np.where(top < 0.5, c_low - top, rest - (1.0 - c_low))
    fl = live & (gap > 0)
    y_floor = inf.copy()
    if fl.any():
        tr, g = rest[fl], gap[fl]
        cbar = (c[fl] - 1.0) / c[fl] if default else 1.0 - c_low[fl]
        scale = c[fl] if default else 1.0
        near = cbar <= 0.5 * tr
        level = np.where(near, _floor_level_near(np.minimum(cbar, 0.5 * tr), tr),
                         _floor_level_far(g, tr * scale))
        lw = np.where(is_max[fl], -np.inf, log_t[fl])
        lw = lw - logsumexp(lw, axis=-1)[:, None]  # weights within the classes below the top
        ee = e[fl]
        gmin = np.where(is_max[fl], np.inf, ee).min(axis=-1)
        # twice the closed-form bound: still an upper bracket, robust to its rounding
        neg = 2.0 * _floor_upper(level, gmin)
        y_floor[fl] = _convex_root(lw, -ee, level, zero[fl], neg)

    # collapse: the classes above the minimum, log sum_{d>0} t_k e^{y d_k} = log c; or the
    # ratio spread exceeding log(c / c_low) (derivations/model.md, "K-ary
    # extension"; derivations/notes/kary.md).
    y_col = inf.copy()
    if live.any():
        lt = np.where(is_min, -np.inf, log_t)[live]
        lt = lt - logsumexp(lt, axis=-1)[:, None]  # weights within the classes above
        # log(1 - t(min classes)) < 0 from the smaller of the two masses, so that the level
        # log c - log(1 - t(min)) keeps its relative precision when both terms are tiny
        t_min, t_up = (t * is_min).sum(axis=-1)[live], (t * ~is_min).sum(axis=-1)[live]
        h0 = np.where(t_min < 0.5, np.log1p(-np.minimum(t_min, 0.5)), np.log(t_up))
        dd, L = d[live], log_c[live] - h0
        y_col[live] = _convex_root(lt, dd, L, _upper_bracket(lt, dd, L), zero[live])
    with np.errstate(divide="ignore"):
        s_live = np.where(live, spread, 1.0)
        y_spread = np.where(live, _spread_collapse_default(c, s_live) if default else
                            _spread_collapse(c, c_low, s_live), inf)
    y_col = np.minimum(y_col, y_spread)

    floor_first = y_floor < y_cap
    side = np.where(neutral, 0, np.where(floor_first, 2, 1))
    mask = np.where(floor_first[:, None], is_max, is_min) & live[:, None]
    binding = np.where(live, np.argmax(mask, axis=-1), -1)
    # lambda* <= lambda_collapse holds exactly (the cap's sum contains the collapse's; at the
    # spread's root max/min ratio is c / c_low, so a side has exited); the roots, each to a
    # few ulps, can cross only by rounding where the window is thin
    y_star = np.minimum(np.minimum(y_cap, y_floor), y_col)
    return 1.0 + y_star, 1.0 + y_col, binding, side, mask


def _finish(shape: tuple[int, ...], k: int, out: tuple[Any, ...]) -> KaryResult:
    ls, lc, bind, side, mask = out
    scalar = len(shape) == 0

    def shaped(v: Any) -> Any:
        v = np.asarray(v).reshape(shape)
        return v.item() if scalar else v

    return KaryResult(shaped(ls), shaped(lc), shaped(bind), shaped(_SIDES[side]),
                      np.asarray(mask).reshape(*shape, k))


def solve_kary_log(log_teacher: ArrayLike, log_reference: ArrayLike, c: ArrayLike, *,
                   c_low: ArrayLike | None = None) -> KaryResult:
    """:func:`solve_kary` from log-probabilities (keeps tail masses below 1e-16 exact)."""
    raw_t, lt = _check_log_dist("log_teacher", log_teacher)
    raw_r, _ = _check_log_dist("log_reference", log_reference)
    if lt.shape != raw_r.shape:
        raise ValueError(f"log_teacher and log_reference must have the same shape [..., K], "
                         f"got {lt.shape} and {raw_r.shape}")
    shape, k = lt.shape[:-1], lt.shape[-1]
    c_, cl_ = _caps(c, c_low, shape)
    with np.errstate(invalid="ignore"):  # inf - inf cannot occur: entries are finite
        ell = raw_t - raw_r  # the normalisers shift every class alike
    out = _thresholds(lt.reshape(-1, k), np.exp(lt).reshape(-1, k), ell.reshape(-1, k),
                      c_.reshape(-1), cl_.reshape(-1), c_low is None)
    return _finish(shape, k, out)


def _binding_mask(binding: Any, shape: tuple[int, ...]) -> BoolArray:
    k = shape[-1]
    arr = np.asarray(binding)
    if arr.dtype == np.bool_:
        try:
            mask = np.broadcast_to(arr, shape)
        except ValueError:
            raise ValueError(f"binding: a class mask of shape {arr.shape} does not broadcast "
                             f"to the distributions' shape {shape}") from None
    elif arr.ndim == 0 and arr.dtype.kind in "iu":
        if not 0 <= int(arr) < k:
            raise ValueError(f"binding must be a class index in [0, {k}), got {int(arr)}")
        mask = np.broadcast_to(np.arange(k) == int(arr), shape)
    else:
        raise ValueError(f"binding must be None, a class index or a boolean class mask, got "
                         f"{binding!r}")
    n_in = mask.sum(axis=-1)
    if (n_in == 0).any() or (n_in == k).any():
        raise ValueError("binding: the class set E must be non-empty and leave a non-empty "
                         "rest at every position")
    return mask


def aggregate(teacher_probs: ArrayLike, ref_probs: ArrayLike, binding: Any
              ) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    r"""Log masses of a class set ``E`` and of the rest: ``(log t(E), log t(E^c), log r(E),
    log r(E^c))``, each a ``logsumexp`` over its own classes (no ``1 - p`` cancellation)."""
    lt = _as_log_dist("teacher_probs", teacher_probs)
    lr = _as_log_dist("ref_probs", ref_probs)
    _same_shape(lt, lr)
    mask = _binding_mask(binding, lt.shape)
    ninf = -np.inf
    return (logsumexp(np.where(mask, lt, ninf), axis=-1),
            logsumexp(np.where(mask, ninf, lt), axis=-1),
            logsumexp(np.where(mask, lr, ninf), axis=-1),
            logsumexp(np.where(mask, ninf, lr), axis=-1))


def _same_shape(lt: FloatArray, lr: FloatArray) -> None:
    if lt.shape != lr.shape:
        raise ValueError(f"teacher_probs and ref_probs must have the same shape [..., K], got "
                         f"{lt.shape} and {lr.shape}")


def solve_kary(teacher_probs: ArrayLike, ref_probs: ArrayLike, c: ArrayLike, *,
               c_low: ArrayLike | None = None, binding: Any = None) -> KaryResult:
    r"""Clip-safety threshold and collapse point of the K-class clipped G-OPD dynamics.

    With ``l_k = log t_k - log r_k``, ``y = lambda - 1``, ``d_k = l_k - min l``,
    ``e_k = max l - l_k``, the unclipped fixed point ``pi_lambda ∝ r^(1-lambda) t^lambda``
    has extreme importance ratios

    .. math::

        \max_k \frac{t_k}{\pi_{\lambda,k}} = \sum_k t_k e^{y d_k}, \qquad
        \min_k \frac{t_k}{\pi_{\lambda,k}} = \sum_k t_k e^{-y e_k},

    so ``lambda* = 1 + min(y_cap, y_floor)`` with ``sum_k t_k e^{y_cap d_k} = c`` and
    ``sum_k t_k e^{-y_floor e_k} = c_low`` (reachable only if the top classes' teacher mass
    is below ``c_low``).  The clipped drift loses its last interior zero at

    .. math::

        \lambda_{\rm collapse} = 1 + \min\Big(y:\ \sum_{k: d_k > 0} t_k e^{y d_k} = c,\;\;
        \frac{\log(c / c_{\rm low})}{\max l - \min l}\Big).

    Parameters
    ----------
    teacher_probs, ref_probs : array_like, shape ``[..., K]``
        Teacher and reference (warm start) distributions over ``K >= 2`` classes, every
        entry > 0, each summing to 1 within ``1e-6`` (then renormalised).
    c : array_like
        IS ratio cap, > 1; broadcast over the batch shape ``[...]``.
    c_low : array_like, optional
        Ratio floor in [0, 1); default ``1/c``; 0 means no lower clip.
    binding : None, int or bool mask ``[..., K]``
        ``None``: find the binding class.  Otherwise a class set ``E`` to aggregate against
        the rest: the result is the Bernoulli model with ``p = t(E)``, ``b = r(E)`` (equal
        to ``cliff.solve(t(E), r(E), c)``; class 0 of the two-class problem is ``E``).

    Returns
    -------
    KaryResult

    Notes
    -----
    Both thresholds and the collapse solve ``log sum_k w_k e^{y a_k} = L``, convex in ``y``
    (a log-partition), by a vectorised Newton/chord bracket: the tangent at ``y = 0``
    (closed form ``cliff.symbolic.kary.TANGENT_ROOT``), or the point
    where one class alone reaches the level if that is nearer, starts the end past the root,
    the chord keeps the other; both stay valid by convexity.  The floor exit is solved over
    the classes below the top, at the level ``FLOOR_LEVEL_NEAR`` / ``FLOOR_LEVEL_FAR``.
    For K = 2 every formula reduces to :func:`cliff.solve` (and agrees with it to 1e-12 in
    ``lambda - 1`` on exactly normalised pairs).  Each ``l_k`` is computed to a few ulps of
    itself; classes whose ``l_k`` agree within 16 ulps are tied, and only a row whose
    classes all tie is neutral.  ``lambda* <= lambda_collapse`` on every row.  Derivation:
    ``derivations/notes/kary.md``.

    Near a tie (``t ~ r``) ``lambda* - 1 ~ log c / (max l - min l)`` is ill-conditioned in
    the *inputs*, not in this evaluation: the answer is exact for the floats given, but a
    two-class pair written ``[b, 1 - b]`` in float64 carries ``1 - b`` rounded by up to
    ``2^-54``, which moves a log-ratio of ``1e-11`` by about ``1e-16 / (1 - b)``.  For two
    classes pass ``(p, b)`` to :func:`cliff.solve`, which takes the complements exactly
    (``solve_kary([0.3, 0.7], [b, 1 - b], 5)`` with ``b = 0.3 (1 + 1e-11)`` is
    133297843910.9, the exact answer for those floats; ``solve(0.3, b, 5)`` is
    133297103956.5, the exact answer for ``(b, 1 - b)``).

    Examples
    --------
    >>> import cliff
    >>> r = solve_kary([[0.9993, 0.0007]], [[0.5, 0.5]], 5.0)
    >>> bool(abs(r.lambda_star[0] - cliff.solve(0.9993, 0.5, 5.0).lambda_star) < 1e-12)
    True
    """
    if binding is not None:
        ltE, ltR, lrE, lrR = aggregate(teacher_probs, ref_probs, binding)
        res = solve_kary_log(np.stack([ltE, ltR], -1), np.stack([lrE, lrR], -1), c,
                             c_low=c_low)
        mask = _binding_mask(binding, np.shape(teacher_probs))
        agg = np.asarray(res.binding_mask)
        full = np.where(agg[..., :1], mask, ~mask) & agg.any(axis=-1, keepdims=True)
        return KaryResult(res.lambda_star, res.lambda_collapse, res.binding, res.side, full)
    raw_t, t, lt = _as_dist("teacher_probs", teacher_probs)
    raw_r, _, lr = _as_dist("ref_probs", ref_probs)
    _same_shape(lt, lr)
    shape, k = lt.shape[:-1], lt.shape[-1]
    c_, cl_ = _caps(c, c_low, shape)
    ell = _log_ratio(raw_t, raw_r)  # the normalisers shift every class alike
    out = _thresholds(lt.reshape(-1, k), t.reshape(-1, k), ell.reshape(-1, k),
                      c_.reshape(-1), cl_.reshape(-1), c_low is None)
    return _finish(shape, k, out)


def kary_fixed_point(teacher_probs: ArrayLike, ref_probs: ArrayLike, lam: ArrayLike
                     ) -> FloatArray:
    r"""Unclipped K-ary fixed point ``pi_lambda ∝ r^(1-lambda) t^lambda``, shape ``[..., K]``.

    The maximiser of ``lambda E_pi[log t/r] - KL(pi || r)`` over the simplex and the zero
    of the unclipped drift (``cliff.symbolic.kary.derive_fixed_point``).
    """
    lt = _as_log_dist("teacher_probs", teacher_probs)
    lr = _as_log_dist("ref_probs", ref_probs)
    _same_shape(lt, lr)
    lam_ = checks.check_nonnegative("lam", lam)[..., None]
    z = lr + lam_ * (lt - lr)
    return np.exp(z - logsumexp(z, axis=-1, keepdims=True))


# --- the Bernoulli reduction ------------------------------------------------------------
@dataclass(frozen=True)
class Reduction:
    r"""The K-ary ``lambda*`` against the Bernoulli ``lambda*`` of ``E`` against the rest.

    Attributes
    ----------
    lambda_star_kary, lambda_star_aggregated : ndarray
        ``solve_kary(t, r, c).lambda_star`` and ``solve_kary(t, r, c, binding=E)``.
    error : ndarray
        ``lambda_star_aggregated - lambda_star_kary``.
    bound : ndarray
        Upper bound on ``error`` (``cliff.symbolic.kary.REDUCTION_BOUND``), valid where
        ``bounded``; ``0`` exactly when the split is calibrated.
    sigma : ndarray
        Calibration gap ``max(s_E, s_rest) + (l_G - min l) >= 0`` (log-ratio spreads inside
        each group plus the shrinking group's offset from the global minimum).
    calibrated : ndarray of bool
        ``t_k / r_k`` constant inside ``E`` and inside the rest (within ties): then the
        fixed points, ratios and thresholds of the two models coincide.
    bounded : ndarray of bool
        Both models bind on the cap side, where ``0 <= error <= bound`` is proved.
    """

    lambda_star_kary: FloatArray
    lambda_star_aggregated: FloatArray
    error: FloatArray
    bound: FloatArray
    sigma: FloatArray
    calibrated: BoolArray
    bounded: BoolArray


def reduction(teacher_probs: ArrayLike, ref_probs: ArrayLike, binding: Any, c: ArrayLike, *,
              c_low: ArrayLike | None = None) -> Reduction:
    r"""How far the aggregated Bernoulli ``lambda*`` of ``E`` is from the K-ary one.

    Notes
    -----
    With ``G`` the aggregated class whose ratio falls (``l_G = log t(G)/r(G)`` the smaller)
    and ``y = lambda - 1 >= 0``, the power-mean inequality gives, at every ``y``,

    .. math::

        \max_k \frac{t_k}{\pi_{\lambda,k}} \;\ge\; \frac{t(G)}{m_{\lambda}(G)}, \qquad
        0 \le \log\frac{\max_k t_k/\pi_{\lambda,k}}{t(G)/m_\lambda(G)} \le \sigma y,

    so on the cap side ``lambda*_kary <= lambda*_aggregated`` (aggregation is *not*
    conservative) and, the Bernoulli max log-ratio being convex with slope at least ``q D``
    (``q`` the growing class's teacher mass, ``D`` the aggregated log-odds gap),

    .. math:: 0 \le \lambda^*_{\rm agg} - \lambda^*_K \le (\lambda^*_{\rm agg} - 1)\,
              \sigma / (q D).

    ``sigma = 0`` (calibrated) makes the reduction exact.
    """
    lt = _as_log_dist("teacher_probs", teacher_probs)
    lr = _as_log_dist("ref_probs", ref_probs)
    _same_shape(lt, lr)
    mask = _binding_mask(binding, lt.shape)
    full = solve_kary(teacher_probs, ref_probs, c, c_low=c_low)
    agg = solve_kary(teacher_probs, ref_probs, c, c_low=c_low, binding=mask)
    ltE, ltR, lrE, lrR = aggregate(teacher_probs, ref_probs, mask)
    ell = lt - lr
    scale = 1.0 + np.maximum(np.abs(lt), np.abs(lr)).max(axis=-1)
    s_in = _spread(ell, mask)
    s_out = _spread(ell, ~mask)
    l_E, l_R = ltE - lrE, ltR - lrR
    grow_E = l_E > l_R
    l_G = np.minimum(l_E, l_R)
    sigma = np.maximum(s_in, s_out) + np.maximum(l_G - ell.min(axis=-1), 0.0)
    q = np.exp(np.where(grow_E, ltE, ltR))
    rate = np.abs(l_E - l_R)
    ls_k = np.asarray(full.lambda_star, dtype=np.float64)
    ls_a = np.asarray(agg.lambda_star, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        bound = np.where(rate > 0, _reduction_bound(ls_a - 1.0, sigma, q, rate), np.inf)
        error = np.where(np.isfinite(ls_a), ls_a - ls_k, np.where(np.isfinite(ls_k), np.inf, 0))
    calibrated = sigma <= _TIE * scale * 4
    bounded = (np.asarray(full.side) == "cap") & (np.asarray(agg.side) == "cap")
    return Reduction(ls_k, ls_a, error, np.where(calibrated, 0.0, bound), sigma, calibrated,
                     bounded)


def _spread(ell: FloatArray, mask: BoolArray) -> FloatArray:
    hi = np.where(mask, ell, -np.inf).max(axis=-1)
    lo = np.where(mask, ell, np.inf).min(axis=-1)
    return hi - lo


# --- benchmark --------------------------------------------------------------------------
