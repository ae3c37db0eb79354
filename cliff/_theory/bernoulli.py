r"""Clip-safety thresholds of the Bernoulli model, lambdified from :mod:`cliff.symbolic.bernoulli`.

One structural position: the teacher puts mass ``p`` on the contract-valid modal class, the
G-OPD reference (the warm start) puts ``b``, and the student's modal mass ``m`` follows the
clipped G-OPD drift.  Every formula evaluated here is a SymPy expression of
:mod:`cliff.symbolic.bernoulli`, turned into numpy by ``sympy.lambdify`` at import; this
module only validates inputs, orients each point (which class grows with ``lambda``) and
picks the branch (which clip binds).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy as sp
from numpy.typing import ArrayLike, NDArray
from scipy.special import expit

from cliff._util import blocks, checks
from cliff._util.exact import product_minus
from cliff.symbolic import bernoulli as S

__all__ = ["SolveResult", "solve", "fixed_point", "clipped_fixed_point", "clip_safe_region"]

FloatArray = NDArray[np.float64]


def _lambdify(args: tuple[sp.Symbol, ...], expr: sp.Expr) -> Any:
    return sp.lambdify(args, expr, modules="numpy", cse=True)


# Generated numeric kernels; the argument order is part of their definition.
_rate = _lambdify((S.q, S.qbar, S.beta, S.delta), S.RATE)
_headroom_shrinking = _lambdify((S.q, S.c), S.HEADROOM_SHRINKING)
_headroom_growing = _lambdify((S.cbar_low, S.gamma_low), S.HEADROOM_GROWING_MARGIN)
_threshold = _lambdify((S.kappa, S.rate), S.THRESHOLD)
_collapse_teacher = _lambdify((S.c, S.ell_q), S.COLLAPSE_LOG_TEACHER)
_collapse_floor = _lambdify((S.c, S.ell_low), S.COLLAPSE_LOG_FLOOR)
_log_rate_ratio = _lambdify((S.delta, S.ell_beta, S.ell_qbar), S.LOG_RATE_RATIO)
_log_shrinking_ratio = _lambdify((S.c, S.ell_q), S.LOG_SHRINKING_RATIO)
_log_growing_ratio = _lambdify((S.cbar_low, S.gamma_low), S.LOG_GROWING_RATIO)
_softplus_small = _lambdify((S.z,), S.SOFTPLUS_SMALL)
_softplus_large = _lambdify((S.z,), S.SOFTPLUS_LARGE)
_logit_fixed_point = _lambdify((S.p, S.b, S.lam), S.LOGIT_FIXED_POINT)
_CLIPPED_ARGS = {"shrinking": (S.x, S.c, S.ell_q), "growing": (S.x, S.ell_qbar, S.ell_low)}
_CLIPPED_EXPRS = {
    ("shrinking", "growing"): S.CLIPPED_SHRINKING_GROWING_MASS,
    ("shrinking", "shrinking"): S.CLIPPED_SHRINKING_SHRINKING_MASS,
    ("growing", "growing"): S.CLIPPED_GROWING_GROWING_MASS,
    ("growing", "shrinking"): S.CLIPPED_GROWING_SHRINKING_MASS,
}  # (clipped side, class asked for) -> its mass at the clipped fixed point
_clipped = {k: _lambdify(_CLIPPED_ARGS[k[0]], e) for k, e in _CLIPPED_EXPRS.items()}
_region = {k: _lambdify((S.p, S.c, S.c_low), e) for k, e in S.REGION.items()}

KERNELS: dict[str, tuple[tuple[sp.Symbol, ...], sp.Expr, Any]] = {
    "rate": ((S.q, S.qbar, S.beta, S.delta), S.RATE, _rate),
    "headroom_shrinking": ((S.q, S.c), S.HEADROOM_SHRINKING, _headroom_shrinking),
    "headroom_growing": ((S.cbar_low, S.gamma_low), S.HEADROOM_GROWING_MARGIN, _headroom_growing),
    "threshold": ((S.kappa, S.rate), S.THRESHOLD, _threshold),
    "collapse_teacher": ((S.c, S.ell_q), S.COLLAPSE_LOG_TEACHER, _collapse_teacher),
    "collapse_floor": ((S.c, S.ell_low), S.COLLAPSE_LOG_FLOOR, _collapse_floor),
    "log_rate_ratio": ((S.delta, S.ell_beta, S.ell_qbar), S.LOG_RATE_RATIO, _log_rate_ratio),
    "log_shrinking_ratio": ((S.c, S.ell_q), S.LOG_SHRINKING_RATIO, _log_shrinking_ratio),
    "log_growing_ratio": ((S.cbar_low, S.gamma_low), S.LOG_GROWING_RATIO, _log_growing_ratio),
    "softplus_small": ((S.z,), S.SOFTPLUS_SMALL, _softplus_small),
    "softplus_large": ((S.z,), S.SOFTPLUS_LARGE, _softplus_large),
    "logit_fixed_point": ((S.p, S.b, S.lam), S.LOGIT_FIXED_POINT, _logit_fixed_point),
    **{f"clipped_{side}_{mass}": (_CLIPPED_ARGS[side], e, _clipped[side, mass])
       for (side, mass), e in _CLIPPED_EXPRS.items()},
}
"""name -> (argument order, SymPy expression, lambdified function); tested for equality."""

_REGIMES = np.array(["softening", "neutral", "sharpening"])
_BINDINGS = np.array(["mode", "none", "tail"])


def _pick(mask: NDArray[np.bool_], a: FloatArray, b: FloatArray) -> FloatArray:
    """``np.where(mask, a, b)``, skipping the copy when every point takes one side."""
    if mask.all():
        return a
    if not mask.any():
        return b
    return np.where(mask, a, b)


_BIG = 2.0 ** 1000
"""A headroom ``log1p(u/v)`` is formed directly while ``u <= v * _BIG``, else in log space."""
_NORMAL = float(np.finfo(np.float64).tiny)
"""Smallest normal float64: a product below it has lost digits (subnormal or zero)."""


@dataclass(frozen=True)
class _Oriented:
    """Growing-class coordinates (q, 1-q, beta, q-beta) and ``ell_q = log q``, each computed
    without cancellation: ``(p, 1-p, b, p-b)`` when sharpening, ``(1-p, p, 1-b, b-p)``
    otherwise; ``ell_q`` is ``log p`` or ``log1p(-p)``, never the log of a rounded ``1 - p``.
    All arrays have the block's length."""

    sharp: NDArray[np.bool_]
    p: FloatArray
    b: FloatArray
    q: FloatArray
    qbar: FloatArray
    beta: FloatArray
    delta: FloatArray
    ell_q: FloatArray


def _orient(p: FloatArray, b: FloatArray, c: FloatArray) -> _Oriented:
    p, b = np.broadcast_arrays(p, b)
    sharp = p > b
    p_bar = 1.0 - p  # exact for p >= 1/2 (Sterbenz), within half an ulp otherwise
    q = _pick(sharp, p, p_bar)
    ell_q = np.asarray(np.log(q))
    # Where q = 1 - p was rounded (softening, p < 1/2, so q > 1/2) log q is off by at most
    # 1.2e-16, which log(c / q) >= log c absorbs unless c < 2: there take it from p itself.
    if (c < 2.0).any():
        rounded = np.broadcast_to(~sharp & (p < 0.5) & (c < 2.0), p.shape)
        ell_q[rounded] = np.log1p(-p[rounded])
    return _Oriented(sharp, p, b, q, _pick(sharp, p_bar, p), _pick(sharp, b, 1.0 - b),
                     np.abs(p - b), ell_q)


def _logs_of(o: _Oriented, idx: NDArray[np.intp]) -> tuple[FloatArray, FloatArray]:
    """``(log beta, log qbar)`` at ``idx``, from the exact inputs."""
    p, b, sharp = o.p[idx], o.b[idx], o.sharp[idx]
    return (np.where(sharp, np.log(b), np.log1p(-b)),
            np.where(sharp, np.log1p(-p), np.log(p)))


def _by_branch(direct: NDArray[np.bool_], fast: Any, slow: Any) -> FloatArray:
    """``fast(idx)`` where ``direct``, ``slow(idx)`` elsewhere, each on its own points only
    (``idx`` a slice for all points, else an index array)."""
    if direct.all():
        return np.asarray(fast(slice(None)), dtype=np.float64)
    out = np.empty(direct.shape)
    i, j = np.flatnonzero(direct), np.flatnonzero(~direct)
    if i.size:
        out[i] = fast(i)
    out[j] = slow(j)
    return out


def _rate_of(o: _Oriented) -> FloatArray:
    """D = logit q - logit beta: ``RATE`` where ``delta / (beta qbar)`` is an accurate float,
    ``log(1 + e^z)`` of ``z = LOG_RATE_RATIO`` where ``beta qbar`` underflows or the ratio
    passes 2^1000 (subnormal or extreme masses).  0 in the neutral regime."""
    bq = o.beta * o.qbar
    if bq.min(initial=1.0) >= 1.0 / _BIG:  # (delta <= 1): every ratio below 2^1000
        return np.asarray(_rate(o.q, o.qbar, o.beta, o.delta), dtype=np.float64)
    direct = (bq >= _NORMAL) & (o.delta <= bq * _BIG)

    def slow(j: NDArray[np.intp]) -> FloatArray:
        ell_beta, ell_qbar = _logs_of(o, j)
        with np.errstate(divide="ignore"):  # delta = 0 (neutral): z = -inf, D = 0
            z = _log_rate_ratio(o.delta[j], ell_beta, ell_qbar)
        return np.where(z > 0, _softplus_large(np.maximum(z, 0.0)),
                        _softplus_small(np.minimum(z, 0.0)))

    return _by_branch(direct, lambda i: _rate(o.q[i], o.qbar[i], o.beta[i], o.delta[i]), slow)


def log_odds_rate(p: FloatArray, b: FloatArray) -> FloatArray:
    """``D = |logit p - logit b|`` (``RATE``), to a few ulps over the whole float64 domain,
    subnormal masses included: the same evaluation as :func:`solve`'s.  ``p``, ``b``
    checked and broadcast by the caller."""
    p, b = np.broadcast_arrays(np.asarray(p, dtype=np.float64), np.asarray(b, dtype=np.float64))
    o = _orient(p.ravel(), b.ravel(), np.full(p.size, 2.0))  # c >= 2: ell_q is not read
    return _rate_of(o).reshape(p.shape)


def _floor_margins(o: _Oriented, c: FloatArray, cl: FloatArray, default: bool,
                   idx: NDArray[np.intp]) -> tuple[FloatArray, FloatArray]:
    """``(1 - c_low, c_low - q)`` at ``idx`` (where ``q < c_low``), each without
    cancellation; for the default floor ``c_low = 1/c`` both times ``c``: ``(c - 1, 1 - c q)``.

    ``c_low - q``: ``q = p`` is exact when sharpening; when softening ``q = 1 - p`` is exact
    for ``p >= 1/2`` and ``1 - c_low`` is exact for ``c_low >= 1/2``, and ``q < c_low``
    means one of the two holds.  ``1 - c q`` takes ``c q`` exactly
    (:func:`cliff._util.exact.product_minus`);
    where ``q = 1 - p`` is rounded (then ``c < 1/q < 2``) it is ``c p - (c - 1)``.
    """
    p, sharp, q = o.p[idx], o.sharp[idx], o.q[idx]
    c, cl = _at(c, idx), _at(cl, idx)
    if default:
        exact_q = sharp | (p >= 0.5)
        gap = -product_minus(c, q, 1.0)
        if not exact_q.all():
            gap = np.where(exact_q, gap, product_minus(c, p, c - 1.0))
        return np.broadcast_to(c - 1.0, gap.shape), gap
    gap = np.where(sharp, cl - p, np.where(cl >= 0.5, p - (1.0 - cl), cl - (1.0 - p)))
    return np.broadcast_to(1.0 - cl, gap.shape), gap


def _clip_band(c: ArrayLike, c_low: ArrayLike | None) -> tuple[FloatArray, FloatArray]:
    """The checked clip band ``(c, c_low)``; ``c_low`` defaults to ``1/c`` (the float64
    rounding is what is reported; the thresholds take ``1/c`` exactly)."""
    c_ = checks.check_cap("c", c)
    return c_, 1.0 / c_ if c_low is None else checks.check_floor("c_low", c_low)


def _inputs(p: ArrayLike, b: ArrayLike, c: ArrayLike, c_low: ArrayLike | None) -> tuple[
        FloatArray, FloatArray, FloatArray, FloatArray]:
    p_ = checks.check_open_unit("p", p)
    b_ = checks.check_open_unit("b", b)
    c_, cl_ = _clip_band(c, c_low)
    return checks.broadcast(p=p_, b=b_, c=c_, c_low=cl_)  # type: ignore[return-value]


class SolveResult:
    r"""Thresholds of one or many Bernoulli positions (returned by :func:`solve`).

    Scalar inputs give Python floats and strings; array inputs give arrays of the broadcast
    shape (``regime``, ``binding`` and the region are computed on first access).

    Attributes
    ----------
    lambda_star : float or ndarray
        Clip-safety threshold: the smallest ``lambda >= 1`` at which the unclipped fixed
        point leaves the clip-safe region ``R``.  ``inf`` in the neutral regime.
    lambda_collapse : float or ndarray
        Smallest ``lambda`` past which the clipped drift has no zero in ``(0, 1)``.
        ``inf`` in the neutral regime.
    regime : str or ndarray of str
        ``'sharpening'`` (p > b; past the cliff m -> 1, entropy collapse), ``'softening'``
        (p < b; m -> 0, the contract collapses) or ``'neutral'`` (p == b).
    binding : str or ndarray of str
        Which class's importance ratio is clipped first: ``'tail'``, ``'mode'`` or
        ``'none'`` (neutral).
    region_low, region_high : float or ndarray
        The clip-safe region ``R = [region_low, region_high]`` in modal mass ``m``.
    p, b, c, c_low : float or ndarray
        The (broadcast) inputs.
    """

    __slots__ = ("_lambda_star", "_lambda_collapse", "_sharp", "_shrinking",
                 "_p", "_b", "_c", "_c_low", "_scalar", "_region")

    def __init__(self, lambda_star: FloatArray, lambda_collapse: FloatArray,
                 sharp: NDArray[np.bool_], shrinking: NDArray[np.bool_],
                 p: FloatArray, b: FloatArray, c: FloatArray, c_low: FloatArray) -> None:
        self._lambda_star, self._lambda_collapse = lambda_star, lambda_collapse
        self._sharp, self._shrinking = sharp, shrinking
        self._p, self._b, self._c, self._c_low = p, b, c, c_low
        self._scalar = np.ndim(p) == 0
        self._region: tuple[Any, Any] | None = None

    def _bounds(self) -> tuple[Any, Any]:
        if self._region is None:
            self._region = clip_safe_region(self._p, self._c, c_low=self._c_low)
        return self._region

    @property
    def _neutral(self) -> NDArray[np.bool_]:
        return self._p == self._b

    @property
    def _tail(self) -> NDArray[np.bool_]:
        """The shrinking class is the tail when sharpening, the mode when softening."""
        return self._sharp == self._shrinking

    def _out(self, arr: Any) -> Any:
        return np.asarray(arr).item() if self._scalar else arr

    @property
    def lambda_star(self) -> Any:
        return self._out(self._lambda_star)

    @property
    def lambda_collapse(self) -> Any:
        return self._out(self._lambda_collapse)

    @property
    def regime(self) -> Any:
        code = np.where(self._neutral, 1, np.where(self._sharp, 2, 0))
        return self._out(_REGIMES[code])

    @property
    def binding(self) -> Any:
        code = np.where(self._neutral, 1, np.where(self._tail, 2, 0))
        return self._out(_BINDINGS[code])

    @property
    def region_low(self) -> Any:
        return self._out(self._bounds()[0])

    @property
    def region_high(self) -> Any:
        return self._out(self._bounds()[1])

    p = property(lambda self: self._out(self._p))
    b = property(lambda self: self._out(self._b))
    c = property(lambda self: self._out(self._c))
    c_low = property(lambda self: self._out(self._c_low))

    def to_dict(self) -> dict[str, Any]:
        """All fields as a plain dict (arrays as lists), e.g. for JSON."""
        keys = ("p", "b", "c", "c_low", "regime", "binding", "lambda_star",
                "lambda_collapse", "region_low", "region_high")
        return {k: (v.tolist() if isinstance(v, np.ndarray) else v)
                for k in keys for v in [getattr(self, k)]}

    def __repr__(self) -> str:
        if self._scalar:
            d = self.to_dict()
            body = ", ".join(f"{k}={v!r}" for k, v in d.items())
        else:
            body = f"shape={np.shape(self._p)}"
        return f"SolveResult({body})"


def solve(p: ArrayLike, b: ArrayLike, c: ArrayLike, *,
          c_low: ArrayLike | None = None) -> SolveResult:
    r"""Clip-safety threshold lambda* and collapse point of the clipped G-OPD dynamics.

    .. math::

        \lambda^* = 1 + \kappa / D, \qquad
        \lambda_{\mathrm{collapse}} = 1 + \log\frac{c}{\max(q, c_{\mathrm{low}})} \Big/ D,

    with ``D = |logit p - logit b|``, ``q`` the teacher probability of the class that grows
    with ``lambda`` (``p`` if ``p > b``, else ``1 - p``) and ``kappa`` the log-odds headroom
    of the clip-safe region on that side: ``log1p((c - 1)/q)`` when the shrinking class's
    ratio hits the cap ``c`` first, ``log1p((1 - c_low)/(c_low - q))`` when the growing class's
    ratio hits the floor ``c_low`` first.

    Parameters
    ----------
    p : array_like
        Teacher probability of the contract-valid (modal) class, in (0, 1).
    b : array_like
        Reference (warm-start) probability of the same class, in (0, 1).
    c : array_like
        IS clip strength: the cap on the teacher/student ratio, in (1, inf).  The paper
        uses 5.  A PPO-style ``eps_high`` is ``c = 1 + eps_high``.
    c_low : array_like, optional
        Lower ratio clip in [0, 1); default ``1/c``; 0 means no lower clip.

    Returns
    -------
    SolveResult
        ``lambda_star``, ``lambda_collapse``, ``regime``, ``binding`` and the region bounds,
        broadcast over the inputs.

    Notes
    -----
    The unclipped fixed point is ``logit m = logit b + lambda (logit p - logit b)`` (the
    maximiser of ``lambda E[log piT/pi0] - KL(pi || pi0)``).  The clip-safe region is
    ``max(p/c, 1 - (1-p)/c_low) <= m <= min(1 - (1-p)/c, p/c_low)``.  For near-deterministic
    ``p`` with the default floor the *tail* binds in both regimes.  With ``b = 1/2``,
    ``c = 5``, ``p = 0.9993`` this is Li et al. (2026), Eq. 4: ``lambda* = 1.22``.
    Derivation: ``python -m derivations``.

    Every float64 input is in the domain (subnormal masses, ``c`` up to the float maximum):
    logs are taken from the exact inputs (``log1p(-p)``, never the log of a rounded
    ``1 - p``), a headroom whose ratio would overflow is evaluated in log space, the floor's
    margins ``1 - c_low`` and ``c_low - q`` are formed without cancellation, and the default
    floor is ``1/c`` exactly (the reported ``c_low`` is its float64 rounding).  Against a
    50-digit evaluation of the definitions both thresholds are within 64 units of
    ``max(ulp, 1e-12 (lambda - 1))`` (``tests/theory/test_float64_domain.py``); ``lambda*`` is
    finite for every ``p != b`` and ``lambda* <= lambda_collapse``.

    Examples
    --------
    >>> r = solve(0.9993, 0.5, 5.0)
    >>> round(r.lambda_star, 2), r.regime, r.binding
    (1.22, 'sharpening', 'tail')
    """
    p_, b_, c_, cl_ = _inputs(p, b, c, c_low)
    size = p_.size
    flat = _compact(p_, b_, c_, cl_)
    lambda_star, lambda_collapse = np.empty(size), np.empty(size)
    sharp, shrinking = np.empty(size, dtype=bool), np.empty(size, dtype=bool)
    kernel = functools.partial(_solve_block, default=c_low is None)
    blocks.run(kernel, flat, (lambda_star, lambda_collapse, sharp, shrinking))
    shape = p_.shape
    return SolveResult(lambda_star.reshape(shape), lambda_collapse.reshape(shape),
                       sharp.reshape(shape), shrinking.reshape(shape), p_, b_, c_, cl_)


def _compact(*arrays: FloatArray) -> list[FloatArray]:
    """Broadcast arrays as flat blocks: constant ones as a length-1 array (no copy)."""
    out = []
    for a in arrays:
        if a.size and (a.strides == (0,) * a.ndim):
            out.append(a.reshape(-1)[:1])
        else:
            out.append(np.ascontiguousarray(a).reshape(-1))
    return out


def _solve_block(p: FloatArray, b: FloatArray, c: FloatArray, cl: FloatArray,
                 out: tuple[FloatArray, FloatArray, NDArray[np.bool_], NDArray[np.bool_]],
                 *, default: bool) -> None:
    """lambda*, lambda_collapse, sharpening and shrinking-binds masks for one block.

    ``default``: ``c_low`` is ``1/c``, taken exactly (``log c_low = -log c``, margins from
    ``c``), not from the rounded (possibly subnormal) float in ``cl``.
    """
    n = len(out[0])
    o = _orient(np.broadcast_to(p, (n,)), np.broadcast_to(b, (n,)), c)
    rate = _rate_of(o)
    kappa = _by_branch(  # the shrinking class's cap: log1p((c - 1)/q)
        np.asarray((c - 1.0) <= o.q * _BIG) if (c - 1.0).max() > o.q.min() * _BIG else
        np.ones(n, dtype=bool),
        lambda i: _headroom_shrinking(o.q[i], _at(c, i)),
        lambda j: _softplus_large(_log_shrinking_ratio(_at(c, j), o.ell_q[j])))
    kappa = np.broadcast_to(kappa, (n,)).copy()
    with np.errstate(divide="ignore"):  # c_low = 0: no floor, log c_low = -inf
        ell_low = -np.log(c) if default else np.log(cl)
    # collapse headroom log(c / max(q, c_low)), continuous across q = c_low
    head = _collapse_teacher(c, o.ell_q)
    shrinking = np.ones(n, dtype=bool)
    reach = ell_low * (1.0 - 1e-12) + 1e-12  # log c_low <= 0, loosened; -inf: no floor
    if o.ell_q.min() < reach.max():  # some q below c_low
        head = np.broadcast_to(np.minimum(head, _collapse_floor(c, ell_low)), (n,))
        # The growing class's floor binds first iff c q < c_low (c - 1 + q) (its exit mass
        # q / c_low is below the cap's 1 - qbar / c); the test, loosened by 1e-6 against
        # rounding, picks the points whose headroom is computed from the margins, which also
        # decide q < c_low where logs near -745 resolve q only to ~1e-13.
        if default:  # c_low = 1/c: q (c + 1) < 1
            cand = o.q * (c + 1.0) * (1.0 - 1e-6) < 1.0
        else:
            cand = c * o.q * (1.0 - 1e-6) < cl * ((c - 1.0) + o.q) + 1e-300
        f = np.flatnonzero(cand)
        if f.size:
            cbar, gap = _floor_margins(o, c, cl, default, f)
            ok = gap > 0
            grow = np.full(f.shape, np.inf)
            grow[ok] = _by_branch(
                cbar[ok] <= gap[ok] * _BIG,
                lambda i: _headroom_growing(cbar[ok][i], gap[ok][i]),
                lambda j: _softplus_large(_log_growing_ratio(cbar[ok][j], gap[ok][j])))
            # the growing class's floor binds first where its headroom is the smaller
            shrinking[f] = ~(grow < kappa[f])
            kappa[f] = np.minimum(kappa[f], grow)
    # lambda* <= lambda_collapse holds exactly (kappa <= log(c / max(q, c_low))); the two
    # headrooms, each within a few ulps, may cross only by rounding when the window is thin
    kappa = np.minimum(kappa, head)
    with np.errstate(divide="ignore"):  # D = 0 (neutral) gives the documented inf
        out[0][...] = _threshold(kappa, rate)
        out[1][...] = _threshold(head, rate)
    out[2][...] = o.sharp
    out[3][...] = shrinking


def _at(a: NDArray[Any], idx: NDArray[Any]) -> NDArray[Any]:
    """``a[idx]`` for a block input, which may be a length-1 stand-in for a constant."""
    return a if a.size == 1 else a[idx]


def clip_safe_region(p: ArrayLike, c: ArrayLike, *,
                     c_low: ArrayLike | None = None) -> tuple[Any, Any]:
    r"""Modal masses ``m`` at which neither class's IS ratio is clipped.

    .. math::

        R = \Big[\max\big(\tfrac{p}{c},\, 1 - \tfrac{1-p}{c_{\mathrm{low}}}\big),\;
                 \min\big(1 - \tfrac{1-p}{c},\, \tfrac{p}{c_{\mathrm{low}}}\big)\Big]
            \cap [0, 1].

    Returns ``(low, high)``; with ``c_low = 0`` the floor constraints vanish.
    """
    p_ = checks.check_open_unit("p", p)
    c_, cl_ = _clip_band(c, c_low)
    p_, c_, cl_ = checks.broadcast(p=p_, c=c_, c_low=cl_)
    # c_low = 0 divides by zero and a subnormal c_low overflows: both floor edges then lie
    # far outside [0, 1] (-inf, inf) and the clamp below returns the exact bound
    with np.errstate(divide="ignore", over="ignore"):
        low = np.maximum(_region["mode_floor"](p_, c_, cl_), _region["tail_floor"](p_, c_, cl_))
        high = np.minimum(_region["tail_cap"](p_, c_, cl_), _region["mode_cap"](p_, c_, cl_))
    low, high = np.maximum(low, 0.0), np.minimum(high, 1.0)  # m is a probability
    if np.ndim(low) == 0:
        return float(low), float(high)
    return low, high


def fixed_point(p: ArrayLike, b: ArrayLike, lam: ArrayLike, *,
                complement: bool = False) -> Any:
    r"""Unclipped G-OPD fixed point ``m_lambda`` (modal mass).

    .. math:: \operatorname{logit} m_\lambda = \operatorname{logit} b
              + \lambda (\operatorname{logit} p - \operatorname{logit} b),

    i.e. ``pi_lambda ∝ pi0^(1-lambda) piT^lambda``: the maximiser of
    ``lambda E_pi[log piT/pi0] - KL(pi || pi0)`` and the zero of the unclipped drift.

    Parameters
    ----------
    p, b : array_like
        Teacher and reference modal probabilities in (0, 1).
    lam : array_like
        Extrapolation coefficient, >= 0.
    complement : bool
        Return the tail mass ``1 - m`` (computed as ``expit(-logit)``, no cancellation).

    Examples
    --------
    >>> round(float(fixed_point(0.9, 0.5, 1.0)), 12)  # lambda = 1 recovers the teacher
    0.9
    """
    p_ = checks.check_open_unit("p", p)
    b_ = checks.check_open_unit("b", b)
    lam_ = checks.check_nonnegative("lam", lam)
    p_, b_, lam_ = checks.broadcast(p=p_, b=b_, lam=lam_)
    logit = _logit_fixed_point(p_, b_, lam_)
    out = expit(-logit if complement else logit)
    return float(out) if np.ndim(out) == 0 else out


def clipped_fixed_point(p: ArrayLike, b: ArrayLike, c: ArrayLike, lam: ArrayLike, *,
                        c_low: ArrayLike | None = None, complement: bool = False) -> Any:
    r"""Where the clipped mean-field dynamics settle: ``lim m_t`` as ``t -> inf``.

    Piecewise in ``lambda`` (``x = (lambda - 1) D``, growing-class coordinates):

    * ``lambda < lambda*``: the unclipped fixed point :func:`fixed_point`;
    * ``lambda* <= lambda < lambda_collapse``: the clipped fixed point, growing-class mass
      ``(q/c) e^x`` when the shrinking class's ratio is capped, or shrinking-class mass
      ``((1-q)/c_low) e^{-x}`` when the growing class's ratio is floored;
    * ``lambda >= lambda_collapse``: no fixed point; the drift has one sign and ``m`` runs
      to 1 (sharpening) or 0 (softening), which is returned.

    Valid for ``lambda >= 1`` (the extrapolation side, where ``lambda*`` is defined);
    ``complement=True`` returns the tail mass ``1 - m`` without cancellation.

    Examples
    --------
    >>> r = solve(0.99, 0.5, 5.0)
    >>> lam = (r.lambda_star + r.lambda_collapse) / 2
    >>> 1 - (1 - 0.99) / 5 < clipped_fixed_point(0.99, 0.5, 5.0, lam) < 1
    True
    """
    p_, b_, c_, cl_ = _inputs(p, b, c, c_low)
    lam_ = checks.check_nonnegative("lam", lam)
    if lam_.size and lam_.min() < 1.0:
        raise ValueError("lam must be >= 1 for clipped_fixed_point (the extrapolation side, "
                         f"where lambda* is defined), got min {float(lam_.min())!r}")
    p_, b_, c_, cl_, lam_ = checks.broadcast(p=p_, b=b_, c=c_, c_low=cl_, lam=lam_)
    res = solve(p_, b_, c_, c_low=None if c_low is None else cl_)
    ls, lc = res._lambda_star, res._lambda_collapse
    o = _orient(p_, b_, c_)
    shrinking = res._shrinking
    unclipped = fixed_point(p_, b_, lam_, complement=complement)
    rate = _rate_of(_orient(p_.ravel(), b_.ravel(), c_.ravel())).reshape(p_.shape)
    ell_qbar = np.where(o.sharp, np.log1p(-p_), np.log(p_))
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        ell_low = -np.log(c_) if c_low is None else np.log(cl_)  # c_low = 0: never floored
        x = (lam_ - 1.0) * rate
        # mass of the class being asked for: modal (complement=False) or tail
        want_growing = o.sharp != complement
        g_s = _clipped[("shrinking", "growing")](x, c_, o.ell_q)
        s_s = _clipped[("shrinking", "shrinking")](x, c_, o.ell_q)
        g_g = _clipped[("growing", "growing")](x, ell_qbar, ell_low)
        s_g = _clipped[("growing", "shrinking")](x, ell_qbar, ell_low)
    # In the window the exponents are <= 0 exactly; summed from terms up to ~1500 they can
    # round a few ulps of those terms past 0, which would put a mass just outside [0, 1].
    clipped = np.clip(np.where(shrinking, np.where(want_growing, g_s, s_s),
                               np.where(want_growing, g_g, s_g)), 0.0, 1.0)
    runaway = np.where(want_growing, 1.0, 0.0)
    out = np.where(lam_ < ls, unclipped, np.where(lam_ < lc, clipped, runaway))
    return float(out) if np.ndim(out) == 0 else out
