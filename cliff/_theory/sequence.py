r"""Sequence calibration: from per-position fixed points to a strict parse rate.

A structured output is strictly parseable when every one of its ``L`` structural positions
emits a contract-valid token.  Treating the positions as independent Bernoulli models at
their asymptotic (clipped) fixed points ``m_i(lambda)``,

.. math:: \mathrm{parse}(\lambda) \approx \prod_{i=1}^{L} m_i(\lambda),

and the *sequence cliff* is the first ``lambda >= 1`` at which the predicted parse rate
falls to a fraction (default 1/2) of its ``lambda = 1`` value ``prod_i p_i``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from cliff._theory.bernoulli import clipped_fixed_point, solve
from cliff._util import checks

__all__ = ["log_parse_rate", "predict_parse_rate", "sequence_cliff"]

FloatArray = NDArray[np.float64]


def _positions(p: ArrayLike, b: ArrayLike, c: ArrayLike, c_low: ArrayLike | None
               ) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    p_ = checks.check_open_unit("p", p)
    b_ = checks.check_open_unit("b", b)
    if p_.ndim < 1:
        raise ValueError(f"p must have shape [..., L] (positions on the last axis), got a "
                         f"scalar {float(p_)!r}")
    c_ = checks.check_cap("c", c)
    cl_ = 1.0 / c_ if c_low is None else checks.check_floor("c_low", c_low)
    return checks.broadcast(p=p_, b=b_, c=c_, c_low=cl_)  # type: ignore[return-value]


def log_parse_rate(lambdas: ArrayLike, p: ArrayLike, b: ArrayLike, c: ArrayLike, *,
                   c_low: ArrayLike | None = None) -> FloatArray:
    r"""``sum_i log m_i(lambda)``, shape ``lambdas.shape + p.shape[:-1]`` (``-inf`` past a
    softening position's collapse).  See :func:`predict_parse_rate`."""
    p_, b_, c_, cl_ = _positions(p, b, c, c_low)
    lam = checks.check_nonnegative("lambdas", lambdas)
    if lam.size and lam.min() < 1.0:
        raise ValueError(f"lambdas must be >= 1 (the extrapolation side), got min "
                         f"{float(lam.min())!r}")
    lam_b = lam.reshape(lam.shape + (1,) * p_.ndim)
    mass = clipped_fixed_point(p_, b_, c_, lam_b, c_low=cl_)
    tail = clipped_fixed_point(p_, b_, c_, lam_b, c_low=cl_, complement=True)
    with np.errstate(divide="ignore"):  # m = 0 past a softening collapse: log 0 = -inf
        log_m = np.where(mass > 0.5, np.log1p(-tail), np.log(mass))
    return np.asarray(log_m.sum(axis=-1), dtype=np.float64)


def predict_parse_rate(lambdas: ArrayLike, p: ArrayLike, b: ArrayLike, c: ArrayLike, *,
                       c_low: ArrayLike | None = None) -> Any:
    r"""Predicted strict parse rate ``prod_i m_i(lambda)`` over ``L`` structural positions.

    Parameters
    ----------
    lambdas : array_like
        Extrapolation coefficients, each >= 1.
    p, b : array_like, shape ``[..., L]``
        Teacher and reference valid-class masses per position (positions on the last axis;
        e.g. the ``p`` and ``b`` of :class:`cliff.Estimate`).
    c, c_low : array_like
        IS clip (as in :func:`cliff.solve`), broadcast against ``p``.

    Returns
    -------
    ndarray, shape ``lambdas.shape + p.shape[:-1]``
        ``prod_i m_i(lambda)`` with ``m_i`` from :func:`cliff.clipped_fixed_point`.

    Notes
    -----
    In this model a sharpening position (``p_i > b_i``) only gains modal mass as ``lambda``
    grows (it runs to 1, entropy collapse, past its ``lambda_collapse``); a softening one
    (``p_i < b_i``) loses it and runs to 0 past its collapse.  The predicted parse rate
    therefore falls only through softening positions, and is 0 past the smallest softening
    ``lambda_collapse``.  Independence across positions is an assumption.

    Examples
    --------
    >>> import numpy as np
    >>> rate = predict_parse_rate([1.0], [0.99, 0.98], [0.9, 0.995], 5.0)
    >>> bool(np.isclose(rate[0], 0.99 * 0.98))
    True
    """
    return np.exp(log_parse_rate(lambdas, p, b, c, c_low=c_low))


def sequence_cliff(p: ArrayLike, b: ArrayLike, c: ArrayLike, *, c_low: ArrayLike | None = None,
                   fraction: float = 0.5, grid: int = 512, iters: int = 60) -> FloatArray:
    r"""First ``lambda >= 1`` where the predicted parse rate drops to ``fraction`` of its
    ``lambda = 1`` value; shape ``p.shape[:-1]``; ``inf`` when it never does.

    Notes
    -----
    The rate is piecewise smooth with breakpoints at the positions' ``lambda*`` and
    ``lambda_collapse``.  It is evaluated on a grid holding every breakpoint (and a ulp
    past each) plus ``grid`` log-spaced points up to the largest finite softening collapse;
    the first grid cell that crosses the level is bisected ``iters`` times (vectorised over
    the batch).  Bounds (tested):

    * ``lambda_seq <= min_{i softening} lambda_collapse_i`` (the rate is 0 past it);
    * ``lambda_seq = inf`` when every position is sharpening (the rate never decreases);
    * with one softening position ``j``, ``lambda_seq >= lambda_j^{1/2}``, the ``lambda``
      at which ``m_j`` alone halves (the sharpening positions can only raise the rate).
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must be in (0, 1), got {fraction!r}")
    p_, b_, c_, cl_ = _positions(p, b, c, c_low)
    batch = p_.shape[:-1]
    res = solve(p_, b_, c_, c_low=cl_)
    soft = p_ < b_
    lc = np.where(soft, np.asarray(res._lambda_collapse), np.inf)
    top = lc[np.isfinite(lc)]
    if top.size == 0:
        return np.full(batch, np.inf)
    lam_max = float(top.max()) * (1 + 1e-9) + 1e-12
    breaks = np.concatenate([np.asarray(res._lambda_star).ravel(),
                             np.asarray(res._lambda_collapse).ravel()])
    breaks = breaks[np.isfinite(breaks) & (breaks >= 1.0) & (breaks <= lam_max)]
    pts = np.unique(np.concatenate([
        1.0 + np.expm1(np.linspace(0.0, np.log(lam_max), grid)), breaks,
        np.nextafter(breaks, np.inf), [1.0, lam_max]]))
    pts = pts[(pts >= 1.0) & (pts <= lam_max)]
    level = np.log(fraction) + log_parse_rate(np.array([1.0]), p_, b_, c_, c_low=cl_)[0]
    vals = log_parse_rate(pts, p_, b_, c_, c_low=cl_)  # (G, *batch)
    below = vals <= level
    has = below.any(axis=0)
    first = np.argmax(below, axis=0)
    hi = pts[first]
    lo = pts[np.maximum(first - 1, 0)]
    lo = np.where(first == 0, hi, lo)
    flat_lo, flat_hi = lo.ravel().copy(), hi.ravel().copy()
    pf = p_.reshape(-1, p_.shape[-1])
    bf = b_.reshape(-1, p_.shape[-1])
    cf = c_.reshape(-1, p_.shape[-1])
    clf = cl_.reshape(-1, p_.shape[-1])
    lev = np.asarray(level).ravel()
    for _ in range(iters):
        mid = 0.5 * (flat_lo + flat_hi)
        dn = _rows(mid, pf, bf, cf, clf) <= lev
        flat_hi, flat_lo = np.where(dn, mid, flat_hi), np.where(dn, flat_lo, mid)
    out = flat_hi.reshape(batch)
    return np.where(has, out, np.inf)


def _rows(lam: FloatArray, p: FloatArray, b: FloatArray, c: FloatArray, cl: FloatArray
          ) -> FloatArray:
    """``log_parse_rate`` with one ``lambda`` per row of ``[N, L]`` inputs, vectorised."""
    mass = clipped_fixed_point(p, b, c, lam[:, None], c_low=cl)
    tail = clipped_fixed_point(p, b, c, lam[:, None], c_low=cl, complement=True)
    with np.errstate(divide="ignore"):
        log_m = np.where(mass > 0.5, np.log1p(-tail), np.log(mass))
    return np.asarray(log_m.sum(axis=-1), dtype=np.float64)
