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


# --- 50-digit reference over the whole float64 domain -------------------------------------
def mp_thresholds(p: float, b: float, c: float, c_low: float | None,
                  dps: int = 50) -> tuple[object, object, str, float]:
    """``(lambda*, lambda_collapse, binding, separation)`` of one point, from the definitions
    alone, in ``dps``-digit arithmetic (mpmath numbers; ``inf`` when ``p == b``).
    ``binding`` is the class whose ratio leaves ``[c_low, c]`` first and ``separation`` the
    relative distance in ``lambda - 1`` to the other class's first exit.

    ``c_low=None`` is the default floor *exactly* ``1/c``, not its float64 rounding.

    * The unclipped fixed point is ``theta(u) = logit p + u (logit p - logit b)``,
      ``u = lambda - 1``.  Each class's ratio ``t/pi`` is monotone in ``theta``, so it meets
      each clip level ``L`` at one ``theta``, where the class's mass is ``t e^{-L}``; the
      ``u`` of every such meeting ahead of ``u = 0`` is an exit from the clip-safe region and
      ``lambda* = 1 +`` the smallest.  The point is checked against the region's definition
      (every ratio inside ``[c_low, c]`` just before it, one outside just after).
    * The clipped drift ``g(theta) = A(M) - A(T)`` is non-increasing in ``theta`` and affine
      in ``u``, so it has a zero in ``(0, 1)`` while ``g(+inf) < 0 < g(-inf)``; the two ends
      are evaluated at ``theta = -+1e6`` (both ratios clipped or at their limit) and
      ``lambda_collapse = 1 +`` the ``u`` at which the first end reaches zero.
    """
    import mpmath
    from mpmath import mpf

    with mpmath.workdps(dps):
        P, B, C = mpf(p), mpf(b), mpf(c)
        CL = 1 / C if c_low is None else mpf(c_low)
        if P == B:
            return mpmath.inf, mpmath.inf, "none", np.inf
        log_t = {"mode": mpmath.log(P), "tail": mpmath.log1p(-P)}
        theta_p = log_t["mode"] - log_t["tail"]
        slope = theta_p - (mpmath.log(B) - mpmath.log1p(-B))  # logit p - logit b
        log_c = mpmath.log(C)
        log_cl = mpmath.log(CL) if CL > 0 else -mpmath.inf
        sign = {"mode": 1, "tail": -1}  # the mode's mass is sigma(theta), the tail's sigma(-theta)

        def log_ratio(cls: str, theta: object) -> object:  # log t - log sigma(+-theta)
            return log_t[cls] + mpmath.log1p(mpmath.exp(-sign[cls] * theta))

        def inside(u: object) -> bool:
            theta = theta_p + u * slope
            return all(log_cl <= log_ratio(k, theta) <= log_c for k in sign)

        exits = []
        for cls in sign:
            for level in (log_c, log_cl):
                log_mass = log_t[cls] - level  # the class's mass where its ratio is at level
                if not log_mass < 0:
                    continue  # no mass in (0, 1) puts the ratio there (or no floor at all)
                logit_mass = log_mass - mpmath.log(-mpmath.expm1(log_mass))
                u = (sign[cls] * logit_mass - theta_p) / slope
                if u > 0:
                    exits.append((u, cls))
        u_star, binding = min(exits)
        other = [u for u, k in exits if k != binding]
        separation = float(min(other) / u_star - 1) if other else np.inf
        eps = mpmath.mpf(10) ** (20 - dps)  # far below what a float64 result can resolve
        assert inside(u_star * (1 - eps)) and not inside(u_star * (1 + eps)), (p, b, c, c_low)

        def clipped_drift(theta: object) -> object:  # at lambda = 1; + u slope for lambda
            a = [min(max(log_ratio(k, theta), log_cl), log_c) for k in ("mode", "tail")]
            return a[0] - a[1]

        ends = clipped_drift(mpf(10) ** 6), clipped_drift(-mpf(10) ** 6)  # m -> 1, m -> 0
        u_collapse = -ends[0] / slope if slope > 0 else -ends[1] / slope
        return 1 + u_star, 1 + u_collapse, binding, separation


def error_units(got: float, want: object) -> float:
    """|got - want| in units of ``max(ulp(want), 1e-12 (want - 1))`` (``want`` exact)."""
    import mpmath

    if mpmath.isinf(want):
        return 0.0 if got == np.inf else np.inf
    if not np.isfinite(got):
        return np.inf
    w = float(want)
    unit = max(float(np.spacing(w)), 1e-12 * float(want - 1))
    return float(abs(mpmath.mpf(got) - want)) / unit
