"""Brute-force references computed from the *definitions* of derivations/model.md, never the
closed forms.

Everything is in logit space (``m = sigmoid(theta)``) with log-sigmoid evaluated stably, so
near-deterministic probabilities keep their tail mass.  All functions are vectorised over a
batch of parameter points (1-d arrays of equal length).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.float64]


def log_sigmoid(t: Array) -> Array:
    return -np.logaddexp(0.0, -t)


def drift(theta: Array, p: Array, b: Array, c: Array, c_low: Array, lam: Array,
          clipped: bool = True) -> Array:
    """g = A(M) - A(T), A(y) = clip(log piT - log pi, log c_low, log c) + (lam-1) log piT/pi0."""
    log_p, log_pbar = np.log(p), np.log1p(-p)
    log_b, log_bbar = np.log(b), np.log1p(-b)
    ratio_m = log_p - log_sigmoid(theta)
    ratio_t = log_pbar - log_sigmoid(-theta)
    if clipped:
        with np.errstate(divide="ignore"):
            lo, hi = np.log(c_low), np.log(c)
        ratio_m, ratio_t = np.clip(ratio_m, lo, hi), np.clip(ratio_t, lo, hi)
    a_m = ratio_m + (lam - 1.0) * (log_p - log_b)
    a_t = ratio_t + (lam - 1.0) * (log_pbar - log_bbar)
    return a_m - a_t


def unclipped_fixed_point(p: Array, b: Array, lam: Array, iters: int = 200) -> Array:
    """theta where the unclipped drift vanishes, by bisection (the drift decreases in theta)."""
    lo, hi = np.full_like(p, -800.0), np.full_like(p, 800.0)
    zero = np.zeros_like(p)
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        pos = drift(mid, p, b, zero + 2.0, zero, lam, clipped=False) > 0
        lo, hi = np.where(pos, mid, lo), np.where(pos, hi, mid)
    return 0.5 * (lo + hi)


def in_region(theta: Array, p: Array, c: Array, c_low: Array,
              classes: str = "MT") -> NDArray[np.bool_]:
    """No importance ratio piT/pi of ``classes`` clipped: c_low <= ratio <= c."""
    with np.errstate(divide="ignore"):
        lo, hi = np.log(c_low), np.log(c)
    ok = np.ones(np.broadcast(theta, p).shape, dtype=bool)
    if "M" in classes:
        r_m = np.log(p) - log_sigmoid(theta)
        ok &= (r_m <= hi) & (r_m >= lo)
    if "T" in classes:
        r_t = np.log1p(-p) - log_sigmoid(-theta)
        ok &= (r_t <= hi) & (r_t >= lo)
    return ok


GRID = np.linspace(-90.0, 90.0, 3601)


def has_zero(p: Array, b: Array, c: Array, c_low: Array, lam: Array) -> NDArray[np.bool_]:
    """Whether the clipped drift changes sign on a dense theta grid (m in (0, 1))."""
    g = drift(GRID[None, :], p[:, None], b[:, None], c[:, None], c_low[:, None], lam[:, None])
    return (g.max(axis=1) > 0) & (g.min(axis=1) < 0) | (g == 0).any(axis=1)


def _bisect_excess(pred, n: int, iters: int = 90) -> Array:
    """Smallest u = lambda - 1 > 0 where ``pred(1 + u)`` turns True, bisected in log u."""
    lo, hi = np.full(n, -40.0), np.full(n, 40.0)  # log u
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        flip = pred(1.0 + np.exp(mid))
        lo, hi = np.where(flip, lo, mid), np.where(flip, mid, hi)
    return np.exp(0.5 * (lo + hi))


def lambda_star_excess(p: Array, b: Array, c: Array, c_low: Array,
                       classes: str = "MT") -> Array:
    """lambda* - 1: first lambda whose unclipped fixed point leaves the clip-safe region
    (or, with ``classes`` "M" or "T", the region of that class's ratio alone)."""
    def leaves(lam: Array) -> NDArray[np.bool_]:
        theta = unclipped_fixed_point(p, b, lam, iters=80)
        return ~in_region(theta, p, c, c_low, classes)
    return _bisect_excess(leaves, p.size)


def lambda_collapse_excess(p: Array, b: Array, c: Array, c_low: Array) -> Array:
    """lambda_collapse - 1: first lambda whose clipped drift has no zero on the grid."""
    return _bisect_excess(lambda lam: ~has_zero(p, b, c, c_low, lam), p.size)


def drift_at_masses(mode: float, tail: float, p: float, b: float, c: float, c_low: float,
                    lam: float, dps: int = 50) -> float:
    """The clipped drift at modal mass ``mode`` (= 1 - ``tail``), in ``dps``-digit arithmetic.

    The smaller of the two masses is taken as given and the other as its complement, so a
    tail mass of 1e-15 keeps all its digits.
    """
    import mpmath

    with mpmath.workdps(dps):
        if mode < tail:
            m = mpmath.mpf(mode)
            t = 1 - m
        else:
            t = mpmath.mpf(tail)
            m = 1 - t
        P, B, C = mpmath.mpf(p), mpmath.mpf(b), mpmath.mpf(c)
        lo = mpmath.log(mpmath.mpf(c_low)) if c_low > 0 else -mpmath.inf
        hi = mpmath.log(C)

        def clip(z: mpmath.mpf) -> mpmath.mpf:
            return min(max(z, lo), hi)

        a_m = clip(mpmath.log(P / m)) + (lam - 1) * mpmath.log(P / B)
        a_t = clip(mpmath.log((1 - P) / t)) + (lam - 1) * mpmath.log((1 - P) / (1 - B))
        return float(a_m - a_t)


def kary_exits(t: Array, r: Array, lam: Array, c: float, cl: float) -> NDArray[np.bool_]:
    """Whether the K-ary unclipped fixed point ``pi ~ t^lam r^(1-lam)`` at each lambda has a
    ratio ``t / pi`` outside [c_low, c]."""
    z = np.log(r)[None] + lam[:, None, None] * (np.log(t) - np.log(r))[None]
    log_pi = z - np.logaddexp.reduce(z, axis=-1, keepdims=True)
    ratio = np.log(t)[None] - log_pi
    with np.errstate(divide="ignore"):
        return (ratio.max(-1) > np.log(c)) | (ratio.min(-1) < np.log(cl))


def kary_lambda_star(t: Array, r: Array, c: float, cl: float) -> Array:
    """K-ary lambda* per row of ``t``, ``r`` ``[n, K]``: a dense log-spaced scan of
    lambda - 1 in [1e-6, 1e4], then 80 bisections; ``inf`` where nothing in the scan exits
    (a near-neutral row: lambda* - 1 > 1e4)."""
    grid = 1 + np.logspace(-6, 4, 2001)
    out = np.empty(len(t))
    for i in range(len(t)):
        ex = kary_exits(t[i:i + 1], r[i:i + 1], grid, c, cl)[:, 0]
        if not ex.any():
            out[i] = np.inf
            continue
        j = int(np.argmax(ex))
        assert j > 0, "lambda* - 1 below the scan's 1e-6"
        lo, hi = grid[j - 1], grid[j]
        for _ in range(80):
            mid = 0.5 * (lo + hi)
            if kary_exits(t[i:i + 1], r[i:i + 1], np.array([mid]), c, cl)[0, 0]:
                hi = mid
            else:
                lo = mid
        out[i] = 0.5 * (lo + hi)
    return out
