r"""Clip-safety thresholds of the Bernoulli model, lambdified from :mod:`cliff.symbolic.bernoulli`.

One structural position: the teacher puts mass ``p`` on the contract-valid modal class, the
G-OPD reference (the warm start) puts ``b``, and the student's modal mass ``m`` follows the
clipped G-OPD drift.  Every formula evaluated here is a SymPy expression of
:mod:`cliff.symbolic.bernoulli`, turned into numpy by ``sympy.lambdify`` at import; this
module only validates inputs, orients each point (which class grows with ``lambda``) and
picks the branch (which clip binds).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy as sp
from numpy.typing import ArrayLike, NDArray
from scipy.special import expit

from cliff import _blocks, _checks
from cliff.symbolic import bernoulli as S

__all__ = ["SolveResult", "solve", "fixed_point", "clipped_fixed_point", "clip_safe_region"]

FloatArray = NDArray[np.float64]


def _lambdify(args: tuple[sp.Symbol, ...], expr: sp.Expr) -> Any:
    return sp.lambdify(args, expr, modules="numpy", cse=True)


# Generated numeric kernels; the argument order is part of their definition.
_rate = _lambdify((S.q, S.qbar, S.beta, S.delta), S.RATE)
_headroom_shrinking = _lambdify((S.q, S.c), S.HEADROOM_SHRINKING)
_headroom_growing = _lambdify((S.q, S.c_low), S.HEADROOM_GROWING)
_threshold = _lambdify((S.kappa, S.rate), S.THRESHOLD)
_collapse_teacher = _lambdify((S.q, S.c), S.COLLAPSE_HEADROOM_TEACHER)
_collapse_floor = _lambdify((S.c_low, S.c), S.COLLAPSE_HEADROOM_FLOOR)
_logit_fixed_point = _lambdify((S.p, S.b, S.lam), S.LOGIT_FIXED_POINT)
_clipped = {
    ("shrinking", "growing"): _lambdify((S.x, S.q, S.c), S.CLIPPED_SHRINKING_GROWING_MASS),
    ("shrinking", "shrinking"): _lambdify((S.x, S.q, S.c), S.CLIPPED_SHRINKING_SHRINKING_MASS),
    ("growing", "growing"): _lambdify((S.x, S.qbar, S.c_low), S.CLIPPED_GROWING_GROWING_MASS),
    ("growing", "shrinking"): _lambdify(
        (S.x, S.qbar, S.c_low), S.CLIPPED_GROWING_SHRINKING_MASS),
}
_region = {k: _lambdify((S.p, S.c, S.c_low), e) for k, e in S.REGION.items()}

KERNELS: dict[str, tuple[tuple[sp.Symbol, ...], sp.Expr, Any]] = {
    "rate": ((S.q, S.qbar, S.beta, S.delta), S.RATE, _rate),
    "headroom_shrinking": ((S.q, S.c), S.HEADROOM_SHRINKING, _headroom_shrinking),
    "headroom_growing": ((S.q, S.c_low), S.HEADROOM_GROWING, _headroom_growing),
    "threshold": ((S.kappa, S.rate), S.THRESHOLD, _threshold),
    "collapse_teacher": ((S.q, S.c), S.COLLAPSE_HEADROOM_TEACHER, _collapse_teacher),
    "collapse_floor": ((S.c_low, S.c), S.COLLAPSE_HEADROOM_FLOOR, _collapse_floor),
    "logit_fixed_point": ((S.p, S.b, S.lam), S.LOGIT_FIXED_POINT, _logit_fixed_point),
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


@dataclass(frozen=True)
class _Oriented:
    """Growing-class coordinates (q, 1-q, beta, q-beta), each computed without
    cancellation: ``(p, 1-p, b, p-b)`` when sharpening, ``(1-p, p, 1-b, b-p)`` otherwise."""

    sharp: NDArray[np.bool_]
    q: FloatArray
    qbar: FloatArray
    beta: FloatArray
    delta: FloatArray


def _orient(p: FloatArray, b: FloatArray) -> _Oriented:
    sharp = p > b
    p_bar = 1.0 - p
    return _Oriented(
        sharp,
        _pick(sharp, p, p_bar),
        _pick(sharp, p_bar, p),
        _pick(sharp, b, 1.0 - b),
        np.abs(p - b),
    )


def _clip_band(c: ArrayLike, c_low: ArrayLike | None) -> tuple[FloatArray, FloatArray]:
    """The checked clip band ``(c, c_low)``; ``c_low`` defaults to ``1/c``."""
    c_ = _checks.check_cap("c", c)
    return c_, 1.0 / c_ if c_low is None else _checks.check_floor("c_low", c_low)


def _inputs(p: ArrayLike, b: ArrayLike, c: ArrayLike, c_low: ArrayLike | None) -> tuple[
        FloatArray, FloatArray, FloatArray, FloatArray]:
    p_ = _checks.check_open_unit("p", p)
    b_ = _checks.check_open_unit("b", b)
    c_, cl_ = _clip_band(c, c_low)
    return _checks.broadcast(p=p_, b=b_, c=c_, c_low=cl_)  # type: ignore[return-value]


class SolveResult:
    r"""Thresholds of one or many Bernoulli positions (returned by :func:`solve`).

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

    Scalar inputs give Python floats and strings; array inputs give arrays of the broadcast
    shape (``regime``, ``binding`` and the region are computed on first access).
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
    _blocks.run(_solve_block, flat, (lambda_star, lambda_collapse, sharp, shrinking))
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
                 out: tuple[FloatArray, FloatArray, NDArray[np.bool_], NDArray[np.bool_]]
                 ) -> None:
    """lambda*, lambda_collapse, sharpening and shrinking-binds masks for one block."""
    o = _orient(p, b)
    with np.errstate(divide="ignore"):  # D = 0 (neutral) gives the documented inf
        rate = _rate(o.q, o.qbar, o.beta, o.delta)
        n = len(out[0])
        teacher = _full(o.q >= cl, n)  # collapse headroom log(c / max(q, c_low)) takes q
        kappa = _full(_headroom_shrinking(o.q, c), n)
        head = _full(_collapse_teacher(o.q, c), n)
        shrinking = teacher
        if not teacher.all():  # rare branches, evaluated on their points only
            f = np.flatnonzero(~teacher)
            q_f, qbar_f, c_f, cl_f = (_at(a, f) for a in (o.q, o.qbar, c, cl))
            head[f] = _collapse_floor(cl_f, c_f)
            # the shrinking class's cap binds first iff 1 - (1-q)/c <= q/c_low, which
            # q >= c_low implies; otherwise the growing class's floor may bind first
            grow = np.broadcast_to(cl_f * (c_f - qbar_f) > c_f * q_f, f.shape)
            shrinking = teacher.copy()
            shrinking[f] = ~grow
            g = f[grow]
            kappa[g] = _headroom_growing(_at(q_f, grow), _at(cl_f, grow))
        out[0][...] = _threshold(kappa, rate)
        out[1][...] = _threshold(head, rate)
    out[2][...] = o.sharp
    out[3][...] = shrinking


def _at(a: NDArray[Any], idx: NDArray[Any]) -> NDArray[Any]:
    """``a[idx]`` for a block input, which may be a length-1 stand-in for a constant."""
    return a if a.size == 1 else a[idx]


def _full(a: NDArray[Any], n: int) -> NDArray[Any]:
    """A writable length-``n`` array (expanding a length-1 result of constant inputs)."""
    return np.full(n, a[0]) if a.size == 1 and n > 1 else a


def clip_safe_region(p: ArrayLike, c: ArrayLike, *,
                     c_low: ArrayLike | None = None) -> tuple[Any, Any]:
    r"""Modal masses ``m`` at which neither class's IS ratio is clipped.

    .. math::

        R = \Big[\max\big(\tfrac{p}{c},\, 1 - \tfrac{1-p}{c_{\mathrm{low}}}\big),\;
                 \min\big(1 - \tfrac{1-p}{c},\, \tfrac{p}{c_{\mathrm{low}}}\big)\Big]
            \cap [0, 1].

    Returns ``(low, high)``; with ``c_low = 0`` the floor constraints vanish.
    """
    p_ = _checks.check_open_unit("p", p)
    c_, cl_ = _clip_band(c, c_low)
    p_, c_, cl_ = _checks.broadcast(p=p_, c=c_, c_low=cl_)
    with np.errstate(divide="ignore"):
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
    p_ = _checks.check_open_unit("p", p)
    b_ = _checks.check_open_unit("b", b)
    lam_ = _checks.check_nonnegative("lam", lam)
    p_, b_, lam_ = _checks.broadcast(p=p_, b=b_, lam=lam_)
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
    lam_ = _checks.check_nonnegative("lam", lam)
    if lam_.size and lam_.min() < 1.0:
        raise ValueError("lam must be >= 1 for clipped_fixed_point (the extrapolation side, "
                         f"where lambda* is defined), got min {float(lam_.min())!r}")
    p_, b_, c_, cl_, lam_ = _checks.broadcast(p=p_, b=b_, c=c_, c_low=cl_, lam=lam_)
    res = solve(p_, b_, c_, c_low=cl_)
    ls, lc = res._lambda_star, res._lambda_collapse
    o = _orient(p_, b_)
    shrinking = res._shrinking
    unclipped = fixed_point(p_, b_, lam_, complement=complement)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        x = (lam_ - 1.0) * _rate(o.q, o.qbar, o.beta, o.delta)
        # mass of the class being asked for: modal (complement=False) or tail
        want_growing = o.sharp != complement
        g_s = _clipped[("shrinking", "growing")](x, o.q, c_)
        s_s = _clipped[("shrinking", "shrinking")](x, o.q, c_)
        g_g = _clipped[("growing", "growing")](x, o.qbar, cl_)
        s_g = _clipped[("growing", "shrinking")](x, o.qbar, cl_)
    clipped = np.where(shrinking, np.where(want_growing, g_s, s_s),
                       np.where(want_growing, g_g, s_g))
    runaway = np.where(want_growing, 1.0, 0.0)
    out = np.where(lam_ < ls, unclipped, np.where(lam_ < lc, clipped, runaway))
    return float(out) if np.ndim(out) == 0 else out
